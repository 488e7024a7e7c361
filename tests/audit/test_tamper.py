"""Tampering with the stored log: the database check and the offline verifier of an export catch it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Connection, delete, select, update

from app.audit.log import RECORDS, STATE, LogVerificationError, load_state, verify_log
from app.audit.verifier import BundleError, verify_bundle
from app.cli import main as confrere
from app.config import get_settings
from app.crypto.signed_note import NoteSigner, open_checkpoint, sign_checkpoint
from tests.audit.conftest import write_records
from tests.conftest import assert_problem

IMPOSTOR_SEED = bytes(range(32))


def edit_one_byte(connection: Connection, _: NoteSigner) -> None:
    record = connection.execute(select(RECORDS.c.record).where(RECORDS.c.position == 5)).scalar_one()
    # Inside the event id's hex digits, so the record is still valid JSON: only the hash can tell.
    offset = record.index(b'"id":"') + 8
    changed = record[:offset] + (b"0" if record[offset : offset + 1] != b"0" else b"1") + record[offset + 1 :]
    connection.execute(update(RECORDS).where(RECORDS.c.position == 5).values(record=changed))


def delete_one(connection: Connection, _: NoteSigner) -> None:
    connection.execute(delete(RECORDS).where(RECORDS.c.position == 5))


def swap_two(connection: Connection, _: NoteSigner) -> None:
    for old, new in ((3, -1), (7, 3), (-1, 7)):
        connection.execute(update(RECORDS).where(RECORDS.c.position == old).values(position=new))


def truncate_tail(connection: Connection, _: NoteSigner) -> None:
    connection.execute(delete(RECORDS).where(RECORDS.c.position >= 15))


def resign_with_another_key(connection: Connection, signer: NoteSigner) -> None:
    impostor = NoteSigner.from_seed(signer.name, IMPOSTOR_SEED)  # same origin, another key
    checkpoint = open_checkpoint(load_state(connection).checkpoint, signer.verifier())
    connection.execute(update(STATE).values(checkpoint=sign_checkpoint(checkpoint, impostor)))


TAMPERING: dict[str, tuple[Callable[[Connection, NoteSigner], None], str, str | None]] = {
    # name: (tamper, what verify_log says, what the offline verifier says or None if no export is made)
    "edit": (edit_one_byte, "do not give the root", "root mismatch"),
    "delete": (delete_one, "position 5 is missing", None),
    "swap": (swap_two, "do not give the root", "root mismatch"),
    "truncate": (truncate_tail, "the log holds 15 sequenced records", None),
    "other-key": (resign_with_another_key, "latest checkpoint: no valid signature", "checkpoint signature"),
}


@pytest.fixture
def log_of_twenty(engine, signer, flush) -> None:
    write_records(engine, 12)
    flush()
    write_records(engine, 8)
    flush()
    with engine.connect() as connection:
        assert verify_log(connection, signer.verifier()).tree_size == 20


@pytest.mark.parametrize("name", list(TAMPERING))
def test_the_database_check_catches_tampering(engine, signer, log_of_twenty, name):
    tamper, message, _ = TAMPERING[name]
    with engine.begin() as connection:
        tamper(connection, signer)
    with engine.connect() as connection, pytest.raises(LogVerificationError, match=message):
        verify_log(connection, signer.verifier())


def test_the_database_check_command(engine, signer, settings, log_of_twenty, capsys, monkeypatch):
    monkeypatch.setenv("CONFRERE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("CONFRERE_DATABASE_URL", settings.resolved_database_url)
    get_settings.cache_clear()
    try:
        assert confrere(["audit", "check"]) == 0
        assert "OK confrere.local/audit: 20 records" in capsys.readouterr().out
        with engine.begin() as connection:
            swap_two(connection, signer)
        assert confrere(["audit", "check", "--key", signer.verifier().key_string]) == 1
        assert "FAILED: records 0..11 do not give the root" in capsys.readouterr().err
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize("name", [name for name, (_, _, caught) in TAMPERING.items() if caught])
def test_an_export_of_a_tampered_log_fails_offline_verification(
    client, engine, signer, log_of_twenty, officer_headers, name, tmp_path, capsys
):
    tamper, _, message = TAMPERING[name]
    with engine.begin() as connection:
        tamper(connection, signer)
    created = client.post("/v1/audit/exports", json={"end": 20}, headers=officer_headers)
    assert created.status_code == 201, created.text
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(client.get(created.json()["download"], headers=officer_headers).content)
    key = signer.verifier().key_string
    with pytest.raises(BundleError, match=message):
        verify_bundle(bundle, key)
    assert confrere(["audit", "verify", str(bundle), "--key", key]) == 1
    assert capsys.readouterr().err.startswith("FAILED: ")


@pytest.mark.parametrize("name", ["delete", "truncate"])
def test_the_server_refuses_to_export_a_log_with_missing_records(
    client, engine, signer, log_of_twenty, officer_headers, name
):
    with engine.begin() as connection:
        TAMPERING[name][0](connection, signer)
    response = client.post("/v1/audit/exports", json={"end": 20}, headers=officer_headers)
    assert_problem(response, 500, "audit_log_inconsistent")
