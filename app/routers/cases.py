"""Cases: create, list, the specialty queue, read one, transitions and re-shares.

A case the caller may not see answers 404 `case_not_found`, exactly like a missing one.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from app.audit.records import Resource
from app.deps import Clinician, CurrentPrincipal, Db, SettingsDep, Specialist, TrailDep
from app.models.base import utcnow
from app.models.cases import CaseStatus
from app.runtime.body_limits import LargeBody, large_body
from app.runtime.context import audited, inline_read
from app.schemas.cases import (
    CaseCreate,
    CaseDetail,
    CaseOut,
    CasePage,
    ShareOut,
    ShareRequest,
    TransitionRequest,
)
from app.schemas.common import problems
from app.services import case_lists, cases, sharing, transitions

router = APIRouter(prefix="/v1/cases", tags=["cases"])

Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=512)]


def on_case(action: str):
    """The audit declaration of a route on one case: the record names the case."""
    return audited(action, resource="case", id_param="case_id", case_param="case_id")


@router.post(
    "",
    operation_id="createCase",
    summary="Ask a specialty (or a named specialist of it) for an opinion, with sealed content",
    status_code=status.HTTP_201_CREATED,
    response_model=CaseDetail,
    responses=problems(400, 401, 403, 409, 413, 422, 429),
    dependencies=[audited("case.create"), large_body(LargeBody.SEALED_CASE_CONTENT)],
)
async def create_case(
    body: CaseCreate, principal: Clinician, db: Db, settings: SettingsDep, trail: TrailDep
) -> CaseDetail:
    trail.resource = Resource(type="case", id=str(body.id), case_id=body.id)
    return await db.run(cases.create, principal, body, settings, utcnow())


@router.get(
    "",
    operation_id="listCases",
    summary="Cases the caller takes part in, newest first (cursor pagination)",
    response_model=CasePage,
    responses=problems(401, 403, 422),
    dependencies=[audited("case.list"), inline_read()],
)
async def list_cases(
    principal: Clinician,
    db: Db,
    status_: Annotated[CaseStatus | None, Query(alias="status")] = None,
    specialty: Annotated[str | None, Query(max_length=40)] = None,
    overdue: bool | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> CasePage:
    now = utcnow()
    page = await db.run(
        case_lists.list_cases,
        principal,
        status=status_,
        specialty=specialty,
        is_overdue=overdue,
        limit=limit,
        cursor=cursor,
        now=now,
    )
    return CasePage(items=[cases.view(case, now) for case in page.items], next_cursor=page.next_cursor)


@router.get(
    "/queue",
    operation_id="listCaseQueue",
    summary="Open cases waiting in the caller's specialty queues, earliest due first, overdue flagged",
    response_model=CasePage,
    responses=problems(401, 403, 422),
    dependencies=[audited("case.queue"), inline_read()],
)
async def case_queue(
    principal: Specialist,
    db: Db,
    specialty: Annotated[str | None, Query(max_length=40)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> CasePage:
    now = utcnow()
    page = await db.run(case_lists.queue, principal, specialty=specialty, limit=limit, cursor=cursor)
    return CasePage(items=[cases.view(case, now) for case in page.items], next_cursor=page.next_cursor)


@router.get(
    "/{case_id}",
    operation_id="getCase",
    summary="A case: clear metadata, sealed content and attachments, with the caller's envelopes only",
    response_model=CaseDetail,
    responses=problems(401, 404, 422),
    dependencies=[on_case("case.read"), inline_read()],
)
async def get_case(case_id: uuid.UUID, principal: CurrentPrincipal, db: Db) -> CaseDetail:
    return await db.run(cases.read, principal, case_id, utcnow())


@router.post(
    "/{case_id}/transitions",
    operation_id="transitionCase",
    summary="Move a case: claim, decline, request_info, provide_info, answer, close, withdraw",
    response_model=CaseOut,
    responses=problems(400, 401, 403, 404, 409, 413, 422, 429),
    dependencies=[on_case("case.transition")],
)
async def transition_case(
    case_id: uuid.UUID,
    body: TransitionRequest,
    principal: CurrentPrincipal,
    db: Db,
    trail: TrailDep,
) -> CaseOut:
    trail.action = f"case.{body.action.value}"
    now = utcnow()
    return cases.view(await db.run(transitions.transition, principal, case_id, body, now), now)


@router.post(
    "/{case_id}/envelopes",
    operation_id="shareCase",
    summary="Re-share: upload envelopes re-wrapped for a colleague's devices, with a signed statement",
    status_code=status.HTTP_201_CREATED,
    response_model=ShareOut,
    responses=problems(400, 401, 403, 404, 409, 413, 422, 429),
    dependencies=[on_case("case.share"), large_body(LargeBody.SEALED_CASE_CONTENT)],
)
async def share_case(
    case_id: uuid.UUID,
    body: ShareRequest,
    principal: CurrentPrincipal,
    db: Db,
    settings: SettingsDep,
) -> ShareOut:
    return await db.run(sharing.share, principal, case_id, body, settings.max_envelopes_per_request, utcnow())
