"""Pure rules of co-development sessions (issue 19): rounds in order, who advances them, who writes in each.

A session is opened on a top-level post by its author (the presenter) with a facilitator (another member).
Each function answers None (allowed) or the refusal's stable code; the server turns it into a problem
(409 for a write or a move out of order, 403 for a writer or mover the round does not allow) and audits it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum


class Round(StrEnum):
    SITUATION = "situation"
    CLARIFYING_QUESTIONS = "clarifying_questions"
    IDEAS = "ideas"
    ACTION_PLAN = "action_plan"
    CLOSED = "closed"


ROUNDS: tuple[Round, ...] = tuple(Round)


class SessionRole(StrEnum):
    """The writer's part in one session; a member holding several takes the first of this order."""

    PRESENTER = "presenter"
    FACILITATOR = "facilitator"
    MODERATOR = "moderator"
    MEMBER = "member"


class RoundRefusal(StrEnum):
    SESSION_EXPIRED = "session_expired"  # 409: the deadline has passed
    ROUND_CLOSED = "session_round_closed"  # 409: a write in a round that is not the current one
    ROUND_FORBIDDEN = "session_round_forbidden"  # 403: the current round does not let this member write
    ILLEGAL_ROUND = "illegal_round"  # 409: a move to another round than the next one
    ADVANCE_FORBIDDEN = "session_advance_forbidden"  # 403: only the facilitator or a moderator moves rounds
    INVALID_FACILITATOR = "invalid_facilitator"  # 422: the facilitator is the presenter


_EVERYONE = frozenset(SessionRole)
# Who writes in each round: the presenter tells the situation, everyone asks and the presenter answers,
# the others offer ideas while the presenter listens, the presenter ends with an action plan.
WRITERS: dict[Round, frozenset[SessionRole]] = {
    Round.SITUATION: frozenset({SessionRole.PRESENTER}),
    Round.CLARIFYING_QUESTIONS: _EVERYONE,
    Round.IDEAS: _EVERYONE - {SessionRole.PRESENTER},
    Round.ACTION_PLAN: frozenset({SessionRole.PRESENTER}),
    Round.CLOSED: frozenset(),
}
MOVERS = frozenset({SessionRole.FACILITATOR, SessionRole.MODERATOR})


def session_role(
    user_id: uuid.UUID, presenter_id: uuid.UUID, facilitator_id: uuid.UUID, is_moderator: bool
) -> SessionRole:
    if user_id == presenter_id:
        return SessionRole.PRESENTER
    if user_id == facilitator_id:
        return SessionRole.FACILITATOR
    return SessionRole.MODERATOR if is_moderator else SessionRole.MEMBER


def next_round(current: Round) -> Round | None:
    """The round after `current`; None once closed (final)."""
    position = ROUNDS.index(current)
    return ROUNDS[position + 1] if position + 1 < len(ROUNDS) else None


def may_open(presenter_id: uuid.UUID, facilitator_id: uuid.UUID) -> RoundRefusal | None:
    return RoundRefusal.INVALID_FACILITATOR if presenter_id == facilitator_id else None


def _expired(now: datetime, deadline: datetime) -> bool:
    return now >= deadline


def may_write(
    current: Round, requested: Round, role: SessionRole, now: datetime, deadline: datetime
) -> RoundRefusal | None:
    """A reply in a session names the round it is written for: only the current one, by its writers."""
    if _expired(now, deadline):
        return RoundRefusal.SESSION_EXPIRED
    if requested != current or current is Round.CLOSED:
        return RoundRefusal.ROUND_CLOSED
    return None if role in WRITERS[current] else RoundRefusal.ROUND_FORBIDDEN


def may_advance(
    current: Round, requested: Round, role: SessionRole, now: datetime, deadline: datetime
) -> RoundRefusal | None:
    """The facilitator or a moderator moves the session one round on; `closed` is final."""
    if role not in MOVERS:
        return RoundRefusal.ADVANCE_FORBIDDEN
    if _expired(now, deadline):
        return RoundRefusal.SESSION_EXPIRED
    return None if requested == next_round(current) else RoundRefusal.ILLEGAL_ROUND
