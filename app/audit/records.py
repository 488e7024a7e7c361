"""The audit record: one compact canonical JSON document per event, stored byte for byte.

Records carry ids, roles and outcomes; never a name, an e-mail address or anything sealed.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

import orjson

from app.crypto.tiles import is_tile_path

SCHEMA_VERSION = 1
# An append-only log cannot forget what it was told: client-supplied text enters a record only as a value of
# a fixed, short shape (request ids, client name/version, path ids), anything else as "invalid" or not at all.
INVALID_ID = "invalid"
_REQUEST_ID = re.compile(r"[0-9a-f]{32}")
_CLIENT = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,31}/[A-Za-z0-9._+-]{1,16}")
_CODE = re.compile(r"[a-z][a-z0-9-]{1,39}")


def as_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def request_id_or_new(supplied: str | None) -> str:
    """The caller's request id when it is a UUID (hyphens or none, any case), as 32 lowercase hex digits;
    otherwise a new one."""
    if supplied and _REQUEST_ID.fullmatch(supplied.replace("-", "").lower()):
        return uuid.UUID(supplied).hex
    return uuid.uuid4().hex


def client_name(supplied: str | None) -> str | None:
    """`name/version` from X-Confrere-Client or the first product of a User-Agent, or nothing."""
    product = (supplied or "").split(" ", 1)[0]
    return product if _CLIENT.fullmatch(product) else None


def recorded_id(value: str) -> str:
    """A path id as it may be recorded: a UUID in canonical form, or "invalid"."""
    parsed = as_uuid(value)
    return INVALID_ID if parsed is None else str(parsed)


def recorded_code(value: str) -> str:
    """A path code (a specialty's) as it may be recorded: the code, or "invalid"."""
    return value if _CODE.fullmatch(value) else INVALID_ID


def recorded_tile_path(path: str) -> str:
    return path if is_tile_path(path) else INVALID_ID


class Outcome(StrEnum):
    SUCCESS = "success"
    DENIED = "denied"
    ERROR = "error"

    @classmethod
    def for_status(cls, status: int) -> Outcome:
        if status < 400:
            return cls.SUCCESS
        if status in (401, 403, 404):
            return cls.DENIED
        return cls.ERROR


class Purpose(StrEnum):
    """HL7 v3 PurposeOfUse codes."""

    TREATMENT = "TREAT"
    OPERATIONS = "HOPERAT"
    COMPLIANCE = "HCOMPL"
    SYSTEM_ADMINISTRATION = "HSYSADMIN"


@dataclass
class Actor:
    user_id: uuid.UUID | None = None
    roles: tuple[str, ...] = ()
    device_id: uuid.UUID | None = None
    client: str | None = None
    ip: str | None = None


@dataclass(frozen=True)
class Resource:
    type: str
    id: str | None = None
    case_id: uuid.UUID | None = None


@dataclass
class AuditTrail:
    """What one request will record: filled by dependencies (actor, action) and services (resource)."""

    request_id: str
    actor: Actor = field(default_factory=Actor)
    # X-Confrere-Device as sent: it enters actor.device_id only once checked to be an active device of the
    # authenticated user (app.deps); an unchecked claim is never recorded.
    claimed_device: uuid.UUID | None = None
    action: str | None = None
    purpose: Purpose = Purpose.TREATMENT
    resource: Resource | None = None


@dataclass(frozen=True)
class Event:
    trail: AuditTrail
    outcome: Outcome
    status: int
    time: datetime
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)


def encode(event: Event) -> bytes:
    trail, actor, resource = event.trail, event.trail.actor, event.trail.resource
    document = {
        "v": SCHEMA_VERSION,
        "id": str(event.event_id),
        "time": event.time.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "actor": _compact(
            {
                "user": str(actor.user_id) if actor.user_id else None,
                "roles": sorted(actor.roles),
                "device": str(actor.device_id) if actor.device_id else None,
                "client": actor.client,
                "ip": actor.ip,
            }
        ),
        "action": trail.action,
        "resource": _compact(
            {
                "type": resource.type,
                "id": resource.id,
                "case": str(resource.case_id) if resource.case_id else None,
            }
        )
        if resource
        else None,
        "outcome": event.outcome.value,
        "status": event.status,
        "request": trail.request_id,
        "purpose": trail.purpose.value,
    }
    return orjson.dumps(_compact(document), option=orjson.OPT_SORT_KEYS)


def _compact(document: dict) -> dict:
    return {key: value for key, value in document.items() if value is not None}
