"""The reference client against a real server process: the whole clinical flow, encrypted on the client.

The server is a separate uvicorn process; the test plays physician and specialist devices through
app.client, in both suites, and then checks that no plaintext reached the database, blobs or logs.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from app.client.api import ApiError, ConfrereApi
from app.client.clinician import Attachment, Clinician
from app.models.base import metadata
from app.models.users import Role
from tests.conftest import PASSWORD
from tests.live_server import live_server

pytestmark = pytest.mark.slow


def _clinician(server_url: str, account, suite: str) -> Clinician:
    api = ConfrereApi(server_url)
    api.login(account.email, PASSWORD, account.next_totp_code() if account.totp_secret else None)
    return Clinician.enrol_device(api, suite, "e2e test device")


def _database_values(engine) -> list[bytes]:
    """Every stored value of every table, as bytes, whatever the backend."""
    values = []
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                values += [value if isinstance(value, bytes) else str(value).encode() for value in row]
    return values


@pytest.mark.parametrize("suite", ["x25519", "xwing"])
def test_whole_case_flow_through_the_reference_client(settings, accounts, engine, tmp_path, suite):
    marker_text = f"MARKER-QUESTION-{uuid.uuid4().hex}"
    marker_photo = f"MARKER-PHOTO-{uuid.uuid4().hex}".encode()
    marker_report = f"MARKER-REPORT-{uuid.uuid4().hex}"
    physician_account = accounts.create(Role.PHYSICIAN)
    specialist_account = accounts.create(Role.SPECIALIST, specialties=("dermatology",))
    outsider_account = accounts.create(Role.SPECIALIST, specialties=("cardiology",))

    with live_server(settings, tmp_path / "server.log") as server:
        specialist = _clinician(server.url, specialist_account, suite)
        physician = _clinician(server.url, physician_account, suite)
        outsider = _clinician(server.url, outsider_account, suite)

        photo = b"\x89PNG\r\n" + marker_photo + bytes(range(256)) * 40
        case_id = physician.create_case(
            specialty="dermatology",
            question=marker_text,
            attachments=[Attachment(name="lesion.png", media_type="image/png", data=photo)],
        )
        assert case_id in [case["id"] for case in specialist.api.queue()]
        assert case_id not in [case["id"] for case in outsider.api.queue()]
        with pytest.raises(ApiError) as refused:
            outsider.api.case(case_id)
        assert (refused.value.status, refused.value.code) == (404, "case_not_found")

        assert specialist.transition(case_id, "claim")["status"] == "claimed"
        opened = specialist.open_case(case_id)
        assert opened.content.question == marker_text
        assert opened.attachments[0].data == photo

        specialist.post(case_id, "info_request", "Any dermoscopy?")
        assert specialist.transition(case_id, "request_info")["status"] == "awaiting_info"
        physician.post(case_id, "info_response", "None available.")
        assert physician.transition(case_id, "provide_info")["status"] == "claimed"
        report_id = specialist.post(case_id, "report", marker_report)
        answered = specialist.transition(case_id, "answer", report_message_id=report_id)
        assert answered["status"] == "answered"

        thread = physician.read_messages(case_id)
        assert [message.kind for message in thread] == ["info_request", "info_response", "report"]
        assert thread[-1].text == marker_report
        assert physician.transition(case_id, "close")["status"] == "closed"

    stored = [path for path in settings.data_dir.rglob("*") if path.is_file()]
    database = settings.resolved_database_url
    if database.startswith("sqlite:///"):
        stored.append(type(settings.data_dir)(database.removeprefix("sqlite:///")))
    values = _database_values(engine)
    for marker in (marker_text.encode(), marker_photo, marker_report.encode()):
        for path in stored:
            assert marker not in path.read_bytes(), f"plaintext found in {path}"
        assert not any(marker in value for value in values), "plaintext found in the database"
    assert marker_text not in (tmp_path / "server.log").read_text()
