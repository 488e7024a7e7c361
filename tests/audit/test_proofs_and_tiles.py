"""The public checkpoint, proofs and tlog tiles over HTTP, checked with the pure verification code."""

from __future__ import annotations

import base64

import pytest

from app.crypto import tiles
from app.crypto.merkle import leaf_hash, verify_consistency, verify_inclusion
from app.crypto.signed_note import NoteVerifier, open_checkpoint
from app.models.users import Role
from tests.audit.conftest import recompute, sequenced, write_records
from tests.conftest import assert_problem, auth_headers


def signed(client, signer):
    note = client.get("/v1/audit/checkpoint").content
    return open_checkpoint(note, signer.verifier())


def test_the_checkpoint_is_public_and_names_its_key(client, signer, flush):
    assert_problem(client.get("/v1/audit/checkpoint"), 503, "audit_log_not_ready")
    write_records(client.app.state.runtime.engine, 3)
    flush()
    response = client.get("/v1/audit/checkpoint")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    key = response.headers["x-confrere-log-key"]
    assert key == signer.verifier().key_string
    checkpoint = open_checkpoint(response.content, NoteVerifier.from_key_string(key))
    assert (checkpoint.origin, checkpoint.size) == ("confrere.local/audit", 3)


def test_inclusion_proofs_verify_against_signed_checkpoints(client, engine, signer, flush, officer_headers):
    write_records(engine, 6)
    flush()
    first = signed(client, signer)
    write_records(engine, 7)
    flush()
    latest = signed(client, signer)
    assert latest.size > first.size  # the officer's login is on the record too
    for index in (0, 5, latest.size - 1):
        proof = client.get("/v1/audit/proof/inclusion", params={"index": index}, headers=officer_headers)
        assert proof.status_code == 200, proof.text
        body = proof.json()
        assert (body["index"], body["tree_size"]) == (index, latest.size)
        hashes = [bytes.fromhex(node) for node in body["hashes"]]
        leaf = leaf_hash(base64.b64decode(body["record"]))
        verify_inclusion(leaf, index, latest.size, hashes, latest.root_hash)
    params = {"index": 2, "tree_size": first.size}
    body = client.get("/v1/audit/proof/inclusion", params=params, headers=officer_headers).json()
    assert open_checkpoint(body["checkpoint"].encode(), signer.verifier()) == first
    leaf = leaf_hash(base64.b64decode(body["record"]))
    verify_inclusion(leaf, 2, first.size, [bytes.fromhex(h) for h in body["hashes"]], first.root_hash)


def test_consistency_proofs_verify_between_checkpoints(client, engine, signer, flush, officer_headers):
    write_records(engine, 5)
    flush()
    first = signed(client, signer)
    write_records(engine, 11)
    flush()
    latest = signed(client, signer)
    proof = client.get("/v1/audit/proof/consistency", params={"first": first.size}, headers=officer_headers)
    body = proof.json()
    assert (body["first"], body["second"]) == (first.size, latest.size)
    hashes = [bytes.fromhex(node) for node in body["hashes"]]
    verify_consistency(first.size, latest.size, first.root_hash, latest.root_hash, hashes)


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"index": 99}, 422, "invalid_proof_request"),
        ({"index": 0, "tree_size": 10_000}, 404, "beyond_tree"),
        ({"index": -1}, 422, "invalid_input"),
        ({}, 422, "invalid_input"),
        ({"index": "x"}, 422, "invalid_input"),
    ],
)
def test_bad_inclusion_parameters(client, engine, flush, officer_headers, params, status, code):
    write_records(engine, 3)
    flush()
    assert_problem(
        client.get("/v1/audit/proof/inclusion", params=params, headers=officer_headers), status, code
    )


def test_bad_consistency_parameters(client, engine, flush, officer_headers):
    write_records(engine, 3)
    flush()
    url = "/v1/audit/proof/consistency"
    assert_problem(
        client.get(url, params={"first": 3, "second": 2}, headers=officer_headers),
        422,
        "invalid_proof_request",
    )
    assert_problem(
        client.get(url, params={"first": 1, "second": 500}, headers=officer_headers), 404, "beyond_tree"
    )


def test_tiles_match_a_recomputed_tree(client, engine, signer, flush, officer_headers):
    write_records(engine, 300)
    flush()
    size = signed(client, signer).size  # 300 and the officer's login
    log = sequenced(engine)
    _, store = recompute([record for _, record in log])
    width = size - 256

    def get(path: str):
        return client.get(f"/v1/audit/log/tile/{path}", headers=officer_headers)

    full = get("0/000")
    assert full.status_code == 200
    assert full.headers["content-type"] == "application/octet-stream"
    assert "immutable" in full.headers["cache-control"]
    assert "no-store" not in full.headers["cache-control"]
    assert full.content == tiles.read_tile(store, 0, 0)
    assert get(f"0/001.p/{width}").content == tiles.read_tile(store, 0, 1, width)
    assert get("1/000.p/1").content == tiles.read_tile(store, 1, 0, 1)
    entries = tiles.decode_entry_bundle(get("entries/000").content)
    assert entries == [record for _, record in log[:256]]
    partial = tiles.decode_entry_bundle(get(f"entries/001.p/{width}").content)
    assert partial == [record for _, record in log[256:size]]
    for beyond in ("0/001", f"0/001.p/{width + 1}", "1/000", "0/002.p/1", "entries/001", "2/000.p/1"):
        assert_problem(get(beyond), 404, "tile_not_found")
    for malformed in ("0/1", "0/x000/000", "0/000.p/256", "entries/000.p/0", "nothing"):
        assert_problem(get(malformed), 404, "tile_not_found")
    tlog = client.get("/v1/audit/log/checkpoint", headers=officer_headers)
    assert tlog.status_code == 200
    assert open_checkpoint(tlog.content, signer.verifier()).size >= size


OFFICER_ROUTES = [
    ("get", "/v1/audit/proof/inclusion?index=0"),
    ("get", "/v1/audit/log/checkpoint"),
    ("get", "/v1/audit/log/tile/0/000.p/1"),
    ("get", "/v1/audit/events"),
    ("post", "/v1/audit/exports"),
    ("get", "/v1/audit/exports/00000000-0000-4000-8000-000000000000"),
]


def test_only_compliance_officers_with_totp_may_use_the_log(client, accounts, engine, flush):
    refused = [
        (accounts.create(Role.PHYSICIAN), "role_required"),
        (accounts.create(Role.SPECIALIST, specialties=("dermatology",)), "role_required"),
        (accounts.create(Role.ADMIN), "role_required"),
        (accounts.create(Role.COMPLIANCE_OFFICER, with_totp=False), "mfa_required"),
    ]
    write_records(engine, 2)
    flush()
    for account, code in refused:
        headers = auth_headers(client, account)
        for method, url in OFFICER_ROUTES:
            response = client.request(method, url, headers=headers, json={} if method == "post" else None)
            assert_problem(response, 403, code)
    for method, url in OFFICER_ROUTES:
        assert_problem(client.request(method, url), 401, "unauthenticated")
