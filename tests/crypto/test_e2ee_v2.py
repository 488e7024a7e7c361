"""Format version 2 (docs/e2ee.md): one object for devices of both suites, the suite of each envelope signed
and bound into HPKE `info`, and the recipient's check of where an object was served."""

import hashlib
import json
import uuid
from dataclasses import replace

import pytest

from app.crypto.canonical import dumps
from app.crypto.e2ee import (
    FORMAT_V1,
    WRAPPED_KEY_LENGTH,
    E2EEError,
    Header,
    Manifest,
    ObjectContext,
    Recipient,
    ShareStatement,
    Suite,
    check_sealed_upload,
    check_share,
    envelope_info,
    generate_device_keys,
    load_kem_public_key,
    manifest_signing_input,
    open_sealed,
    rewrap,
    seal,
    share_entry,
    sign_share,
    verify_manifest,
)


def new_id() -> str:
    return str(uuid.uuid4())


def raises(code: str):
    return pytest.raises(E2EEError, check=lambda e: e.code == code)


CASE_ID = new_id()
AUTHOR_ID, CLASSIC_ID, HYBRID_ID = new_id(), new_id(), new_id()
AUTHOR = generate_device_keys(Suite.XWING)
CLASSIC = generate_device_keys(Suite.X25519)  # e.g. an Android phone without X-Wing
HYBRID = generate_device_keys(Suite.XWING)
PLAINTEXT = b'{"question":"rash after amoxicillin?","v":1}'
HEADER = Header(case_id=CASE_ID, kind="case", object_id=CASE_ID, author_device_id=AUTHOR_ID)
SERVED = ObjectContext(CASE_ID, "case", CASE_ID)
SEALED = seal(
    PLAINTEXT,
    HEADER,
    {
        CLASSIC_ID: Recipient(Suite.X25519, CLASSIC.kem_public),
        HYBRID_ID: Recipient(Suite.XWING, HYBRID.kem_public),
    },
    AUTHOR,
)


def open_as(device_id, keys, **overrides) -> bytes:
    args = {
        "header": SEALED.header,
        "ciphertext": SEALED.ciphertext,
        "wrapped_key": SEALED.envelopes.get(device_id, b""),
        "manifest": SEALED.manifest,
        "signature": SEALED.signature,
        "device_id": device_id,
        "keys": keys,
        "author_signing_public": AUTHOR.signing_public,
        "served": SERVED,
    } | overrides
    return open_sealed(**args)


def upload(envelopes=None, manifest=None, signature=None):
    return check_sealed_upload(
        SEALED.header,
        hashlib.sha256(SEALED.ciphertext).digest(),
        len(SEALED.ciphertext),
        SEALED.envelopes if envelopes is None else envelopes,
        manifest or SEALED.manifest,
        signature or SEALED.signature,
        AUTHOR.signing_public,
    )


def relabelled(device_id: str, suite: Suite) -> bytes:
    obj = json.loads(SEALED.manifest)
    obj["envelopes"][device_id]["suite"] = str(suite)
    return dumps(obj)


def test_one_object_is_read_by_an_x25519_and_an_xwing_device() -> None:
    assert open_as(CLASSIC_ID, CLASSIC) == PLAINTEXT
    assert open_as(HYBRID_ID, HYBRID) == PLAINTEXT
    _, manifest = upload()
    assert manifest.envelope_suites == {CLASSIC_ID: Suite.X25519, HYBRID_ID: Suite.XWING}
    assert len(SEALED.envelopes[CLASSIC_ID]) == WRAPPED_KEY_LENGTH[Suite.X25519]
    assert len(SEALED.envelopes[HYBRID_ID]) == WRAPPED_KEY_LENGTH[Suite.XWING]
    assert json.loads(SEALED.header) == {
        "aead": "aes-256-gcm",
        "author_device_id": AUTHOR_ID,
        "case_id": CASE_ID,
        "kind": "case",
        "object_id": CASE_ID,
        "v": 2,
    }


def test_a_tampered_suite_label_is_refused() -> None:
    # Changed in transit: the author's signature no longer covers the manifest.
    changed = relabelled(HYBRID_ID, Suite.X25519)
    with raises("invalid_signature"):
        open_as(HYBRID_ID, HYBRID, manifest=changed)
    with raises("invalid_signature"):
        upload(manifest=changed)
    # Signed so by the author: the device refuses a label other than its suite, the server the length.
    signature = AUTHOR.sign(manifest_signing_input(changed))
    with raises("suite_mismatch"):
        open_as(HYBRID_ID, HYBRID, manifest=changed, signature=signature)
    with raises("envelope_length"):
        upload(manifest=changed, signature=signature)
    # An unknown suite label is refused by name.
    with raises("unknown_suite"):
        Manifest.parse(relabelled(HYBRID_ID, "p256"))


def test_hpke_info_binds_the_envelopes_suite() -> None:
    header_sha256 = hashlib.sha256(SEALED.header).digest()
    wrong_info = envelope_info(Suite.X25519, CASE_ID, header_sha256, HYBRID_ID)
    public = load_kem_public_key(Suite.XWING, HYBRID.kem_public)
    forged = Suite.XWING.hpke.encrypt(bytes(32), public, info=wrong_info)
    with raises("decryption_failed"):
        open_as(HYBRID_ID, HYBRID, wrapped_key=forged, reshared=True)


@pytest.mark.parametrize(
    "served",
    [
        ObjectContext(new_id(), "case", CASE_ID),  # moved to another case
        ObjectContext(CASE_ID, "report", new_id()),  # presented as a report of this case
        ObjectContext(CASE_ID, "case", new_id()),
    ],
)
def test_an_object_served_anywhere_else_than_its_header_names_does_not_open(served) -> None:
    with raises("context_mismatch"):
        open_as(CLASSIC_ID, CLASSIC, served=served)


def test_a_version_2_reshare_wraps_for_a_device_of_the_other_suite() -> None:
    header, manifest = verify_manifest(
        SEALED.header, SEALED.manifest, SEALED.signature, AUTHOR.signing_public
    )
    newcomer_id, newcomer = new_id(), generate_device_keys(Suite.X25519)
    wrapped = rewrap(
        header,
        manifest,
        SEALED.envelopes[HYBRID_ID],
        HYBRID_ID,
        HYBRID,
        newcomer_id,
        Recipient(Suite.X25519, newcomer.kem_public),
    )
    statement, signature = sign_share(
        ShareStatement(
            case_id=CASE_ID, sharer_device_id=HYBRID_ID, entries=(share_entry(header, newcomer_id, wrapped),)
        ),
        HYBRID,
    )
    envelopes = {(CASE_ID, newcomer_id): wrapped}
    check_share(
        statement, signature, HYBRID.signing_public, envelopes, {CASE_ID: header}, {newcomer_id: Suite.X25519}
    )
    assert open_as(newcomer_id, newcomer, wrapped_key=wrapped, reshared=True) == PLAINTEXT
    # The server knows the device as an X-Wing one: an 80-byte envelope cannot be for it.
    with raises("envelope_length"):
        check_share(
            statement,
            signature,
            HYBRID.signing_public,
            envelopes,
            {CASE_ID: header},
            {newcomer_id: Suite.XWING},
        )


def test_a_version_1_object_stays_within_its_suite() -> None:
    header = replace(HEADER, v=FORMAT_V1, suite=Suite.XWING, aead=None)
    old = seal(PLAINTEXT, header, {HYBRID_ID: Recipient(Suite.XWING, HYBRID.kem_public)}, AUTHOR)
    parsed, manifest = verify_manifest(old.header, old.manifest, old.signature, AUTHOR.signing_public)
    assert parsed.v == FORMAT_V1 and manifest.envelope_suites == {}
    with raises("suite_mismatch"):
        rewrap(
            parsed,
            manifest,
            old.envelopes[HYBRID_ID],
            HYBRID_ID,
            HYBRID,
            CLASSIC_ID,
            Recipient(Suite.X25519, CLASSIC.kem_public),
        )
    # The server's check of a re-share of it to an x25519 device.
    with raises("suite_mismatch"):
        _share_v1_to_x25519(parsed)


def _share_v1_to_x25519(header: Header) -> None:
    wrapped = bytes(WRAPPED_KEY_LENGTH[Suite.X25519])
    statement, signature = sign_share(
        ShareStatement(
            case_id=CASE_ID, sharer_device_id=HYBRID_ID, entries=(share_entry(header, CLASSIC_ID, wrapped),)
        ),
        HYBRID,
    )
    check_share(
        statement,
        signature,
        HYBRID.signing_public,
        {(CASE_ID, CLASSIC_ID): wrapped},
        {CASE_ID: header},
        {CLASSIC_ID: Suite.X25519},
    )


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"suite": "xwing"}, "invalid_header"),  # the suite is per envelope in version 2
        ({"aead": "chacha20-poly1305"}, "unknown_suite"),
        ({"aead": None}, "invalid_header"),
        ({"v": 3}, "invalid_header"),
    ],
)
def test_version_2_header_refusals(change: dict, code: str) -> None:
    obj = json.loads(SEALED.header) | change
    obj = {key: value for key, value in obj.items() if value is not None}
    with raises(code):
        Header.parse(dumps(obj))


def test_header_and_manifest_must_be_of_one_version() -> None:
    obj = json.loads(SEALED.manifest)
    obj["v"] = 1
    obj["envelopes"] = {device: entry["sha256"] for device, entry in obj["envelopes"].items()}
    manifest = dumps(obj)
    with raises("invalid_manifest"):
        verify_manifest(
            SEALED.header, manifest, AUTHOR.sign(manifest_signing_input(manifest)), AUTHOR.signing_public
        )
    entry = json.loads(SEALED.manifest)
    entry["envelopes"][CLASSIC_ID]["extra"] = "x"
    with raises("invalid_manifest"):
        Manifest.parse(dumps(entry))
