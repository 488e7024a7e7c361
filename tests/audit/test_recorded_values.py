"""Only validated, bounded values enter the append-only log: request ids, clients, path ids, devices."""

from __future__ import annotations

import re
import uuid

import pytest

from app.models.users import Role
from tests.audit.conftest import parsed_log
from tests.conftest import assert_problem
from tests.e2ee_helpers import clinician

HEX_ID = re.compile(r"[0-9a-f]{32}")


def _last_record(engine, flush) -> dict:
    flush()
    return parsed_log(engine)[-1]


@pytest.mark.parametrize(
    ("sent", "recorded"),
    [
        ("3F2504E0-4F89-11D3-9A0C-0305E82C3301", "3f2504e04f8911d39a0c0305e82c3301"),
        ("3f2504e04f8911d39a0c0305e82c3301", "3f2504e04f8911d39a0c0305e82c3301"),
        ("Robert-was-here-and-left-a-note", None),
        ("{3f2504e0-4f89-11d3-9a0c-0305e82c3301}", None),
        ("a" * 31, None),
    ],
)
def test_request_ids_are_uuids_or_replaced(client, accounts, engine, flush, sent, recorded):
    physician = clinician(client, accounts, Role.PHYSICIAN)
    response = client.get("/v1/me", headers={**physician.headers, "X-Request-ID": sent})
    record = _last_record(engine, flush)
    assert record["request"] == response.headers["x-request-id"]
    assert HEX_ID.fullmatch(record["request"])
    if recorded is not None:
        assert record["request"] == recorded


@pytest.mark.parametrize(
    ("headers", "recorded"),
    [
        ({"X-Confrere-Client": "confrere-web/1"}, "confrere-web/1"),
        ({"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) my note to the auditor"}, "Mozilla/5.0"),
        ({"X-Confrere-Client": "confrere web 1, and a message"}, None),
        ({"X-Confrere-Client": "=HYPERLINK(x)/1"}, None),
        ({"User-Agent": "a-client-name-much-longer-than-the-thirty-two-characters-allowed/1"}, None),
    ],
)
def test_the_client_is_a_short_name_and_version_or_nothing(
    client, accounts, engine, flush, headers, recorded
):
    physician = clinician(client, accounts, Role.PHYSICIAN)
    client.get("/v1/me", headers={**physician.headers, **headers})
    assert _last_record(engine, flush)["actor"].get("client") == recorded


@pytest.mark.parametrize("path_id", ["not-a-case; see my note", "%E2%9C%93", "x" * 200, "dermatology"])
def test_an_invalid_path_id_is_recorded_as_invalid(client, accounts, engine, flush, path_id):
    physician = clinician(client, accounts, Role.PHYSICIAN)
    response = client.get(f"/v1/cases/{path_id}", headers=physician.headers)
    assert response.status_code == 422
    record = _last_record(engine, flush)
    assert (record["action"], record["resource"]) == ("case.read", {"type": "case", "id": "invalid"})


def test_path_ids_are_recorded_in_canonical_form(client, accounts, engine, flush):
    physician = clinician(client, accounts, Role.PHYSICIAN)
    case_id = uuid.uuid4()
    assert client.get(f"/v1/cases/{str(case_id).upper()}", headers=physician.headers).status_code == 404
    assert _last_record(engine, flush)["resource"] == {
        "type": "case",
        "id": str(case_id),
        "case": str(case_id),
    }
    client.get("/v1/specialties/dermatology/recipients", headers=physician.headers)
    assert _last_record(engine, flush)["resource"] == {"type": "specialty", "id": "dermatology"}
    client.get("/v1/specialties/Dermatology; a note/recipients", headers=physician.headers)
    assert _last_record(engine, flush)["resource"] == {"type": "specialty", "id": "invalid"}


def test_the_recorded_device_is_one_of_the_callers_active_devices(client, accounts, engine, flush):
    physician = clinician(client, accounts, Role.PHYSICIAN, devices=2)
    other = clinician(client, accounts, Role.PHYSICIAN)
    own, revoked = physician.devices
    assert client.get("/v1/me", headers={**physician.headers, "X-Confrere-Device": own.id}).status_code == 200
    assert _last_record(engine, flush)["actor"]["device"] == own.id
    # The device id in canonical form, however it was written.
    client.get("/v1/me", headers={**physician.headers, "X-Confrere-Device": own.id.upper()})
    assert _last_record(engine, flush)["actor"]["device"] == own.id

    assert client.delete(f"/v1/devices/{revoked.id}", headers=physician.headers).status_code == 204
    for claimed in (other.device.id, revoked.id, str(uuid.uuid4()), "my-phone"):
        response = client.get("/v1/me", headers={**physician.headers, "X-Confrere-Device": claimed})
        assert_problem(response, 403, "unknown_device")
        record = _last_record(engine, flush)
        assert (record["action"], record["outcome"], record["actor"]["user"]) == (
            "user.read_self",
            "denied",
            physician.id,
        )
        assert "device" not in record["actor"]
