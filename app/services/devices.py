"""Devices: registration with proof of possession, listing, revocation, and the recipient directory."""

from __future__ import annotations

import hmac
import os
import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from app.authz import queries
from app.authz.visibility import is_clinician
from app.crypto.directory import Registration
from app.crypto.e2ee import (
    KEM_PROOF_LENGTH,
    E2EEError,
    Suite,
    length_prefixed,
    load_kem_public_key,
    seal_kem_challenge,
    verify_device_registration,
)
from app.crypto.sealing import SecretSealer
from app.directory import proofs
from app.directory.log import DirectoryLog
from app.errors import Conflict, InvalidInput, NotFound
from app.models.devices import Device, DeviceChallenge
from app.models.specialties import Specialty
from app.models.users import User
from app.schemas.accounts import ClinicianName
from app.schemas.devices import ChallengeIn, DeviceCreate
from app.schemas.directory import ProvedDevices
from app.schemas.sealed import DirectoryDevice
from app.services import circle_rotation
from app.services.admin import UserNotFound
from app.services.e2ee_errors import e2ee_checks
from app.services.inserts import flush_new

CHALLENGE_TTL = timedelta(minutes=5)
CHALLENGE_BYTES = 32


class InvalidChallenge(InvalidInput):
    code = "invalid_challenge"
    title = "The registration challenge is unknown, already used or issued to another user"


class ChallengeExpired(InvalidInput):
    code = "challenge_expired"
    title = "The registration challenge has expired: ask for a new one"


class DeviceExists(Conflict):
    code = "device_exists"
    title = "A device of yours already has this signing or KEM key"


class KeyInUse(Conflict):
    code = "key_in_use"
    title = "This signing or KEM public key is registered to another user"


class TooManyDevices(Conflict):
    code = "too_many_devices"
    title = "Too many active devices"


class DeviceNotFound(NotFound):
    code = "device_not_found"
    title = "No such device"


class SpecialtyNotFound(NotFound):
    code = "specialty_not_found"
    title = "No such active specialty"


def _kem_secret(
    sealer: SecretSealer, challenge: bytes, user_id: uuid.UUID, suite: Suite, kem_public: bytes
) -> bytes:
    # Derived, not stored: the challenge row stays as it was, and only this server can compute the secret
    # it sealed to exactly this account, suite and KEM key.
    context = length_prefixed(b"device-kem-proof", str(user_id).encode(), suite.encode(), kem_public)
    return sealer.derive(challenge, context)[:KEM_PROOF_LENGTH]


def issue_challenge(
    session: Session, user_id: uuid.UUID, request: ChallengeIn, sealer: SecretSealer, now: datetime
) -> tuple[DeviceChallenge, bytes]:
    """A single-use challenge to sign, and a secret HPKE-sealed to the KEM key to be registered: opening it
    is the device's proof that it holds that key's private half (docs/e2ee.md section 11)."""
    with e2ee_checks():
        suite = Suite(request.suite)
        load_kem_public_key(suite, request.kem_public_key)
    # The user's expired challenges go now, so the table only ever holds live ones.
    session.execute(
        delete(DeviceChallenge).where(
            col(DeviceChallenge.user_id) == user_id, col(DeviceChallenge.expires_at) <= now
        )
    )
    challenge = DeviceChallenge(
        user_id=user_id, challenge=os.urandom(CHALLENGE_BYTES), expires_at=now + CHALLENGE_TTL
    )
    session.add(challenge)
    secret = _kem_secret(sealer, challenge.challenge, user_id, suite, request.kem_public_key)
    with e2ee_checks():
        sealed = seal_kem_challenge(secret, challenge.challenge, str(user_id), suite, request.kem_public_key)
    return challenge, sealed


def _check_keys_unused(session: Session, user_id: uuid.UUID, request: DeviceCreate) -> None:
    """One key, one owner: a signature or an envelope must never be attributable to two accounts."""
    owners = session.exec(
        select(Device.user_id).where(
            (col(Device.signing_public_key) == request.signing_public_key)
            | (col(Device.kem_public_key) == request.kem_public_key)
        )
    ).all()
    if any(owner != user_id for owner in owners):
        raise KeyInUse()
    if owners:
        raise DeviceExists()


def register(
    session: Session,
    user_id: uuid.UUID,
    request: DeviceCreate,
    sealer: SecretSealer,
    now: datetime,
    max_devices: int,
    directory: DirectoryLog,
) -> tuple[Device, proofs.ProvedSet]:
    challenge = session.get(DeviceChallenge, request.challenge_id)
    if challenge is None or challenge.user_id != user_id:
        raise InvalidChallenge()
    if challenge.expires_at <= now:
        raise ChallengeExpired()
    with e2ee_checks():
        suite = Suite(request.suite)
        load_kem_public_key(suite, request.kem_public_key)
        expected = _kem_secret(sealer, challenge.challenge, user_id, suite, request.kem_public_key)
        if not hmac.compare_digest(expected, request.kem_proof):
            raise E2EEError("invalid_kem_proof", "the KEM proof is not the secret sealed to this KEM key")
        verify_device_registration(
            request.signature,
            challenge.challenge,
            str(user_id),
            suite,
            request.signing_public_key,
            request.kem_public_key,
            request.kem_proof,
        )
    _check_keys_unused(session, user_id, request)
    # Two registrations racing on PostgreSQL may both pass and end one over: a bound, not an exact count.
    active = session.exec(
        select(func.count())
        .select_from(Device)
        .where(col(Device.user_id) == user_id, col(Device.revoked_at).is_(None))
    ).one()
    if active >= max_devices:
        raise TooManyDevices(f"at most {max_devices} active devices: revoke one first")
    # Single use even under concurrency: of two registrations racing with one challenge, one deletes it.
    consumed = session.exec(delete(DeviceChallenge).where(col(DeviceChallenge.id) == challenge.id))
    if consumed.rowcount != 1:
        raise InvalidChallenge()
    device = Device(
        user_id=user_id,
        suite=suite.value,
        signing_public_key=request.signing_public_key,
        kem_public_key=request.kem_public_key,
        label=request.label,
        created_at=now,
    )
    session.add(device)
    flush_new(session, DeviceExists())
    directory.device_registered(
        session, device, Registration(challenge.challenge, request.kem_proof, request.signature)
    )
    return device, prove(session, [device])


def list_own(session: Session, user_id: uuid.UUID) -> tuple[list[Device], proofs.ProvedSet]:
    """The user's devices, revoked ones included, and the proofs of their registration entries."""
    query = (
        select(Device).where(col(Device.user_id) == user_id).order_by(col(Device.created_at), col(Device.id))
    )
    own = list(session.exec(query).all())
    return own, prove(session, own)


def prove(session: Session, devices: list[Device]) -> proofs.ProvedSet:
    """The proofs of the devices' registration entries to the directory log's latest checkpoint."""
    return proofs.prove(session, devices)


def revoke(
    session: Session, user_id: uuid.UUID, device_id: uuid.UUID, now: datetime, directory: DirectoryLog
) -> None:
    """Idempotent. The device keeps its keys on record (its past signatures stay verifiable) but is never
    offered as a recipient again, cannot author, and its envelopes are no longer served."""
    device = session.get(Device, device_id)
    if device is None or device.user_id != user_id:
        raise DeviceNotFound()
    if device.revoked_at is None:
        device.revoked_at = now
        directory.device_revoked(session, device, now)
        circle_rotation.member_devices_changed(session, user_id, now)


def directory_entry(device: Device) -> DirectoryDevice:
    return DirectoryDevice(
        device_id=device.id,
        user_id=device.user_id,
        suite=device.suite,
        signing_public_key=device.signing_public_key,
        kem_public_key=device.kem_public_key,
    )


def specialty_recipients(session: Session, code: str) -> ProvedDevices:
    """Active devices of verified, active specialists of the specialty: the audience of a new case."""
    if (
        session.exec(select(Specialty.code).where(col(Specialty.code) == code, Specialty.active)).first()
        is None
    ):
        raise SpecialtyNotFound()
    devices = select(Device).join(User, col(User.id) == Device.user_id)
    query = (
        queries.specialists_of(devices, code)
        .where(col(Device.revoked_at).is_(None))
        .order_by(col(Device.user_id), col(Device.created_at), col(Device.id))
    )
    return proved(session, list(session.exec(query).all()))


def proved(session: Session, devices: list[Device]) -> ProvedDevices:
    proved_set = prove(session, devices)
    return ProvedDevices(checkpoint=proved_set.checkpoint, devices=[proved_set.device(d) for d in devices])


def active_devices(session: Session, user_ids: list[uuid.UUID]) -> list[Device]:
    query = (
        select(Device)
        .where(col(Device.user_id).in_(user_ids), col(Device.revoked_at).is_(None))
        .order_by(col(Device.user_id), col(Device.created_at), col(Device.id))
    )
    return list(session.exec(query).all())


def user_devices(session: Session, user_id: uuid.UUID) -> ProvedDevices:
    """A colleague's active devices; only verified, active clinicians are listed (404 for anyone else)."""
    member = queries.load_members(session, [user_id]).get(user_id)
    if member is None or not is_clinician(member):
        raise UserNotFound()
    return proved(session, active_devices(session, [user_id]))


def clinician_names(session: Session, user_ids: list[uuid.UUID]) -> list[ClinicianName]:
    """Display names of the verified, active clinicians among `user_ids`, the people whose devices
    user_devices lists: the same directory, in words."""
    members = queries.load_members(session, user_ids)
    return [
        ClinicianName(
            id=member.user.id,
            display_name=member.user.display_name,
            profession=member.user.profession,
            roles=sorted(member.roles),
            specialties=sorted(member.specialties),
        )
        for member in sorted(members.values(), key=lambda m: str(m.user.id))
        if is_clinician(member)
    ]
