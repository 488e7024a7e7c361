"""The whole flow over HTTP with real encryption in both suites, and proof the server holds no plaintext."""

from __future__ import annotations

import hashlib
import logging
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from app.crypto.e2ee import Suite
from app.models.base import metadata
from app.models.users import Role
from tests.e2ee_helpers import (
    attachment_upload,
    clinician,
    create_case,
    open_object,
    post_message,
    upload,
)


def _plaintext_anywhere(engine, database_url: str, blobs_dir: Path, markers: list[bytes]) -> list[str]:
    """Where a marker shows: any column of any row, the SQLite files themselves, any blob."""
    found = []
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                for value in row:
                    raw = value if isinstance(value, bytes) else str(value).encode()
                    found += [f"{table.name} row" for marker in markers if marker in raw]
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        for path in Path(url.database).parent.glob(Path(url.database).name + "*"):
            found += [str(path) for marker in markers if marker in path.read_bytes()]
    for path in blobs_dir.rglob("*"):
        if path.is_file():
            found += [str(path) for marker in markers if marker in path.read_bytes()]
    return found


@pytest.mark.parametrize("suite", list(Suite))
def test_a_case_goes_from_question_to_closed_report_end_to_end_encrypted(
    client, accounts, engine, settings, database_url, caplog, suite
):
    caplog.set_level(logging.DEBUG)
    question = f"QUESTION-MARKER-{uuid.uuid4().hex}"
    photo = b"\x89PNG fake image bytes PHOTO-MARKER-" + uuid.uuid4().hex.encode()
    physician = clinician(client, accounts, Role.PHYSICIAN, suite=suite)
    derm = clinician(client, accounts, Role.SPECIALIST, specialties=("dermatology",), suite=suite)
    colleague = clinician(client, accounts, Role.SPECIALIST, specialties=("dermatology",), suite=suite)
    by_id = {d.id: d for d in derm.devices + colleague.devices}

    directory = client.get("/v1/specialties/dermatology/recipients", headers=physician.headers)
    audience = [by_id[item["device_id"]] for item in directory.json()["devices"]]
    assert set(by_id) == {device.id for device in audience}

    case = create_case(client, physician, audience, question, specialty="dermatology")
    case_id = case["id"]
    assert case["status"] == "open"
    assert case["overdue"] is False
    assert open_object(case["sealed"], physician.device) == f'{{"question": "{question}"}}'.encode()
    meta, ciphertext = attachment_upload(physician.device, case_id, photo, audience + physician.devices)
    uploaded = upload(client, physician.headers, case_id, meta, ciphertext)
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["ciphertext_sha256"] == hashlib.sha256(ciphertext).hexdigest()

    # The specialist finds it in the queue, reads it with their own envelope only, and downloads the photo.
    queue = client.get("/v1/cases/queue", headers=derm.headers).json()
    assert [item["id"] for item in queue["items"]] == [case_id]
    detail = client.get(f"/v1/cases/{case_id}", headers=derm.headers).json()
    assert [e["device_id"] for e in detail["sealed"]["envelopes"]] == [derm.device.id]
    assert question.encode() in open_object(detail["sealed"], derm.device)
    [attachment] = detail["attachments"]
    assert attachment["sealed"]["ciphertext"] is None
    download = client.get(f"/v1/cases/{case_id}/attachments/{attachment['id']}", headers=derm.headers)
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["x-content-sha256"] == hashlib.sha256(download.content).hexdigest()
    assert open_object(attachment["sealed"], derm.device, download.content) == photo

    claimed = client.post(f"/v1/cases/{case_id}/transitions", json={"action": "claim"}, headers=derm.headers)
    assert claimed.status_code == 200, claimed.text
    assert (claimed.json()["status"], claimed.json()["assignee_id"]) == ("claimed", derm.id)
    assert client.get(f"/v1/cases/{case_id}", headers=colleague.headers).status_code == 404

    participants = physician.devices + derm.devices
    asked = post_message(client, derm, case_id, "info_request", "Since when? Any itching?", participants)
    assert asked.status_code == 201, asked.text
    moved = client.post(
        f"/v1/cases/{case_id}/transitions", json={"action": "request_info"}, headers=derm.headers
    )
    assert moved.json()["status"] == "awaiting_info"

    thread = client.get(f"/v1/cases/{case_id}/messages", headers=physician.headers).json()
    assert open_object(thread["items"][0]["sealed"], physician.device) == b"Since when? Any itching?"
    answer = post_message(
        client, physician, case_id, "info_response", "Three weeks, no itching.", participants
    )
    assert answer.status_code == 201, answer.text
    moved = client.post(
        f"/v1/cases/{case_id}/transitions", json={"action": "provide_info"}, headers=physician.headers
    )
    assert moved.json()["status"] == "claimed"

    report = post_message(client, derm, case_id, "report", "Seborrheic keratosis; no action.", participants)
    assert report.status_code == 201, report.text
    answered = client.post(
        f"/v1/cases/{case_id}/transitions",
        json={"action": "answer", "report_message_id": report.json()["id"]},
        headers=derm.headers,
    )
    assert answered.json()["status"] == "answered", answered.text

    thread = client.get(f"/v1/cases/{case_id}/messages", headers=physician.headers).json()
    assert [m["kind"] for m in thread["items"]] == ["info_request", "info_response", "report"]
    assert all(m["sealed"]["author_device"]["suite"] == suite for m in thread["items"])
    assert open_object(thread["items"][-1]["sealed"], physician.device) == b"Seborrheic keratosis; no action."
    closed = client.post(
        f"/v1/cases/{case_id}/transitions", json={"action": "close"}, headers=physician.headers
    )
    assert closed.json()["status"] == "closed"
    assert closed.json()["closed_at"] is not None

    markers = [question.encode(), b"PHOTO-MARKER-", b"Since when", b"Three weeks", b"Seborrheic"]
    assert _plaintext_anywhere(engine, database_url, settings.resolved_blobs_dir, markers) == []
    assert not [
        record for record in caplog.records if any(m.decode() in record.getMessage() for m in markers)
    ]
