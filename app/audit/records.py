"""The audit record: one compact canonical JSON document per event, stored byte for byte.

Records carry ids, roles and outcomes; never a name, an e-mail address or anything sealed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

import orjson

SCHEMA_VERSION = 1


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
    device_id: str | None = None
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
                "device": actor.device_id,
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
