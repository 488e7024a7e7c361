"""Benchmark data: a fresh database, the people the scenarios act as, and bulk rows for scale.

People and their devices (real keys) go straight into their tables with one shared Argon2id hash: hashing
a password per account would cost minutes and measure nothing. Bulk cases (with a small sealed object and
one envelope each, so the object tables grow with the case table) and bulk audit records go through SQL in
batches: the only way to reach a million rows in minutes. The cases the scenarios touch are created through
the API instead, with real sealed content (bench/fixtures.py).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import islice

from alembic import command
from sqlalchemy import Engine, create_engine, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from app.audit.records import Actor, AuditTrail, Event, Outcome, Resource, encode
from app.cli import alembic_config
from app.config import Settings
from app.crypto import totp
from app.crypto.e2ee import DeviceKeys, Header, Recipient, Suite, generate_device_keys, seal
from app.crypto.passwords import PasswordHasher
from app.crypto.sealing import SecretSealer
from app.models.audit import AuditRecord
from app.models.base import utcnow
from app.models.cases import Case, CaseObject, CaseStatus, Envelope, Priority
from app.models.devices import Device
from app.models.users import Role, User, UserRole, UserSpecialty, UserStatus
from app.services.auth import totp_context

PASSWORD = "benchmark password 2026"  # noqa: S105 (throwaway benchmark accounts)
QUEUE_SPECIALTY = "cardiology"
# A case sealed for the requester's device and every device of the specialty: 1 + 19 = 20 envelopes.
QUEUE_DEVICES = 19
PHYSICIANS = 50
SPECIALISTS_PER_SPECIALTY = 5
SUITE = Suite.X25519
BATCH_ROWS = 5000
# Bulk case statuses: mostly history, some waiting in the queues, some in progress.
STATUS_WEIGHTS = {
    CaseStatus.CLOSED: 60,
    CaseStatus.WITHDRAWN: 5,
    CaseStatus.ANSWERED: 10,
    CaseStatus.CLAIMED: 10,
    CaseStatus.AWAITING_INFO: 5,
    CaseStatus.OPEN: 10,
}
# The queue under test gets a fifth of all cases, so that its queue deepens as the table grows.
QUEUE_SPECIALTY_SHARE = 0.2
AUDIT_ACTIONS = {
    "case.read": 50,
    "case.list": 15,
    "case.queue": 10,
    "case.message.create": 8,
    "case.create": 5,
    "auth.login": 7,
    "auth.refresh": 5,
}
HISTORY_DAYS = 730


@dataclass(frozen=True)
class Person:
    id: uuid.UUID
    email: str
    device_id: uuid.UUID | None = None
    keys: DeviceKeys | None = None
    totp_secret: bytes | None = None


@dataclass
class Cast:
    physicians: list[Person]
    cardiologists: list[Person]
    officer: Person
    specialists: dict[str, list[uuid.UUID]] = field(default_factory=dict)

    @property
    def reader(self) -> Person:
        """The physician whose cases the read, message and attachment scenarios use."""
        return self.physicians[0]

    @property
    def queue_recipients(self) -> dict[str, Recipient]:
        """Every device that may receive a new case of the queue specialty, the requester's included."""
        people = [self.reader, *self.cardiologists]
        return {
            str(person.device_id): Recipient(person.keys.suite, person.keys.kem_public)
            for person in people
            if person.keys
        }


def is_postgres(url: str) -> bool:
    return url.startswith("postgresql")


def fresh_database(settings: Settings) -> None:
    """Empty the benchmark database (its own database or SQLite file, never a shared one) and migrate it."""
    url = settings.resolved_database_url
    if is_postgres(url):
        _create_database_if_missing(url)
        engine = create_engine(url, poolclass=NullPool)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings, url), "head")


def _create_database_if_missing(url: str) -> None:
    target = make_url(url)
    server = create_engine(target.set(database="postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        exists = connection.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
        ).first()
        if exists is None:
            connection.execute(text(f'CREATE DATABASE "{target.database}"'))
    server.dispose()


def seed_engine(settings: Settings) -> Engine:
    """A plain engine for bulk writes: the server is not running while the seeding writes."""
    return create_engine(settings.resolved_database_url, poolclass=NullPool)


def _person(email: str, with_device: bool) -> Person:
    keys = generate_device_keys(SUITE) if with_device else None
    return Person(id=uuid.uuid4(), email=email, device_id=uuid.uuid4() if keys else None, keys=keys)


def cast(engine: Engine, sealer: SecretSealer, specialties: list[str]) -> Cast:
    now = utcnow()
    password_hash = PasswordHasher().hash(PASSWORD)
    users: list[dict] = []
    roles: list[dict] = []
    memberships: list[dict] = []
    devices: list[dict] = []

    def add(person: Person, role: Role, specialty: str | None = None) -> Person:
        users.append(
            {
                "id": person.id,
                "email": person.email,
                "password_hash": password_hash,
                "display_name": person.email,
                "status": UserStatus.ACTIVE.value,
                "verified_at": now,
                "created_at": now,
                "updated_at": now,
                # Every row names the same columns: an executemany takes its columns from the first row.
                "totp_secret_sealed": None,
                "totp_confirmed_at": None,
            }
        )
        roles.append({"user_id": person.id, "role": role.value})
        if specialty:
            memberships.append({"user_id": person.id, "specialty_code": specialty})
        if person.keys is not None:
            devices.append(
                {
                    "id": person.device_id,
                    "user_id": person.id,
                    "suite": SUITE.value,
                    "signing_public_key": person.keys.signing_public,
                    "kem_public_key": person.keys.kem_public,
                    "label": "bench device",
                    "created_at": now,
                }
            )
        return person

    physicians = [
        add(_person(f"physician{n}@bench.example", True), Role.PHYSICIAN) for n in range(PHYSICIANS)
    ]
    cardiologists = [
        add(_person(f"cardiologist{n}@bench.example", True), Role.SPECIALIST, QUEUE_SPECIALTY)
        for n in range(QUEUE_DEVICES)
    ]
    specialists = {QUEUE_SPECIALTY: [person.id for person in cardiologists]}
    for code in specialties:
        if code != QUEUE_SPECIALTY:
            specialists[code] = [
                add(_person(f"{code}{n}@bench.example", False), Role.SPECIALIST, code).id
                for n in range(SPECIALISTS_PER_SPECIALTY)
            ]
    secret = totp.new_secret()
    officer = add(
        Person(id=uuid.uuid4(), email="officer@bench.example", totp_secret=secret), Role.COMPLIANCE_OFFICER
    )
    users[-1] |= {
        "totp_secret_sealed": sealer.seal(secret, totp_context(officer.id)),
        "totp_confirmed_at": now,
    }
    with engine.begin() as connection:
        connection.execute(insert(User), users)
        connection.execute(insert(UserRole), roles)
        connection.execute(insert(UserSpecialty), memberships)
        connection.execute(insert(Device), devices)
    return Cast(physicians=physicians, cardiologists=cardiologists, officer=officer, specialists=specialists)


def specialty_codes(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(text("SELECT code FROM specialties ORDER BY code")).scalars())


def _batches(rows: Iterator[dict], size: int = BATCH_ROWS) -> Iterator[list[dict]]:
    while batch := list(islice(rows, size)):
        yield batch


@dataclass(frozen=True)
class _Template:
    """One real sealed object whose bytes every bulk case shares: the server never re-checks stored objects,
    and the sizes are those of a short sealed case."""

    header: bytes
    manifest: bytes
    signature: bytes
    ciphertext: bytes
    wrapped_key: bytes


def _template(author: Person) -> _Template:
    assert author.keys is not None
    case_id = str(uuid.uuid4())
    header = Header(case_id=case_id, kind="case", object_id=case_id, author_device_id=str(author.device_id))
    recipient = Recipient(author.keys.suite, author.keys.kem_public)
    sealed = seal(b"x" * 200, header, {str(author.device_id): recipient}, author.keys)
    return _Template(
        sealed.header,
        sealed.manifest,
        sealed.signature,
        sealed.ciphertext,
        next(iter(sealed.envelopes.values())),
    )


def count_cases(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(Case)).scalar_one()


def bulk_cases(engine: Engine, people: Cast, count: int, rng: random.Random) -> None:
    """`count` more cases over the past two years, each with a sealed object and the requester's envelope."""
    template = _template(people.reader)
    now = utcnow()
    codes = sorted(people.specialists)
    statuses = list(STATUS_WEIGHTS)
    weights = list(STATUS_WEIGHTS.values())

    def rows() -> Iterator[tuple[dict, dict, dict]]:
        for _ in range(count):
            requester = rng.choice(people.physicians)
            specialty = QUEUE_SPECIALTY if rng.random() < QUEUE_SPECIALTY_SHARE else rng.choice(codes)
            status = rng.choices(statuses, weights)[0]
            priority = Priority.URGENT if rng.random() < 0.15 else Priority.ROUTINE
            created = now - timedelta(seconds=rng.uniform(0, HISTORY_DAYS * 86400))
            due = created + timedelta(hours=24 if priority is Priority.URGENT else 7 * 24)
            case_id = uuid.uuid4()
            final = status in (CaseStatus.CLOSED, CaseStatus.WITHDRAWN)
            assigned = status not in (CaseStatus.OPEN, CaseStatus.WITHDRAWN)
            case = {
                "id": case_id,
                "requester_id": requester.id,
                "specialty": specialty,
                "named_specialist_id": None,
                "assignee_id": rng.choice(people.specialists[specialty]) if assigned else None,
                "status": status.value,
                "priority": priority.value,
                "due_at": due,
                "patient_consent_at": created,
                "created_at": created,
                "updated_at": created,
                "closed_at": due if final else None,
                "decline_reason": None,
            }
            sealed = {
                "id": case_id,
                "case_id": case_id,
                "kind": "case",
                "author_id": requester.id,
                "author_device_id": requester.device_id,
                "header": template.header,
                "manifest": template.manifest,
                "signature": template.signature,
                "ciphertext": template.ciphertext,
                "ciphertext_sha256": "0" * 64,
                "ciphertext_size": len(template.ciphertext),
                "created_at": created,
            }
            envelope = {
                "object_id": case_id,
                "device_id": requester.device_id,
                "wrapped_key": template.wrapped_key,
                "share_id": None,
                "created_at": created,
            }
            yield case, sealed, envelope

    for batch in _batches(rows()):
        with engine.begin() as connection:
            connection.execute(insert(Case), [case for case, _, _ in batch])
            connection.execute(insert(CaseObject), [sealed for _, sealed, _ in batch])
            connection.execute(insert(Envelope), [envelope for _, _, envelope in batch])
    analyze(engine)


def bulk_audit_records(engine: Engine, people: Cast, count: int, rng: random.Random) -> None:
    """`count` pending records shaped like the recorder's, over the past 90 days in insertion order.

    No statistics are taken while the batches load (hold_statistics analyzes once they are all in)."""
    now = utcnow()
    actions = list(AUDIT_ACTIONS)
    weights = list(AUDIT_ACTIONS.values())
    clinicians = [*people.physicians, *people.cardiologists]
    start = now - timedelta(days=90)
    step = timedelta(days=90) / max(count, 1)
    with engine.connect() as connection:
        case_ids = list(connection.execute(select(Case.id).limit(10_000)).scalars()) or [uuid.uuid4()]

    def rows() -> Iterator[dict]:
        for number in range(count):
            actor = rng.choice(clinicians)
            action = rng.choices(actions, weights)[0]
            case_id = rng.choice(case_ids) if action.startswith("case.") else None
            trail = AuditTrail(
                request_id=uuid.uuid4().hex,
                actor=Actor(
                    user_id=actor.id,
                    roles=("physician",),
                    device_id=str(actor.device_id),
                    client="confrere-ios/1.4",
                    ip=f"10.0.{rng.randrange(256)}.{rng.randrange(256)}",
                ),
                action=action,
                resource=Resource(type="case", id=str(case_id), case_id=case_id) if case_id else None,
            )
            status = 200 if rng.random() < 0.98 else 404
            event = Event(
                trail=trail, outcome=Outcome.for_status(status), status=status, time=start + step * number
            )
            yield {
                "record": encode(event),
                "event_time": event.time,
                "actor_id": actor.id,
                "case_id": case_id,
                "action": action,
                "outcome": event.outcome.value,
            }

    for batch in _batches(rows()):
        with engine.begin() as connection:
            connection.execute(insert(AuditRecord), batch)


@contextmanager
def hold_statistics(engine: Engine) -> Iterator[None]:
    """PostgreSQL's autovacuum does not analyze the audit records while a bulk load is half done; fresh
    statistics after, as a production database has them (autovacuum analyzes a table after its rows grew
    by a tenth). The sequencer runs after: without statistics PostgreSQL plans its pending scan and its
    numbering as if a few rows were pending, and reads the whole backlog at every batch."""
    postgres = engine.dialect.name == "postgresql"
    if postgres:
        with engine.begin() as connection:
            connection.execute(
                text(f"ALTER TABLE {AuditRecord.__tablename__} SET (autovacuum_enabled = off)")
            )
    try:
        yield
    finally:
        if postgres:
            with engine.begin() as connection:
                connection.execute(
                    text(f"ALTER TABLE {AuditRecord.__tablename__} RESET (autovacuum_enabled)")
                )
        analyze(engine)


def analyze(engine: Engine) -> None:
    """Fresh planner statistics after a bulk load, as a production database would have by autovacuum."""
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))
