"""Sealed objects of a case (the case itself, messages, attachments): the checks on every upload, storage,
and the views a reader gets (the author's device and only the reader's own envelopes).

The server holds no private key: it verifies signatures, hashes and lengths (app.crypto.e2ee) and decides
who may author and who may receive keys (app.authz.cases), and it stores nothing unless every check passes.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, insert
from sqlmodel import Session, col, select

from app.authz import queries
from app.authz.cases import has_access
from app.authz.principal import Principal
from app.config import Settings
from app.crypto.e2ee import FORMAT_V1, E2EEError, Header, Suite, check_sealed_upload, envelope_suites
from app.errors import Conflict, IdNotUsable, InvalidInput, RecipientNotEligible
from app.models.cases import Case, CaseObject, Envelope, ObjectKind
from app.models.devices import Device
from app.schemas.sealed import EnvelopeIn, EnvelopeOut, SealedOut, SealedParts
from app.services.devices import directory_entry
from app.services.e2ee_errors import SealedRefused, e2ee_checks
from app.services.inserts import flush_new


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
    device = session.get(Device, device_id)
    if device is None or device.user_id != user_id or not device.is_active:
        raise InvalidSigningDevice()
    if suite is not None and device.suite != suite:
        raise SealedRefused(E2EEError("suite_mismatch", "the author device is of another suite"))
    return device


# Built once: every upload and every case read runs it.
_DEVICES = select(Device).where(col(Device.id).in_(bindparam("ids", expanding=True)))


def check_recipients(session: Session, target: Target, suites: Mapping[str, Suite]) -> None:
    """Every envelope goes to an active device registered with the envelope's suite, whose owner may see
    the case."""
    wanted = {uuid.UUID(device_id) for device_id in suites}
    devices = session.exec(_DEVICES, params={"ids": list(wanted)}).all()
    if len(devices) != len(wanted) or not all(device.is_active for device in devices):
        raise RecipientNotEligible("an envelope targets an unknown or revoked device")
    if any(device.suite != suites[str(device.id)] for device in devices):
        raise SealedRefused(E2EEError("suite_mismatch", "an envelope's suite is not its device's suite"))
    members = queries.load_members(session, {device.user_id for device in devices})
    if not all(has_access(members[device.user_id], target.case, target.shared) for device in devices):
        raise RecipientNotEligible()


def verify(
    session: Session,
    author: Principal,
    target: Target,
    parts: SealedParts,
    ciphertext_sha256: bytes,
    ciphertext_size: int,
    settings: Settings,
) -> Verified:
    """Every server-side check of docs/e2ee.md section 13 plus the API's: format version, route, author
    device, recipients."""
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
    # A version 1 object is sealed in its author's suite; in version 2 the author's suite does not matter.
    suite = header.suite if header.v == FORMAT_V1 else None
    device = signing_device(session, author.id, uuid.UUID(header.author_device_id), suite)
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
    check_recipients(session, target, suites)
    return Verified(header=header, envelopes=envelopes)


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
    object of this case is a conflict; one taken elsewhere is answered as a malformed id (IdNotUsable)."""
    existing = session.get(CaseObject, target.object_id)
    if existing is not None:
        if existing.case_id == target.case.id:
            raise ObjectExists()
        raise IdNotUsable(_ID_LOCATION.get(target.kind, ("body", "id")))
    row = CaseObject(
        id=target.object_id,
        case_id=target.case.id,
        kind=target.kind,
        author_id=author.id,
        author_device_id=uuid.UUID(verified.header.author_device_id),
        header=parts.header,
        manifest=parts.manifest,
        signature=parts.signature,
        ciphertext=ciphertext,
        ciphertext_sha256=ciphertext_sha256.hex(),
        ciphertext_size=ciphertext_size,
        created_at=now,
    )
    session.add(row)
    flush_new(session, ObjectExists())
    # One bulk insert: as ORM objects, building and flushing 20 envelopes cost more than the rest of the
    # upload's database work.
    session.execute(
        insert(Envelope),
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


# Built once: every case read and thread page runs it.
_READER_ENVELOPES = (
    select(Envelope)
    .join(Device, col(Device.id) == Envelope.device_id)
    .where(
        col(Envelope.object_id).in_(bindparam("object_ids", expanding=True)),
        col(Device.user_id) == bindparam("reader_id"),
        col(Device.revoked_at).is_(None),
    )
    .order_by(col(Envelope.device_id))
)


def views(
    session: Session,
    reader_id: uuid.UUID,
    objects: list[CaseObject],
    authors: dict[uuid.UUID, Device] | None = None,
) -> dict[uuid.UUID, SealedOut]:
    """Sealed views of a batch of objects in two queries: author devices (unless the caller loaded them
    with the objects), and the reader's envelopes (active devices only: a revoked device is assumed lost,
    so its envelopes are no longer served)."""
    if not objects:
        return {}
    if authors is None:
        author_ids = list({row.author_device_id for row in objects})
        authors = {d.id: d for d in session.exec(_DEVICES, params={"ids": author_ids}).all()}
    mine = session.exec(
        _READER_ENVELOPES, params={"object_ids": [row.id for row in objects], "reader_id": reader_id}
    ).all()
    envelopes: dict[uuid.UUID, list[EnvelopeOut]] = defaultdict(list)
    for envelope in mine:
        envelopes[envelope.object_id].append(
            EnvelopeOut(device_id=envelope.device_id, wrapped_key=envelope.wrapped_key)
        )
    return {
        row.id: SealedOut(
            header=row.header,
            ciphertext=row.ciphertext,
            manifest=row.manifest,
            signature=row.signature,
            ciphertext_sha256=row.ciphertext_sha256,
            ciphertext_size=row.ciphertext_size,
            author_device=directory_entry(authors[row.author_device_id]),
            envelopes=envelopes[row.id],
        )
        for row in objects
    }
