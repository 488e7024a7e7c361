"""Who sees a case is defined once (app/authz/visibility.py) and read twice: as Python by the policies and the
recipient checks, as SQL by the case lists, the event audiences and the recipient directory. Here both
readings meet a generated set of situations on the real database (relations x statuses x roles, specialties
and account states), and must agree on every pair of user and case."""

from __future__ import annotations

import itertools
import os
import uuid
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine, insert
from sqlmodel import Session, select

from app.authz import queries
from app.authz.cases import Member, has_access, may_act_as_clinician
from app.authz.notifications import may_be_notified
from app.authz.policies import may_use_role
from app.authz.principal import Principal
from app.authz.visibility import Ground, grounds, in_queue, is_specialist_of, participant_ids
from app.models.base import utcnow
from app.models.cases import Case, CaseShare, CaseStatus, Priority
from app.models.devices import Device
from app.models.users import Role, User, UserRole, UserSpecialty, UserStatus
from app.notifications import outbox
from app.services import case_lists, devices

SPECIALTY, OTHER_SPECIALTY = "dermatology", "cardiology"
# A physician with a specialty is no specialist of it; an admin who is also a specialist is one.
ROLE_SETS = [(Role.PHYSICIAN,), (Role.SPECIALIST,), (Role.COMPLIANCE_OFFICER,), (Role.ADMIN, Role.SPECIALIST)]
SPECIALTY_SETS = [(SPECIALTY,), (OTHER_SPECIALTY,)]
# (status, verified): can act, pending verification, suspended.
ACCOUNT_STATES = [(UserStatus.ACTIVE, True), (UserStatus.PENDING, False), (UserStatus.SUSPENDED, True)]
# How the subject relates to a case; the seats the subject does not hold are taken by colleagues, or empty.
RELATIONS = ["requester", "named_specialist", "assignee", "shared", "shared_without_access", "none"]
EVERYTHING = 1_000_000


@dataclass
class World:
    users: dict[uuid.UUID, Member]
    cases: list[Case]
    shared: dict[uuid.UUID, frozenset[uuid.UUID]]
    with_device: set[uuid.UUID]


def _user_row(status: UserStatus, verified: bool, n: int) -> dict:
    now = utcnow()
    return {
        "id": uuid.uuid4(),
        "email": f"visibility-{n}@example.org",
        "password_hash": "unused",
        "display_name": f"User {n}",
        "status": status.value,
        "verified_at": now if verified else None,
        "created_at": now,
        "updated_at": now,
        "failed_logins": 0,
    }


def _case_shapes(relation: str) -> list[dict[str, str]]:
    """The seats of the cases relating to the subject this way: subject, colleague or nobody in each."""
    shapes = []
    for named, assignee in itertools.product(["nobody", "colleague"], repeat=2):
        shape = {"requester_id": "colleague", "named_specialist_id": named, "assignee_id": assignee}
        seat = relation + "_id"
        if seat in shape:
            if seat != "requester_id" and shape[seat] == "colleague":
                continue  # the same case as with nobody in the subject's seat
            shape[seat] = "subject"
        shapes.append(shape)
    return shapes


def _build(engine: Engine) -> World:
    now = utcnow()
    users, roles, specialties = [], [], []
    for n, (role_set, specialty_set, (status, verified)) in enumerate(
        itertools.product(ROLE_SETS, SPECIALTY_SETS, ACCOUNT_STATES)
    ):
        row = _user_row(status, verified, n)
        users.append(row)
        roles += [{"user_id": row["id"], "role": role.value} for role in role_set]
        specialties += [{"user_id": row["id"], "specialty_code": code} for code in specialty_set]
    # Colleagues hold the seats the subject does not: a physician asks, a specialist of the specialty answers.
    physician, specialist = _user_row(UserStatus.ACTIVE, True, -1), _user_row(UserStatus.ACTIVE, True, -2)
    users += [physician, specialist]
    roles += [
        {"user_id": physician["id"], "role": Role.PHYSICIAN.value},
        {"user_id": specialist["id"], "role": Role.SPECIALIST.value},
    ]
    specialties.append({"user_id": specialist["id"], "specialty_code": SPECIALTY})
    device_rows = [
        {
            "id": uuid.uuid4(),
            "user_id": row["id"],
            "suite": "x25519",
            "signing_public_key": os.urandom(32),
            "kem_public_key": os.urandom(32),
            "label": "test",
            "created_at": now,
        }
        for row in users
    ]
    sharer_device = next(d["id"] for d in device_rows if d["user_id"] == physician["id"])

    cases, shares = [], []
    subjects = [row["id"] for row in users[:-2]]
    colleagues = {"requester_id": physician["id"], "named_specialist_id": specialist["id"]}
    colleagues["assignee_id"] = specialist["id"]
    situations = [
        (status, relation, shape, subject)
        for status, relation in itertools.product(CaseStatus, RELATIONS)
        for shape in _case_shapes(relation)
        # With no relation the case is the same for every subject: one is enough.
        for subject in (subjects if relation != "none" else subjects[:1])
    ]
    for status, relation, shape, subject in situations:
        case_id = uuid.uuid4()
        seats = {
            seat: {"subject": subject, "colleague": colleagues[seat], "nobody": None}[who]
            for seat, who in shape.items()
        }
        cases.append(
            {
                "id": case_id,
                **seats,
                "specialty": SPECIALTY,
                "status": status.value,
                "priority": Priority.ROUTINE.value,
                "due_at": now,
                "patient_consent_at": now,
                "created_at": now,
                "updated_at": now,
            }
        )
        if relation.startswith("shared"):
            shares.append(
                {
                    "id": uuid.uuid4(),
                    "case_id": case_id,
                    "recipient_id": subject,
                    "sharer_id": physician["id"],
                    "sharer_device_id": sharer_device,
                    "statement": b"{}",
                    "signature": bytes(64),
                    "grants_access": relation == "shared",
                    "created_at": now,
                }
            )
    with engine.begin() as connection:
        for model, rows in (
            (User, users),
            (UserRole, roles),
            (UserSpecialty, specialties),
            (Device, device_rows),
            (Case, cases),
            (CaseShare, shares),
        ):
            connection.execute(insert(model), rows)
    with Session(engine) as session:
        members = queries.load_members(session, [row["id"] for row in users])
        loaded = list(session.exec(Case.__table__.select()).all())
        case_rows = [Case.model_validate(dict(row._mapping)) for row in loaded]
        # As app/authz/queries.py shared_user_ids loads them, for all the cases at once.
        shared: dict[uuid.UUID, set[uuid.UUID]] = {case.id: set() for case in case_rows}
        for case_id, user_id in session.exec(
            select(CaseShare.case_id, CaseShare.recipient_id).where(CaseShare.grants_access)
        ).all():
            shared[case_id].add(user_id)
    frozen = {case_id: frozenset(users) for case_id, users in shared.items()}
    return World(members, case_rows, frozen, {row["user_id"] for row in device_rows})


@pytest.fixture
def world(engine: Engine) -> World:
    return _build(engine)


def _principal(member: Member) -> Principal:
    return Principal(
        user=member.user,
        roles=member.roles,
        specialties=member.specialties,
        session_id=uuid.uuid4(),
        amr=frozenset(),
    )


def _listed(session: Session, member: Member) -> set[uuid.UUID]:
    """What the SQL lists show the user, through the routes' gates (listCases: a clinician; listCaseQueue:
    a specialist)."""
    principal = _principal(member)
    found: set[uuid.UUID] = set()
    if may_act_as_clinician(principal):
        page = case_lists.list_cases(
            session,
            principal,
            status=None,
            specialty=None,
            is_overdue=None,
            limit=EVERYTHING,
            cursor=None,
            now=utcnow(),
        )
        found |= {case.id for case in page.items}
    if may_use_role(principal, Role.SPECIALIST):
        page = case_lists.queue(session, principal, specialty=None, limit=EVERYTHING, cursor=None)
        found |= {case.id for case in page.items}
    return found


def test_the_generated_situations_cover_every_relation_and_status(world: World) -> None:
    seen = {
        (ground, CaseStatus(case.status))
        for case in world.cases
        for member in world.users.values()
        for ground in grounds(member, case, world.shared[case.id])
    }
    assert seen >= set(itertools.product(set(Ground) - {Ground.QUEUE}, CaseStatus))
    assert (Ground.QUEUE, CaseStatus.OPEN) in seen


def test_case_lists_show_exactly_the_cases_the_policy_lets_a_user_see(engine: Engine, world: World) -> None:
    with Session(engine) as session:
        for member in world.users.values():
            expected = {case.id for case in world.cases if has_access(member, case, world.shared[case.id])}
            assert _listed(session, member) == expected, (member.roles, member.specialties, member.user)


def test_event_audiences_reach_every_viewer_and_only_the_specialty_queue(
    engine: Engine, world: World
) -> None:
    with Session(engine) as session:
        audiences: dict[uuid.UUID, set[uuid.UUID]] = {}
        for case in world.cases:
            shared = world.shared[case.id]
            if case.requester_id not in audiences:  # every case is of one specialty
                audiences[case.requester_id] = outbox.queue_audience(session, case)
            audience = audiences[case.requester_id]
            assert audience == {
                user_id
                for user_id, member in world.users.items()
                if is_specialist_of(member, case.specialty) and user_id != case.requester_id
            }
            candidates = participant_ids(case, shared) | (audience if in_queue(case) else set())
            notified = {
                user_id for user_id in candidates if may_be_notified(world.users[user_id], case, shared)
            }
            viewers = {user_id for user_id, member in world.users.items() if has_access(member, case, shared)}
            assert viewers <= notified


def test_the_recipient_directory_lists_the_devices_of_a_new_cases_viewers(
    engine: Engine, world: World
) -> None:
    now = utcnow()
    physician = next(m for m in world.users.values() if m.user.display_name == "User -1")
    for specialty in (SPECIALTY, OTHER_SPECIALTY):
        new_case = Case(
            id=uuid.uuid4(),
            requester_id=physician.id,
            specialty=specialty,
            status=CaseStatus.OPEN,
            priority=Priority.ROUTINE,
            due_at=now,
            patient_consent_at=now,
        )
        with Session(engine) as session:
            listed = {device.user_id for device in devices.specialty_recipients(session, specialty)}
        expected = {
            user_id
            for user_id, member in world.users.items()
            if user_id in world.with_device and Ground.QUEUE in grounds(member, new_case, frozenset())
        }
        assert listed == expected
