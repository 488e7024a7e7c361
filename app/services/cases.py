"""Cases: creation with their sealed content, loading a case the caller may see, and the case views."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, and_, bindparam, cast, func
from sqlalchemy import select as select_rows
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from app.authz import queries
from app.authz.cases import allowed_transitions, allowed_writes, has_access, may_be_named, may_write
from app.authz.policies import enforce
from app.authz.principal import Principal
from app.config import Settings
from app.errors import CaseNotFound, Conflict, IdNotUsable, InvalidInput, InvalidNamedSpecialist
from app.models.cases import Case, CaseObject, CaseShare, CaseStatus, Envelope, ObjectKind, Priority
from app.models.devices import Device
from app.models.rows import insert_unless_taken
from app.notifications import outbox
from app.platform.pagination import Page
from app.schemas.cases import (
    AttachmentOut,
    CaseAttachment,
    CaseCreate,
    CaseDetail,
    CaseListItem,
    CaseOut,
    CasePage,
)
from app.schemas.sealed import EnvelopeOut, SealedIn, SealedOut
from app.services import accounts, participants, sealed


class CaseExists(Conflict):
    code = "case_exists"
    title = "A case with this id exists"


class ConsentInFuture(InvalidInput):
    code = "consent_in_future"
    title = "The patient's consent cannot be dated in the future"


@dataclass(frozen=True)
class VisibleCase:
    """A case the caller may see, with the users a re-share made participants."""

    case: Case
    shared: frozenset[uuid.UUID]

    def target(self, kind: ObjectKind, object_id: uuid.UUID) -> sealed.Target:
        return sealed.Target(case=self.case, shared=self.shared, kind=kind, object_id=object_id)


# The case and the users a re-share made participants (one row per share, or one row with none): one
# query, built once, for the most frequent lookup of all.
_VISIBLE = (
    select(Case, CaseShare.recipient_id)
    .outerjoin(CaseShare, and_(col(CaseShare.case_id) == Case.id, col(CaseShare.grants_access)))
    .where(col(Case.id) == bindparam("case_id"))
)


def load_visible(session: Session, principal: Principal, case_id: uuid.UUID) -> VisibleCase:
    """The case, or 404 whether it is missing or hidden from the caller: the two look the same."""
    rows = session.exec(_VISIBLE, params={"case_id": case_id}).all()
    if not rows:
        raise CaseNotFound()
    case = rows[0][0]
    shared = frozenset(recipient for _, recipient in rows if recipient is not None)
    enforce(has_access(principal, case, shared))
    return VisibleCase(case=case, shared=shared)


def require_writer(principal: Principal, visible: VisibleCase, kind: ObjectKind) -> None:
    enforce(may_write(principal, visible.case, visible.shared, kind))


def accept_inline(
    session: Session,
    principal: Principal,
    target: sealed.Target,
    upload: SealedIn,
    settings: Settings,
    now: datetime,
    parties: sealed.Parties,
) -> tuple[CaseObject, sealed.Verified]:
    """Checks and stores an object whose ciphertext came inside the JSON body."""
    digest = hashlib.sha256(upload.ciphertext).digest()
    size = len(upload.ciphertext)
    verified = sealed.verify(session, principal, target, upload, digest, size, settings, parties)
    row = sealed.store(
        session,
        principal,
        target,
        upload,
        verified,
        ciphertext=upload.ciphertext,
        ciphertext_sha256=digest,
        ciphertext_size=size,
        now=now,
    )
    return row, verified


def due_at(settings: Settings, priority: Priority, now: datetime) -> datetime:
    hours = settings.urgent_due_hours if priority is Priority.URGENT else settings.routine_due_hours
    return now + timedelta(hours=hours)


def _refuse_taken_id(session: Session, principal: Principal, case_id: uuid.UUID) -> None:
    """409 `case_exists` for a case the caller sees; for one they do not, the answer to a malformed id (no
    existence oracle). Called when an insert found the id taken, or before another refusal."""
    existing = session.get(Case, case_id)
    if existing is None:
        return
    if has_access(principal, existing, queries.shared_user_ids(session, existing.id)):
        raise CaseExists()
    raise IdNotUsable(("body", "id"))


def create(
    session: Session, principal: Principal, request: CaseCreate, settings: Settings, now: datetime
) -> CaseDetail:
    """A new open case. Its envelopes may go to the requester's devices and to those of the specialty's
    specialists, or of the named specialist only: exactly the people who may see it now.

    The write path of the busiest write: the devices and the members (the recipients, the named specialist,
    the event's audience) are loaded once for every check, the rows go in as Core inserts, and the answer
    is built from what was written."""
    accounts.require_active_specialties(session, [request.specialty])
    if request.patient_consent_at > now:
        raise ConsentInFuture()
    case = Case(
        id=request.id,
        requester_id=principal.id,
        specialty=request.specialty,
        named_specialist_id=request.named_specialist_id,
        status=CaseStatus.OPEN,
        priority=request.priority,
        due_at=due_at(settings, request.priority, now),
        patient_consent_at=request.patient_consent_at,
        created_at=now,
        updated_at=now,
    )
    named_id = request.named_specialist_id
    parties = sealed.load_parties(
        session,
        principal,
        request.sealed,
        owners_of_devices=[] if named_id is None else [named_id],
        members=[principal.id] if named_id is None else [principal.id, named_id],
        with_specialists_of=None if named_id is not None else request.specialty,
    )
    if named_id is not None:
        named = parties.members.get(named_id)
        if named is None or not may_be_named(named, request.specialty, principal.id):
            _refuse_taken_id(session, principal, request.id)  # a taken id is answered first, as ever
            raise InvalidNamedSpecialist()
    if not insert_unless_taken(session, Case, case.model_dump()):
        _refuse_taken_id(session, principal, request.id)
        raise CaseExists()  # by a transaction whose row this one cannot see
    visible = VisibleCase(case=case, shared=frozenset())
    target = visible.target(ObjectKind.CASE, case.id)
    row, verified = accept_inline(session, principal, target, request.sealed, settings, now, parties)
    outbox.case_created(session, case, now, parties.members)
    return CaseDetail(
        **view(case, now).model_dump(),
        sealed=sealed.written_view(row, verified, principal, parties),
        attachments=[],
        allowed_transitions=allowed_transitions(principal, case),
        allowed_writes=allowed_writes(principal, case, visible.shared),
        participants=participants.listed(
            session, case, visible.shared, parties.members, parties.active_devices_of
        ),
    )


_AUTHORS = aliased(Device, name="authors")
# The reader's active devices: a revoked device is assumed lost, so its envelopes are no longer served.
_READER_DEVICES = select(Device.id).where(
    col(Device.user_id) == bindparam("reader_id"), col(Device.revoked_at).is_(None)
)
# The case, the users re-shares made participants (one string, as they are few), its sealed object and
# attachments with their authors' devices, and the reader's envelopes of each: one statement, built once,
# for the most frequent request of all (on PostgreSQL each statement is a round trip). One row per object
# and envelope of the reader; LEFT JOINs, so that a case shows even with no object or envelope; each one a
# search by key (an envelope's is (object, device)).
_CASE_WITH_OBJECTS = (
    select_rows(
        Case,
        select(func.aggregate_strings(cast(CaseShare.recipient_id, String), ","))
        .where(col(CaseShare.case_id) == Case.id, col(CaseShare.grants_access))
        .scalar_subquery(),
        CaseObject,
        _AUTHORS,
        col(Envelope.device_id),
        col(Envelope.wrapped_key),
    )
    .outerjoin(
        CaseObject,
        and_(
            col(CaseObject.case_id) == Case.id,
            col(CaseObject.kind).in_((ObjectKind.CASE, ObjectKind.ATTACHMENT)),
        ),
    )
    .outerjoin(_AUTHORS, col(_AUTHORS.id) == CaseObject.author_device_id)
    .outerjoin(
        Envelope,
        and_(col(Envelope.object_id) == CaseObject.id, col(Envelope.device_id).in_(_READER_DEVICES)),
    )
    .where(col(Case.id) == bindparam("case_id"))
    .order_by(col(CaseObject.created_at), col(CaseObject.id), col(Envelope.device_id))
)


def read(session: Session, principal: Principal, case_id: uuid.UUID, now: datetime) -> CaseDetail:
    """A case in detail, if the caller may see it (404 `case_not_found` otherwise): the case with what the
    reader gets of its objects in one statement (load_visible then detail would take three)."""
    rows = session.execute(_CASE_WITH_OBJECTS, {"case_id": case_id, "reader_id": principal.id}).all()
    if not rows:
        raise CaseNotFound()
    case, shares = rows[0][0], rows[0][1]
    shared = frozenset(uuid.UUID(user_id) for user_id in shares.split(",")) if shares else frozenset()
    enforce(has_access(principal, case, shared))
    objects: dict[uuid.UUID, CaseObject] = {}
    authors: dict[uuid.UUID, Device] = {}
    envelopes: dict[uuid.UUID, list[EnvelopeOut]] = {}
    for _, _, row, author, device_id, wrapped_key in rows:
        if row is None:
            continue
        objects[row.id], authors[author.id] = row, author
        mine = envelopes.setdefault(row.id, [])
        if device_id is not None:
            mine.append(EnvelopeOut(device_id=device_id, wrapped_key=wrapped_key))
    views = {
        object_id: sealed.view_of(row, authors[row.author_device_id], envelopes[object_id])
        for object_id, row in objects.items()
    }
    return _detail(
        session, principal, VisibleCase(case=case, shared=shared), now, list(objects.values()), views
    )


def view(case: Case, now: datetime) -> CaseOut:
    return CaseOut.model_validate({**case.model_dump(), "overdue": case.is_overdue(now)})


def _detail(
    session: Session,
    principal: Principal,
    visible: VisibleCase,
    now: datetime,
    objects: list[CaseObject],
    views: dict[uuid.UUID, SealedOut],
) -> CaseDetail:
    case = visible.case
    attachments = [
        CaseAttachment(**AttachmentOut.model_validate(row).model_dump(), sealed=views[row.id])
        for row in objects
        if row.kind == ObjectKind.ATTACHMENT
    ]
    return CaseDetail(
        **view(case, now).model_dump(),
        sealed=views[case.id],
        attachments=attachments,
        allowed_transitions=allowed_transitions(principal, case),
        allowed_writes=allowed_writes(principal, case, visible.shared),
        participants=participants.of_case(session, case, visible.shared),
    )


def list_page(
    session: Session, reader: Principal, page: Page[Case], now: datetime, *, with_sealed: bool
) -> CasePage:
    """A page of the lists; `with_sealed` adds each case's sealed object with the reader's envelopes, in
    two queries for the whole page (objects with their authors, then the reader's envelopes)."""
    views = {}
    if with_sealed:
        views = sealed.case_views(session, reader.id, [case.id for case in page.items])
    items = [
        CaseListItem.model_validate(
            {**case.model_dump(), "overdue": case.is_overdue(now), "sealed": views.get(case.id)}
        )
        for case in page.items
    ]
    return CasePage(items=items, next_cursor=page.next_cursor)


def listed(
    session: Session,
    reader: Principal,
    page_of: Callable[..., Page[Case]],
    at: datetime,
    *,
    with_sealed: bool,
    **query: Any,
) -> CasePage:
    """A list as the API answers it, `page_of(session, reader, **query)` then list_page: one unit of
    database work for the route."""
    return list_page(session, reader, page_of(session, reader, **query), at, with_sealed=with_sealed)
