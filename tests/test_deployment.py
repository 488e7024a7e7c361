"""The container image, imitated (no Docker daemon here): what its Dockerfile and compose file promise an
operator, checked against the settings and the app they configure."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from app.config import Settings
from tests.conftest import built_app
from tests.live_server import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()
COMPOSE = (ROOT / "compose.yaml").read_text()


def _env(name: str) -> str:
    found = re.search(rf"^\s*{name}=(\S+?)(?: \\)?$", DOCKERFILE, re.MULTILINE)
    assert found, f"the image sets no {name}"
    return found.group(1)


def test_the_data_dir_is_a_volume():
    assert f'VOLUME ["{_env("CONFRERE_DATA_DIR")}"]' in DOCKERFILE


def test_the_image_builds_and_serves_the_web_client():
    assert re.search(r"^FROM node:\S+ AS web$", DOCKERFILE, re.MULTILINE)
    assert "RUN npm ci" in DOCKERFILE and "RUN node build.mjs" in DOCKERFILE
    assert "COPY --from=web /web/dist ./web\n" in DOCKERFILE
    assert _env("CONFRERE_WEB_DIR") == "/srv/confrere/web"


def test_the_image_leaves_workers_to_the_database_kind():
    assert "--workers" not in DOCKERFILE
    assert Settings(database_url=None).serve_workers == 1
    assert Settings(database_url="postgresql+psycopg://db/confrere").serve_workers == 2
    assert Settings(database_url=None, workers=3).serve_workers == 3


def test_compose_runs_the_api_on_postgresql_with_required_secrets():
    assert "image: postgres:" in COMPOSE
    assert "CONFRERE_DATABASE_URL: postgresql+psycopg://" in COMPOSE and "@db:5432/" in COMPOSE
    for required in ("CONFRERE_SECRET_KEY", "CONFRERE_AUDIT_LOG_ORIGIN", "CONFRERE_PUBLIC_URL"):
        assert re.search(rf"{required}: \$\{{{required}:\?", COMPOSE), f"{required} is not required"
    assert f"confrere-data:{_env('CONFRERE_DATA_DIR')}" in COMPOSE


def test_a_configured_web_dir_is_served_at_app(settings, seed_rows, tmp_path):
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<!doctype html><title>Confrere</title>")
    with built_app(settings.model_copy(update={"web_dir": web}), seed_rows) as app, TestClient(app) as client:
        response = client.get("/app/")
    assert response.status_code == 200 and "<title>Confrere</title>" in response.text
