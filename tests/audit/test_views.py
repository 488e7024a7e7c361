"""FHIR R4 AuditEvent and CSV views of records."""

from __future__ import annotations

import csv
import io
import uuid

import orjson

from app.audit.records import Actor, AuditTrail, Event, Outcome, Resource, encode
from app.audit.renderings import AUTHENTICATION_ACTIONS, EXPORT_ACTION, REST_VERBS, audit_event, csv_lines
from app.models.base import utcnow
from tests.test_platform import api_routes


def record(action: str, status: int = 200, **trail) -> bytes:
    event = Event(
        trail=AuditTrail(request_id="req-1", action=action, **trail),
        outcome=Outcome.for_status(status),
        status=status,
        time=utcnow(),
    )
    return encode(event)


def test_every_declared_action_has_a_balp_mapping(app):
    actions = {
        dependency.call.audit_action
        for route in api_routes(app)
        for dependency in route.dependant.dependencies
        if getattr(dependency.call, "audit_action", None)
    }
    unmapped = [
        action
        for action in sorted(actions)
        if action not in AUTHENTICATION_ACTIONS
        and action != EXPORT_ACTION
        and action.rsplit(".", 1)[-1] not in REST_VERBS
    ]
    assert unmapped == [], "add these actions' verbs to app.audit.renderings.REST_VERBS"


def test_audit_event_codes():
    user, case = uuid.uuid4(), uuid.uuid4()
    actor = Actor(user_id=user, roles=("physician",), ip="192.0.2.1")
    read = orjson.loads(
        record("case.read", actor=actor, resource=Resource(type="case", id=str(case), case_id=case))
    )
    event = audit_event(read, "confrere.example/audit")
    assert event["type"] == {
        "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
        "code": "rest",
        "display": "RESTful Operation",
    }
    assert event["subtype"][0] == {"system": "http://hl7.org/fhir/restful-interaction", "code": "read"}
    assert (event["action"], event["outcome"]) == ("R", "0")
    assert event["agent"][0]["network"] == {"address": "192.0.2.1", "type": "2"}
    assert event["agent"][0]["role"] == [{"coding": [{"system": "urn:confrere:role", "code": "physician"}]}]
    assert event["entity"][1]["what"]["identifier"]["value"] == f"urn:uuid:{case}"
    assert event["purposeOfEvent"][0]["coding"][0]["code"] == "TREAT"

    denied = audit_event(orjson.loads(record("case.read", status=403)), "o")
    assert (denied["type"]["code"], denied["outcome"]) == ("110113", "8")
    assert denied["subtype"][0]["code"] == "read"
    assert denied["agent"][0]["who"] == {"display": "anonymous"}
    logout = audit_event(orjson.loads(record("auth.logout", status=204)), "o")
    assert (logout["type"]["code"], logout["subtype"][0]["code"]) == ("110114", "110123")
    failed = audit_event(orjson.loads(record("case.create", status=422)), "o")
    assert (failed["action"], failed["outcome"]) == ("C", "4")
    crashed = audit_event(orjson.loads(record("case.transition", status=500)), "o")
    assert (crashed["action"], crashed["outcome"]) == ("U", "8")
    assert audit_event(orjson.loads(record("audit.export")), "o")["type"]["code"] == "110106"
    assert audit_event(orjson.loads(record("future.thing")), "o")["subtype"][0]["code"] == "operation"


def test_csv_neutralizes_formulas_in_caller_supplied_text():
    data = record("case.read", actor=Actor(client="=HYPERLINK(1)"))
    rows = list(csv.DictReader(io.StringIO(b"".join(csv_lines([(7, data)])).decode())))
    assert rows[0]["position"] == "7"
    assert rows[0]["actor_client"] == "'=HYPERLINK(1)"
    assert b"".join(csv_lines([])).decode().startswith("position,id,time")
