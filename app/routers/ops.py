"""Operations: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from app.deps import SettingsDep, unaudited
from app.errors import NotFound, ServiceUnavailable, Unauthenticated
from app.schemas.common import problems

router = APIRouter(tags=["operations"])
# Prometheus sends CONFRERE_METRICS_TOKEN, never a user's access token: a security scheme of its own.
METRICS_SCHEME = "metricsToken"
METRICS_SECURITY_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "CONFRERE_METRICS_TOKEN (metrics are off while it is unset).",
}


@router.get(
    "/healthz",
    operation_id="getHealth",
    summary="Liveness: the process answers",
    responses=problems(422),
    dependencies=[unaudited("health probe")],
)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    operation_id="getReadiness",
    summary="Readiness: the database answers",
    responses=problems(422, 503),
    dependencies=[unaudited("health probe")],
)
def readyz(request: Request) -> dict[str, str]:
    try:
        with request.app.state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        raise ServiceUnavailable("the database does not answer") from error
    return {"status": "ready"}


@router.get(
    "/metrics",
    operation_id="getMetrics",
    summary="Prometheus metrics (bearer CONFRERE_METRICS_TOKEN; disabled when unset)",
    responses={200: {"content": {"text/plain": {}}}, **problems(401, 404)},
    openapi_extra={"security": [{METRICS_SCHEME: []}]},
    dependencies=[unaudited("scraped every few seconds; carries no personal data")],
)
def metrics(settings: SettingsDep, authorization: Annotated[str | None, Header()] = None) -> Response:
    if settings.metrics_token is None:
        raise NotFound("metrics are disabled")
    expected = f"Bearer {settings.metrics_token.get_secret_value()}"
    if authorization is None or not hmac.compare_digest(authorization.encode(), expected.encode()):
        raise Unauthenticated()
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
