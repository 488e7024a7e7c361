"""The `confrere` commands as an operator and a clinician meet them: real processes, a live server where one
is needed, and the messages they print when something is wrong."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.config import Settings
from app.crypto import totp
from app.main import create_app
from app.models.users import Role
from app.platform.keyring import KeyringError
from tests.conftest import PASSWORD
from tests.live_server import live_server, settings_env

CONFRERE = str(Path(sys.executable).with_name("confrere"))


def confrere(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([CONFRERE, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CONFRERE_")}
    return env | extra


@pytest.mark.slow
def test_case_create_checks_attachments_first_and_withdraws_a_case_whose_upload_fails(
    settings, accounts, tmp_path
):
    settings = settings.model_copy(update={"max_attachment_bytes": 2048})
    physician = accounts.create(Role.PHYSICIAN)
    env = settings_env(settings) | {
        "CONFRERE_CLIENT_HOME": str(tmp_path / "home"),
        "CONFRERE_PASSWORD": PASSWORD,
        "CONFRERE_MAX_ATTACHMENT_BYTES": "2048",
    }
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff" * 4000)
    create = ("case", "create", "--specialty", "dermatology", "--question", "Changed?", "--consent", "now")
    with live_server(settings, tmp_path / "server.log", {"CONFRERE_MAX_ATTACHMENT_BYTES": "2048"}) as server:
        # --profile is accepted before the command, between group and subcommand, and at the end.
        logged_in = confrere(
            "--profile", "phys", "login", "--server", server.url, "--email", physician.email, env=env
        )
        assert logged_in.returncode == 0, logged_in.stderr
        assert (
            confrere("device", "--profile", "phys", "register", "--suite", "x25519", env=env).returncode == 0
        )

        no_consent = confrere("case", "create", "--specialty", "dermatology", "--question", "q", env=env)
        assert no_consent.returncode == 2 and "--consent" in no_consent.stderr

        checked = confrere(
            *create, "--photo", str(photo), "--photo", str(tmp_path / "missing.png"),
            "--max-attachment-bytes", "1024", "--profile", "phys", env=env,
        )  # fmt: skip
        assert checked.returncode == 1
        assert "photo.jpg holds 4000 bytes; the server accepts at most 1024" in checked.stderr
        assert "cannot read" in checked.stderr and "missing.png" in checked.stderr
        assert "no case was created" in checked.stderr
        assert confrere("case", "list", "--profile", "phys", env=env).stdout == ""

        refused = confrere(*create, "--photo", str(photo), "--profile", "phys", env=env)
        assert refused.returncode == 1
        assert "payload_too_large (413)" in refused.stderr or "413 payload_too_large" in refused.stderr
        listed = confrere("case", "list", "--profile", "phys", env=env).stdout.split()
        case_id, status = listed[0], listed[1]
        assert status == "withdrawn"
        assert f"case {case_id} was withdrawn" in refused.stderr


def test_audit_key_from_another_folder_creates_nothing(tmp_path):
    result = confrere("audit", "key", env=_clean_env(), cwd=tmp_path)
    assert result.returncode == 1
    assert f"{tmp_path}/data/keys/audit-log.key does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_no_key_is_created_beside_a_database_that_holds_data(settings, accounts, tmp_path):
    accounts.create(Role.PHYSICIAN)
    elsewhere = settings.model_copy(update={"data_dir": tmp_path / "elsewhere", "keys_dir": None})
    with pytest.raises(KeyringError, match="does not exist"):
        create_app(elsewhere)
    assert not (tmp_path / "elsewhere" / "keys").exists()


def test_a_relative_data_dir_is_resolved_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings(data_dir=Path("data"))
    monkeypatch.chdir("/")
    assert settings.data_dir == tmp_path / "data"
    assert settings.resolved_keys_dir == tmp_path / "data" / "keys"


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({"CONFRERE_ENVIRONMENT": "production"}, "error: CONFRERE_SECRET_KEY must hold at least 32"),
        (
            {"CONFRERE_ENVIRONMENT": "production", "CONFRERE_SECRET_KEY": "k" * 48},
            "error: CONFRERE_AUDIT_LOG_ORIGIN must name this deployment",
        ),
        ({"CONFRERE_ARGON2_LANES": "0"}, "error: CONFRERE_ARGON2_LANES: Input should be greater than"),
    ],
)
def test_a_wrong_setting_is_one_line_naming_the_variable(tmp_path, environment, expected):
    result = confrere("migrate", env=_clean_env(CONFRERE_DATA_DIR=str(tmp_path), **environment))
    assert result.returncode == 2
    assert result.stderr.startswith(expected)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_serve_says_clearly_when_the_port_is_taken(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = confrere(
            "serve", "--port", str(port), env=_clean_env(CONFRERE_DATA_DIR=str(tmp_path)), cwd=tmp_path
        )
    assert result.returncode == 1
    assert f"127.0.0.1:{port} is already in use" in result.stderr
    assert f"make run PORT={port + 1}" in result.stderr


def test_totp_code_accepts_a_secret_or_an_otpauth_uri():
    secret = totp.new_secret()
    uri = totp.provisioning_uri(secret, "someone@example.org", "Confrere")
    before = totp.code_at(secret, time.time())
    by_secret = confrere("totp", "code", "--secret", totp.base32(secret), env=_clean_env())
    by_uri = confrere("totp", "code", env=_clean_env(CONFRERE_TOTP_SECRET=uri))
    after = totp.code_at(secret, time.time())
    assert by_secret.stdout.strip() in {before, after}
    assert by_uri.stdout.strip() in {before, after}
    assert "accepts each code once" in by_secret.stderr
    wrong = confrere("totp", "code", "--secret", "not base32!", env=_clean_env())
    assert wrong.returncode == 2 and "not base32" in wrong.stderr
