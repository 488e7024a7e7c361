"""Sealed objects of a case (the case itself, messages, attachments): the checks on every upload, storage,
and the views a reader gets (the author's device and only the reader's own envelopes).

The server holds no private key: it verifies signatures, hashes and lengths (app.crypto.e2ee) and decides
who may author and who may receive keys (app.authz.cases), and it stores nothing unless every check passes.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, or_
from sqlalchemy import select as select_rows
from sqlmodel import Session, col, select

from app.authz import queries
from app.authz.cases import Member, has_access
from app.authz.principal import Principal
from app.config import Settings
from app.crypto.e2ee import FORMAT_V1, E2EEError, Header, Suite, check_sealed_upload, envelope_suites
from app.errors import Conflict, IdNotUsable, InvalidInput, RecipientNotEligible
from app.models.cases import Case, CaseObject, Envelope, ObjectKind
from app.models.devices import Device
from app.models.rows import insert_rows, insert_unless_taken
from app.schemas.sealed import DirectoryDevice, EnvelopeIn, EnvelopeOut, SealedOut, SealedParts
from app.services.devices import directory_entry
from app.services.e2ee_errors import SealedRefused, e2ee_checks


class InvalidSigningDevice(InvalidInput):
    code = "invalid_signing_device"
    title = "The signing device is not an active device of the caller"


class ObjectMismatch(InvalidInput):
    code = "object_mismatch"
    title = "The signed content names another case, object or kind than the request"


class FormatVersionRefused(InvalidInput):
    code = "format_version_refused"
    title = "This server no longer accepts new objects in this format version: seal with version 2"


class TooManyEnvelopes(InvalidInput):
    code = "too_many_envelopes"
    title = "Too many envelopes in one request"


class ObjectExists(Conflict):
    code = "object_exists"
    title = "An object with this id exists"


# Where a new object's id is in its request, by kind (an attachment's is in its `meta` form field).
_ID_LOCATION = {"attachment": ("body", "meta", "id")}


@dataclass(frozen=True)
class Target:
    """Where an upload goes: the case as it stands (`shared`: its participants by re-share) and the object."""

    case: Case
    shared: frozenset[uuid.UUID]
    kind: ObjectKind
    object_id: uuid.UUID


@dataclass(frozen=True)
class Verified:
    header: Header
    envelopes: dict[str, bytes]
    author_device: Device


def check_envelope_count(count: int, max_envelopes: int) -> None:
    if count > max_envelopes:
        raise TooManyEnvelopes(f"at most {max_envelopes} envelopes per request")


def duplicate_envelopes() -> SealedRefused:
    return SealedRefused(E2EEError("envelope_set_mismatch", "two envelopes for one object and device"))


def envelope_map(envelopes: list[EnvelopeIn], max_envelopes: int) -> dict[str, bytes]:
    check_envelope_count(len(envelopes), max_envelopes)
    wrapped = {str(envelope.device_id): envelope.wrapped_key for envelope in envelopes}
    if len(wrapped) != len(envelopes):
        raise duplicate_envelopes()
    return wrapped


def signing_device(
    session: Session, user_id: uuid.UUID, device_id: uuid.UUID, suite: Suite | None = None
) -> Device:
    """The caller's own active device that signed; of the header's suite for a version 1 object."""
    return _own_active_device(session.get(Device, device_id), user_id, suite)


def _own_active_device(device: Device | None, user_id: uuid.UUID, suite: Suite | None) -> Device:
    if device is None or device.user_id != user_id or not device.is_active:
        raise InvalidSigningDevice()
    if suite is not None and device.suite != suite:
        raise SealedRefused(E2EEError("suite_mismatch", "the author device is of another suite"))
    return device


# Built once: every upload and every case read runs it.
_DEVICES = select(Device).where(col(Device.id).in_(bindparam("ids", expanding=True)))
# An upload's recipient devices with every device of the users it names (the author, whose device signed;
# on a new case its participants, whom the answer lists): one query.
_DEVICES_OR_OWNED = select(Device).where(
    or_(
        col(Device.id).in_(bindparam("ids", expanding=True)),
        col(Device.user_id).in_(bindparam("user_ids", expanding=True)),
    )
)


@dataclass(frozen=True)
class Parties:
    """What the checks of one upload need from the database, loaded together: its envelopes' devices and
    every device of the author (and of `owners_of_devices` given to `load_parties`), and the members (users
    with their roles and specialties) who own the envelopes' devices or were asked for: one load of the
    members serves the recipient check and the policy checks that follow (the event's audience)."""

    devices: dict[uuid.UUID, Device]
    members: dict[uuid.UUID, Member]

    def active_devices_of(self, user_ids: Iterable[uuid.UUID]) -> list[Device]:
        """In the order of app.services.devices.active_devices: by user, then registration."""
        wanted = set(user_ids)
        return sorted(
            (d for d in self.devices.values() if d.user_id in wanted and d.is_active),
            key=lambda d: (d.user_id, d.created_at, d.id),
        )


def load_parties(
    session: Session,
    author: Principal,
    parts: SealedParts,
    *,
    owners_of_devices: Iterable[uuid.UUID] = (),
    members: Iterable[uuid.UUID] = (),
    with_specialists_of: str | None = None,
) -> Parties:
    """Three queries: the devices (the envelopes' and all of the author's and `owners_of_devices`'), then
    the members who own the envelopes' devices, `members` and, with `with_specialists_of`, that
    specialty's specialists (app.authz.queries.load_members)."""
    owners = {author.id, *owners_of_devices}
    envelope_ids = {envelope.device_id for envelope in parts.envelopes}
    params = {"ids": list(envelope_ids), "user_ids": list(owners)}
    devices = {device.id: device for device in session.exec(_DEVICES_OR_OWNED, params=params).all()}
    recipients = {devices[i].user_id for i in envelope_ids if i in devices}
    loaded = queries.load_members(session, recipients | set(members), with_specialists_of=with_specialists_of)
    return Parties(devices=devices, members=loaded)


def check_recipients(target: Target, suites: Mapping[str, Suite], parties: Parties) -> None:
    """Every envelope goes to an active device registered with the envelope's suite, whose owner may see
    the case."""
    devices = [parties.devices.get(uuid.UUID(device_id)) for device_id in suites]
    if not all(device is not None and device.is_active for device in devices):
        raise RecipientNotEligible("an envelope targets an unknown or revoked device")
    found = [device for device in devices if device is not None]
    if any(device.suite != suites[str(device.id)] for device in found):
        raise SealedRefused(E2EEError("suite_mismatch", "an envelope's suite is not its device's suite"))
    members = parties.members
    if not all(has_access(members[device.user_id], target.case, target.shared) for device in found):
        raise RecipientNotEligible()


def verify(
    session: Session,
    author: Principal,
    target: Target,
    parts: SealedParts,
    ciphertext_sha256: bytes,
    ciphertext_size: int,
    settings: Settings,
    parties: Parties | None = None,
) -> Verified:
    """Every server-side check of docs/e2ee.md section 13 plus the API's: route, author device, recipients;
    on `parties` if the caller loaded them (load_parties), else loaded here."""
    envelopes = envelope_map(parts.envelopes, settings.max_envelopes_per_request)
    with e2ee_checks():
        header = Header.parse(parts.header)
    if header.v == FORMAT_V1 and not settings.accept_format_v1_uploads:
        raise FormatVersionRefused()
    if (header.case_id, header.kind, header.object_id) != (
        str(target.case.id),
        target.kind,
        str(target.object_id),
    ):
        raise ObjectMismatch()
    if parties is None:
        parties = load_parties(session, author, parts)
    # A version 1 object is sealed in its author's suite; in version 2 the author's suite does not matter.
    suite = header.suite if header.v == FORMAT_V1 else None
    device = _own_active_device(parties.devices.get(uuid.UUID(header.author_device_id)), author.id, suite)
    with e2ee_checks():
        _, manifest = check_sealed_upload(
            parts.header,
            ciphertext_sha256,
            ciphertext_size,
            envelopes,
            parts.manifest,
            parts.signature,
            device.signing_public_key,
        )
        suites = envelope_suites(header, manifest)
    check_recipients(target, suites, parties)
    return Verified(header=header, envelopes=envelopes, author_device=device)


_OBJECT_CASE = select(CaseObject.case_id).where(col(CaseObject.id) == bindparam("object_id"))


def store(
    session: Session,
    author: Principal,
    target: Target,
    parts: SealedParts,
    verified: Verified,
    *,
    ciphertext: bytes | None,
    ciphertext_sha256: bytes,
    ciphertext_size: int,
    now: datetime,
) -> CaseObject:
    """Stores a verified object; `ciphertext` is None when it lives in the blob store. An id taken by an
    object of this case is a conflict; one taken elsewhere is answered as a malformed id (IdNotUsable).

    Core inserts, the object's unless its id is taken then its envelopes in one statement: no flush, no
    lookup beforehand, and the row returned is built from what was written, not read back."""
    row = CaseObject(
        id=target.object_id,
        case_id=target.case.id,
        kind=target.kind,
        author_id=author.id,
        author_device_id=verified.author_device.id,
        header=parts.header,
        manifest=parts.manifest,
        signature=parts.signature,
        ciphertext=ciphertext,
        ciphertext_sha256=ciphertext_sha256.hex(),
        ciphertext_size=ciphertext_size,
        created_at=now,
    )
    if not insert_unless_taken(session, CaseObject, row.model_dump()):
        taken_by = session.exec(_OBJECT_CASE, params={"object_id": target.object_id}).first()
        if taken_by == target.case.id:
            raise ObjectExists()
        raise IdNotUsable(_ID_LOCATION.get(target.kind, ("body", "id")))
    insert_rows(
        session,
        Envelope,
        [
            {
                "object_id": row.id,
                "device_id": uuid.UUID(device_id),
                "wrapped_key": wrapped_key,
                "created_at": now,
            }
            for device_id, wrapped_key in verified.envelopes.items()
        ],
    )
    return row


def written_view(row: CaseObject, verified: Verified, reader: Principal, parties: Parties) -> SealedOut:
    """The reader's view of an object just stored, from what was written (views() reads it back): the
    reader's envelopes are those of the upload that go to their devices (all active: they were checked)."""
    mine = sorted(
        (uuid.UUID(device_id), wrapped)
        for device_id, wrapped in verified.envelopes.items()
        if parties.devices[uuid.UUID(device_id)].user_id == reader.id
    )
    return view_of(
        row,
        verified.author_device,
        [EnvelopeOut(device_id=device_id, wrapped_key=wrapped) for device_id, wrapped in mine],
    )


# Built once: every case read, list page with sealed objects and thread page runs it. Plain rows, not ORM
# instances: nothing here is changed, and a page may hold a thousand.
_READER_ENVELOPES = (
    select(Envelope.object_id, Envelope.device_id, Envelope.wrapped_key)
    .join(Device, col(Device.id) == Envelope.device_id)
    .where(
        col(Envelope.object_id).in_(bindparam("object_ids", expanding=True)),
        col(Device.user_id) == bindparam("reader_id"),
        col(Device.revoked_at).is_(None),
    )
    .order_by(col(Envelope.device_id))
)


def _reader_envelopes(
    session: Session, reader_id: uuid.UUID, object_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[EnvelopeOut]]:
    """The reader's envelopes of these objects, on active devices only: a revoked device is assumed lost,
    so its envelopes are no longer served."""
    envelopes: dict[uuid.UUID, list[EnvelopeOut]] = defaultdict(list)
    rows = session.execute(_READER_ENVELOPES, {"object_ids": object_ids, "reader_id": reader_id})
    for object_id, device_id, wrapped_key in rows:
        envelopes[object_id].append(EnvelopeOut(device_id=device_id, wrapped_key=wrapped_key))
    return envelopes


def views(
    session: Session,
    reader_id: uuid.UUID,
    objects: list[CaseObject],
    authors: dict[uuid.UUID, Device] | None = None,
) -> dict[uuid.UUID, SealedOut]:
    """Sealed views of a batch of objects in two queries: author devices (unless the caller loaded them
    with the objects), and the reader's envelopes."""
    if not objects:
        return {}
    if authors is None:
        author_ids = list({row.author_device_id for row in objects})
        authors = {d.id: d for d in session.exec(_DEVICES, params={"ids": author_ids}).all()}
    envelopes = _reader_envelopes(session, reader_id, [row.id for row in objects])
    return {row.id: view_of(row, authors[row.author_device_id], envelopes[row.id]) for row in objects}


# A list page's sealed case objects with their authors' devices, as plain rows (see _READER_ENVELOPES).
_CASE_OBJECTS_OF_CASES = (
    select_rows(
        col(CaseObject.id),
        col(CaseObject.header),
        col(CaseObject.ciphertext),
        col(CaseObject.manifest),
        col(CaseObject.signature),
        col(CaseObject.ciphertext_sha256),
        col(CaseObject.ciphertext_size),
        col(Device.id),
        col(Device.user_id),
        col(Device.suite),
        col(Device.signing_public_key),
        col(Device.kem_public_key),
    )
    .join(Device, col(Device.id) == CaseObject.author_device_id)
    .where(
        col(CaseObject.id).in_(bindparam("case_ids", expanding=True)),
        col(CaseObject.kind) == ObjectKind.CASE,
    )
)


def case_views(
    session: Session, reader_id: uuid.UUID, case_ids: list[uuid.UUID]
) -> dict[uuid.UUID, SealedOut]:
    """The sealed objects of these cases (a case's object has the case's id) as the reader sees them, in
    two queries for the whole page; each author device is described once a page."""
    if not case_ids:
        return {}
    rows = session.execute(_CASE_OBJECTS_OF_CASES, {"case_ids": case_ids}).all()
    envelopes = _reader_envelopes(session, reader_id, [row[0] for row in rows])
    authors: dict[uuid.UUID, DirectoryDevice] = {}
    found = {}
    for object_id, header, ciphertext, manifest, signature, sha256, size, device_id, *device in rows:
        if (author := authors.get(device_id)) is None:
            user_id, suite, signing_public_key, kem_public_key = device
            author = authors[device_id] = DirectoryDevice(
                device_id=device_id,
                user_id=user_id,
                suite=suite,
                signing_public_key=signing_public_key,
                kem_public_key=kem_public_key,
            )
        found[object_id] = SealedOut(
            header=header,
            ciphertext=ciphertext,
            manifest=manifest,
            signature=signature,
            ciphertext_sha256=sha256,
            ciphertext_size=size,
            author_device=author,
            envelopes=envelopes[object_id],
        )
    return found


def view_of(row: CaseObject, author_device: Device, envelopes: list[EnvelopeOut]) -> SealedOut:
    return SealedOut(
        header=row.header,
        ciphertext=row.ciphertext,
        manifest=row.manifest,
        signature=row.signature,
        ciphertext_sha256=row.ciphertext_sha256,
        ciphertext_size=row.ciphertext_size,
        author_device=directory_entry(author_device),
        envelopes=envelopes,
    )
