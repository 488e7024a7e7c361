"""What contract fuzzing and hostile-input probes found (docs/reliability.md), kept as plain tests.

Each of these was a 500 (or an undeclared status) before its fix; PostgreSQL was the stricter database.
"""

from __future__ import annotations

import base64
import uuid

import orjson
import pytest

from app.models.users import Role
from tests.conftest import assert_problem, auth_headers

BAD_TEXT = ["a\x00b", "\ud800"]


@pytest.fixture
def people(client, accounts) -> dict[str, dict[str, str]]:
    return {
        "physician": auth_headers(client, accounts.create(Role.PHYSICIAN)),
        "admin": auth_headers(client, accounts.create(Role.ADMIN)),
        "officer": auth_headers(client, accounts.create(Role.COMPLIANCE_OFFICER)),
    }


def _json(value: dict) -> bytes:
    # orjson refuses lone surrogates; a hostile client writes the escape itself.
    return orjson.dumps(value).replace(b"SURROGATE", b"\\ud800")


@pytest.mark.parametrize("text", ["a\x00b", "SURROGATE"], ids=["nul", "lone-surrogate"])
def test_text_a_database_cannot_store_is_refused_in_bodies(client, people, text):
    """PostgreSQL refuses NUL in text and no driver encodes a lone surrogate: both were 500s."""
    register = {
        "email": "dr.nul@example.org",
        "password": "a long enough password",
        "display_name": f"Dr {text}",
        "professional_id_kind": "rpps",
        "professional_id": "10000000009",
        "roles": ["physician"],
    }
    headers = {"Content-Type": "application/json"}
    assert_problem(
        client.post("/v1/auth/register", content=_json(register), headers=headers), 422, "invalid_input"
    )
    login = {"email": f"x{text}@example.org", "password": "whatever"}
    assert_problem(client.post("/v1/auth/token", content=_json(login), headers=headers), 422, "invalid_input")
    roles = {"roles": ["specialist"], "specialties": [f"derm{text}"]}
    response = client.put(
        f"/v1/admin/users/{uuid.uuid4()}/roles", content=_json(roles), headers={**headers, **people["admin"]}
    )
    assert_problem(response, 422, "invalid_input")


@pytest.mark.parametrize(
    "path",
    [
        "/v1/cases?specialty=a%00b",
        "/v1/cases/queue?cursor=%00",
        "/v1/specialties/a%00b/recipients",
        "/v1/admin/users?specialty=%00",
        "/v1/audit/log/tile/0/%00",
    ],
)
def test_nul_in_a_path_or_query_is_refused(client, people, path):
    headers = (
        people["admin"] if "admin" in path else people["officer"] if "audit" in path else people["physician"]
    )
    assert_problem(client.get(path, headers=headers), 422, "invalid_input")


@pytest.mark.parametrize("instant", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_instants_out_of_range_in_utc_are_refused(client, people, instant):
    """Valid ISO 8601 with an offset, but beyond year 1..9999 once in UTC: the database layer overflowed."""
    response = client.get("/v1/audit/events", params={"since": instant}, headers=people["officer"])
    assert_problem(response, 422, "invalid_input")
    body = {"id": str(uuid.uuid4()), "specialty": "dermatology", "patient_consent_at": instant, "sealed": {}}
    assert_problem(client.post("/v1/cases", json=body, headers=people["physician"]), 422, "invalid_input")


def _cursor(position: dict) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(position)).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "position",
    [
        {"created_at": "x", "id": "y"},
        {"created_at": "0001-01-01T00:00:00+14:00", "id": str(uuid.uuid4())},
        {"created_at": "2026-01-01T00:00:00", "id": str(uuid.uuid4())},
    ],
    ids=["not-a-time", "out-of-range", "naive"],
)
def test_forged_keyset_cursors_are_invalid_cursors(client, people, position):
    """The admin user list decoded its cursor by hand and let ValueError through: a 500."""
    cursor = _cursor(position)
    assert_problem(
        client.get("/v1/admin/users", params={"cursor": cursor}, headers=people["admin"]),
        422,
        "invalid_cursor",
    )
    assert_problem(
        client.get("/v1/cases", params={"cursor": cursor}, headers=people["physician"]), 422, "invalid_cursor"
    )


def test_an_audit_cursor_beyond_bigint_is_an_invalid_cursor(client, people):
    """PostgreSQL's bigint overflowed on an id of 2**63."""
    for value in (2**63, -1):
        cursor = _cursor({"id": value})
        response = client.get("/v1/audit/events", params={"cursor": cursor}, headers=people["officer"])
        assert_problem(response, 422, "invalid_cursor")


def test_a_body_that_is_not_utf8_is_a_declared_400(client, app):
    """FastAPI answers an undecodable body with 400, which no route declared, under a generic code."""
    response = client.post(
        "/v1/auth/token", content=b"\xff\xfe{", headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 400, "malformed_body")
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            if "requestBody" in operation:
                assert {"400", "413", "422"} <= set(operation["responses"]), (method, path)
            # Every write has a rate limit (app/runtime/principals.py).
            if method in ("post", "put", "delete"):
                assert "429" in operation["responses"], (method, path)
