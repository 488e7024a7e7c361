"""The deadlines job, with a controlled clock: overdue notices (once), escalation of ignored named cases,
auto-close of answered cases, all audited with the system as actor; and `confrere jobs run-once`."""

from __future__ import annotations

import uuid
from datetime import timedelta

import orjson
import pytest
from sqlmodel import select

from app.cli import main
from app.config import get_settings
from app.models.audit import AuditRecord
from app.models.base import utcnow
from app.models.cases import Case
from app.models.users import Role
from app.notifications.jobs import run_once
from app.runtime.database import new_session
from tests.e2ee_helpers import clinician, create_case, devices_of, post_message
from tests.notification_helpers import events_of, move, whole_flow

DERM = ("dermatology",)


@pytest.fixture
def settings(settings):
    # The job also purges events past retention, by the same moved clock: keep them all here.
    return settings.model_copy(update={"events_retention_hours": 100 * 24})


@pytest.fixture
def people(client, accounts):
    return {
        "physician": clinician(client, accounts, Role.PHYSICIAN),
        "derm": clinician(client, accounts, Role.SPECIALIST, specialties=DERM),
        "derm2": clinician(client, accounts, Role.SPECIALIST, specialties=DERM),
    }


def system_records(engine, action: str) -> list[dict]:
    with new_session(engine) as session:
        rows = session.exec(select(AuditRecord).where(AuditRecord.action == action)).all()
    records = [orjson.loads(row.record) for row in rows]
    assert all(row.actor_id is None for row in rows)
    assert all(r["actor"] == {"roles": ["system"], "client": "confrere-jobs"} for r in records)
    assert all(r["outcome"] == "success" and r["purpose"] == "HOPERAT" for r in records)
    return records


def test_overdue_cases_notify_their_people_once(client, people, engine, settings):
    physician, derm, derm2 = people["physician"], people["derm"], people["derm2"]
    everyone = [*derm.devices, *derm2.devices]
    claimed = create_case(client, physician, everyone, specialty="dermatology")["id"]
    move(client, derm, claimed, "claim")
    queued = create_case(client, physician, everyone, specialty="dermatology")["id"]
    urgent = create_case(client, physician, everyone, specialty="dermatology", priority="urgent")["id"]
    before = {name: events_of(engine, person.id) for name, person in people.items()}

    # Two days on, only the urgent case (due in 24 h) is late.
    report = run_once(engine, settings, utcnow() + timedelta(days=2))
    assert report.deadlines.overdue == [uuid.UUID(urgent)]
    # Eight days on, the routine ones too; the urgent one is not announced again.
    later = utcnow() + timedelta(days=8)
    report = run_once(engine, settings, later)
    assert sorted(report.deadlines.overdue) == sorted(uuid.UUID(case) for case in (claimed, queued))
    assert run_once(engine, settings, later + timedelta(days=1)).deadlines.overdue == []

    new = {name: events_of(engine, person.id)[len(before[name]) :] for name, person in people.items()}
    overdue = "case.overdue"
    # The requester and the assignee; a case waiting in the queue also nudges the specialty.
    assert sorted(new["physician"]) == sorted((overdue, case) for case in (claimed, queued, urgent))
    assert sorted(new["derm"]) == sorted((overdue, case) for case in (claimed, queued, urgent))
    assert sorted(new["derm2"]) == sorted((overdue, case) for case in (queued, urgent))

    records = system_records(engine, "case.overdue")
    assert sorted(r["resource"]["case"] for r in records) == sorted([claimed, queued, urgent])
    queue = client.get("/v1/cases/queue", headers=derm2.headers).json()["items"]
    assert {item["id"] for item in queue} == {queued, urgent}


def test_an_ignored_named_case_goes_back_to_the_whole_specialty(client, people, engine, settings):
    physician, derm, derm2 = people["physician"], people["derm"], people["derm2"]
    ignored = create_case(client, physician, derm.devices, specialty="dermatology", named=derm.id)["id"]
    taken = create_case(client, physician, derm.devices, specialty="dermatology", named=derm.id)["id"]
    move(client, derm, taken, "claim")
    assert client.get("/v1/cases/queue", headers=derm2.headers).json()["items"] == []

    report = run_once(engine, settings, utcnow() + timedelta(days=8))
    assert report.deadlines.escalated == [uuid.UUID(ignored)]
    with new_session(engine) as session:
        case = session.get(Case, uuid.UUID(ignored))
    assert (case.status, case.named_specialist_id, case.assignee_id) == ("open", None, None)
    queue = client.get("/v1/cases/queue", headers=derm2.headers).json()["items"]
    assert [item["id"] for item in queue] == [ignored]

    assert ("case.escalated", ignored) in events_of(engine, derm2.id)
    # The requester learns it too: their client re-shares the case to the specialty's devices.
    assert ("case.escalated", ignored) in events_of(engine, physician.id)
    [record] = system_records(engine, "case.escalate")
    assert record["resource"] == {"type": "case", "id": ignored, "case": ignored}
    assert run_once(engine, settings, utcnow() + timedelta(days=9)).deadlines.escalated == []


def test_answered_cases_close_after_the_configured_delay(client, people, engine, settings):
    physician, derm = people["physician"], people["derm"]
    case = create_case(client, physician, derm.devices, specialty="dermatology")["id"]
    move(client, derm, case, "claim")
    report = post_message(client, derm, case, "report", "r", devices_of(physician, derm)).json()
    move(client, derm, case, "answer", report_message_id=report["id"])
    delay = timedelta(hours=settings.auto_close_answered_after_hours)

    assert run_once(engine, settings, utcnow() + delay - timedelta(hours=1)).deadlines.auto_closed == []
    never = settings.model_copy(update={"auto_close_answered_after_hours": 0})
    assert run_once(engine, never, utcnow() + delay * 10).deadlines.auto_closed == []
    assert run_once(engine, settings, utcnow() + delay + timedelta(hours=1)).deadlines.auto_closed == [
        uuid.UUID(case)
    ]
    shown = client.get(f"/v1/cases/{case}", headers=physician.headers).json()
    assert shown["status"] == "closed" and shown["closed_at"] is not None
    assert events_of(engine, derm.id)[-1] == ("case.closed", case)
    assert events_of(engine, physician.id)[-1] == ("case.closed", case)
    system_records(engine, "case.auto_close")


def test_the_jobs_command_runs_one_pass(client, people, engine, settings, monkeypatch, capsys):
    whole_flow(client, people, "MARKER")
    monkeypatch.setenv("CONFRERE_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("CONFRERE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("CONFRERE_EVENTS_RETENTION_HOURS", "1")
    get_settings.cache_clear()
    try:
        assert main(["jobs", "run-once"]) == 0
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr().out
    assert "0 overdue, 0 escalated, 0 auto-closed" in out
    assert "purged 0 events" in out  # all of them are newer than an hour
