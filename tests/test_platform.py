"""Platform: migrations, the OpenAPI contract, audit declarations, operations routes, headers, limits."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool

from app.cli import OPENAPI_PATH, alembic_config, render_openapi
from app.config import Settings
from app.models.base import metadata
from app.models.users import Role
from app.platform.routes import api_routes
from app.runtime import database
from app.runtime.database import create_db_engine
from tests.conftest import assert_problem, auth_headers


def test_migrations_downgrade_and_upgrade_and_match_the_models(database_url):
    config = alembic_config(Settings(), database_url)
    command.downgrade(config, "-1")
    command.upgrade(config, "head")
    engine = create_engine(database_url, poolclass=NullPool)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), metadata)
        tables = set(inspect(connection).get_table_names())
    engine.dispose()
    assert diff == [], f"models and migrations differ: {diff}"
    assert set(metadata.tables) <= tables


def test_openapi_file_matches_the_app():
    assert OPENAPI_PATH.exists(), "run `make openapi`"
    assert json.loads(OPENAPI_PATH.read_text()) == json.loads(render_openapi()), "run `make openapi`"


def test_every_operation_has_a_stable_id_summary_and_declared_errors(app):
    document = app.openapi()
    operation_ids = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            operation_ids.append(operation["operationId"])
            assert operation.get("summary"), (method, path)
            assert "_" not in operation["operationId"], operation["operationId"]
    assert len(operation_ids) == len(set(operation_ids))
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_every_route_declares_its_audit_action(app):
    undeclared = []
    for route in api_routes(app):
        markers = [dep.call for dep in route.dependant.dependencies if hasattr(dep.call, "audit_action")]
        if len(markers) != 1:
            undeclared.append(f"{sorted(route.methods)} {route.path}")
    assert undeclared == [], f"routes without exactly one audited()/unaudited() declaration: {undeclared}"


# DESIGN.md section 1: deny by default; only these routes answer without a principal.
PUBLIC_ROUTES = {
    ("POST", "/v1/auth/register"),
    ("POST", "/v1/auth/token"),
    ("POST", "/v1/auth/refresh"),
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),  # guarded by its own bearer token, not a user
    ("GET", "/v1/audit/checkpoint"),
    # The device directory log: public keys and ids only, open to any monitor (docs/key-transparency.md).
    ("GET", "/v1/directory/checkpoint"),
    ("GET", "/v1/directory/proof/inclusion"),
    ("GET", "/v1/directory/proof/consistency"),
    ("GET", "/v1/directory/log/checkpoint"),
    ("GET", "/v1/directory/log/tile/{path:path}"),
    ("GET", "/v1/specialties"),  # reference data the registration form lists
    ("GET", "/v1/professions"),  # idem
    ("GET", "/v1/audit/proof/consistency"),  # hashes only: witnesses check the log with it
    ("GET", "/v1/audit/witness/checkpoint"),
    ("POST", "/v1/audit/witness/cosignatures"),  # a cosignature authenticates itself
}


def _depends_on(dependant, target) -> bool:
    return any(dep.call is target or _depends_on(dep, target) for dep in dependant.dependencies)


def test_every_route_needs_a_principal_unless_public(app):
    from app.runtime.principals import current_principal

    open_routes = {
        (method, route.path)
        for route in api_routes(app)
        for method in route.methods
        if not _depends_on(route.dependant, current_principal)
    }
    assert open_routes == PUBLIC_ROUTES


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_readiness_fails_when_the_database_is_unreachable(client, app):
    healthy = app.state.runtime
    unreachable = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", poolclass=NullPool)
    app.state.runtime = replace(healthy, engine=unreachable)
    try:
        assert_problem(client.get("/readyz"), 503, "service_unavailable")
    finally:
        app.state.runtime = healthy
    assert client.get("/readyz").status_code == 200


def test_metrics_need_the_metrics_token(client):
    assert_problem(client.get("/metrics"), 401, "unauthenticated")
    response = client.get("/metrics", headers={"Authorization": "Bearer test-metrics-token"})
    assert response.status_code == 200
    assert "confrere_http_requests_total" in response.text


def test_security_headers_and_request_id(client):
    response = client.get("/healthz", headers={"X-Request-ID": "0123456789abcdef0123456789ABCDEF"})
    assert response.headers["x-request-id"] == "0123456789abcdef0123456789abcdef"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in response.headers["content-security-policy"]


def test_unknown_route_and_method_are_problems(client):
    assert_problem(client.get("/v1/nothing-here"), 404, "not_found")
    assert_problem(client.delete("/v1/auth/token"), 405, "method_not_allowed")


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "streamed"])
def test_oversized_bodies_are_refused_with_413(client, settings, declared):
    body = b'{"email":"' + b"a" * (settings.max_body_bytes + 10) + b'"}'
    headers = {"Content-Type": "application/json"}
    if declared:
        response = client.post("/v1/auth/token", content=body, headers=headers)
    else:
        response = client.post("/v1/auth/token", content=iter([body[:1000], body[1000:]]), headers=headers)
    assert_problem(response, 413, "payload_too_large")


def test_me_shows_roles_and_status(client, accounts):
    specialist = accounts.create(Role.SPECIALIST, specialties=("dermatology",))
    me = client.get("/v1/me", headers=auth_headers(client, specialist)).json()
    assert me["roles"] == ["specialist"]
    assert me["specialties"] == ["dermatology"]
    assert me["status"] == "active"
    assert me["totp_enabled"] is False


def test_a_url_no_database_can_store_is_refused_with_the_request_id_and_headers(client):
    """Checked before routing (app.platform.middleware), it is answered like every other problem."""
    request_id = "0123456789abcdef0123456789abcdef"
    response = client.get("/v1/cases?specialty=a%00b", headers={"X-Request-ID": request_id})
    assert_problem(response, 422, "invalid_input")
    assert response.json()["request_id"] == request_id
    assert response.json()["instance"] == "/v1/cases"
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("database_url", "workers", "expected"),
    [
        (None, None, 1),
        ("postgresql+psycopg://postgres@127.0.0.1/confrere", None, 2),
        ("postgresql+psycopg://postgres@127.0.0.1/confrere", 4, 4),
    ],
    ids=["sqlite", "postgresql", "chosen"],
)
def test_serve_runs_one_process_on_sqlite_and_two_on_postgresql(tmp_path, database_url, workers, expected):
    settings = Settings(data_dir=tmp_path, database_url=database_url, workers=workers)
    assert settings.serve_workers == expected


def test_a_pooled_connection_the_server_dropped_is_replaced_after_idling(settings, monkeypatch):
    """Only connections that sat idle are pinged (app.runtime.database); a dropped one is replaced."""
    if not settings.resolved_database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's pool only: SQLite has no server to lose")
    engine = create_db_engine(settings)
    try:
        with engine.connect() as connection, engine.connect() as other:
            dropped = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
            connection.commit()  # given back idle, as a request leaves it
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": dropped})
        monkeypatch.setattr(database, "IDLE_BEFORE_PING_SECONDS", 0.0)
        with engine.connect() as first, engine.connect() as second:  # both pooled connections again
            pids = {
                connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
                for connection in (first, second)
            }
        assert dropped not in pids
    finally:
        engine.dispose()
