"""FHIR R4 AuditEvent and CSV views of records."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import datetime
from pathlib import Path

import orjson
from fhir.resources.R4B.auditevent import AuditEvent

from app.audit.records import Actor, AuditTrail, Event, Outcome, Resource, encode
from app.audit.renderings import (
    AUTHENTICATION_ACTIONS,
    EXPORT_ACTION,
    REST_VERBS,
    audit_event,
    csv_lines,
    fhir_ndjson,
)
from app.models.base import utcnow
from app.models.cases import Transition
from app.notifications.deadlines import JOB_ACTIONS
from tests.test_platform import api_routes

AUDIT_LOG_DOC = Path(__file__).resolve().parents[2] / "docs" / "audit-log.md"
# The route that moves a case declares case.transition and records the transition itself (case.claim, ...).
TRANSITION_ROUTE_ACTION = "case.transition"


def record(action: str, status: int = 200, time: datetime | None = None, **trail) -> bytes:
    event = Event(
        trail=AuditTrail(request_id=uuid.uuid4().hex, action=action, **trail),
        outcome=Outcome.for_status(status),
        status=status,
        time=time or utcnow(),
    )
    return encode(event)


def recorded_actions(app) -> set[str]:
    """Every action a record can carry: those the routes declare, the case transitions, the deadline jobs,
    and the grant the epochs route records for a grant statement (it declares the rotation)."""
    declared = {
        dependency.call.audit_action
        for route in api_routes(app)
        for dependency in route.dependant.dependencies
        if getattr(dependency.call, "audit_action", None)
    }
    transitions = {f"case.{transition.value}" for transition in Transition}
    return (declared - {TRANSITION_ROUTE_ACTION}) | transitions | set(JOB_ACTIONS) | {"circle.epoch.grant"}


def test_every_recorded_action_has_a_balp_mapping(app):
    unmapped = [
        action
        for action in sorted(recorded_actions(app))
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

    for status in (401, 403, 404, 409):
        denied = audit_event(orjson.loads(record("case.read", status=status)), "o")
        assert (denied["type"]["code"], denied["outcome"]) == ("rest", "4")
        assert denied["subtype"][0]["code"] == "read"
        assert denied["agent"][0]["who"] == {"display": "anonymous"}
        assert "role" not in denied["agent"][0]  # no roles: no empty array
    logout = audit_event(orjson.loads(record("auth.logout", status=204)), "o")
    assert (logout["type"]["code"], logout["subtype"][0]["code"]) == ("110114", "110123")
    for status, outcome in ((200, "0"), (401, "4"), (429, "4")):
        login = audit_event(orjson.loads(record("auth.login", status=status)), "o")
        assert (login["type"]["code"], login["subtype"][0]["code"], login["outcome"]) == (
            "110114",
            "110122",
            outcome,
        )
    failed = audit_event(orjson.loads(record("case.create", status=422)), "o")
    assert (failed["action"], failed["outcome"]) == ("C", "4")
    crashed = audit_event(orjson.loads(record("case.claim", status=500)), "o")
    assert (crashed["action"], crashed["outcome"]) == ("U", "8")
    assert audit_event(orjson.loads(record("audit.export")), "o")["type"]["code"] == "110106"
    assert audit_event(orjson.loads(record("future.thing")), "o")["subtype"][0]["code"] == "operation"


def test_csv_neutralizes_formulas_in_caller_supplied_text():
    data = record("case.read", actor=Actor(client="=HYPERLINK(1)"))
    rows = list(csv.DictReader(io.StringIO(b"".join(csv_lines([(7, data)])).decode())))
    assert rows[0]["position"] == "7"
    assert rows[0]["actor_client"] == "'=HYPERLINK(1)"
    assert b"".join(csv_lines([])).decode().startswith("position,id,time")


STATUSES = (200, 201, 204, 400, 401, 403, 404, 409, 413, 422, 429, 500, 503)


def _has_empty_value(value: object) -> bool:
    if isinstance(value, dict):
        return not value or any(_has_empty_value(item) for item in value.values())
    if isinstance(value, list):
        return not value or any(_has_empty_value(item) for item in value)
    return value == ""


def test_the_fhir_view_of_every_action_and_outcome_is_valid_r4b(app):
    """Each line parses as an R4B AuditEvent, loses nothing in the model's round trip, has no empty array,
    object or string (invalid FHIR JSON that the model lets through), and uses the bound codes."""
    case = uuid.uuid4()
    actors = (
        Actor(),
        Actor(
            user_id=uuid.uuid4(), roles=("physician", "specialist"), device_id=uuid.uuid4(), ip="2001:db8::1"
        ),
        Actor(user_id=uuid.uuid4(), client="confrere-web/1", ip="192.0.2.1"),
    )
    resources = (None, Resource(type="case", id=str(case), case_id=case), Resource(type="audit_log"))
    # Whole seconds too: the model writes them without the ".000000" the record carries, the same instant.
    times = (utcnow(), utcnow().replace(microsecond=0))
    records = [
        record(action, status, time=times[number % 2], actor=actor, resource=resources[number % 3])
        for action in sorted(recorded_actions(app))
        for status in STATUSES
        for number, actor in enumerate(actors)
    ]
    lines = b"".join(fhir_ndjson(enumerate(records), "confrere.example/audit")).splitlines()
    assert len(lines) == len(records) > 500
    outcomes = set()
    for line in lines:
        document = orjson.loads(line)
        model = AuditEvent.model_validate_json(line)
        dumped = model.model_dump(mode="json", exclude_none=True)
        recorded, dumped_recorded = document.pop("recorded"), dumped.pop("recorded")
        assert datetime.fromisoformat(dumped_recorded) == datetime.fromisoformat(recorded)
        assert dumped == document
        assert not _has_empty_value(document), document
        assert document["action"] in {"C", "R", "U", "D", "E"}
        outcomes.add((document["outcome"], orjson.loads(line)["outcomeDesc"].split(" ")[0]))
    assert {outcome for outcome, _ in outcomes} == {"0", "4", "8"}


def test_the_documented_actions_are_the_recorded_ones(app):
    section = AUDIT_LOG_DOC.read_text().split("Actions, exactly as recorded:", 1)[1].split("\n\n", 2)[1]
    documented = set(re.findall(r"`([a-z_]+(?:\.[a-z_]+)+)`", section))
    assert documented == recorded_actions(app)
