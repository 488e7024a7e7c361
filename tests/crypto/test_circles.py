"""Peer circles (docs/e2ee.md section 20): epoch keys wrapped per member device, posts sealed once with the
epoch key, pseudonym bindings; round trips in both suites and every refusal."""

import hashlib
import json
import uuid
from dataclasses import replace

import pytest

from app.crypto.canonical import dumps
from app.crypto.circles import (
    EPOCH_KEY_LENGTH,
    CircleError,
    EpochStatement,
    PostContext,
    PostHeader,
    PostManifest,
    PseudonymBinding,
    PseudonymKey,
    check_epoch_upload,
    check_grant_commitment,
    check_post_upload,
    check_pseudonym_binding,
    epoch_signing_input,
    new_epoch,
    open_epoch,
    open_post,
    post_signing_input,
    pseudonym_binding,
    seal_post,
    sign_pseudonym_binding,
    wrap_epoch_key,
)
from app.crypto.e2ee import WRAPPED_KEY_LENGTH, DeviceKeys, Recipient, Suite, generate_device_keys


def new_id() -> str:
    return str(uuid.uuid4())


def raises(code: str):
    return pytest.raises(CircleError, check=lambda e: e.code == code)


CIRCLE_ID, OTHER_CIRCLE_ID = new_id(), new_id()
AUTHOR_ID, CLASSIC_ID, HYBRID_ID, OUTSIDER_ID = new_id(), new_id(), new_id(), new_id()
AUTHOR = generate_device_keys(Suite.XWING)
CLASSIC = generate_device_keys(Suite.X25519)
HYBRID = generate_device_keys(Suite.XWING)
OUTSIDER = generate_device_keys(Suite.X25519)
DEVICES = {AUTHOR_ID: AUTHOR, CLASSIC_ID: CLASSIC, HYBRID_ID: HYBRID}
SUITES = {device_id: keys.suite for device_id, keys in DEVICES.items()}
PLAINTEXT = '{"body":"Une famille en colère au service, comment gérer ?"}'.encode()


def recipients(devices: dict[str, DeviceKeys]) -> dict[str, Recipient]:
    return {device_id: Recipient(keys.suite, keys.kem_public) for device_id, keys in devices.items()}


def rotate(epoch: int = 1, devices: dict[str, DeviceKeys] = DEVICES, **kwargs):
    return new_epoch(CIRCLE_ID, epoch, AUTHOR, AUTHOR_ID, recipients(devices), **kwargs)


def open_for(sealed, device_id: str, **overrides):
    arguments = {
        "statement_bytes": sealed.statement,
        "signature": sealed.signature,
        "wrap": sealed.wraps.get(device_id),
        "keys": DEVICES.get(device_id, OUTSIDER),
        "device_id": device_id,
        "author_signing_public": AUTHOR.signing_public,
        "circle_id": CIRCLE_ID,
        "epoch": 1,
    } | overrides
    return open_epoch(**arguments)


def resign(statement: dict) -> tuple[bytes, bytes]:
    raw = dumps(statement)
    return raw, AUTHOR.sign(epoch_signing_input(raw))


@pytest.mark.parametrize("device_id", [CLASSIC_ID, HYBRID_ID, AUTHOR_ID])
def test_every_member_device_opens_the_epoch_key_in_its_own_suite(device_id):
    sealed = rotate()
    assert open_for(sealed, device_id) == sealed.epoch_key
    assert len(sealed.wraps[device_id]) == WRAPPED_KEY_LENGTH[DEVICES[device_id].suite]
    statement = check_epoch_upload(
        sealed.statement, sealed.signature, sealed.wraps, AUTHOR.signing_public, SUITES
    )
    assert (statement.kind, statement.epoch, set(statement.wraps)) == ("rotate", 1, set(DEVICES))
    assert EpochStatement.parse(sealed.statement).to_bytes() == sealed.statement


def test_each_rotation_draws_a_new_key():
    assert rotate().epoch_key != rotate().epoch_key


def test_the_server_refuses_a_tampered_statement_or_signature():
    sealed = rotate()
    statement = json.loads(sealed.statement)
    statement["epoch"] = 2
    with raises("invalid_signature"):
        check_epoch_upload(dumps(statement), sealed.signature, sealed.wraps, AUTHOR.signing_public, SUITES)
    forged = bytes([sealed.signature[0] ^ 1]) + sealed.signature[1:]
    with raises("invalid_signature"):
        check_epoch_upload(sealed.statement, forged, sealed.wraps, AUTHOR.signing_public, SUITES)
    with raises("invalid_signature"):
        check_epoch_upload(sealed.statement, sealed.signature, sealed.wraps, CLASSIC.signing_public, SUITES)


def test_the_server_refuses_wraps_that_differ_from_the_statement():
    sealed = rotate()
    missing = {d: w for d, w in sealed.wraps.items() if d != CLASSIC_ID}
    with raises("wrap_set_mismatch"):
        check_epoch_upload(sealed.statement, sealed.signature, missing, AUTHOR.signing_public, SUITES)
    swapped = sealed.wraps | {CLASSIC_ID: rotate().wraps[CLASSIC_ID]}
    with raises("wrap_hash_mismatch"):
        check_epoch_upload(sealed.statement, sealed.signature, swapped, AUTHOR.signing_public, SUITES)
    short = sealed.wraps | {CLASSIC_ID: sealed.wraps[CLASSIC_ID][:-1]}
    with raises("wrap_length"):
        check_epoch_upload(sealed.statement, sealed.signature, short, AUTHOR.signing_public, SUITES)


def test_the_server_refuses_a_wrap_for_a_device_outside_the_circle():
    sealed = rotate(devices=DEVICES | {OUTSIDER_ID: OUTSIDER})
    with raises("wrap_set_mismatch"):
        check_epoch_upload(sealed.statement, sealed.signature, sealed.wraps, AUTHOR.signing_public, SUITES)


def test_the_server_refuses_a_wrap_labelled_with_another_suite_than_its_device():
    sealed = rotate()
    registered = SUITES | {CLASSIC_ID: Suite.XWING}
    with raises("suite_mismatch"):
        check_epoch_upload(
            sealed.statement, sealed.signature, sealed.wraps, AUTHOR.signing_public, registered
        )


def test_a_reader_refuses_another_circle_or_epoch_than_where_the_statement_was_served():
    sealed = rotate()
    with raises("context_mismatch"):
        open_for(sealed, CLASSIC_ID, circle_id=OTHER_CIRCLE_ID)
    with raises("context_mismatch"):
        open_for(sealed, CLASSIC_ID, epoch=2)


def test_a_reader_refuses_a_tampered_wrap_or_one_not_listed_for_it():
    sealed = rotate()
    tampered = sealed.wraps[CLASSIC_ID][:-1] + bytes([sealed.wraps[CLASSIC_ID][-1] ^ 1])
    with raises("wrap_hash_mismatch"):
        open_for(sealed, CLASSIC_ID, wrap=tampered)
    with raises("wrap_set_mismatch"):
        open_for(sealed, OUTSIDER_ID, wrap=sealed.wraps[CLASSIC_ID])
    with raises("invalid_signature"):
        open_for(sealed, CLASSIC_ID, author_signing_public=HYBRID.signing_public)


def test_a_wrap_moved_to_another_device_circle_or_epoch_does_not_open():
    """HPKE `info` binds the wrap: an author who signs a statement listing another device's wrap (or one
    of another epoch) for this device still cannot make it open."""
    sealed = rotate()
    statement = json.loads(sealed.statement)
    other_wrap = wrap_epoch_key(
        sealed.epoch_key, CIRCLE_ID, 2, CLASSIC_ID, Recipient(CLASSIC.suite, CLASSIC.kem_public)
    )
    statement["wraps"][CLASSIC_ID]["sha256"] = hashlib.sha256(other_wrap).hexdigest()
    raw, signature = resign(statement)
    with raises("decryption_failed"):
        open_for(sealed, CLASSIC_ID, statement_bytes=raw, signature=signature, wrap=other_wrap)


def test_a_reader_refuses_a_key_other_than_the_committed_one():
    sealed = rotate()
    statement = json.loads(sealed.statement)
    statement["key_commitment"] = "00" * 32
    raw, signature = resign(statement)
    with raises("epoch_key_commitment_mismatch"):
        open_for(sealed, CLASSIC_ID, statement_bytes=raw, signature=signature)


def test_a_grant_rewraps_the_epoch_key_for_a_new_device_with_the_same_commitment():
    rotation = rotate(devices={AUTHOR_ID: AUTHOR})
    grant = rotate(devices={CLASSIC_ID: CLASSIC}, kind="grant", epoch_key=rotation.epoch_key)
    rotation_statement, grant_statement = (EpochStatement.parse(s.statement) for s in (rotation, grant))
    check_grant_commitment(grant_statement, rotation_statement)
    assert (
        open_for(grant, CLASSIC_ID, rotation_commitment=rotation_statement.key_commitment)
        == rotation.epoch_key
    )


def test_a_grant_with_another_commitment_is_refused():
    rotation = rotate(devices={AUTHOR_ID: AUTHOR})
    other = rotate(devices={CLASSIC_ID: CLASSIC}, kind="grant", epoch_key=bytes(EPOCH_KEY_LENGTH))
    rotation_statement, other_statement = (EpochStatement.parse(s.statement) for s in (rotation, other))
    with raises("epoch_key_commitment_mismatch"):
        check_grant_commitment(other_statement, rotation_statement)
    with raises("epoch_key_commitment_mismatch"):
        open_for(other, CLASSIC_ID, rotation_commitment=rotation_statement.key_commitment)
    later = new_epoch(
        CIRCLE_ID, 2, AUTHOR, AUTHOR_ID, recipients({CLASSIC_ID: CLASSIC}), "grant", other.epoch_key
    )
    with raises("context_mismatch"):
        check_grant_commitment(EpochStatement.parse(later.statement), rotation_statement)
    with raises("invalid_epoch_statement"):
        check_grant_commitment(rotation_statement, rotation_statement)


def test_a_grant_needs_the_existing_key():
    with raises("invalid_epoch_statement"):
        rotate(kind="grant")


@pytest.mark.parametrize(
    "change",
    [
        {"v": 2},
        {"kind": "remove"},
        {"epoch": 0},
        {"epoch": True},
        {"circle_id": "not-a-uuid"},
        {"key_commitment": "AB" * 32},
        {"wraps": {}},
        {"wraps": []},
        {"extra": 1},
    ],
)
def test_malformed_statements_are_refused(change):
    statement = json.loads(rotate().statement) | change
    raw, signature = resign(statement)
    with raises("invalid_epoch_statement"):
        check_epoch_upload(raw, signature, {}, AUTHOR.signing_public, SUITES)


def test_a_wrap_of_an_unknown_suite_is_refused():
    statement = json.loads(rotate().statement)
    statement["wraps"][CLASSIC_ID]["suite"] = "rsa"
    with raises("unknown_suite"):
        EpochStatement.parse(dumps(statement))


@pytest.mark.parametrize(
    "mangle",
    [
        lambda raw: raw.replace(b'":', b'": ', 1),
        lambda raw: raw.replace(b'"v":1', b'"v":1.0'),
        lambda raw: b'{"v":1,' + raw[1:],
        lambda raw: raw + b"\n",
    ],
)
def test_non_canonical_json_is_refused(mangle):
    sealed = rotate()
    raw = mangle(sealed.statement)
    with raises("not_canonical"):
        EpochStatement.parse(raw)
    post = seal_post(sealed.epoch_key, post_header(), PLAINTEXT, AUTHOR)
    with raises("not_canonical"):
        PostHeader.parse(mangle(post.header))


# --- posts ---------------------------------------------------------------------------------------------


POST_ID, REPLY_ID = new_id(), new_id()


def post_header(**overrides) -> PostHeader:
    fields = {
        "author": AUTHOR_ID,
        "author_kind": "device",
        "circle_id": CIRCLE_ID,
        "epoch": 1,
        "kind": "post",
        "object_id": POST_ID,
        "parent_id": POST_ID,
    }
    return PostHeader(**(fields | overrides))


def served(header: PostHeader, **overrides) -> PostContext:
    fields = {
        "circle_id": header.circle_id,
        "object_id": header.object_id,
        "kind": header.kind,
        "parent_id": header.parent_id,
        "epoch": header.epoch,
    }
    return PostContext(**(fields | overrides))


def open_sealed_post(epoch_key, sealed, header, **overrides):
    arguments = {
        "epoch_key": epoch_key,
        "header_bytes": sealed.header,
        "manifest_bytes": sealed.manifest,
        "signature": sealed.signature,
        "ciphertext": sealed.ciphertext,
        "author_signing_public": AUTHOR.signing_public,
        "served": served(header),
    } | overrides
    return open_post(**arguments)


@pytest.mark.parametrize("device_id", [CLASSIC_ID, HYBRID_ID])
def test_a_post_sealed_once_opens_for_every_member_device(device_id):
    epoch = rotate()
    header = post_header()
    sealed = seal_post(epoch.epoch_key, header, PLAINTEXT, AUTHOR)
    epoch_key = open_for(epoch, device_id)
    assert open_sealed_post(epoch_key, sealed, header) == PLAINTEXT
    parsed_header, manifest = check_post_upload(
        sealed.header,
        sealed.manifest,
        sealed.signature,
        hashlib.sha256(sealed.ciphertext).digest(),
        len(sealed.ciphertext),
        AUTHOR.signing_public,
    )
    assert parsed_header == header and manifest.ciphertext_size == len(sealed.ciphertext)
    assert PostManifest.parse(sealed.manifest).to_bytes() == sealed.manifest


def test_a_reply_names_its_parent():
    epoch_key = rotate().epoch_key
    header = post_header(kind="reply", object_id=REPLY_ID, parent_id=POST_ID)
    sealed = seal_post(epoch_key, header, PLAINTEXT, AUTHOR)
    assert open_sealed_post(epoch_key, sealed, header) == PLAINTEXT
    with raises("context_mismatch"):
        open_sealed_post(epoch_key, sealed, header, served=served(header, parent_id=new_id()))


@pytest.mark.parametrize(
    "context",
    [
        {"circle_id": OTHER_CIRCLE_ID},
        {"object_id": REPLY_ID},
        {"kind": "reply"},
        {"parent_id": REPLY_ID},
        {"epoch": 2},
    ],
)
def test_a_reader_refuses_a_post_served_elsewhere(context):
    epoch_key = rotate().epoch_key
    header = post_header()
    sealed = seal_post(epoch_key, header, PLAINTEXT, AUTHOR)
    with raises("context_mismatch"):
        open_sealed_post(epoch_key, sealed, header, served=served(header, **context))


def test_tampered_posts_are_refused():
    epoch_key = rotate().epoch_key
    header = post_header()
    sealed = seal_post(epoch_key, header, PLAINTEXT, AUTHOR)
    flipped = sealed.ciphertext[:-1] + bytes([sealed.ciphertext[-1] ^ 1])
    with raises("ciphertext_hash_mismatch"):
        open_sealed_post(epoch_key, sealed, header, ciphertext=flipped)
    other_header = post_header(object_id=REPLY_ID, parent_id=REPLY_ID).to_bytes()
    with raises("header_mismatch"):
        open_sealed_post(epoch_key, sealed, header, header_bytes=other_header)
    with raises("invalid_signature"):
        open_sealed_post(epoch_key, sealed, header, signature=bytes(64))
    with raises("invalid_signature"):
        open_sealed_post(epoch_key, sealed, header, author_signing_public=CLASSIC.signing_public)


def test_a_post_signed_over_a_forged_ciphertext_does_not_decrypt():
    """The author signs whatever it uploads; only the epoch key makes the AES-GCM tag."""
    epoch_key = rotate().epoch_key
    header = post_header()
    sealed = seal_post(epoch_key, header, PLAINTEXT, AUTHOR)
    forged = sealed.ciphertext[:-1] + bytes([sealed.ciphertext[-1] ^ 1])
    manifest = PostManifest.parse(sealed.manifest)
    manifest = replace(manifest, ciphertext_sha256=hashlib.sha256(forged).hexdigest())
    raw = manifest.to_bytes()
    resigned = replace(
        sealed, manifest=raw, signature=AUTHOR.sign(post_signing_input(raw)), ciphertext=forged
    )
    with raises("decryption_failed"):
        open_sealed_post(epoch_key, resigned, header)


def test_a_post_does_not_open_with_another_epochs_key():
    header = post_header()
    sealed = seal_post(rotate().epoch_key, header, PLAINTEXT, AUTHOR)
    with raises("decryption_failed"):
        open_sealed_post(rotate(epoch=2).epoch_key, sealed, header)


def test_each_post_has_its_own_key_and_nonce():
    epoch_key = rotate().epoch_key
    first = seal_post(epoch_key, post_header(), PLAINTEXT, AUTHOR)
    second = seal_post(epoch_key, post_header(object_id=REPLY_ID, parent_id=REPLY_ID), PLAINTEXT, AUTHOR)
    assert first.ciphertext[12:] != second.ciphertext[12:]


@pytest.mark.parametrize(
    "change",
    [
        {"kind": "reply"},  # a reply that names itself as parent
        {"parent_id": REPLY_ID},  # a post with another parent
        {"author_kind": "user"},
        {"kind": "comment"},
        {"epoch": 0},
        {"v": 2},
        {"extra": "x"},
    ],
)
def test_malformed_headers_are_refused(change):
    raw = dumps(json.loads(post_header().to_bytes()) | change)
    with raises("invalid_post_header"):
        PostHeader.parse(raw)


def test_another_aead_is_refused():
    raw = dumps(json.loads(post_header().to_bytes()) | {"aead": "chacha20-poly1305"})
    with raises("unknown_suite"):
        PostHeader.parse(raw)


@pytest.mark.parametrize(
    "change", [{"ciphertext_size": 27}, {"ciphertext_size": -1}, {"header_sha256": "x"}, {"v": 0}]
)
def test_malformed_manifests_are_refused(change):
    sealed = seal_post(rotate().epoch_key, post_header(), PLAINTEXT, AUTHOR)
    with raises("invalid_post_manifest"):
        PostManifest.parse(dumps(json.loads(sealed.manifest) | change))


def test_the_server_refuses_a_ciphertext_of_another_size():
    sealed = seal_post(rotate().epoch_key, post_header(), PLAINTEXT, AUTHOR)
    with raises("ciphertext_size_mismatch"):
        check_post_upload(
            sealed.header,
            sealed.manifest,
            sealed.signature,
            hashlib.sha256(sealed.ciphertext).digest(),
            len(sealed.ciphertext) + 1,
            AUTHOR.signing_public,
        )


# --- pseudonyms ----------------------------------------------------------------------------------------


PSEUDONYM_ID = new_id()


def test_a_pseudonymous_post_verifies_with_the_pseudonym_key_only():
    epoch_key = rotate().epoch_key
    key = PseudonymKey.generate()
    key_id = new_id()
    header = post_header(author=key_id, author_kind="pseudonym")
    sealed = seal_post(epoch_key, header, PLAINTEXT, key)
    assert open_sealed_post(epoch_key, sealed, header, author_signing_public=key.public) == PLAINTEXT
    with raises("invalid_signature"):
        open_sealed_post(epoch_key, sealed, header, author_signing_public=AUTHOR.signing_public)
    assert AUTHOR_ID.encode() not in sealed.header + sealed.manifest


def test_a_pseudonym_binding_round_trips_and_is_checked():
    key = PseudonymKey.generate()
    binding = pseudonym_binding(CIRCLE_ID, CLASSIC_ID, PSEUDONYM_ID, key.public)
    raw, signature = sign_pseudonym_binding(binding, CLASSIC)
    assert check_pseudonym_binding(raw, signature, CLASSIC.signing_public, key.public) == binding
    assert PseudonymBinding.parse(raw) == binding
    with raises("invalid_signature"):
        check_pseudonym_binding(raw, signature, HYBRID.signing_public, key.public)
    with raises("invalid_pseudonym_binding"):
        check_pseudonym_binding(raw, signature, CLASSIC.signing_public, PseudonymKey.generate().public)
    tampered = dumps(json.loads(raw) | {"device_id": HYBRID_ID})
    with raises("invalid_signature"):
        check_pseudonym_binding(tampered, signature, CLASSIC.signing_public, key.public)


@pytest.mark.parametrize("change", [{"pseudonym_id": "x"}, {"v": 2}, {"public_key_sha256": 1}, {"n": 1}])
def test_malformed_bindings_are_refused(change):
    raw = dumps(
        json.loads(pseudonym_binding(CIRCLE_ID, CLASSIC_ID, PSEUDONYM_ID, key_public()).to_bytes()) | change
    )
    with raises("invalid_pseudonym_binding"):
        PseudonymBinding.parse(raw)


def key_public() -> bytes:
    return PseudonymKey.generate().public


def test_a_small_order_pseudonym_key_is_refused():
    with raises("invalid_key"):
        pseudonym_binding(CIRCLE_ID, CLASSIC_ID, PSEUDONYM_ID, bytes(32))


def test_pseudonym_keys_keep_their_seed_out_of_repr():
    key = PseudonymKey.generate()
    assert key.private.hex() not in repr(key)
    with raises("invalid_key"):
        PseudonymKey(b"short")
