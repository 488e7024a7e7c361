"""Event queries and export bundles for compliance officers; both are themselves on the record."""

from __future__ import annotations

import csv
import io
import json
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.audit.verifier import BundleError, verify_bundle
from app.cli import main as confrere
from app.crypto.signed_note import open_checkpoint
from app.models.users import Role
from tests.audit.conftest import parsed_log, write_case_record, write_records
from tests.audit.test_bundle import rewrite
from tests.conftest import assert_problem, auth_headers


def walk(client, headers, **params) -> list[dict]:
    items, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/audit/events", params=query, headers=headers)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


def test_events_filter_and_paginate(client, accounts, engine, flush, officer, officer_headers):
    physician = accounts.create(Role.PHYSICIAN)
    physician_headers = auth_headers(client, physician)
    client.get("/v1/me", headers=physician_headers)
    client.get("/v1/admin/users", headers=physician_headers)
    case_id = uuid.uuid4()
    write_case_record(engine, case_id)
    write_case_record(engine, case_id, status=404)
    unsequenced = walk(client, officer_headers, limit=2)
    assert [item["position"] for item in unsequenced] == [None] * len(unsequenced)
    flush()

    # Pages follow ids; the queries made while walking are on the record too, not yet sequenced.
    everything = [item for item in walk(client, officer_headers, limit=2) if item["position"] is not None]
    assert [item["record"] for item in everything] == parsed_log(engine)
    assert [item["position"] for item in everything] == list(range(len(everything)))
    by_actor = walk(client, officer_headers, actor=str(physician.id))
    assert [item["record"]["action"] for item in by_actor] == [
        "auth.login",
        "user.read_self",
        "admin.user.list",
    ]
    denied = walk(client, officer_headers, actor=str(physician.id), outcome="denied")
    assert [item["record"]["status"] for item in denied] == [403]
    by_case = walk(client, officer_headers, case=str(case_id))
    assert [item["record"]["outcome"] for item in by_case] == ["success", "denied"]
    assert by_case[0]["record"]["resource"]["case"] == str(case_id)
    assert walk(client, officer_headers, case=str(case_id), action="case.read", outcome="error") == []
    now = datetime.now(UTC)
    assert len(walk(client, officer_headers, since=(now - timedelta(minutes=5)).isoformat())) >= 6
    assert walk(client, officer_headers, until=(now - timedelta(minutes=5)).isoformat()) == []
    # The queries themselves are recorded, with the compliance purpose.
    flush()
    queries = [record for record in parsed_log(engine) if record["action"] == "audit.query"]
    assert queries and all(record["actor"]["user"] == str(officer.id) for record in queries)
    assert {record["purpose"] for record in queries} == {"HCOMPL"}


@pytest.mark.parametrize(
    "params",
    [
        {"outcome": "maybe"},
        {"since": "2026-01-01T00:00:00"},  # naive: ambiguous
        {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        {"actor": "not-a-uuid"},
        {"limit": 0},
        {"limit": 501},
        {"action": "DROP TABLE"},
        {"unknown": "1"},
    ],
)
def test_bad_event_queries_are_refused(client, officer_headers, params):
    assert_problem(
        client.get("/v1/audit/events", params=params, headers=officer_headers), 422, "invalid_input"
    )


def test_a_bad_cursor_is_refused(client, officer_headers):
    response = client.get("/v1/audit/events", params={"cursor": "bm9wZQ"}, headers=officer_headers)
    assert_problem(response, 422, "invalid_cursor")


def export(client, headers, **body) -> dict:
    response = client.post("/v1/audit/exports", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def download(client, headers, created: dict, tmp_path: Path) -> Path:
    response = client.get(created["download"], headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    path = tmp_path / f"{created['id']}.zip"
    path.write_bytes(response.content)
    return path


def test_a_range_export_downloads_and_verifies_offline_with_the_cli(
    client, engine, signer, flush, officer, officer_headers, tmp_path, capsys
):
    write_records(engine, 20)
    flush()
    earlier = client.get("/v1/audit/checkpoint").content
    earlier_size = open_checkpoint(earlier, signer.verifier()).size
    earlier_path = tmp_path / "earlier.checkpoint"
    earlier_path.write_bytes(earlier)
    write_records(engine, 10)
    flush()
    created = export(client, officer_headers, formats=["fhir", "csv"], consistency_from=[20, earlier_size])
    assert created["kind"] == "range"
    assert (created["start"], created["end"]) == (0, created["tree_size"])
    assert created["record_count"] == created["tree_size"] >= 31
    bundle = download(client, officer_headers, created, tmp_path)
    assert bundle.stat().st_size == created["size_bytes"]
    key = signer.verifier().key_string
    assert confrere(["audit", "verify", str(bundle), "--key", key, "--previous", str(earlier_path)]) == 0
    assert "OK confrere.local/audit" in capsys.readouterr().out
    report = verify_bundle(bundle, key, [earlier])
    assert report.previous_sizes == (earlier_size,)

    with zipfile.ZipFile(bundle) as archive:
        records = archive.read("records.ndjson").splitlines()
        events = [json.loads(line) for line in archive.read("fhir.ndjson").splitlines()]
        rows = list(csv.DictReader(io.StringIO(archive.read("records.csv").decode())))
        assert archive.read("checkpoint").decode() == created["checkpoint"]
    assert len(records) == len(events) == len(rows) == created["record_count"]
    login = next(event for event in events if event["subtype"][-1]["code"] == "auth.login")
    assert login["resourceType"] == "AuditEvent"
    assert login["type"]["code"] == "110114"
    assert login["subtype"][0]["code"] == "110122"
    assert login["outcome"] == "0"
    assert login["agent"][0]["who"]["identifier"]["value"] == f"urn:uuid:{officer.id}"
    assert events[-1]["subtype"][0] == {"system": "http://hl7.org/fhir/restful-interaction", "code": "update"}
    assert [row["position"] for row in rows] == [str(i) for i in range(len(rows))]
    assert rows[-1]["action"] == "test.write"


def test_a_filtered_export_proves_each_record_and_maps_denials(
    client, accounts, engine, signer, flush, officer_headers, tmp_path
):
    physician = accounts.create(Role.PHYSICIAN)
    physician_headers = auth_headers(client, physician)
    write_records(engine, 40)
    client.get("/v1/admin/users", headers=physician_headers)
    client.get("/v1/me", headers=physician_headers)
    flush()
    created = export(client, officer_headers, filters={"actor": str(physician.id)}, formats=["fhir"])
    assert created["kind"] == "filtered"
    assert created["record_count"] == 3
    bundle = download(client, officer_headers, created, tmp_path)
    report = verify_bundle(bundle, signer.verifier().key_string)
    assert (report.kind, report.record_count) == ("filtered", 3)
    with zipfile.ZipFile(bundle) as archive:
        manifest = json.loads(archive.read("bundle.json"))
        events = [json.loads(line) for line in archive.read("fhir.ndjson").splitlines()]
    assert manifest["export"]["filter"] == {
        "actor": str(physician.id),
        "start": 0,
        "end": created["tree_size"],
    }
    denial = events[1]
    assert (denial["type"]["code"], denial["outcome"]) == ("rest", "4")
    assert denial["subtype"][0]["code"] == "search"
    assert events[2]["subtype"][0]["code"] == "read"
    empty = export(client, officer_headers, filters={"action": "case.read"})
    assert empty["record_count"] == 0
    verify_bundle(download(client, officer_headers, empty, tmp_path), signer.verifier().key_string)


def test_views_edited_to_show_denials_as_successes_fail_verification(
    client, accounts, engine, signer, flush, officer_headers, tmp_path, capsys
):
    physician = accounts.create(Role.PHYSICIAN)
    physician_headers = auth_headers(client, physician)
    for _ in range(3):
        assert client.get("/v1/admin/users", headers=physician_headers).status_code == 403
    flush()
    created = export(client, officer_headers, formats=["fhir", "csv"])
    bundle = download(client, officer_headers, created, tmp_path)
    key = signer.verifier().key_string
    assert confrere(["audit", "verify", str(bundle), "--key", key]) == 0

    def whitewash_fhir(members: dict[str, bytes]) -> None:
        members["fhir.ndjson"] = (
            members["fhir.ndjson"]
            .replace(b'"outcome":"4"', b'"outcome":"0"')
            .replace(b"denied (HTTP 403)", b"success (HTTP 200)")
        )

    def whitewash_csv(members: dict[str, bytes]) -> None:
        members["records.csv"] = members["records.csv"].replace(b",denied,403,", b",success,200,")

    def whitewash_both(members: dict[str, bytes]) -> None:
        whitewash_fhir(members)
        whitewash_csv(members)

    for edit, member in ((whitewash_both, "fhir.ndjson"), (whitewash_csv, "records.csv")):
        edited = download(client, officer_headers, created, tmp_path)
        rewrite(edited, edit)  # and bundle.json's digests recomputed to match
        capsys.readouterr()
        assert confrere(["audit", "verify", str(edited), "--key", key]) == 1
        assert f"FAILED: {member}: differs from the view the signed records give" in capsys.readouterr().err
    with pytest.raises(BundleError, match=r"fhir\.ndjson: differs"):
        verify_bundle(rewrite(edited, whitewash_fhir), key)


def test_a_partial_range_export_verifies(client, engine, signer, flush, officer_headers, tmp_path):
    write_records(engine, 50)
    flush()
    created = export(client, officer_headers, start=10, end=35)
    assert (created["start"], created["end"], created["record_count"]) == (10, 35, 25)
    report = verify_bundle(download(client, officer_headers, created, tmp_path), signer.verifier().key_string)
    assert (report.start, report.end) == (10, 35)


def test_exports_are_audited_and_private_to_their_creator(
    client, accounts, engine, flush, officer, officer_headers
):
    flush()
    created = export(client, officer_headers)
    assert client.get(created["download"], headers=officer_headers).status_code == 200
    other = auth_headers(client, accounts.create(Role.COMPLIANCE_OFFICER))
    assert_problem(client.get(created["download"], headers=other), 404, "export_not_found")
    missing = f"/v1/audit/exports/{uuid.uuid4()}"
    assert_problem(client.get(missing, headers=officer_headers), 404, "export_not_found")
    flush()
    records = [record for record in parsed_log(engine) if record["action"].startswith("audit.export")]
    assert [(record["action"], record["outcome"]) for record in records] == [
        ("audit.export", "success"),
        ("audit.export.download", "success"),
        ("audit.export.download", "denied"),
        ("audit.export.download", "denied"),
    ]
    assert records[0]["resource"] == {"type": "audit_export", "id": created["id"]}
    assert records[2]["actor"]["user"] != str(officer.id)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"end": 1000}, "invalid_export_request"),
        ({"consistency_from": [1000]}, "invalid_export_request"),
        ({"start": 3, "end": 2}, "invalid_input"),
        ({"formats": ["pdf"]}, "invalid_input"),
        ({"filters": {"outcome": "maybe"}}, "invalid_input"),
        ({"consistency_from": [-1]}, "invalid_input"),
        ({"surprise": True}, "invalid_input"),
    ],
)
def test_bad_export_requests_are_refused(client, engine, flush, officer_headers, body, code):
    write_records(engine, 3)
    flush()
    assert_problem(client.post("/v1/audit/exports", json=body, headers=officer_headers), 422, code)


def test_no_export_before_the_log_is_signed(client, officer_headers):
    assert_problem(
        client.post("/v1/audit/exports", json={}, headers=officer_headers), 503, "audit_log_not_ready"
    )
