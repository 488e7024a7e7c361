"""Who takes part in a case, with their devices and directory proofs: the audience of every later message, so
that a client seals for all of them (the requester, the assignee or named specialist, shared colleagues)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Set

from sqlmodel import Session

from app.authz import queries
from app.authz.cases import Member, has_access
from app.models.cases import Case
from app.models.devices import Device
from app.schemas.directory import Participant, ParticipantRole, Participants
from app.services import devices


def _roles(case: Case, shared: Set[uuid.UUID]) -> dict[uuid.UUID, list[ParticipantRole]]:
    roles: dict[uuid.UUID, list[ParticipantRole]] = {}
    named = (
        (ParticipantRole.REQUESTER, case.requester_id),
        (ParticipantRole.ASSIGNEE, case.assignee_id),
        (ParticipantRole.NAMED_SPECIALIST, case.named_specialist_id),
    )
    for role, user_id in named:
        if user_id is not None:
            roles.setdefault(user_id, []).append(role)
    for user_id in sorted(shared):
        roles.setdefault(user_id, []).append(ParticipantRole.SHARED)
    return roles


def of_case(session: Session, case: Case, shared: Set[uuid.UUID]) -> Participants:
    """The participants who may receive the case's keys now (a suspended one is left out, as the server
    would refuse an envelope for them), each with their active devices and proofs."""
    members = queries.load_members(session, _roles(case, shared))
    return listed(session, case, shared, members, lambda user_ids: devices.active_devices(session, user_ids))


def listed(
    session: Session,
    case: Case,
    shared: Set[uuid.UUID],
    members: Mapping[uuid.UUID, Member],
    active_devices_of: Callable[[list[uuid.UUID]], list[Device]],
) -> Participants:
    """of_case on members and devices the caller loaded already (`members` holds at least every
    participant who exists; `active_devices_of` gives their active devices, ordered as
    devices.active_devices does)."""
    roles = _roles(case, shared)
    eligible = [
        user_id for user_id in roles if user_id in members and has_access(members[user_id], case, shared)
    ]
    active = active_devices_of(eligible)
    proved = devices.prove(session, active)
    by_user: dict[uuid.UUID, list] = {user_id: [] for user_id in eligible}
    for device in active:
        by_user[device.user_id].append(proved.device(device))
    return Participants(
        checkpoint=proved.checkpoint,
        users=[
            Participant(user_id=user_id, roles=roles[user_id], devices=listed)
            for user_id, listed in by_user.items()
        ],
    )
