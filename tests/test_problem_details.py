"""What a client reads when a request is refused: each field problem once, a 413 a person can act on, an
expired token named as such, input of the wrong JSON type refused, and 405 (with Allow) for a wrong method."""

from __future__ import annotations

import time
import typing
import uuid

import pytest
from pydantic import BaseModel

from app.models.users import Role
from app.schemas import accounts, audit, auth, cases, devices, notifications, specialties
from app.schemas.common import RequestModel
from tests.conftest import assert_problem, auth_headers


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"max_body_bytes": 1024})


def test_a_validation_problem_lists_each_field_once(client):
    body = assert_problem(client.post("/v1/auth/register", json={"email": "x"}), 422, "invalid_input")
    locations = [tuple(error["loc"]) for error in body["errors"]]
    assert len(locations) == len(set(locations))
    assert ("body", "email") in locations and ("body", "password") in locations


REQUEST_ID = uuid.UUID("5d6c4c7e-9a37-4d7b-a7a2-2d0c9a1b8e41")


def test_a_body_too_large_names_the_request_and_its_limit_in_words(client):
    response = client.post(
        "/v1/auth/token",
        content=b"x" * 2048,
        headers={"Content-Type": "application/json", "X-Request-ID": str(REQUEST_ID)},
    )
    body = assert_problem(response, 413, "payload_too_large")
    assert body["instance"] == "/v1/auth/token"
    # A client's request id is kept when it is a UUID (as 32 hex digits: docs/audit-log.md).
    assert body["request_id"] == REQUEST_ID.hex == response.headers["X-Request-ID"]
    assert body["detail"] == "this route accepts bodies of at most 1 KiB"


def test_an_expired_access_token_says_it_expired(client, app, accounts):
    account = accounts.create(Role.PHYSICIAN)
    settings = app.state.runtime.settings
    now = int(time.time())
    token = app.state.runtime.authenticator.tokens.issue(
        {
            "sub": str(account.id),
            "sid": str(uuid.uuid4()),
            "aud": settings.token_audience,
            "iss": settings.public_url,
            "iat": now - 3600,
            "exp": now - 600,
        }
    )
    response = client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    body = assert_problem(response, 401, "invalid_token")
    assert "expired" in body["detail"]
    forged = client.get("/v1/me", headers={"Authorization": f"Bearer {token[:-4]}AAAA"})
    assert "expired" not in assert_problem(forged, 401, "invalid_token")["detail"]


@pytest.mark.parametrize("until", ["0.5", "1700000000", "true"])
def test_a_time_in_a_query_must_be_an_iso_8601_date_time(client, accounts, until):
    officer = auth_headers(client, accounts.create(Role.COMPLIANCE_OFFICER))
    response = client.get("/v1/audit/events", params={"until": until}, headers=officer)
    assert_problem(response, 422, "invalid_input")
    fine = client.get("/v1/audit/events", params={"until": "2030-01-01T00:00:00Z"}, headers=officer)
    assert fine.status_code == 200, fine.text


@pytest.mark.parametrize(
    "body",
    [
        {"consistency_from": [False]},
        {"consistency_from": ["3"]},
        {"start": True},
        {"end": 2.0},
        {"filters": {"since": 0.5}},
    ],
)
def test_a_json_body_of_the_wrong_type_is_refused(client, accounts, body):
    officer = auth_headers(client, accounts.create(Role.COMPLIANCE_OFFICER))
    assert_problem(client.post("/v1/audit/exports", json=body, headers=officer), 422, "invalid_input")


def test_a_method_a_path_does_not_offer_is_405_with_allow(client, accounts):
    headers = auth_headers(client, accounts.create(Role.PHYSICIAN))
    response = client.delete("/v1/devices/challenge", headers=headers)
    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "POST"


def _request_models() -> list[type[BaseModel]]:
    modules = (accounts, audit, auth, cases, devices, notifications, specialties)
    return [
        value
        for module in modules
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, RequestModel) and value is not RequestModel
    ]


def _lax_scalars(annotation: object) -> bool:
    """An int, float or bool reachable in the annotation without `Strict()`: JSON `true` would pass as 1."""
    if annotation in (int, float, bool):
        return True
    if typing.get_origin(annotation) is typing.Annotated:
        base, *metadata = typing.get_args(annotation)
        return not any(getattr(item, "strict", False) for item in metadata) and _lax_scalars(base)
    return any(_lax_scalars(argument) for argument in typing.get_args(annotation))


# Query parameters arrive as strings: their numbers are parsed from text, on purpose.
QUERY_MODELS = {audit.EventQuery: {"limit"}}


def test_every_number_and_flag_in_a_request_body_is_strictly_typed():
    models = _request_models()
    assert audit.ExportCreate in models
    for model in models:
        for name, field in model.model_fields.items():
            if name in QUERY_MODELS.get(model, ()):
                continue
            annotation = field.annotation
            strict = any(getattr(item, "strict", False) for item in field.metadata)
            assert strict or not _lax_scalars(annotation), f"{model.__name__}.{name} accepts true for 1"
