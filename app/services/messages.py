"""A case's thread: messages, requests for information and their responses, and the report; all sealed."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Session, col, select

from app.authz.principal import Principal
from app.config import Settings
from app.models.cases import MESSAGE_KINDS, CaseObject, ObjectKind
from app.notifications import outbox
from app.platform.keyset import Keyset
from app.schemas.cases import MessageCreate, MessageOut, MessagePage
from app.schemas.sealed import SealedOut
from app.services import sealed
from app.services.cases import accept_inline, load_visible, require_writer

OLDEST_FIRST = Keyset(CaseObject.created_at, CaseObject.id)


def _out(row: CaseObject, view: SealedOut) -> MessageOut:
    return MessageOut(
        id=row.id,
        case_id=row.case_id,
        kind=row.kind,
        author_id=row.author_id,
        created_at=row.created_at,
        sealed=view,
    )


def post(
    session: Session,
    principal: Principal,
    case_id: uuid.UUID,
    request: MessageCreate,
    settings: Settings,
    now: datetime,
) -> MessageOut:
    """Requests for information and reports come from the assignee, responses from the requester, plain
    messages from any participant; each may be sealed for the devices of anyone who may see the case."""
    visible = load_visible(session, principal, case_id)
    kind = ObjectKind(request.kind)
    require_writer(principal, visible, kind)
    target = visible.target(kind, request.id)
    # The recipients' owners and the event's audience in one load of the members.
    audience = outbox.message_audience(visible.case, visible.shared, principal.id)
    parties = sealed.load_parties(session, principal, request.sealed, members=audience)
    row, verified = accept_inline(session, principal, target, request.sealed, settings, now, parties)
    outbox.message_posted(session, visible.case, visible.shared, row.id, principal.id, now, parties.members)
    return _out(row, sealed.written_view(row, verified, principal, parties))


def thread(
    session: Session, principal: Principal, case_id: uuid.UUID, *, limit: int, cursor: str | None
) -> MessagePage:
    case = load_visible(session, principal, case_id).case
    query = select(CaseObject).where(
        col(CaseObject.case_id) == case.id, col(CaseObject.kind).in_(MESSAGE_KINDS)
    )
    if cursor is not None:
        query = query.where(OLDEST_FIRST.after(cursor))
    rows = list(session.exec(query.order_by(*OLDEST_FIRST.order_by()).limit(limit + 1)).all())
    page = OLDEST_FIRST.page(rows, limit)
    views = sealed.views(session, principal.id, page.items)
    return MessagePage(items=[_out(row, views[row.id]) for row in page.items], next_cursor=page.next_cursor)
