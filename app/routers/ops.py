"""Operations: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Header, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from app.deps import RuntimeDep, SettingsDep
from app.errors import NotFound, ServiceUnavailable, Unauthenticated
from app.runtime.context import unaudited
from app.schemas.common import problems

router = APIRouter(tags=["operations"])


@router.get(
    "/healthz",
    operation_id="getHealth",
    summary="Liveness: the process answers",
    dependencies=[unaudited("health probe")],
)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    operation_id="getReadiness",
    summary="Readiness: the database answers",
    responses=problems(503),
    dependencies=[unaudited("health probe")],
)
async def readyz(runtime: RuntimeDep) -> dict[str, str]:
    if not await run_in_threadpool(runtime.database_answers):
        raise ServiceUnavailable("the database does not answer")
    return {"status": "ready"}


@router.get(
    "/metrics",
    operation_id="getMetrics",
    summary="Prometheus metrics (bearer CONFRERE_METRICS_TOKEN; disabled when unset)",
    responses={200: {"content": {"text/plain": {}}}, **problems(401, 404)},
    dependencies=[unaudited("scraped every few seconds; carries no personal data")],
)
async def metrics(settings: SettingsDep, authorization: Annotated[str | None, Header()] = None) -> Response:
    if settings.metrics_token is None:
        raise NotFound("metrics are disabled")
    expected = f"Bearer {settings.metrics_token.get_secret_value()}"
    if authorization is None or not hmac.compare_digest(authorization.encode(), expected.encode()):
        raise Unauthenticated()
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
