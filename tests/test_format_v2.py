"""Format version 2 through the API and the reference client: one case for x25519 and X-Wing devices,
version 1 objects still accepted and readable, objects checked against where they were served, and content
that does not match its schema shown as raw text."""

from __future__ import annotations

import argparse
import json

import pytest
from fastapi.testclient import TestClient

from app.client.cli import _case
from app.client.clinician import Clinician
from app.crypto.e2ee import FORMAT_V1, E2EEError, ObjectContext, Suite
from app.crypto.signed_note import NoteSigner
from app.models.users import Role
from tests.conftest import assert_problem, built_app
from tests.e2ee_helpers import (
    case_request,
    clinician,
    create_case,
    devices_of,
    message_body,
    new_id,
    open_object,
    post_message,
    seal_object,
    sealed_json,
    unb64,
)

DERM = ("dermatology",)


@pytest.fixture
def people(client, accounts):
    return {
        "physician": clinician(client, accounts, Role.PHYSICIAN),
        "hybrid": clinician(client, accounts, Role.SPECIALIST, specialties=DERM),
        "classic": clinician(client, accounts, Role.SPECIALIST, specialties=DERM, suite=Suite.X25519),
    }


def _detail(client, person, case_id: str) -> dict:
    response = client.get(f"/v1/cases/{case_id}", headers=person.headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_one_case_is_read_by_an_x25519_and_an_xwing_device(client, people):
    physician, hybrid, classic = people["physician"], people["hybrid"], people["classic"]
    case = create_case(client, physician, devices_of(hybrid, classic), "mixed", specialty="dermatology")
    served = ObjectContext(case["id"], "case", case["id"])
    for specialist in (hybrid, classic):
        sealed = _detail(client, specialist, case["id"])["sealed"]
        assert open_object(sealed, specialist.device, served=served) == b'{"question": "mixed"}'
    # The x25519 specialist claims and answers both suites in one message.
    client.post(f"/v1/cases/{case['id']}/transitions", json={"action": "claim"}, headers=classic.headers)
    audience = devices_of(physician, classic)
    assert post_message(client, classic, case["id"], "message", "seen", audience).status_code == 201
    message = client.get(f"/v1/cases/{case['id']}/messages", headers=physician.headers).json()["items"][0]
    served = ObjectContext(case["id"], "message", message["id"])
    assert open_object(message["sealed"], physician.device, served=served) == b"seen"


OLD_CLIENT_TEXT = json.dumps({"v": 1, "question": "old client"}).encode()


def _version_1_case(physician, hybrid) -> tuple[str, dict]:
    """A case as a client not yet updated seals it: format version 1, in its author's suite."""
    case_id = new_id()
    old = seal_object(
        physician.device,
        case_id,
        "case",
        case_id,
        OLD_CLIENT_TEXT,
        devices_of(physician, hybrid),
        version=FORMAT_V1,
    )
    return case_id, case_request(case_id, old, specialty="dermatology")


def _assert_version_1_case_opens(client, reader, case_id: str) -> None:
    sealed = _detail(client, reader, case_id)["sealed"]
    assert json.loads(unb64(sealed["header"]))["v"] == FORMAT_V1
    served = ObjectContext(case_id, "case", case_id)
    assert open_object(sealed, reader.device, served=served) == OLD_CLIENT_TEXT


def test_version_1_objects_are_still_accepted_and_open(client, people):
    physician, hybrid = people["physician"], people["hybrid"]
    case_id, body = _version_1_case(physician, hybrid)
    response = client.post("/v1/cases", json=body, headers=physician.headers)
    assert response.status_code == 201, response.text
    _assert_version_1_case_opens(client, hybrid, case_id)


def test_a_server_refusing_version_1_uploads_still_serves_version_1_objects(
    client, people, settings, seed_rows
):
    physician, hybrid = people["physician"], people["hybrid"]
    stored_id, body = _version_1_case(physician, hybrid)
    assert client.post("/v1/cases", json=body, headers=physician.headers).status_code == 201
    client.post(f"/v1/cases/{stored_id}/transitions", json={"action": "claim"}, headers=hybrid.headers)
    # The same database and keys, after the operator turned version 1 uploads off.
    strict = settings.model_copy(update={"accept_format_v1_uploads": False})
    with built_app(strict, seed_rows) as strict_app, TestClient(strict_app) as strict_client:
        refused_id, body = _version_1_case(physician, hybrid)
        response = strict_client.post("/v1/cases", json=body, headers=physician.headers)
        assert_problem(response, 422, "format_version_refused")
        assert strict_client.get(f"/v1/cases/{refused_id}", headers=physician.headers).status_code == 404
        message_id = new_id()
        old_message = seal_object(
            hybrid.device,
            stored_id,
            "message",
            message_id,
            b"old reply",
            devices_of(physician, hybrid),
            version=FORMAT_V1,
        )
        body = {"id": message_id, "kind": "message", "sealed": sealed_json(old_message)}
        response = strict_client.post(f"/v1/cases/{stored_id}/messages", json=body, headers=hybrid.headers)
        assert_problem(response, 422, "format_version_refused")
        # What was stored in version 1 still opens, and version 2 goes on being accepted.
        _assert_version_1_case_opens(strict_client, physician, stored_id)
        _assert_version_1_case_opens(strict_client, hybrid, stored_id)
        reply = post_message(strict_client, hybrid, stored_id, "message", "v2", devices_of(physician, hybrid))
        assert reply.status_code == 201, reply.text


class _ServedApi:
    """What a dishonest server answers: canned case details and threads, whatever was asked."""

    def __init__(self, case: dict, messages: list[dict]):
        self.device_id = None
        self._case, self._messages = case, messages

    def case(self, case_id: str) -> dict:
        return self._case

    def directory_key(self) -> str:
        # A reader pins a directory key but checks no checkpoint while it only reads.
        return NoteSigner.generate("dishonest.example/directory").verifier().key_string

    def messages(self, case_id: str):
        return iter(self._messages)

    def download_attachment(self, case_id: str, attachment_id: str) -> bytes:
        raise AssertionError("no attachments here")


def _reader(person, api: _ServedApi) -> Clinician:
    return Clinician(api, person.id, person.device.id, person.device.keys)


def test_a_signed_object_moved_to_another_case_is_refused_by_the_server_and_the_reader(client, people):
    physician, hybrid = people["physician"], people["hybrid"]
    audience = devices_of(physician, hybrid)
    first = create_case(client, physician, hybrid.devices, "first", specialty="dermatology")
    second = create_case(client, physician, hybrid.devices, "second", specialty="dermatology")
    # The server refuses to store an object signed for one case under another.
    body = message_body(physician.device, first["id"], "message", "for the first case", audience)
    moved = client.post(f"/v1/cases/{second['id']}/messages", json=body, headers=physician.headers)
    assert_problem(moved, 422, "object_mismatch")
    assert (
        client.post(f"/v1/cases/{first['id']}/messages", json=body, headers=physician.headers).status_code
        == 201
    )

    # A server that serves it there anyway: the reader's device refuses it, genuinely signed as it is.
    thread = client.get(f"/v1/cases/{first['id']}/messages", headers=hybrid.headers).json()["items"]
    second_detail = _detail(client, hybrid, second["id"])
    reader = _reader(hybrid, _ServedApi(second_detail, [thread[0] | {"id": new_id()}]))
    with pytest.raises(E2EEError, check=lambda e: e.code == "context_mismatch"):
        reader.read_messages(second["id"])
    # The first case's content served as the second case.
    first_detail = _detail(client, hybrid, first["id"])
    reader = _reader(hybrid, _ServedApi(first_detail | {"id": second["id"]}, []))
    with pytest.raises(E2EEError, check=lambda e: e.code == "context_mismatch"):
        reader.open_case(second["id"])
    # Served where it belongs, it opens.
    opened = _reader(hybrid, _ServedApi(first_detail, thread)).open_case(first["id"])
    assert opened.raw_text == '{"question": "first"}'


def test_content_that_does_not_match_its_schema_is_shown_as_raw_text(client, people, capsys):
    physician, hybrid = people["physician"], people["hybrid"]
    case = create_case(client, physician, hybrid.devices, "not JSON at all", specialty="dermatology")
    # create_case's helper seals {"question": ...} without "v": not the schema, so shown raw.
    assert (
        post_message(client, physician, case["id"], "message", "plain text", devices_of(hybrid)).status_code
        == 201
    )
    thread = client.get(f"/v1/cases/{case['id']}/messages", headers=hybrid.headers).json()["items"]
    reader = _reader(hybrid, _ServedApi(_detail(client, hybrid, case["id"]), thread))
    opened = reader.open_case(case["id"])
    assert opened.content is None and opened.raw_text == '{"question": "not JSON at all"}'
    [message] = reader.read_messages(case["id"])
    assert (message.text, message.parsed) == ("plain text", False)

    args = argparse.Namespace(case_command="show", case_id=case["id"], save_attachments=None)
    assert _case(args, reader) == 0
    shown = capsys.readouterr().out
    assert 'content (not in the expected format, shown as raw text): {"question": "not JSON at all"}' in shown
    assert "(not in the expected format, shown as raw text): plain text" in shown
