import base64

import pytest

from app.crypto.signed_note import (
    Checkpoint,
    NoteError,
    NoteSigner,
    NoteVerifier,
    SignatureError,
    key_id,
    open_checkpoint,
    open_note,
    sign_checkpoint,
    sign_note,
)

# golang.org/x/mod/sumdb/note example and tests (note.go, example_test.go, note_test.go).
GO_VERIFIER_KEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SIGNER_KEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
)
GO_SIGNATURE = "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
GO_NOTE = f"{GO_TEXT}\n\u2014 PeterNeumann {GO_SIGNATURE}\n".encode()
GO_ENOCH_KEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"

ORIGIN = "confrere.example/audit"
SIGNER = NoteSigner.from_seed(ORIGIN, bytes(range(32)))
VERIFIER = SIGNER.verifier()
ROOT = bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")


def test_go_note_opens_with_go_verifier_key():
    verifier = NoteVerifier.from_key_string(GO_VERIFIER_KEY)
    assert verifier.name == "PeterNeumann"
    assert verifier.key_id.hex() == "c74f20a3"
    assert open_note(GO_NOTE, verifier) == GO_TEXT


def test_signing_with_go_signer_key_gives_the_go_note_byte_for_byte():
    signer = NoteSigner.from_key_string(GO_SIGNER_KEY)
    assert sign_note(GO_TEXT, signer) == GO_NOTE
    assert signer.key_string == GO_SIGNER_KEY
    assert signer.verifier().key_string == GO_VERIFIER_KEY


def test_go_key_ids_are_recomputed():
    for vkey in (GO_VERIFIER_KEY, GO_ENOCH_KEY):
        name, id_hex, encoded = vkey.split("+", 2)
        assert key_id(name, base64.b64decode(encoded)[1:]).hex() == id_hex
        assert NoteVerifier.from_key_string(vkey).key_string == vkey


def test_every_mangled_verifier_key_is_rejected():
    # As in Go's TestNewVerifier: every proper substring and every single-byte change fails.
    for i in range(len(GO_VERIFIER_KEY) + 1):
        for j in range(i + 1, len(GO_VERIFIER_KEY) + 1):
            if (i, j) != (0, len(GO_VERIFIER_KEY)):
                with pytest.raises(NoteError):
                    NoteVerifier.from_key_string(GO_VERIFIER_KEY[i:j])
    for i in range(len(GO_VERIFIER_KEY)):
        mangled = GO_VERIFIER_KEY[:i] + chr(ord(GO_VERIFIER_KEY[i]) + 1) + GO_VERIFIER_KEY[i + 1 :]
        with pytest.raises(NoteError):
            NoteVerifier.from_key_string(mangled)


def test_signer_key_round_trip_and_rejects_wrong_key_id():
    assert NoteSigner.from_key_string(SIGNER.key_string).key_string == SIGNER.key_string
    wrong = GO_SIGNER_KEY.replace("c74f20a3", "c74f20a4")
    with pytest.raises(NoteError, match="does not match"):
        NoteSigner.from_key_string(wrong)
    with pytest.raises(NoteError, match="PRIVATE"):
        NoteSigner.from_key_string(GO_VERIFIER_KEY)
    assert "AYEKFALV" not in repr(NoteSigner.from_key_string(GO_SIGNER_KEY))


def test_sign_and_open_round_trip():
    note = sign_note("hello\n", SIGNER)
    assert note.startswith(b"hello\n\n\xe2\x80\x94 confrere.example/audit ")
    assert open_note(note, VERIFIER) == "hello\n"


def test_open_rejects_a_note_without_the_verifier_signature():
    other = NoteSigner.from_seed(ORIGIN, bytes(32))  # same name, other key: a different key id
    with pytest.raises(
        SignatureError, match=f"no valid signature for key {ORIGIN}\\+{VERIFIER.key_id.hex()}"
    ):
        open_note(sign_note("hello\n", other), VERIFIER)


def test_open_rejects_a_bad_signature_from_the_known_key():
    note = bytearray(sign_note("hello\n", SIGNER))
    note[0:5] = b"jello"
    with pytest.raises(SignatureError, match="bad signature"):
        open_note(bytes(note), VERIFIER)


def test_unknown_signatures_are_ignored():
    other = NoteSigner.generate("witness.example")
    note = sign_note("hello\n", SIGNER)
    cosigned = note + sign_note("hello\n", other).split(b"\n\n", 1)[1]
    assert open_note(cosigned, VERIFIER) == "hello\n"
    assert open_note(cosigned, other.verifier()) == "hello\n"


def test_text_may_contain_blank_lines():
    assert open_note(sign_note("a\n\nb\n", SIGNER), VERIFIER) == "a\n\nb\n"


@pytest.mark.parametrize(
    ("note", "message"),
    [
        (b"hello\n", "no blank line"),
        (b"hello\n\n", "must end with a newline"),
        (b"hello\n\nnot a signature\n", "em dash"),
        (b"hello\n\n\xe2\x80\x94 name\n", "is not"),
        (b"hello\n\n\xe2\x80\x94 name !!!!\n", "invalid base64"),
        (b"hello\n\n\xe2\x80\x94 name AAAA\n", "too short"),
        (b"hel\x01lo\n\n\xe2\x80\x94 name AAAAAAAA\n", "control characters"),
        (b"\xff\n\n", "not UTF-8"),
    ],
)
def test_malformed_notes(note, message):
    with pytest.raises(NoteError, match=message):
        open_note(note, VERIFIER)


def test_sign_requires_a_final_newline():
    with pytest.raises(NoteError, match="end with a newline"):
        sign_note("hello", SIGNER)


def test_checkpoint_text_round_trip():
    checkpoint = Checkpoint(ORIGIN, 8, ROOT, ("ext one",))
    text = checkpoint.to_text()
    assert text == f"{ORIGIN}\n8\n{base64.b64encode(ROOT).decode()}\next one\n"
    assert Checkpoint.parse(text) == checkpoint


def test_signed_checkpoint_opens_and_checks_origin():
    checkpoint = Checkpoint(ORIGIN, 8, ROOT)
    assert open_checkpoint(sign_checkpoint(checkpoint, SIGNER), VERIFIER) == checkpoint
    foreign = sign_checkpoint(Checkpoint("other.example/log", 8, ROOT), SIGNER)
    with pytest.raises(NoteError, match="origin"):
        open_checkpoint(foreign, VERIFIER)


@pytest.mark.parametrize(
    "text",
    [
        "o\n8\n",
        "\n8\nXcnaeacGWamtVZy3Ad7Zoqudgjqtl0lgz+Nw7/RgQyg=\n",
        "o\n08\nXcnaeacGWamtVZy3Ad7Zoqudgjqtl0lgz+Nw7/RgQyg=\n",
        "o\n-8\nXcnaeacGWamtVZy3Ad7Zoqudgjqtl0lgz+Nw7/RgQyg=\n",
        "o\n\u0668\nXcnaeacGWamtVZy3Ad7Zoqudgjqtl0lgz+Nw7/RgQyg=\n",
        "o\n8\nXcnaeacGWamtVZy3Ad7Zoqudgjqtl0lgz+Nw7/RgQ==\n",
        "o\n8\nXcnaeacGWamtVZy3Ad7Zoqudgjqtl0lgz+Nw7/RgQyg\n",
        "o\n8\nXcnaeacGWamtVZy3Ad7Zoqudgjqtl0lgz+Nw7/RgQyg=",
        "o\n8\nXcnaeacGWamtVZy3Ad7Zoqudgjqtl0lgz+Nw7/RgQyg=\n\n",
    ],
)
def test_checkpoint_parse_is_strict(text):
    with pytest.raises(NoteError, match=r"malformed checkpoint|base64"):
        Checkpoint.parse(text)


def test_empty_tree_checkpoint():
    assert Checkpoint.parse("o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n").size == 0


def test_go_generated_key_from_a_zero_seed():
    # Go's note example generates EnochRoot's key from a reader of zeros, so the seed is 32 zero bytes.
    assert NoteSigner.from_seed("EnochRoot", bytes(32)).verifier().key_string == GO_ENOCH_KEY
