"""The app under benchmark plus reference routes, served by the same process with the same settings:

- the two ceilings: a bare JSON route, and a route that only validates an access token, as plain `def`
  routes that FastAPI runs on a worker thread, and as `async def` routes (no worker thread), like the
  app's own handlers, to show what the thread handoff costs;
- a case read exactly like GET /v1/cases/{case_id} (the same code, app.services.cases.read) but without
  its audit record, so that the audit overhead of a read is measured in the same run. It exists only
  here, never in the product.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, FastAPI
from fastapi.security import HTTPAuthorizationCredentials

from app.deps import CurrentPrincipal, Db, RuntimeDep
from app.errors import Unauthenticated
from app.main import create_app
from app.models.base import utcnow
from app.runtime.context import inline_read, unaudited
from app.runtime.principals import bearer_scheme
from app.runtime.state import Runtime
from app.schemas.cases import CaseDetail
from app.services import cases


def _subject(runtime: Runtime, credentials: HTTPAuthorizationCredentials | None) -> dict[str, str]:
    if credentials is None:
        raise Unauthenticated()
    return {"sub": str(runtime.authenticator.verify_access_token(credentials.credentials).user_id)}


def create_bench_app() -> FastAPI:
    app = create_app()

    @app.get("/bench/plain", include_in_schema=False)
    def plain() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/bench/token", include_in_schema=False)
    def token_only(
        runtime: RuntimeDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    ) -> dict[str, str]:
        return _subject(runtime, credentials)

    @app.get("/bench/plain-async", include_in_schema=False)
    async def plain_async() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/bench/token-async", include_in_schema=False)
    async def token_only_async(
        runtime: RuntimeDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    ) -> dict[str, str]:
        return _subject(runtime, credentials)

    @app.get(
        "/bench/cases/{case_id}",
        include_in_schema=False,
        response_model=CaseDetail,
        dependencies=[unaudited("benchmark reference: the case read without its record"), inline_read()],
    )
    async def read_case_unaudited(case_id: uuid.UUID, principal: CurrentPrincipal, db: Db) -> CaseDetail:
        return await db.run(cases.read, principal, case_id, utcnow())

    return app
