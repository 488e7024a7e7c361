"""Witness cosignatures of the log's checkpoints: what the server accepts, stores and serves.

A witness (`confrere audit witness`, app/client/witness.py) runs on another machine, under another
organisation's control. It fetches each new checkpoint, checks it against the last one it cosigned with the
public consistency proof, and posts back a C2SP tlog-cosignature. The server keeps the cosignatures of the
witnesses the admin configured (`audit_witness_keys`) and serves each checkpoint with them, so that a log
that showed one history to a witness and another to anyone else is caught by whoever checks a cosignature.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from app.audit import log
from app.crypto.cosignature import WitnessKey, cosignatures
from app.crypto.signed_note import NoteError, NoteVerifier, open_checkpoint
from app.errors import Forbidden, InvalidInput, NotFound
from app.models.audit import AuditCosignature

# A witness's clock may run a little ahead of ours; a timestamp further ahead is refused (the spec allows it).
MAX_CLOCK_SKEW_SECONDS = 60


class InvalidCosignature(InvalidInput):
    code = "invalid_cosignature"
    title = "The body is not one of this log's checkpoints with a cosignature line"


class UnknownWitness(Forbidden):
    code = "unknown_witness"
    title = "No valid cosignature by a witness this server is configured to accept"


class NotWitnessed(NotFound):
    code = "not_witnessed"
    title = "No checkpoint of this log has been cosigned by the configured witnesses yet"


@dataclass(frozen=True)
class Stored:
    size: int
    witnesses: tuple[str, ...]


def accept(
    session: Session, note: bytes, log_key: NoteVerifier, witnesses: list[WitnessKey], now: datetime
) -> Stored:
    """Stores the valid cosignatures of configured witnesses on one of this log's signed checkpoints."""
    try:
        checkpoint = open_checkpoint(note, log_key)
        _, found = cosignatures(note, witnesses)
    except NoteError as error:
        raise InvalidCosignature(str(error)) from None
    if not found:
        raise UnknownWitness()
    ahead = [c for c in found if c.timestamp > now.timestamp() + MAX_CLOCK_SKEW_SECONDS]
    if ahead:
        raise InvalidCosignature(f"the cosignature by {ahead[0].witness.name} is dated in the future")
    for cosignature in found:
        signed_at = datetime.fromtimestamp(cosignature.timestamp, UTC)
        row = session.get(AuditCosignature, (cosignature.witness.name, checkpoint.size))
        if row is None:
            session.add(
                AuditCosignature(
                    witness=cosignature.witness.name,
                    size=checkpoint.size,
                    signature_line=cosignature.line,
                    signed_at=signed_at,
                    received_at=now,
                )
            )
        else:
            row.signature_line, row.signed_at, row.received_at = cosignature.line, signed_at, now
    return Stored(checkpoint.size, tuple(sorted(c.witness.name for c in found)))


def latest_witnessed_size(session: Session, witnesses: list[WitnessKey]) -> int:
    """The largest checkpoint size cosigned by every configured witness."""
    names = [witness.name for witness in witnesses]
    if not names:
        raise NotWitnessed("the server is configured with no witness")
    size = session.exec(
        select(AuditCosignature.size)
        .where(col(AuditCosignature.witness).in_(names))
        .group_by(col(AuditCosignature.size))
        .having(func.count() == len(names))
        .order_by(col(AuditCosignature.size).desc())
        .limit(1)
    ).first()
    if size is None:
        raise NotWitnessed()
    return size


def cosigned_note(session: Session, size: int, witnesses: list[WitnessKey]) -> bytes:
    """The signed checkpoint of `size` with the stored cosignatures of the configured witnesses appended."""
    note = log.checkpoint_note(session, size)
    if note is None:
        raise NotWitnessed(f"no checkpoint of size {size} was signed")
    return with_cosignatures(session, note, size, witnesses)


def with_cosignatures(session: Session, note: bytes, size: int, witnesses: list[WitnessKey]) -> bytes:
    """`note`, the signed checkpoint of `size`, with the configured witnesses' stored cosignature lines."""
    names = [witness.name for witness in witnesses]
    lines = session.exec(
        select(AuditCosignature.signature_line)
        .where(col(AuditCosignature.size) == size, col(AuditCosignature.witness).in_(names))
        .order_by(col(AuditCosignature.witness))
    ).all()
    return note + b"".join(line.encode() + b"\n" for line in lines)
