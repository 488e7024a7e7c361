"""Derived views of audit records for an export bundle: FHIR R4 AuditEvent NDJSON (IHE BALP codes) and CSV.

The records themselves are the evidence (the verifier checks them against the signed tree); a view is a
convenience for other tools, built from the same record bytes, and the bundle only pins its sha256.
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
# Ids are UUIDs: the FHIR way to name them without inventing an identifier system.
URI_SYSTEM = "urn:ietf:rfc:3986"
CONFRERE_ROLE = "urn:confrere:role"
CONFRERE_ACTION = "urn:confrere:audit-action"

_LOGIN = {"system": DCM, "code": "110122", "display": "Login"}
_LOGOUT = {"system": DCM, "code": "110123", "display": "Logout"}
_USER_AUTHENTICATION = {"system": DCM, "code": "110114", "display": "User Authentication"}
_SECURITY_ALERT = {"system": DCM, "code": "110113", "display": "Security Alert"}
_EXPORT = {"system": DCM, "code": "110106", "display": "Export"}
_REST = {"system": AUDIT_EVENT_TYPE, "code": "rest", "display": "RESTful Operation"}

_READ, _SEARCH, _CREATE = ("R", "read"), ("E", "search"), ("C", "create")
_UPDATE, _DELETE = ("U", "update"), ("D", "delete")
# (AuditEvent.action, restful-interaction) by the verb that ends a Confrere action name. Every action a route
# declares is listed (tests/audit/test_views.py checks it); an unknown one, from a later version, is an
# "operation".
REST_VERBS = {
    **dict.fromkeys(("read", "read_self", "download", "proof", "tiles"), _READ),
    **dict.fromkeys(
        ("list", "queue", "query", "specialty_recipients", "user_devices", "clinician_names"), _SEARCH
    ),
    **dict.fromkeys(("create", "register", "challenge"), _CREATE),
    **dict.fromkeys(
        ("write", "transition", "share", "verify", "suspend", "reactivate", "roles", "enrol", "confirm"),
        _UPDATE,
    ),
    **dict.fromkeys(("revoke", "delete"), _DELETE),
}
_OPERATION = ("E", "operation")
AUTHENTICATION_ACTIONS = {"auth.login": _LOGIN, "auth.refresh": _LOGIN, "auth.logout": _LOGOUT}
EXPORT_ACTION = "audit.export"
_OUTCOME_SUCCESS, _OUTCOME_MINOR, _OUTCOME_SERIOUS = "0", "4", "8"
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


def _outcome(outcome: str, status: int) -> str:
    if outcome == "success":
        return _OUTCOME_SUCCESS
    if outcome == "denied" or status >= 500:
        return _OUTCOME_SERIOUS
    return _OUTCOME_MINOR


def _uuid_identifier(value: str) -> dict:
    return {"system": URI_SYSTEM, "value": f"urn:uuid:{value}"}


def audit_event(record: dict[str, Any], origin: str) -> dict[str, Any]:
    """A FHIR R4 AuditEvent for one parsed record. A denial is a DICOM Security Alert (outcome 8) whose
    subtype still says what was attempted."""
    event_type, subtypes, action_code = _classify(record["action"])
    if record["outcome"] == "denied":
        event_type = _SECURITY_ALERT
    actor = record.get("actor", {})
    agent: dict[str, Any] = {
        "requestor": True,
        "role": [{"coding": [{"system": CONFRERE_ROLE, "code": role}]} for role in actor.get("roles", [])],
    }
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
        entity: dict[str, Any] = {
            "type": {"system": AUDIT_ENTITY_TYPE, "code": "2", "display": "System Object"},
            "description": resource["type"],
        }
        if "id" in resource:
            entity["what"] = {"identifier": {"value": resource["id"]}}
        entities.append(entity)
        if "case" in resource:
            entities.append(
                {
                    "type": {"system": AUDIT_ENTITY_TYPE, "code": "2", "display": "System Object"},
                    "description": "case",
                    "what": {"identifier": _uuid_identifier(resource["case"])},
                }
            )
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": record["id"],
        "type": event_type,
        "subtype": subtypes,
        "action": action_code,
        "recorded": record["time"],
        "outcome": _outcome(record["outcome"], record["status"]),
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
