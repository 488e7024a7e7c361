"""`confrere device audit | approve | catch-up` and `confrere user fingerprint | verify` on the in-process
server: the monitoring a user runs on their own account, as the CLI prints it."""

from __future__ import annotations

import functools

import pytest

from app import cli
from app.client import cli as client_cli
from app.client.api import ConfrereApi
from app.models.users import Role
from tests.conftest import PASSWORD
from tests.test_directory_client import _slip_in_device


@pytest.fixture
def confrere(client, monkeypatch, tmp_path):
    """Runs the CLI against the test app (its profiles in tmp_path)."""
    monkeypatch.setenv("CONFRERE_CLIENT_HOME", str(tmp_path))
    monkeypatch.setenv("CONFRERE_PASSWORD", PASSWORD)
    monkeypatch.setattr(
        client_cli, "ConfrereApi", functools.partial(ConfrereApi, transport=client._transport)
    )
    return lambda *argv: cli.main(list(argv))


def test_device_audit_warns_about_a_device_registered_behind_the_users_back(
    confrere, accounts, engine, app, capsys
):
    derm = accounts.create(Role.SPECIALIST, specialties=("dermatology",))
    assert confrere("login", "--server", "http://testserver", "--email", derm.email) == 0
    assert confrere("device", "register", "--suite", "x25519") == 0
    assert "pinned the directory log key confrere.local/directory+" in capsys.readouterr().err
    assert confrere("device", "audit") == 0
    assert "1 device(s) of yours on record, 0 unknown" in capsys.readouterr().out

    planted = _slip_in_device(engine, str(derm.id), logged=True, directory=app.state.runtime.directory_log)
    assert confrere("device", "audit") == 2
    warned = capsys.readouterr().err
    assert f"WARNING: device {planted} was registered to your account" in warned and "ACTIVE" in warned
    # Logging in again shows it too: monitoring runs on every login.
    assert confrere("login", "--server", "http://testserver", "--email", derm.email) == 2

    assert confrere("device", "approve", planted) == 0
    assert confrere("device", "audit") == 0


def test_fingerprint_verify_and_catch_up_from_the_cli(confrere, accounts, capsys):
    physician = accounts.create(Role.PHYSICIAN)
    confrere("login", "--server", "http://testserver", "--email", physician.email)
    confrere("device", "register", "--suite", "x25519")
    capsys.readouterr()
    assert confrere("user", "fingerprint") == 0
    shown = capsys.readouterr().out
    assert "(unverified)" in shown and "QR payload: confrere-safety:1:" in shown
    assert confrere("user", "verify", str(physician.id)) == 0
    capsys.readouterr()
    confrere("user", "fingerprint")
    assert "(verified)" in capsys.readouterr().out
    assert confrere("device", "catch-up") == 0
    assert "0 envelopes added over 0 case(s)" in capsys.readouterr().out
