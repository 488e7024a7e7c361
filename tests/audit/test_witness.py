"""Witnesses: C2SP tlog-cosignatures of the log's checkpoints, the witness command that refuses a forked
log, the server that stores and serves cosigned checkpoints, and the verifier that can require them."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.audit.verifier import BundleError, verify_bundle
from app.cli import main as confrere
from app.client.witness import ForkDetected, WitnessState, witness_once
from app.crypto.cosignature import WitnessKey, WitnessSigner, cosignatures, signed_message
from app.crypto.merkle import consistency_proof
from app.crypto.signed_note import NoteError, NoteSigner, key_id, open_checkpoint, sign_note
from tests.audit.conftest import write_records
from tests.audit.test_bundle import FORK, KEY, LOG, SIGNER
from tests.conftest import assert_problem

WITNESS = WitnessSigner(
    "dpo.hospital.example/witness", Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
)
STRANGER = WitnessSigner("stranger.example/witness", Ed25519PrivateKey.generate())


# --- the cosignature format ---


def test_a_cosignature_follows_c2sp_tlog_cosignature_v1():
    text = "example.com/log\n7\n" + base64.b64encode(bytes(32)).decode() + "\n"
    line = WITNESS.cosign(text, 1_700_000_000)
    name, encoded = line.removeprefix("\u2014 ").split(" ")
    payload = base64.b64decode(encoded)
    public = WITNESS.verifier()
    raw_public = base64.b64decode(public.key_string.split("+", 2)[2])
    assert raw_public[0] == 0x04  # the cosignature/v1 algorithm byte, not the note's 0x01
    assert payload[:4] == key_id(name, raw_public[1:], 0x04) != key_id(name, raw_public[1:])
    assert int.from_bytes(payload[4:12], "big") == 1_700_000_000
    assert signed_message(text, 1_700_000_000) == b"cosignature/v1\ntime 1700000000\n" + text.encode()
    public.public_key.verify(payload[12:], signed_message(text, 1_700_000_000))
    note = f"{text}\n\u2014 example.com/log AAAAAAAA\n{line}\n".encode()
    assert [c.timestamp for c in cosignatures(note, [public])[1]] == [1_700_000_000]
    assert cosignatures(note, [STRANGER.verifier()])[1] == []
    assert WitnessKey.from_key_string(public.key_string) == public
    assert WitnessSigner.from_key_string(WITNESS.key_string).verifier() == public
    with pytest.raises(NoteError):
        WitnessKey.from_key_string(KEY)  # a note verifier key (0x01) is not a witness key


# --- the witness command against a log that forks ---


class FakeLog:
    """A server that shows whichever history it chooses: `show(log, size)`."""

    def __init__(self) -> None:
        self.log, self.size = LOG, 0
        self.posted: list[bytes] = []

    def show(self, log, size: int) -> None:
        self.log, self.size = log, size

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/audit/checkpoint":
            return httpx.Response(200, content=self.log.checkpoint(self.size))
        if request.url.path == "/v1/audit/proof/consistency":
            first, second = int(request.url.params["first"]), int(request.url.params["second"])
            hashes = [node.hex() for node in consistency_proof(self.log.store, first, second)]
            return httpx.Response(200, json={"first": first, "second": second, "hashes": hashes})
        self.posted.append(request.content)
        return httpx.Response(201, json={})


@pytest.fixture
def fake(tmp_path: Path):
    server = FakeLog()
    state = tmp_path / "witness.json"
    WitnessState(WITNESS.key_string, KEY).save(state)
    http = httpx.Client(base_url="http://log.example", transport=httpx.MockTransport(server.handle))
    return server, http, state


def test_the_witness_cosigns_a_growing_log(fake):
    server, http, state = fake
    for size in (0, 50, 50, 100):
        server.show(LOG, size)
        witness_once(http, state)
    assert len(server.posted) == 3  # the unchanged size 50 is not cosigned twice
    checkpoint = open_checkpoint(server.posted[-1], SIGNER.verifier())
    assert checkpoint.size == 100
    assert [c.witness.name for c in cosignatures(server.posted[-1], [WITNESS.verifier()])[1]] == [
        WITNESS.name
    ]


@pytest.mark.parametrize(
    ("history", "size", "why"),
    [
        (FORK, 100, "does not extend the cosigned one of size 50"),  # a fork from record 40 on
        (FORK, 50, "two different roots for the tree of size 50"),
        (LOG, 30, "the log shrank from 50 to 30 records"),
    ],
)
def test_a_forked_log_is_caught_and_not_cosigned(fake, history, size, why):
    server, http, state = fake
    server.show(LOG, 50)
    witness_once(http, state)
    server.show(history, size)
    with pytest.raises(ForkDetected, match=why):
        witness_once(http, state)
    assert len(server.posted) == 1
    # The witness keeps the history it cosigned, and goes on with it when the log does.
    assert json.loads(state.read_text())["checkpoint"].split("\n")[1] == "50"
    server.show(LOG, 100)
    assert witness_once(http, state).cosigned


# --- the server and the verifier ---


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"audit_witness_keys": [WITNESS.verifier().key_string]})


def _witness_state(tmp_path: Path, signer) -> Path:
    state = tmp_path / "state.json"
    WitnessState(WITNESS.key_string, signer.verifier().key_string).save(state)
    return state


def test_the_server_stores_and_serves_cosignatures_and_refuses_strangers(
    client, engine, signer, flush, tmp_path
):
    assert_problem(client.get("/v1/audit/witness/checkpoint"), 404, "not_witnessed")
    write_records(engine, 12)
    flush()
    # The consistency proof is public (hashes only), like the checkpoint.
    assert client.get("/v1/audit/proof/consistency", params={"first": 3}).status_code == 200
    assert witness_once(client, _witness_state(tmp_path, signer)).size == 12
    served = client.get("/v1/audit/witness/checkpoint")
    assert served.status_code == 200
    assert open_checkpoint(served.content, signer.verifier()).size == 12
    assert [c.witness.name for c in cosignatures(served.content, [WITNESS.verifier()])[1]] == [WITNESS.name]

    note = client.get("/v1/audit/checkpoint").content
    text = note.decode().split("\n\n")[0] + "\n"
    stranger = note + STRANGER.cosign(text, 1_700_000_000).encode() + b"\n"
    headers = {"Content-Type": "text/plain"}
    posted = client.post("/v1/audit/witness/cosignatures", content=stranger, headers=headers)
    assert_problem(posted, 403, "unknown_witness")
    forged = NoteSigner.generate(signer.name)  # the log's name, another key: not this log's checkpoint
    bogus = sign_note(text, forged) + WITNESS.cosign(text, 1_700_000_000).encode() + b"\n"
    posted = client.post("/v1/audit/witness/cosignatures", content=bogus, headers=headers)
    assert_problem(posted, 422, "invalid_cosignature")


def test_the_offline_verifier_can_require_a_witness(
    client, engine, signer, flush, officer_headers, tmp_path, capsys
):
    write_records(engine, 20)
    flush()
    witnessed = witness_once(client, _witness_state(tmp_path, signer)).size
    write_records(engine, 5)  # the log moves on; the export is tied to the witnessed checkpoint
    flush()
    created = client.post("/v1/audit/exports", json={"witnessed": True}, headers=officer_headers).json()
    assert created["tree_size"] == witnessed
    assert open_checkpoint(client.get("/v1/audit/checkpoint").content, signer.verifier()).size > witnessed
    bundle = tmp_path / "witnessed.zip"
    bundle.write_bytes(client.get(created["download"], headers=officer_headers).content)
    key, witness_key = signer.verifier().key_string, WITNESS.verifier().key_string
    report = verify_bundle(bundle, key, witnesses=[witness_key])
    assert report.witnesses == (WITNESS.name,)
    assert confrere(["audit", "verify", str(bundle), "--key", key, "--witness", witness_key]) == 0
    assert f"cosigned by witnesses {WITNESS.name}" in capsys.readouterr().out

    latest = client.post("/v1/audit/exports", json={}, headers=officer_headers).json()
    unwitnessed = tmp_path / "latest.zip"
    unwitnessed.write_bytes(client.get(latest["download"], headers=officer_headers).content)
    verify_bundle(unwitnessed, key)
    with pytest.raises(BundleError, match=r"no valid cosignature by witness dpo\.hospital\.example/witness"):
        verify_bundle(unwitnessed, key, witnesses=[witness_key])
    assert confrere(["audit", "verify", str(unwitnessed), "--key", key, "--witness", witness_key]) == 1


def test_the_witness_command_creates_its_state_and_prints_its_key(tmp_path, capsys):
    state = tmp_path / "w.json"
    command = ["audit", "witness", "--state", str(state), "--init", "dpo.example/w", "--log-key", KEY]
    assert confrere(command) == 0
    printed = capsys.readouterr().out.strip().rsplit(" ", 1)[1]
    assert WitnessKey.from_key_string(printed).name == "dpo.example/w"
    assert state.stat().st_mode & 0o777 == 0o600
    assert confrere(command) == 1  # a witness never replaces its key and history
