"""The peer circle known-answer vectors (docs/e2ee.md section 20.9): they recompute, the doc shows them, the
stored wraps open to the epoch key for both suites, and every object passes the server's and a reader's
checks."""

import hashlib
import json

from app.crypto.circles import (
    EpochStatement,
    PostContext,
    PseudonymBinding,
    check_epoch_upload,
    check_post_upload,
    check_pseudonym_binding,
    open_epoch,
    open_post,
)
from app.crypto.e2ee_keys import hpke_open
from tests.crypto import kat, kat_circles
from tests.crypto.kat_v2 import DEVICES, device_id, device_keys

VECTORS = json.loads(kat_circles.JSON_PATH.read_text())
VALUES = VECTORS["values"]


def test_deterministic_values_recompute() -> None:
    assert kat_circles.build(kat_circles.stored_randomized(VECTORS)) == VECTORS


def test_doc_shows_the_stored_vectors() -> None:
    doc = kat.DOC_PATH.read_text()
    shown = kat.doc_section(doc, kat_circles.DOC_BEGIN, kat_circles.DOC_END)
    assert shown == kat_circles.render(VECTORS)


def test_each_wrap_decrypts_to_the_epoch_key_with_the_shown_info() -> None:
    for name in DEVICES:
        wrap, info = bytes.fromhex(VALUES[f"wrap_{name}"]), bytes.fromhex(VALUES[f"wrap_info_{name}"])
        assert hpke_open(device_keys(name), wrap, info, "kat") == kat_circles.epoch_key()


def test_the_epoch_statement_passes_the_server_and_every_device_opens_it() -> None:
    statement_bytes = VALUES["epoch_statement"].encode()
    signature = bytes.fromhex(VALUES["epoch_signature"])
    wraps = {device_id(name): bytes.fromhex(VALUES[f"wrap_{name}"]) for name in DEVICES}
    author_public = bytes.fromhex(VALUES["author_signing_public"])
    suites = {device_id(name): DEVICES[name][0] for name in DEVICES}
    statement = check_epoch_upload(statement_bytes, signature, wraps, author_public, suites)
    assert statement.key_commitment == VALUES["epoch_key_commitment"]
    assert EpochStatement.parse(statement_bytes) == statement
    for name in DEVICES:
        opened = open_epoch(
            statement_bytes,
            signature,
            wraps[device_id(name)],
            device_keys(name),
            device_id(name),
            author_public,
            circle_id=kat_circles.circle_id(),
            epoch=kat_circles.epoch(),
        )
        assert opened == kat_circles.epoch_key()


def _open(prefix: str, author_public: bytes, parent_id: str) -> bytes:
    header = VALUES[f"{prefix}_header"].encode()
    manifest = VALUES[f"{prefix}_manifest"].encode()
    signature = bytes.fromhex(VALUES[f"{prefix}_signature"])
    ciphertext = bytes.fromhex(VALUES[f"{prefix}_ciphertext"])
    check_post_upload(
        header, manifest, signature, hashlib.sha256(ciphertext).digest(), len(ciphertext), author_public
    )
    object_id = kat_circles.CIRCLE_INPUTS[f"{prefix}_id"]
    served = PostContext(kat_circles.circle_id(), object_id, prefix, parent_id, kat_circles.epoch())
    return open_post(
        kat_circles.epoch_key(), header, manifest, signature, ciphertext, author_public, served=served
    )


def test_the_post_and_the_pseudonymous_reply_open() -> None:
    post_id = kat_circles.CIRCLE_INPUTS["post_id"]
    author_public = bytes.fromhex(VALUES["author_signing_public"])
    post = _open("post", author_public, post_id)
    assert post.decode() == kat_circles.CIRCLE_INPUTS["post_plaintext"]
    pseudonym_public = bytes.fromhex(VALUES["pseudonym_public_key"])
    reply = _open("reply", pseudonym_public, post_id)
    assert reply.decode() == kat_circles.CIRCLE_INPUTS["reply_plaintext"]
    assert device_id("classic") not in VALUES["reply_header"] + VALUES["reply_manifest"]


def test_the_pseudonym_binding_passes_the_server() -> None:
    binding_bytes = VALUES["pseudonym_binding"].encode()
    binding = check_pseudonym_binding(
        binding_bytes,
        bytes.fromhex(VALUES["pseudonym_binding_signature"]),
        device_keys("classic").signing_public,
        bytes.fromhex(VALUES["pseudonym_public_key"]),
    )
    assert binding == PseudonymBinding.parse(binding_bytes)
    assert binding.device_id == device_id("classic")
