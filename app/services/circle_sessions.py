"""Co-development sessions: opened on a top-level post by its author (the presenter) with a facilitator,
moved round by round by the facilitator or a moderator (app/authz/circle_rounds.py), closed at the last
round or by the deadline worker once the deadline has passed."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Session, col, select

from app.authz import circle_rounds
from app.authz import circles as policies
from app.authz.principal import Principal
from app.errors import Conflict, NotFound
from app.models.circles import CircleMember, CirclePost, CircleSession, CircleSessionRound
from app.models.users import User
from app.notifications import circle_events
from app.schemas.circles import Facilitator, RoundMove, RoundOut, SessionOpen, SessionOut
from app.services.circle_posts import InvalidFacilitator, enforce_round, load_post, views
from app.services.circles import load
from app.services.inserts import flush_new


class SessionNotFound(NotFound):
    code = "session_not_found"
    title = "No such session in this circle"


class SessionExists(Conflict):
    code = "session_exists"
    title = "A session is already open on this post"


class NotThePresenter(Conflict):
    code = "session_not_allowed"
    title = "Only the author of a top-level post opens a session on it"


class DeadlinePassed(Conflict):
    code = "session_expired"
    title = "The session's deadline has passed"


def _load(session: Session, circle_id: uuid.UUID, session_id: uuid.UUID) -> CircleSession:
    row = session.get(CircleSession, session_id)
    if row is None or row.circle_id != circle_id:
        raise SessionNotFound()
    return row


def _view(
    session: Session, principal: Principal, membership: CircleMember | None, row: CircleSession
) -> SessionOut:
    post = session.get(CirclePost, row.post_id)
    assert post is not None
    facilitator = session.get(User, row.facilitator_id)
    assert facilitator is not None
    rounds = session.exec(
        select(CircleSessionRound)
        .where(col(CircleSessionRound.session_id) == row.id)
        .order_by(col(CircleSessionRound.moved_at))
    ).all()
    return SessionOut(
        id=row.id,
        circle_id=row.circle_id,
        post_id=row.post_id,
        # The presenter as the post shows its author: a pseudonym stays one.
        presenter=views(session, principal, membership, [post])[0].author,
        facilitator=Facilitator(user_id=facilitator.id, display_name=facilitator.display_name),
        round=circle_rounds.Round(row.round),
        deadline=row.deadline,
        closed_at=row.closed_at,
        rounds=[RoundOut(round=circle_rounds.Round(r.round), at=r.moved_at) for r in rounds],
    )


def open_session(
    session: Session, principal: Principal, circle_id: uuid.UUID, request: SessionOpen, now: datetime
) -> SessionOut:
    place = load(session, principal, circle_id)
    post = load_post(session, circle_id, request.post_id)
    if post.parent_id is not None or post.author_id != principal.id:
        raise NotThePresenter()
    enforce_round(circle_rounds.may_open(principal.id, request.facilitator_id))
    if not policies.is_member(session.get(CircleMember, (circle_id, request.facilitator_id))):
        raise InvalidFacilitator("the facilitator is not a member of the circle")
    if request.deadline <= now:
        raise DeadlinePassed("the deadline is in the past")
    row = CircleSession(
        circle_id=circle_id,
        post_id=post.id,
        presenter_id=principal.id,
        facilitator_id=request.facilitator_id,
        deadline=request.deadline,
        created_at=now,
    )
    session.add(row)
    flush_new(session, SessionExists())
    session.add(CircleSessionRound(session_id=row.id, round=row.round, moved_by=principal.id, moved_at=now))
    session.flush()
    circle_events.session_round(session, circle_id, row.id, principal.id, now)
    return _view(session, principal, place.membership, row)


def _move(
    session: Session, row: CircleSession, to: circle_rounds.Round, actor_id: uuid.UUID | None, now: datetime
) -> None:
    row.round = to.value
    if to is circle_rounds.Round.CLOSED:
        row.closed_at = now
    session.add(row)
    session.add(CircleSessionRound(session_id=row.id, round=to.value, moved_by=actor_id, moved_at=now))
    flush_new(session, Conflict("the session moved meanwhile"))
    circle_events.session_round(session, row.circle_id, row.id, actor_id, now)


def advance(
    session: Session,
    principal: Principal,
    circle_id: uuid.UUID,
    session_id: uuid.UUID,
    request: RoundMove,
    now: datetime,
) -> SessionOut:
    place = load(session, principal, circle_id)
    row = _load(session, circle_id, session_id)
    role = circle_rounds.session_role(
        principal.id, row.presenter_id, row.facilitator_id, policies.is_moderator(place.membership)
    )
    enforce_round(
        circle_rounds.may_advance(circle_rounds.Round(row.round), request.round, role, now, row.deadline)
    )
    _move(session, row, request.round, principal.id, now)
    return _view(session, principal, place.membership, row)


def read(session: Session, principal: Principal, circle_id: uuid.UUID, session_id: uuid.UUID) -> SessionOut:
    place = load(session, principal, circle_id)
    return _view(session, principal, place.membership, _load(session, circle_id, session_id))


def close_expired(session: Session, now: datetime, limit: int = 100) -> list[CircleSession]:
    """The deadline worker's pass: sessions past their deadline and not closed yet are closed."""
    rows = list(
        session.exec(
            select(CircleSession)
            .where(col(CircleSession.closed_at).is_(None), col(CircleSession.deadline) <= now)
            .order_by(col(CircleSession.deadline))
            .limit(limit)
        ).all()
    )
    for row in rows:
        _move(session, row, circle_rounds.Round.CLOSED, None, now)
    return rows
