import hashlib
import json
import re

import pytest

from app.crypto.e2ee import (
    DeviceKeys,
    Header,
    Manifest,
    ObjectContext,
    ShareStatement,
    Suite,
    check_sealed_upload,
    check_share,
    open_kem_challenge,
    open_sealed,
    unwrap_content_key,
    verify_device_registration,
    verify_manifest,
    verify_signature,
)
from tests.crypto import kat, kat_v2

VECTORS = json.loads(kat.JSON_PATH.read_text())
VECTORS_V2 = json.loads(kat_v2.JSON_PATH.read_text())
INPUTS = VECTORS["inputs"]
CASE = ObjectContext(INPUTS["case_id"], "case", INPUTS["case_id"])


def test_deterministic_values_recompute() -> None:
    assert kat.build(kat.stored_wraps(VECTORS)) == VECTORS
    assert kat_v2.build(kat_v2.stored_randomized(VECTORS_V2)) == VECTORS_V2


def test_doc_shows_the_stored_vectors() -> None:
    doc = kat.DOC_PATH.read_text()
    assert kat.doc_section(doc) == kat.render(VECTORS)
    assert kat.doc_section(doc, kat_v2.DOC_BEGIN, kat_v2.DOC_END) == kat_v2.render(VECTORS_V2)
    flat = re.sub(r"\s+", "", doc)
    for values in [*VECTORS["suites"].values(), VECTORS_V2["values"]]:
        for value in values.values():
            assert re.sub(r"\s+", "", value) in flat


@pytest.mark.parametrize("suite", list(Suite), ids=str)
def test_hpke_decryption_examples(suite: Suite) -> None:
    v = VECTORS["suites"][suite]
    keys = kat.device_keys(suite)
    header_bytes = v["header"].encode()
    header, manifest = verify_manifest(
        header_bytes,
        v["manifest"].encode(),
        bytes.fromhex(v["manifest_signature"]),
        keys["author"].signing_public,
    )
    content_key = bytes.fromhex(INPUTS["content_key"])
    for who, wrapped in (("reader", v["wrapped_key_reader"]), ("newcomer", v["wrapped_key_newcomer"])):
        device_id = INPUTS[f"{who}_device_id"]
        wrapped_key = bytes.fromhex(wrapped)
        assert unwrap_content_key(header, manifest, wrapped_key, device_id, keys[who]) == content_key
        assert (
            header.suite.hpke.decrypt(
                wrapped_key, keys[who].kem_private_key(), info=bytes.fromhex(v[f"envelope_info_{who}"])
            )
            == content_key
        )


@pytest.mark.parametrize("suite", list(Suite), ids=str)
def test_vectors_pass_server_and_client_checks(suite: Suite) -> None:
    v = VECTORS["suites"][suite]
    keys = kat.device_keys(suite)
    ciphertext = bytes.fromhex(v["ciphertext"])
    reader, newcomer = INPUTS["reader_device_id"], INPUTS["newcomer_device_id"]
    header, manifest = check_sealed_upload(
        v["header"].encode(),
        bytes.fromhex(v["ciphertext_sha256"]),
        len(ciphertext),
        {reader: bytes.fromhex(v["wrapped_key_reader"])},
        v["manifest"].encode(),
        bytes.fromhex(v["manifest_signature"]),
        bytes.fromhex(v["author_signing_public"]),
    )
    assert header == Header.parse(v["header"].encode())
    assert manifest == Manifest.parse(v["manifest"].encode())
    common = {
        "header": v["header"].encode(),
        "ciphertext": ciphertext,
        "manifest": v["manifest"].encode(),
        "signature": bytes.fromhex(v["manifest_signature"]),
        "author_signing_public": bytes.fromhex(v["author_signing_public"]),
    }
    plaintext = INPUTS["plaintext"].encode()
    wrapped_reader = bytes.fromhex(v["wrapped_key_reader"])
    assert (
        open_sealed(**common, wrapped_key=wrapped_reader, device_id=reader, keys=keys["reader"], served=CASE)
        == plaintext
    )
    wrapped_newcomer = bytes.fromhex(v["wrapped_key_newcomer"])
    opened = open_sealed(
        **common,
        wrapped_key=wrapped_newcomer,
        device_id=newcomer,
        keys=keys["newcomer"],
        served=CASE,
        reshared=True,
    )
    assert opened == plaintext
    statement = check_share(
        v["share_statement"].encode(),
        bytes.fromhex(v["share_signature"]),
        bytes.fromhex(v["reader_signing_public"]),
        {(header.object_id, newcomer): wrapped_newcomer},
        {header.object_id: header},
        {newcomer: suite},
    )
    assert statement == ShareStatement.parse(v["share_statement"].encode())
    # Version 1 registration (signing key only) is no longer accepted; its vector still verifies.
    verify_signature(
        bytes.fromhex(v["reader_signing_public"]),
        bytes.fromhex(v["registration_signature"]),
        bytes.fromhex(v["registration_message"]),
    )


def test_version_2_vectors_open_for_both_suites_and_pass_the_server_checks() -> None:
    v = VECTORS_V2["values"]
    ciphertext = bytes.fromhex(v["ciphertext"])
    envelopes = {kat_v2.device_id(name): bytes.fromhex(v[f"wrapped_key_{name}"]) for name in kat_v2.DEVICES}
    header, manifest = check_sealed_upload(
        v["header"].encode(),
        hashlib.sha256(ciphertext).digest(),
        len(ciphertext),
        envelopes,
        v["manifest"].encode(),
        bytes.fromhex(v["manifest_signature"]),
        bytes.fromhex(v["author_signing_public"]),
    )
    assert manifest.envelope_suites == {kat_v2.device_id(n): kat_v2.DEVICES[n][0] for n in kat_v2.DEVICES}
    content_key = bytes.fromhex(INPUTS["content_key"])
    for name in kat_v2.DEVICES:
        keys, device_id = kat_v2.device_keys(name), kat_v2.device_id(name)
        wrapped = envelopes[device_id]
        info = bytes.fromhex(v[f"envelope_info_{name}"])
        assert keys.suite.hpke.decrypt(wrapped, keys.kem_private_key(), info=info) == content_key
        assert unwrap_content_key(header, manifest, wrapped, device_id, keys) == content_key
        opened = open_sealed(
            v["header"].encode(),
            ciphertext,
            wrapped,
            v["manifest"].encode(),
            bytes.fromhex(v["manifest_signature"]),
            device_id,
            keys,
            bytes.fromhex(v["author_signing_public"]),
            served=CASE,
        )
        assert opened == INPUTS["plaintext"].encode()


def test_version_2_registration_vectors() -> None:
    v = VECTORS_V2["values"]
    challenge, user_id = bytes.fromhex(INPUTS["challenge"]), INPUTS["user_id"]
    for name in kat_v2.DEVICES:
        keys = kat_v2.device_keys(name)
        secret = open_kem_challenge(keys, bytes.fromhex(v[f"kem_challenge_{name}"]), challenge, user_id)
        assert secret.hex() == VECTORS_V2["inputs"]["kem_secret"]
        verify_device_registration(
            bytes.fromhex(v[f"registration_signature_{name}"]),
            challenge,
            user_id,
            keys.suite,
            keys.signing_public,
            keys.kem_public,
            secret,
        )


def test_xwing_key_derivation_matches_draft_vector() -> None:
    # draft-connolly-cfrg-xwing-kem-08, Appendix C, first vector: 32-byte seed -> 1216-byte public key
    # (compared by SHA-256 of the published key, which also starts e2236b35 and ends 40ef6534).
    seed = bytes.fromhex("7f9c2ba4e88f827d616045507605853ed73b8093f6efbc88eb1a6eacfa66ef26")
    public = DeviceKeys(Suite.XWING, bytes(32), seed).kem_public
    assert public[:4].hex() == "e2236b35" and public[-4:].hex() == "40ef6534"
    expected = "2e816deebcd76c5c80d0cd2d174478871658e8e2ff42bc9d4a6e486372e856bb"
    assert hashlib.sha256(public).hexdigest() == expected
