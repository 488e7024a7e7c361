"""Several nodes starting at once on one PostgreSQL: `confrere migrate` upgrades once (an advisory lock in
alembic/env.py), the others wait for it and find nothing to do; and nodes that may not make server keys
start only on the keys that `confrere init-keys` made once."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from app.cli import alembic_config, main
from app.config import Settings, get_settings
from app.platform.keyring import KeyringError, load_server_keys
from tests.live_server import ROOT


@pytest.fixture
def empty_postgres(database_url: str) -> Iterator[str]:
    """A database of its own, empty, dropped afterwards."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the migration lock is PostgreSQL's; SQLite serves one node")
    name = f"{make_url(database_url).database}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(database_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(database_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.slow
def test_three_nodes_starting_at_once_migrate_once(empty_postgres, tmp_path):
    env = {"CONFRERE_DATABASE_URL": empty_postgres, "CONFRERE_DATA_DIR": str(tmp_path)}
    migrate = "import sys; from app.cli import main; sys.exit(main(['migrate']))"
    nodes = [
        subprocess.Popen(
            [sys.executable, "-c", migrate],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [node.communicate(timeout=120)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0, 0], outputs
    revisions = len(list(ScriptDirectory.from_config(alembic_config(Settings())).walk_revisions()))
    said = sorted(output.strip().splitlines()[-1].split(":")[0] for output in outputs)
    assert said == [f"applied {revisions} migrations", "nothing to migrate", "nothing to migrate"], outputs


def test_nodes_that_may_not_make_keys_start_only_on_the_keys_made_once(tmp_path, monkeypatch, capsys):
    node = Settings(data_dir=tmp_path, generate_keys=False)
    with pytest.raises(KeyringError, match="confrere init-keys"):
        load_server_keys(node)
    assert not list(tmp_path.rglob("*.pem")), "a refusing node made a key of its own"

    monkeypatch.setenv("CONFRERE_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        assert main(["init-keys"]) == 0
    finally:
        get_settings.cache_clear()
    one, other = load_server_keys(node), load_server_keys(node)
    assert one.audit_log.verifier().key_string in capsys.readouterr().out
    assert one.audit_log.verifier().key_string == other.audit_log.verifier().key_string
    assert one.tokens.jwks == other.tokens.jwks
