"""Operations: graceful shutdown, structured logs free of secrets and sealed data, security headers on
every kind of answer, and the CORS allow-list from settings."""

from __future__ import annotations

import hashlib
import json
import signal
import threading
import time
import uuid

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from app.crypto.e2ee import Suite
from app.models.cases import Case
from app.models.users import Role
from app.runtime.database import create_db_engine, new_session
from app.runtime.middleware import SECURITY_HEADERS
from tests.conftest import PASSWORD, built_app
from tests.e2ee_helpers import attachment_upload, case_body, clinician, message_body
from tests.live_server import live_server


@pytest.mark.slow
def test_sigterm_lets_an_in_flight_request_finish(client, accounts, settings, engine, tmp_path):
    physician = clinician(client, accounts, Role.PHYSICIAN, suite=Suite.X25519)
    body = json.dumps(
        case_body(physician.device, physician.devices, "slow", specialty="dermatology")
    ).encode()
    half_sent = threading.Event()

    def trickle():
        yield body[: len(body) // 2]
        half_sent.set()
        time.sleep(1.5)  # SIGTERM arrives while the server still waits for the rest of the body
        yield body[len(body) // 2 :]

    with live_server(settings, tmp_path / "server.log") as server:
        answer: dict[str, httpx.Response] = {}
        headers = {**physician.headers, "Content-Type": "application/json"}

        def send() -> None:
            answer["response"] = httpx.post(
                f"{server.url}/v1/cases", content=trickle(), headers=headers, timeout=20
            )

        sender = threading.Thread(target=send)
        sender.start()
        assert half_sent.wait(10)
        server.process.send_signal(signal.SIGTERM)
        sender.join(20)
        assert server.process.wait(timeout=15) in (0, -signal.SIGTERM)
        with pytest.raises(httpx.TransportError):  # and it took no new request meanwhile
            httpx.get(f"{server.url}/healthz", timeout=1)
    assert answer["response"].status_code == 201, answer["response"].text
    with new_session(engine) as session:
        assert session.get(Case, uuid.UUID(json.loads(body)["id"])) is not None


def _flow(url: str, physician, derm, request_ids: list[str]) -> dict[str, str]:
    """A whole clinical flow against the server; returns the secrets it handled, by name."""
    marker = f"MARKER-{uuid.uuid4().hex}"
    secrets = {"marker": marker}
    with httpx.Client(base_url=url, timeout=10) as http:

        def call(method: str, path: str, headers: dict, **options) -> httpx.Response:
            request_id = uuid.uuid4().hex
            request_ids.append(request_id)
            return http.request(method, path, headers={**headers, "X-Request-ID": request_id}, **options)

        tokens = call(
            "POST", "/v1/auth/token", {}, json={"email": physician.account.email, "password": PASSWORD}
        )
        secrets |= {"access": tokens.json()["access_token"], "refresh": tokens.json()["refresh_token"]}
        headers = {"Authorization": f"Bearer {secrets['access']}"}
        audience = [*physician.devices, *derm.devices]
        case = case_body(physician.device, audience, marker, specialty="dermatology")
        secrets |= {
            "ciphertext": case["sealed"]["ciphertext"][:40],
            "wrapped": case["sealed"]["envelopes"][0]["wrapped_key"][:40],
        }
        assert call("POST", "/v1/cases", headers, json=case).status_code == 201
        message = message_body(physician.device, case["id"], "message", marker, audience)
        assert call("POST", f"/v1/cases/{case['id']}/messages", headers, json=message).status_code == 201
        meta, ciphertext = attachment_upload(physician.device, case["id"], marker.encode(), audience)
        files = {"ciphertext": ("c.bin", ciphertext, "application/octet-stream")}
        upload = call(
            "POST",
            f"/v1/cases/{case['id']}/attachments",
            headers,
            data={"meta": json.dumps(meta)},
            files=files,
        )
        assert upload.status_code == 201
        secrets["attachment"] = hashlib.sha256(ciphertext).hexdigest()  # clear metadata, but check the bytes
        secrets["attachment_bytes"] = ciphertext[:24].hex()
        assert call("GET", f"/v1/cases/{case['id']}", derm.headers).status_code == 200
        # Refusals and errors log too: a wrong password, a body that fails validation, a hidden case.
        call("POST", "/v1/auth/token", {}, json={"email": physician.account.email, "password": marker})
        call(
            "POST",
            "/v1/auth/register",
            {},
            json={"email": "x@example.org", "password": marker, "display_name": marker},
        )
        call("GET", f"/v1/cases/{uuid.uuid4()}", headers)
        refreshed = call("POST", "/v1/auth/refresh", {}, json={"refresh_token": secrets["refresh"]})
        secrets["refreshed"] = refreshed.json()["refresh_token"]
        call("POST", "/v1/auth/logout", {"Authorization": f"Bearer {refreshed.json()['access_token']}"})
    return secrets


@pytest.mark.slow
def test_logs_are_json_with_request_ids_and_carry_no_secret(client, accounts, settings, tmp_path):
    physician = clinician(client, accounts, Role.PHYSICIAN, suite=Suite.X25519)
    derm = clinician(client, accounts, Role.SPECIALIST, specialties=("dermatology",), suite=Suite.X25519)
    request_ids: list[str] = []
    log_path = tmp_path / "server.log"
    with live_server(settings, log_path, production_entry=True) as server:
        secrets = _flow(server.url, physician, derm, request_ids)
    secrets |= {"password": PASSWORD, "derm_token": derm.headers["Authorization"].removeprefix("Bearer ")}
    raw = log_path.read_text()
    lines = [orjson.loads(line) for line in raw.splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    access = [line for line in lines if line["logger"] == "confrere.access"]
    logged = {line.get("request_id") for line in access}
    assert set(request_ids) <= logged, "a request without its access line"
    assert all(isinstance(line["status"], int) and "?" not in line["path"] for line in access)
    leaked = {name for name, value in secrets.items() if value and value in raw}
    assert leaked == {"attachment"} or not leaked, f"the logs hold {leaked}"  # a hash is clear metadata


def test_failed_statements_do_not_quote_their_parameters(settings):
    engine = create_db_engine(settings)
    marker = f"secret-{uuid.uuid4().hex}"
    try:
        with pytest.raises(Exception) as failure, engine.begin() as connection:
            connection.execute(text("INSERT INTO users (email) VALUES (:email)"), {"email": marker})
    finally:
        engine.dispose()
    assert marker not in str(failure.value)


def _boom() -> None:
    raise RuntimeError("an unexpected failure")


def test_every_kind_of_answer_carries_the_security_headers(settings, seed_rows):
    small = settings.model_copy(update={"max_body_bytes": 1024})
    with built_app(small, seed_rows) as app:
        app.add_api_route("/boom", _boom)
        with TestClient(app, raise_server_exceptions=False) as client:
            answers = {
                "ok": client.get("/healthz"),
                "problem": client.get(f"/v1/cases/{uuid.uuid4()}"),
                "unmatched": client.get("/nowhere"),
                "too large": client.post("/v1/auth/token", content=b"x" * 2048),
                "server error": client.get("/boom"),
            }
    for name, response in answers.items():
        for header, value in SECURITY_HEADERS:
            assert response.headers.get(header.decode()) == value.decode(), (name, header)
        assert response.headers.get("x-request-id"), name
    assert answers["server error"].status_code == 500
    assert answers["server error"].json()["code"] == "internal_error"
    assert "unexpected failure" not in answers["server error"].text


def test_cors_answers_only_the_origins_in_settings(settings, seed_rows):
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    allowed_origins = settings.model_copy(update={"cors_origins": ["https://app.example.org"]})
    with built_app(allowed_origins, seed_rows) as app, TestClient(app) as client:
        allowed = client.options("/v1/cases", headers={"Origin": "https://app.example.org", **preflight})
        other = client.options("/v1/cases", headers={"Origin": "https://evil.example.com", **preflight})
        simple = client.get("/healthz", headers={"Origin": "https://evil.example.com"})
        read = client.get("/healthz", headers={"Origin": "https://app.example.org"})
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.org"
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-origin" not in other.headers
    assert "access-control-allow-origin" not in simple.headers
    assert read.headers["access-control-allow-origin"] == "https://app.example.org"
    assert "x-request-id" in read.headers["access-control-expose-headers"].lower()


def test_without_an_allow_list_there_is_no_cors(client):
    response = client.get("/healthz", headers={"Origin": "https://app.example.org"})
    assert "access-control-allow-origin" not in response.headers
    assert client.get("/healthz").headers["cache-control"] == "no-store"
