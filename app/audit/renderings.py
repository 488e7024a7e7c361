"""Derived views of audit records for an export bundle: FHIR R4 AuditEvent NDJSON (IHE BALP codes) and CSV.

The records themselves are the evidence (the verifier checks them against the signed tree); a view is a
convenience for other tools, built from the same record bytes, and the offline verifier rebuilds each view
from the verified records and refuses a bundle whose view differs by one byte.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

DCM = "http://dicom.nema.org/resources/ontology/DCM"
AUDIT_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL_INTERACTION = "http://hl7.org/fhir/restful-interaction"
PURPOSE_OF_USE = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
SECURITY_SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
AUDIT_ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
NETWORK_IP_ADDRESS = "2"
# Export format name -> bundle member.
VIEW_MEMBERS = {"fhir": "fhir.ndjson", "csv": "records.csv"}
# Ids are UUIDs: the FHIR way to name them without inventing an identifier system.
URI_SYSTEM = "urn:ietf:rfc:3986"
CONFRERE_ROLE = "urn:confrere:role"
CONFRERE_ACTION = "urn:confrere:audit-action"

_LOGIN = {"system": DCM, "code": "110122", "display": "Login"}
_LOGOUT = {"system": DCM, "code": "110123", "display": "Logout"}
_USER_AUTHENTICATION = {"system": DCM, "code": "110114", "display": "User Authentication"}
_EXPORT = {"system": DCM, "code": "110106", "display": "Export"}
_REST = {"system": AUDIT_EVENT_TYPE, "code": "rest", "display": "RESTful Operation"}

_READ, _SEARCH, _CREATE = ("R", "read"), ("E", "search"), ("C", "create")
_UPDATE, _DELETE = ("U", "update"), ("D", "delete")
# (AuditEvent.action, restful-interaction) by the verb that ends a Confrere action name. Every action a route
# declares is listed (tests/audit/test_views.py checks it); an unknown one, from a later version, is an
# "operation".
REST_VERBS = {
    **dict.fromkeys(("read", "read_self", "download", "proof", "tiles", "witness"), _READ),
    **dict.fromkeys(
        ("list", "queue", "query", "specialty_recipients", "user_devices", "clinician_names", "recipients"),
        _SEARCH,
    ),
    **dict.fromkeys(
        ("create", "register", "challenge", "cosign", "rotate", "report", "open", "invite"), _CREATE
    ),
    **dict.fromkeys(
        (
            "write",
            "transition",
            "claim",
            "decline",
            "request_info",
            "provide_info",
            "answer",
            "close",
            "withdraw",
            "overdue",
            "escalate",
            "auto_close",
            "share",
            "verify",
            "suspend",
            "reactivate",
            "roles",
            "enrol",
            "confirm",
            "grant",
            "join",
            "leave",
            "hide",
            "set",
            "round",
            "role",
        ),
        _UPDATE,
    ),
    **dict.fromkeys(("revoke", "delete", "remove"), _DELETE),
}
_OPERATION = ("E", "operation")
# Login and refresh (which re-authenticates a session) are DICOM User Authentication, with the outcome of the
# attempt: a failed login is 110114 with outcome 4, as IHE ATNA / BALP record it, not a Security Alert.
AUTHENTICATION_ACTIONS = {"auth.login": _LOGIN, "auth.refresh": _LOGIN, "auth.logout": _LOGOUT}
EXPORT_ACTION = "audit.export"
# http://hl7.org/fhir/audit-event-outcome: 0 success, 4 minor failure (the request was refused or invalid:
# any 4xx, denials included), 8 serious failure (the server failed: 5xx).
OUTCOME_SUCCESS, OUTCOME_MINOR_FAILURE, OUTCOME_SERIOUS_FAILURE = "0", "4", "8"
CSV_COLUMNS = (
    "position",
    "id",
    "time",
    "action",
    "outcome",
    "status",
    "actor_user",
    "actor_roles",
    "actor_device",
    "actor_client",
    "actor_ip",
    "resource_type",
    "resource_id",
    "case",
    "purpose",
    "request",
)


def _classify(action: str) -> tuple[dict, list[dict], str]:
    """(type, subtypes, AuditEvent.action) of a Confrere action, following IHE BALP and DICOM PS3.15; the
    Confrere action name is always added as a last subtype."""
    own = {"system": CONFRERE_ACTION, "code": action}
    if action in AUTHENTICATION_ACTIONS:
        return _USER_AUTHENTICATION, [AUTHENTICATION_ACTIONS[action], own], "E"
    if action == EXPORT_ACTION:
        return _EXPORT, [own], "R"
    code, interaction = REST_VERBS.get(action.rsplit(".", 1)[-1], _OPERATION)
    return _REST, [{"system": RESTFUL_INTERACTION, "code": interaction}, own], code


def fhir_outcome(status: int) -> str:
    if status < 400:
        return OUTCOME_SUCCESS
    return OUTCOME_SERIOUS_FAILURE if status >= 500 else OUTCOME_MINOR_FAILURE


def _uuid_identifier(value: str) -> dict:
    return {"system": URI_SYSTEM, "value": f"urn:uuid:{value}"}


def _system_object(description: str, identifier: dict | None) -> dict:
    entity: dict[str, Any] = {
        "type": {"system": AUDIT_ENTITY_TYPE, "code": "2", "display": "System Object"},
        "description": description,
    }
    if identifier is not None:
        entity["what"] = {"identifier": identifier}
    return entity


def audit_event(record: dict[str, Any], origin: str) -> dict[str, Any]:
    """A FHIR R4 AuditEvent for one parsed record. A refusal keeps the type of what was attempted and says
    it failed in its outcome. FHIR JSON allows no empty array or object: absent values are left out."""
    event_type, subtypes, action_code = _classify(record["action"])
    actor = record.get("actor", {})
    agent: dict[str, Any] = {"requestor": True}
    if actor.get("roles"):
        agent["role"] = [{"coding": [{"system": CONFRERE_ROLE, "code": role}]} for role in actor["roles"]]
    if "user" in actor:
        agent["who"] = {"identifier": _uuid_identifier(actor["user"])}
    else:
        agent["who"] = {"display": "anonymous"}
    if "ip" in actor:
        agent["network"] = {"address": actor["ip"], "type": NETWORK_IP_ADDRESS}
    agents = [agent]
    if "device" in actor:
        agents.append({"requestor": False, "who": {"identifier": _uuid_identifier(actor["device"])}})
    entities = []
    resource = record.get("resource")
    if resource:
        identifier = {"value": resource["id"]} if "id" in resource else None
        entities.append(_system_object(resource["type"], identifier))
        if "case" in resource:
            entities.append(_system_object("case", _uuid_identifier(resource["case"])))
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": record["id"],
        "type": event_type,
        "subtype": subtypes,
        "action": action_code,
        "recorded": record["time"],
        "outcome": fhir_outcome(record["status"]),
        "outcomeDesc": f"{record['outcome']} (HTTP {record['status']})",
        "purposeOfEvent": [{"coding": [{"system": PURPOSE_OF_USE, "code": record["purpose"]}]}],
        "agent": agents,
        "source": {
            "observer": {"display": origin},
            "type": [{"system": SECURITY_SOURCE_TYPE, "code": "4", "display": "Application Server"}],
        },
    }
    if entities:
        event["entity"] = entities
    return event


def fhir_ndjson(records: Iterable[tuple[int, bytes]], origin: str) -> Iterator[bytes]:
    for _, record in records:
        yield orjson.dumps(audit_event(orjson.loads(record), origin), option=orjson.OPT_SORT_KEYS) + b"\n"


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    # Spreadsheets run cells that start with these as formulas; the client string is caller-supplied.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_row(position: int, record: dict[str, Any]) -> list[str]:
    actor = record.get("actor", {})
    resource = record.get("resource") or {}
    values = (
        position,
        record["id"],
        record["time"],
        record["action"],
        record["outcome"],
        record["status"],
        actor.get("user"),
        " ".join(actor.get("roles", [])),
        actor.get("device"),
        actor.get("client"),
        actor.get("ip"),
        resource.get("type"),
        resource.get("id"),
        resource.get("case"),
        record.get("purpose"),
        record.get("request"),
    )
    return [_cell(value) for value in values]


def csv_lines(records: Iterable[tuple[int, bytes]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for position, record in records:
        writer.writerow(_csv_row(position, orjson.loads(record)))
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue().encode()


def build_view(member: str, records: Iterable[tuple[int, bytes]], origin: str) -> Iterator[bytes]:
    """The view stored as bundle member `member`, from (position, record bytes) in position order. Raises
    KeyError for a member that is not a view, and KeyError, TypeError or ValueError for records it cannot
    read."""
    if member == VIEW_MEMBERS["fhir"]:
        return fhir_ndjson(records, origin)
    if member == VIEW_MEMBERS["csv"]:
        return csv_lines(records)
    raise KeyError(member)
