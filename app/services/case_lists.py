"""The caller's cases and the specialty queue, page by page.

Both are unions of simple selects (app/authz/queries.py), each walked along its own index in the page's
order and cut at one page, then merged: a page costs the same at a thousand cases or a million.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, not_, union
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from app.authz import queries
from app.authz.principal import Principal
from app.models.cases import PENDING_STATUSES, Case, CaseStatus
from app.platform.keyset import Keyset
from app.platform.pagination import Page

NEWEST_FIRST = Keyset(Case.created_at, Case.id, descending=True)
# Priority sets the due date, so earliest due first puts urgent cases ahead of routine ones, except a
# routine case closer to (or past) its deadline, which is the one to take first.
EARLIEST_DUE_FIRST = Keyset(Case.due_at, Case.id)


def _merged(session: Session, selects: list[SelectOfScalar[Case]], order: Keyset, limit: int) -> list[Case]:
    if len(selects) == 1:
        return list(session.exec(selects[0].order_by(*order.order_by()).limit(limit + 1)).all())
    pages = [
        select(query.with_only_columns(col(Case.id)).order_by(*order.order_by()).limit(limit + 1).subquery())
        for query in selects
    ]
    ids = union(*pages).subquery()
    merged = select(Case).join(ids, col(Case.id) == ids.c.id).order_by(*order.order_by()).limit(limit + 1)
    return list(session.exec(merged).all())


def _page(
    session: Session,
    selects: list[SelectOfScalar[Case]],
    order: Keyset,
    filters: list,
    limit: int,
    cursor: str | None,
) -> Page[Case]:
    if cursor is not None:
        filters = [*filters, order.after(cursor)]
    if not selects:
        return Page(items=[], next_cursor=None)
    rows = _merged(session, [query.where(*filters) for query in selects], order, limit)
    return order.page(rows, limit)


def overdue(now: datetime):
    return and_(col(Case.status).in_(PENDING_STATUSES), col(Case.due_at) < now)


def list_cases(
    session: Session,
    principal: Principal,
    *,
    status: CaseStatus | None,
    specialty: str | None,
    is_overdue: bool | None,
    limit: int,
    cursor: str | None,
    now: datetime,
) -> Page[Case]:
    """Cases the caller takes part in (requester, assignee, named specialist, shared with), newest first."""
    filters = []
    if status is not None:
        filters.append(col(Case.status) == status.value)
    if specialty is not None:
        filters.append(col(Case.specialty) == specialty)
    if is_overdue is not None:
        filters.append(overdue(now) if is_overdue else not_(overdue(now)))
    selects = queries.participant_selects(principal.id)
    return _page(session, selects, NEWEST_FIRST, filters, limit, cursor)


def queue(
    session: Session, principal: Principal, *, specialty: str | None, limit: int, cursor: str | None
) -> Page[Case]:
    """Open cases waiting for a specialist of the caller's specialties (or of the one asked for)."""
    specialties = principal.specialties if specialty is None else principal.specialties & {specialty}
    selects = queries.queue_selects(principal.id, specialties)
    return _page(session, selects, EARLIEST_DUE_FIRST, [], limit, cursor)
