import hashlib
import json
import uuid
from dataclasses import dataclass, replace

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from app.crypto.e2ee import (
    FORMAT_V1,
    FORMAT_V2,
    KEM_PUBLIC_KEY_LENGTH,
    WRAPPED_KEY_LENGTH,
    DeviceKeys,
    E2EEError,
    Header,
    Manifest,
    ObjectContext,
    Recipient,
    SealedObject,
    ShareStatement,
    Suite,
    check_sealed_upload,
    check_share,
    device_registration_message,
    envelope_info,
    generate_device_keys,
    load_kem_public_key,
    load_signing_public_key,
    manifest_signing_input,
    open_kem_challenge,
    open_sealed,
    rewrap,
    seal,
    seal_kem_challenge,
    share_entry,
    sign_device_registration,
    sign_share,
    unwrap_content_key,
    verify_device_registration,
    verify_manifest,
    wrap_content_key,
)


def new_id() -> str:
    return str(uuid.uuid4())


def raises(code: str):
    return pytest.raises(E2EEError, match=None, check=lambda e: e.code == code)


@dataclass
class Device:
    id: str
    keys: DeviceKeys


@dataclass
class World:
    version: int
    suite: Suite
    author: Device
    reader: Device
    outsider: Device
    header: Header
    sealed: SealedObject
    plaintext: bytes

    def open(self, **overrides) -> bytes:
        args = {
            "header": self.sealed.header,
            "ciphertext": self.sealed.ciphertext,
            "wrapped_key": self.sealed.envelopes[self.reader.id],
            "manifest": self.sealed.manifest,
            "signature": self.sealed.signature,
            "device_id": self.reader.id,
            "keys": self.reader.keys,
            "author_signing_public": self.author.keys.signing_public,
            "served": ObjectContext(self.header.case_id, self.header.kind, self.header.object_id),
        } | overrides
        return open_sealed(**args)

    def upload(self, **overrides) -> tuple[Header, Manifest]:
        args = {
            "header_bytes": self.sealed.header,
            "ciphertext_sha256": hashlib.sha256(self.sealed.ciphertext).digest(),
            "ciphertext_size": len(self.sealed.ciphertext),
            "envelopes": self.sealed.envelopes,
            "manifest_bytes": self.sealed.manifest,
            "signature": self.sealed.signature,
            "author_signing_public": self.author.keys.signing_public,
        } | overrides
        return check_sealed_upload(**args)


def make_header(
    suite: Suite, author_id: str, kind: str = "case", case_id: str | None = None, version: int = FORMAT_V2
) -> Header:
    case_id = case_id or new_id()
    object_id = case_id if kind == "case" else new_id()
    context = {"case_id": case_id, "kind": kind, "object_id": object_id, "author_device_id": author_id}
    return Header(**context) if version == FORMAT_V2 else Header(v=FORMAT_V1, suite=suite, **context)


def recipient(device: Device) -> Recipient:
    return Recipient(device.keys.suite, device.keys.kem_public)


def make_world(
    suite: Suite,
    kind: str = "case",
    plaintext: bytes = b"65 y/o, chest pain; ECG attached",
    version: int = FORMAT_V2,
) -> World:
    author, reader, outsider = (Device(new_id(), generate_device_keys(suite)) for _ in range(3))
    header = make_header(suite, author.id, kind, version=version)
    recipients = {author.id: recipient(author), reader.id: recipient(reader)}
    sealed = seal(plaintext, header, recipients, author.keys)
    return World(version, suite, author, reader, outsider, header, sealed, plaintext)


# Every check holds for objects of both format versions (version 1 objects must stay readable).
@pytest.fixture(
    params=[(v, s) for v in (FORMAT_V1, FORMAT_V2) for s in Suite], ids=lambda p: f"v{p[0]}-{p[1]}"
)
def world(request) -> World:
    version, suite = request.param
    return make_world(suite, version=version)


def flip(data: bytes, index: int = -1) -> bytes:
    out = bytearray(data)
    out[index] ^= 1
    return bytes(out)


# --- round trips -------------------------------------------------------------------------------------------


def test_round_trip_every_recipient(world: World) -> None:
    assert world.open() == world.plaintext
    assert (
        world.open(
            wrapped_key=world.sealed.envelopes[world.author.id],
            device_id=world.author.id,
            keys=world.author.keys,
        )
        == world.plaintext
    )
    header, manifest = world.upload()
    assert header == world.header
    assert set(manifest.envelopes) == {world.author.id, world.reader.id}


@pytest.mark.parametrize("suite", list(Suite), ids=str)
@pytest.mark.parametrize("kind", ["attachment", "message", "info_request", "info_response", "report"])
def test_round_trip_kinds_and_sizes(suite: Suite, kind: str) -> None:
    for plaintext in (b"", bytes(range(256)) * 4096):
        w = make_world(suite, kind, plaintext)
        assert w.open() == plaintext


def test_wrapped_key_and_public_key_lengths(world: World) -> None:
    assert all(len(w) == WRAPPED_KEY_LENGTH[world.suite] for w in world.sealed.envelopes.values())
    assert len(world.reader.keys.kem_public) == KEM_PUBLIC_KEY_LENGTH[world.suite]
    assert len(world.reader.keys.signing_public) == 32


def test_private_keys_not_in_repr() -> None:
    keys = generate_device_keys(Suite.X25519)
    assert keys.kem_private.hex() not in repr(keys)
    assert keys.signing_private.hex() not in repr(keys)


# --- tampering ---------------------------------------------------------------------------------------------


def test_tampered_ciphertext(world: World) -> None:
    bad = flip(world.sealed.ciphertext)
    with raises("ciphertext_hash_mismatch"):
        world.open(ciphertext=bad)
    with raises("ciphertext_hash_mismatch"):
        world.upload(ciphertext_sha256=hashlib.sha256(bad).digest())
    with raises("ciphertext_size_mismatch"):
        world.upload(ciphertext_size=len(world.sealed.ciphertext) + 1)


def test_tampered_header(world: World) -> None:
    other = replace(world.header, author_device_id=world.outsider.id)
    with raises("header_mismatch"):
        world.open(header=other.to_bytes())
    with raises("header_mismatch"):
        world.upload(header_bytes=other.to_bytes())
    with raises("not_canonical"):
        world.open(header=world.sealed.header + b" ")


def test_envelope_swapped_to_other_device(world: World) -> None:
    # The author's envelope presented as the reader's: listed hash differs, and info binding refuses it too.
    author_envelope = world.sealed.envelopes[world.author.id]
    with raises("envelope_set_mismatch"):
        world.open(wrapped_key=author_envelope)
    with raises("decryption_failed"):
        world.open(wrapped_key=author_envelope, reshared=True)
    # The reader's own envelope read by another device id under the reader's key: info names the device.
    with raises("decryption_failed"):
        world.open(device_id=world.outsider.id, reshared=True)


def test_envelope_replayed_onto_other_case(world: World) -> None:
    other = make_world(world.suite, version=world.version)
    # A genuine envelope for the same reader device, lifted from another case: info binds case and header.
    foreign = wrap_content_key(b"k" * 32, other.header, world.reader.id, recipient(world.reader))
    with raises("decryption_failed"):
        world.open(wrapped_key=foreign, reshared=True)


def test_envelope_swapped_in_upload(world: World) -> None:
    envelopes = dict(world.sealed.envelopes)
    envelopes[world.reader.id], envelopes[world.author.id] = (
        envelopes[world.author.id],
        envelopes[world.reader.id],
    )
    with raises("envelope_hash_mismatch"):
        world.upload(envelopes=envelopes)
    with raises("envelope_set_mismatch"):
        world.upload(envelopes={world.reader.id: world.sealed.envelopes[world.reader.id]})
    with raises("envelope_set_mismatch"):
        world.upload(
            envelopes=world.sealed.envelopes | {world.outsider.id: bytes(WRAPPED_KEY_LENGTH[world.suite])}
        )


def test_wrong_envelope_lengths(world: World) -> None:
    envelope = world.sealed.envelopes[world.reader.id]
    for bad in (envelope[:-1], envelope + b"\x00", b""):
        with raises("envelope_length"):
            world.upload(envelopes=world.sealed.envelopes | {world.reader.id: bad})
        with raises("envelope_length"):
            world.open(wrapped_key=bad, reshared=True)


def test_forged_signature(world: World) -> None:
    with raises("invalid_signature"):
        world.open(signature=flip(world.sealed.signature, 0))
    with raises("invalid_signature"):
        world.upload(signature=world.sealed.signature[:-1])
    with raises("invalid_signature"):
        world.open(author_signing_public=world.outsider.keys.signing_public)
    raw_signature = world.author.keys.sign(world.sealed.manifest)  # missing domain label
    with raises("invalid_signature"):
        world.upload(signature=raw_signature)


def test_replayed_manifest_signature(world: World) -> None:
    # A validly signed manifest of another object by the same author does not cover this header.
    second = seal(
        b"other",
        make_header(world.suite, world.author.id, version=world.version),
        {world.reader.id: recipient(world.reader)},
        world.author.keys,
    )
    with raises("header_mismatch"):
        world.open(manifest=second.manifest, signature=second.signature)
    with raises("invalid_signature"):
        world.open(signature=second.signature)


def test_wrong_commitment_rejected_by_client(world: World) -> None:
    # A malicious author (or sharer) wraps a key other than the committed one: signature fine, commitment not.
    header, manifest = verify_manifest(
        world.sealed.header, world.sealed.manifest, world.sealed.signature, world.author.keys.signing_public
    )
    bogus = wrap_content_key(b"\x07" * 32, header, world.reader.id, recipient(world.reader))
    with raises("key_commitment_mismatch"):
        unwrap_content_key(header, manifest, bogus, world.reader.id, world.reader.keys)
    with raises("key_commitment_mismatch"):
        world.open(wrapped_key=bogus, reshared=True)
    # The same bogus envelope signed into a fresh manifest still fails on the commitment.
    suites = {world.reader.id: world.suite} if world.version == FORMAT_V2 else {}
    envelopes = {world.reader.id: hashlib.sha256(bogus).hexdigest()}
    forged = Manifest(**(vars(manifest) | {"envelopes": envelopes, "envelope_suites": suites}))
    forged_bytes = forged.to_bytes()
    signature = world.author.keys.sign(manifest_signing_input(forged_bytes))
    with raises("key_commitment_mismatch"):
        world.open(wrapped_key=bogus, manifest=forged_bytes, signature=signature)


def test_wrong_suite_keys(world: World) -> None:
    other_suite = next(s for s in Suite if s is not world.suite)
    with raises("suite_mismatch"):
        world.open(keys=generate_device_keys(other_suite))
    with raises("invalid_key"):
        seal(
            b"x",
            world.header,
            {world.reader.id: Recipient(world.suite, generate_device_keys(other_suite).kem_public)},
            world.author.keys,
        )
    if world.version == FORMAT_V1:  # version 1: one suite for the author and every recipient
        with raises("suite_mismatch"):
            seal(b"x", world.header, {}, generate_device_keys(other_suite))
        with raises("suite_mismatch"):
            seal(b"x", world.header, {world.reader.id: Recipient(other_suite, b"")}, world.author.keys)


# --- re-share ----------------------------------------------------------------------------------------------


def test_reshare_flow(world: World) -> None:
    newcomer = Device(new_id(), generate_device_keys(world.suite))
    header, manifest = verify_manifest(
        world.sealed.header, world.sealed.manifest, world.sealed.signature, world.author.keys.signing_public
    )
    envelope = rewrap(
        header,
        manifest,
        world.sealed.envelopes[world.reader.id],
        world.reader.id,
        world.reader.keys,
        newcomer.id,
        recipient(newcomer),
    )
    statement = ShareStatement(
        case_id=header.case_id,
        sharer_device_id=world.reader.id,
        entries=(share_entry(header, newcomer.id, envelope),),
    )
    statement_bytes, signature = sign_share(statement, world.reader.keys)
    uploaded = {(header.object_id, newcomer.id): envelope}
    checked = check_share(
        statement_bytes,
        signature,
        world.reader.keys.signing_public,
        uploaded,
        {header.object_id: header},
        {newcomer.id: world.suite},
    )
    assert checked == statement
    assert (
        world.open(wrapped_key=envelope, device_id=newcomer.id, keys=newcomer.keys, reshared=True)
        == world.plaintext
    )
    with raises("envelope_set_mismatch"):
        world.open(wrapped_key=envelope, device_id=newcomer.id, keys=newcomer.keys)

    known = ({header.object_id: header}, {newcomer.id: world.suite})
    with raises("invalid_signature"):
        check_share(statement_bytes, signature, world.author.keys.signing_public, uploaded, *known)
    with raises("invalid_signature"):
        check_share(
            statement_bytes,
            world.reader.keys.sign(statement_bytes),
            world.reader.keys.signing_public,
            uploaded,
            *known,
        )
    with raises("envelope_hash_mismatch"):
        check_share(
            statement_bytes,
            signature,
            world.reader.keys.signing_public,
            {(header.object_id, newcomer.id): flip(envelope)},
            *known,
        )
    with raises("envelope_length"):
        check_share(
            statement_bytes,
            signature,
            world.reader.keys.signing_public,
            {(header.object_id, newcomer.id): envelope[:-1]},
            *known,
        )
    with raises("envelope_set_mismatch"):
        check_share(statement_bytes, signature, world.reader.keys.signing_public, {}, *known)
    with raises("envelope_set_mismatch"):
        check_share(statement_bytes, signature, world.reader.keys.signing_public, uploaded, {}, known[1])
    with raises("envelope_set_mismatch"):
        check_share(statement_bytes, signature, world.reader.keys.signing_public, uploaded, known[0], {})
    other_header = replace(header, author_device_id=world.outsider.id)
    with raises("header_mismatch"):
        check_share(
            statement_bytes,
            signature,
            world.reader.keys.signing_public,
            uploaded,
            {header.object_id: other_header},
            known[1],
        )


def test_share_statement_canonical_order() -> None:
    header = make_header(Suite.X25519, new_id())
    entries = tuple(share_entry(header, new_id(), bytes([i])) for i in range(3))
    statement = ShareStatement(case_id=header.case_id, sharer_device_id=new_id(), entries=entries)
    assert ShareStatement.parse(statement.to_bytes()) == statement
    obj = json.loads(statement.to_bytes())
    obj["entries"].reverse()
    unsorted = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    with raises("not_canonical"):
        ShareStatement.parse(unsorted)
    with raises("invalid_share"):
        ShareStatement(case_id=header.case_id, sharer_device_id=new_id(), entries=entries + entries[:1])
    with raises("invalid_share"):
        ShareStatement(case_id=header.case_id, sharer_device_id=new_id(), entries=())


# --- formats -----------------------------------------------------------------------------------------------


def header_dict(**overrides) -> dict:
    case_id = new_id()
    base = {"v": 1, "suite": "x25519", "case_id": case_id, "kind": "case", "object_id": case_id}
    return base | {"author_device_id": new_id()} | overrides


def canonical(obj: dict) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def test_header_parse_round_trip() -> None:
    raw = canonical(header_dict())
    assert Header.parse(raw).to_bytes() == raw


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps(header_dict()).encode(),  # whitespace
        json.dumps(header_dict(), separators=(",", ":")).encode(),  # unsorted keys
        canonical(header_dict())[:-1] + b',"v":1}',  # duplicate key
        canonical(header_dict(v=1)).replace(b'"v":1', b'"v":1.0'),
        canonical(header_dict(v=1)).replace(b'"v":1', b'"v":NaN'),
        canonical(header_dict()) + b"\n",
        b"\xff" + canonical(header_dict()),
        b"[]",
        b"",
    ],
)
def test_non_canonical_json(raw: bytes) -> None:
    with raises("not_canonical"):
        Header.parse(raw)


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"suite": "p256"}, "unknown_suite"),
        ({"suite": 1}, "unknown_suite"),
        ({"v": 2}, "invalid_header"),
        ({"v": True}, "invalid_header"),
        ({"v": "1"}, "invalid_header"),
        ({"kind": "note"}, "invalid_header"),
        ({"kind": "message"}, "invalid_header"),  # object_id == case_id is reserved for the case
        ({"case_id": "ABCDEF01-2345-6789-abcd-ef0123456789"}, "invalid_header"),
        ({"author_device_id": "not-a-uuid"}, "invalid_header"),
        ({"extra": "x"}, "invalid_header"),
    ],
)
def test_invalid_header_fields(overrides: dict, code: str) -> None:
    with raises(code):
        Header.parse(canonical(header_dict(**overrides)))


def test_missing_header_field() -> None:
    obj = header_dict()
    del obj["author_device_id"]
    with raises("invalid_header"):
        Header.parse(canonical(obj))


def test_case_kind_requires_object_id_equal_case_id() -> None:
    with raises("invalid_header"):
        Header.parse(canonical(header_dict(object_id=new_id())))


def test_manifest_validation(world: World) -> None:
    obj = json.loads(world.sealed.manifest)
    assert Manifest.parse(canonical(obj)).to_bytes() == world.sealed.manifest
    for overrides in (
        {"ciphertext_size": 27},
        {"ciphertext_size": 2**53},
        {"ciphertext_size": -1},
        {"envelopes": {}},
        {"envelopes": {"X": "00" * 32}},
        {"key_commitment": "AB" * 32},
        {"header_sha256": "00" * 31},
        {"unknown": 1},
    ):
        with raises("invalid_manifest"):
            Manifest.parse(canonical(obj | overrides))
    huge = canonical(obj).replace(b'"ciphertext_size":', b'"ciphertext_size":' + b"9" * 5000)
    with raises("not_canonical"):
        Manifest.parse(huge)


def test_unknown_suite() -> None:
    with raises("unknown_suite"):
        Suite("p256")
    with raises("unknown_suite"):
        load_kem_public_key("kyber", bytes(32))
    with raises("unknown_suite"):
        envelope_info("aes", new_id(), bytes(32), new_id())


@pytest.mark.parametrize("suite", list(Suite), ids=str)
def test_bad_key_lengths(suite: Suite) -> None:
    keys = generate_device_keys(suite)
    for raw in (keys.kem_public[:-1], keys.kem_public + b"\x00", b""):
        with raises("invalid_key"):
            load_kem_public_key(suite, raw)
    for raw in (keys.signing_public[:-1], keys.signing_public + b"\x00"):
        with raises("invalid_key"):
            load_signing_public_key(raw)
    with raises("invalid_key"):
        DeviceKeys(suite, keys.signing_private[:31], keys.kem_private)
    with raises("invalid_key"):
        DeviceKeys(suite, keys.signing_private, keys.kem_private + b"\x00")


@pytest.mark.parametrize("suite", list(Suite), ids=str)
def test_low_order_x25519_public_key_rejected(suite: Suite) -> None:
    prefix = generate_device_keys(suite).kem_public[: KEM_PUBLIC_KEY_LENGTH[suite] - 32]
    with raises("invalid_key"):
        load_kem_public_key(suite, prefix + bytes(32))


def test_invalid_mlkem_public_key_rejected() -> None:
    with raises("invalid_key"):
        load_kem_public_key(Suite.XWING, b"\xff" * 1184 + generate_device_keys(Suite.X25519).kem_public)


def test_small_order_signing_keys_rejected() -> None:
    identity = b"\x01" + bytes(31)
    # Why the blocklist exists: OpenSSL accepts this forgery for any message under the identity key.
    ed25519.Ed25519PublicKey.from_public_bytes(identity).verify(identity + bytes(32), b"any message")
    with raises("invalid_key"):
        load_signing_public_key(identity)
    with raises("invalid_key"):
        load_signing_public_key(bytes(32))
    with raises("invalid_key"):
        load_signing_public_key(b"\xed" + b"\xff" * 30 + b"\x7f")  # y = p, non-canonical


# --- device registration -----------------------------------------------------------------------------------


@pytest.mark.parametrize("suite", list(Suite), ids=str)
def test_device_registration(suite: Suite) -> None:
    keys = generate_device_keys(suite)
    challenge = bytes(range(32))
    user_id = new_id()
    secret = bytes(range(100, 132))
    sealed_secret = seal_kem_challenge(secret, challenge, user_id, suite, keys.kem_public)
    kem_proof = open_kem_challenge(keys, sealed_secret, challenge, user_id)
    assert kem_proof == secret
    signature = sign_device_registration(keys, challenge, user_id, kem_proof)
    mine = (keys.signing_public, keys.kem_public, kem_proof)
    verify_device_registration(signature, challenge, user_id, suite, *mine)
    other = generate_device_keys(suite)
    for args in (
        (flip(signature), challenge, user_id, suite, *mine),
        (signature, flip(challenge), user_id, suite, *mine),
        (signature, challenge, new_id(), suite, *mine),
        (signature, challenge, user_id, suite, keys.signing_public, other.kem_public, kem_proof),
        (signature, challenge, user_id, suite, other.signing_public, keys.kem_public, kem_proof),
        (signature, challenge, user_id, suite, keys.signing_public, keys.kem_public, flip(kem_proof)),
    ):
        with raises("invalid_signature"):
            verify_device_registration(*args)
    with raises("invalid_challenge"):
        device_registration_message(b"short", user_id, suite, *mine)
    with raises("invalid_kem_proof"):
        device_registration_message(challenge, user_id, suite, *mine[:2], kem_proof[:-1])


@pytest.mark.parametrize("suite", list(Suite), ids=str)
def test_only_the_kem_key_holder_opens_the_registration_challenge(suite: Suite) -> None:
    keys, impostor = generate_device_keys(suite), generate_device_keys(suite)
    challenge, user_id = bytes(range(32)), new_id()
    # The server seals to the key being registered; a device that merely copied it cannot open it.
    sealed_secret = seal_kem_challenge(bytes(32), challenge, user_id, suite, keys.kem_public)
    stolen = DeviceKeys(suite, impostor.signing_private, impostor.kem_private)
    with raises("decryption_failed"):
        open_kem_challenge(stolen, sealed_secret, challenge, user_id)
    # Bound to the challenge and the account it was issued for.
    with raises("decryption_failed"):
        open_kem_challenge(keys, sealed_secret, flip(challenge), user_id)
    with raises("decryption_failed"):
        open_kem_challenge(keys, sealed_secret, challenge, new_id())
