"""Request bodies sealed in advance with the reference client's crypto (app.crypto.e2ee, as app/client does),
one JSON document per line, each with its own ids so that every request creates something new.

Sealing costs a couple of milliseconds per body (20 HPKE wraps and a signature), so bodies are made by a
process pool before the server starts, never while it is measured.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from multiprocessing import Pool
from pathlib import Path

import orjson

from app.client.api import b64
from app.crypto.e2ee import (
    DeviceKeys,
    Header,
    Manifest,
    Recipient,
    SealedObject,
    encrypt_content,
    key_commitment,
    manifest_signing_input,
    seal,
    wrap_content_key,
)

CASE_TEXT = json.dumps(
    {
        "question": "Irregular rhythm on a routine ECG, 64 year-old, no symptoms; anticoagulation?",
        "history": "Hypertension treated since 2019. " * 30,
        "measurements": {"heart_rate": 92, "bp": "145/90", "egfr": 71},
    }
).encode()
MESSAGE_TEXT = b"Holter attached; episodes of AF up to 40 minutes, no pauses. " * 6
POOL_CHUNK = 64
ATTACHMENT_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class Author:
    device_id: str
    keys: DeviceKeys


def sealed_json(sealed: SealedObject, *, with_ciphertext: bool = True) -> dict:
    body = {
        "header": b64(sealed.header),
        "envelopes": [{"device_id": d, "wrapped_key": b64(w)} for d, w in sealed.envelopes.items()],
        "manifest": b64(sealed.manifest),
        "signature": b64(sealed.signature),
    }
    return body | ({"ciphertext": b64(sealed.ciphertext)} if with_ciphertext else {})


def _seal(
    author: Author, case_id: str, kind: str, object_id: str, text: bytes, recipients: dict[str, Recipient]
):
    header = Header(
        case_id=case_id,
        kind=kind,
        object_id=object_id,
        author_device_id=author.device_id,
    )
    return seal(text, header, recipients, author.keys)


def case_body(author: Author, recipients: dict[str, Recipient], specialty: str, case_id: str) -> dict:
    return {
        "id": case_id,
        "specialty": specialty,
        "priority": "routine",
        "patient_consent_at": datetime.now(UTC).isoformat(),
        "sealed": sealed_json(_seal(author, case_id, "case", case_id, CASE_TEXT, recipients)),
    }


def message_body(author: Author, recipients: dict[str, Recipient], case_id: str) -> dict:
    message_id = str(uuid.uuid4())
    sealed = _seal(author, case_id, "message", message_id, MESSAGE_TEXT, recipients)
    return {"id": message_id, "kind": "message", "sealed": sealed_json(sealed)}


def sealed_attachment(
    author: Author, recipients: dict[str, Recipient], case_id: str, data: bytes
) -> SealedObject:
    return _seal(author, case_id, "attachment", str(uuid.uuid4()), data, recipients)


@dataclass(frozen=True)
class SharedCiphertext:
    """One attachment ciphertext that many upload bodies reuse (a fresh 5 MB ciphertext per request would
    need gigabytes of bodies). Each meta is otherwise genuine: its own object id, header, envelopes wrapping
    the content key for that header, and a manifest signed over the shared ciphertext's hash. The server
    does exactly the work of a genuine upload; only a recipient opening it would notice that the AES-GCM
    associated data names the first header."""

    content_key: bytes
    ciphertext: bytes


def shared_ciphertext(author: Author, case_id: str, data: bytes) -> SharedCiphertext:
    content_key = os.urandom(32)
    header = Header(
        case_id=case_id,
        kind="attachment",
        object_id=str(uuid.uuid4()),
        author_device_id=author.device_id,
    )
    return SharedCiphertext(
        content_key, encrypt_content(content_key, os.urandom(12), header.to_bytes(), data)
    )


def attachment_meta(
    author: Author, recipients: dict[str, Recipient], case_id: str, shared: SharedCiphertext, sha256: str
) -> dict:
    attachment_id = str(uuid.uuid4())
    header = Header(
        case_id=case_id,
        kind="attachment",
        object_id=attachment_id,
        author_device_id=author.device_id,
    )
    envelopes = {
        device_id: wrap_content_key(shared.content_key, header, device_id, recipient)
        for device_id, recipient in recipients.items()
    }
    manifest = Manifest(
        header_sha256=header.sha256.hex(),
        ciphertext_sha256=sha256,
        ciphertext_size=len(shared.ciphertext),
        envelopes={
            device_id: hashlib.sha256(wrapped).hexdigest() for device_id, wrapped in envelopes.items()
        },
        key_commitment=key_commitment(shared.content_key, header.sha256).hex(),
        envelope_suites={device_id: recipient.suite for device_id, recipient in recipients.items()},
    ).to_bytes()
    sealed = SealedObject(
        header.to_bytes(), b"", envelopes, manifest, author.keys.sign(manifest_signing_input(manifest))
    )
    return {"id": attachment_id, **sealed_json(sealed, with_ciphertext=False)}


def new_case_body(author: Author, recipients: dict[str, Recipient], specialty: str, _: int) -> dict:
    return case_body(author, recipients, specialty, str(uuid.uuid4()))


def new_message_body(
    author: Author, recipients: dict[str, Recipient], case_ids: list[str], index: int
) -> dict:
    """Line i posts to case_ids[i % n], as line i of the matching paths file says (bench/scenarios.py)."""
    return message_body(author, recipients, case_ids[index % len(case_ids)])


def _line(make: Callable[[int], dict], index: int) -> bytes:
    return orjson.dumps(make(index))


def write_lines(path: Path, count: int, make: Callable[[int], dict]) -> Path:
    """Lines 0..count-1 from `make(i)` (a picklable callable), made by one process per core."""
    with Pool(os.cpu_count()) as pool, path.open("wb") as out:
        for line in pool.imap(partial(_line, make), range(count), chunksize=POOL_CHUNK):
            out.write(line + b"\n")
    return path
