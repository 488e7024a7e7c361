"""Reactions, reports and moderation of circle posts. Moderators hide a post with a clear reason and read
the reports; acting on a pseudonymous post never tells them who wrote it (the audit log knows)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete
from sqlmodel import Session, col, select

from app.authz.principal import Principal
from app.errors import Conflict
from app.models.circles import CircleReaction, CircleReport, ReactionKind
from app.schemas.circles import HideRequest, PostOut, ReportCreate, ReportList, ReportOut
from app.services.circle_posts import load_post, views
from app.services.circles import load, moderators_only
from app.services.inserts import flush_new


class AlreadyHidden(Conflict):
    code = "already_hidden"
    title = "The post is already hidden"


def react(
    session: Session,
    principal: Principal,
    circle_id: uuid.UUID,
    post_id: uuid.UUID,
    kind: ReactionKind,
    now: datetime,
) -> PostOut:
    """Idempotent: a reaction set twice counts once."""
    place = load(session, principal, circle_id)
    post = load_post(session, circle_id, post_id)
    if session.get(CircleReaction, (post.id, principal.id, kind.value)) is None:
        session.add(CircleReaction(post_id=post.id, user_id=principal.id, kind=kind.value, created_at=now))
        flush_new(session, Conflict("the reaction was set meanwhile"))
    return views(session, principal, place.membership, [post])[0]


def unreact(
    session: Session, principal: Principal, circle_id: uuid.UUID, post_id: uuid.UUID, kind: ReactionKind
) -> PostOut:
    place = load(session, principal, circle_id)
    post = load_post(session, circle_id, post_id)
    session.execute(
        delete(CircleReaction).where(
            col(CircleReaction.post_id) == post.id,
            col(CircleReaction.user_id) == principal.id,
            col(CircleReaction.kind) == kind.value,
        )
    )
    return views(session, principal, place.membership, [post])[0]


def hide(
    session: Session,
    principal: Principal,
    circle_id: uuid.UUID,
    post_id: uuid.UUID,
    request: HideRequest,
    now: datetime,
) -> PostOut:
    place = load(session, principal, circle_id, moderators_only)
    post = load_post(session, circle_id, post_id)
    if post.hidden_at is not None:
        raise AlreadyHidden()
    post.hidden_at, post.hidden_by, post.hidden_reason = now, principal.id, request.reason.strip()
    session.add(post)
    return views(session, principal, place.membership, [post])[0]


def report(
    session: Session,
    principal: Principal,
    circle_id: uuid.UUID,
    post_id: uuid.UUID,
    request: ReportCreate,
    now: datetime,
) -> ReportOut:
    load(session, principal, circle_id)
    post = load_post(session, circle_id, post_id)
    row = CircleReport(
        circle_id=circle_id,
        post_id=post.id,
        reporter_id=principal.id,
        reason=request.reason.value,
        note=request.note,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return ReportOut.model_validate(row)


def reports(session: Session, principal: Principal, circle_id: uuid.UUID, limit: int) -> ReportList:
    """The latest reports, newest first (who reported is not shown)."""
    load(session, principal, circle_id, moderators_only)
    rows = session.exec(
        select(CircleReport)
        .where(col(CircleReport.circle_id) == circle_id)
        .order_by(col(CircleReport.created_at).desc(), col(CircleReport.id))
        .limit(limit)
    ).all()
    return ReportList(reports=[ReportOut.model_validate(row) for row in rows])
