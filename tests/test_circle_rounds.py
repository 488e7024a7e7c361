"""Co-development session rules (app/authz/circle_rounds.py), written out by hand as tables: round x writer
for writes, round x mover for moves, the deadline, and who holds which part in a session."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from app.authz.circle_rounds import (
    ROUNDS,
    Round,
    RoundRefusal,
    SessionRole,
    may_advance,
    may_open,
    may_write,
    next_round,
    session_role,
)

NOW = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=7)
P, F, MOD, M = SessionRole.PRESENTER, SessionRole.FACILITATOR, SessionRole.MODERATOR, SessionRole.MEMBER
OK = None
FORBIDDEN = RoundRefusal.ROUND_FORBIDDEN
CLOSED = RoundRefusal.ROUND_CLOSED

# round: (presenter, facilitator, moderator, other member)
WRITE_TABLE = {
    Round.SITUATION: (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    Round.CLARIFYING_QUESTIONS: (OK, OK, OK, OK),
    Round.IDEAS: (FORBIDDEN, OK, OK, OK),
    Round.ACTION_PLAN: (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    Round.CLOSED: (CLOSED, CLOSED, CLOSED, CLOSED),
}


@pytest.mark.parametrize(
    ("current", "role", "expected"),
    [
        (current, role, expected)
        for current, row in WRITE_TABLE.items()
        for role, expected in zip((P, F, MOD, M), row, strict=True)
    ],
)
def test_who_writes_in_the_current_round(current, role, expected):
    assert may_write(current, current, role, NOW, LATER) == expected


@pytest.mark.parametrize(("current", "requested"), [(c, r) for c in ROUNDS for r in ROUNDS if c != r])
def test_a_write_for_another_round_than_the_current_one_is_closed(current, requested):
    for role in SessionRole:
        assert may_write(current, requested, role, NOW, LATER) == CLOSED


@pytest.mark.parametrize("when", [LATER, LATER + timedelta(seconds=1)])
def test_after_the_deadline_nobody_writes_or_advances(when):
    for role in SessionRole:
        assert may_write(Round.IDEAS, Round.IDEAS, role, when, LATER) == RoundRefusal.SESSION_EXPIRED
    assert may_advance(Round.IDEAS, Round.ACTION_PLAN, F, when, LATER) == RoundRefusal.SESSION_EXPIRED


def test_rounds_go_in_order_and_closed_is_final():
    assert ROUNDS == (
        Round.SITUATION,
        Round.CLARIFYING_QUESTIONS,
        Round.IDEAS,
        Round.ACTION_PLAN,
        Round.CLOSED,
    )
    assert [next_round(r) for r in ROUNDS] == [*ROUNDS[1:], None]


# (current, requested) -> refusal for a mover (facilitator or moderator)
MOVES = {
    (Round.SITUATION, Round.CLARIFYING_QUESTIONS): OK,
    (Round.CLARIFYING_QUESTIONS, Round.IDEAS): OK,
    (Round.IDEAS, Round.ACTION_PLAN): OK,
    (Round.ACTION_PLAN, Round.CLOSED): OK,
    (Round.SITUATION, Round.IDEAS): RoundRefusal.ILLEGAL_ROUND,  # no skipping
    (Round.IDEAS, Round.CLARIFYING_QUESTIONS): RoundRefusal.ILLEGAL_ROUND,  # no going back
    (Round.IDEAS, Round.IDEAS): RoundRefusal.ILLEGAL_ROUND,
    (Round.CLOSED, Round.SITUATION): RoundRefusal.ILLEGAL_ROUND,  # closed is final
    (Round.CLOSED, Round.CLOSED): RoundRefusal.ILLEGAL_ROUND,
}


@pytest.mark.parametrize(("current", "requested"), list(MOVES))
@pytest.mark.parametrize("mover", [F, MOD])
def test_the_facilitator_or_a_moderator_moves_one_round_on(current, requested, mover):
    assert may_advance(current, requested, mover, NOW, LATER) == MOVES[current, requested]


@pytest.mark.parametrize("role", [P, M])
def test_the_presenter_and_other_members_do_not_move_rounds(role):
    for current in ROUNDS[:-1]:
        refusal = may_advance(current, next_round(current), role, NOW, LATER)
        assert refusal == RoundRefusal.ADVANCE_FORBIDDEN


PRESENTER, FACILITATOR, OTHER = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


@pytest.mark.parametrize(
    ("user", "is_moderator", "expected"),
    [
        (PRESENTER, False, P),
        (PRESENTER, True, P),  # a moderator presenting listens during ideas like any presenter
        (FACILITATOR, False, F),
        (FACILITATOR, True, F),
        (OTHER, True, MOD),
        (OTHER, False, M),
    ],
)
def test_a_members_part_in_a_session(user, is_moderator, expected):
    assert session_role(user, PRESENTER, FACILITATOR, is_moderator) == expected


def test_the_facilitator_is_not_the_presenter():
    assert may_open(PRESENTER, FACILITATOR) is None
    assert may_open(PRESENTER, PRESENTER) == RoundRefusal.INVALID_FACILITATOR
