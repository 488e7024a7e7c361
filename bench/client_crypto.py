"""Client-side cost of sealing a case (format version 2) for 20 and 500 recipient devices, all of one
suite or half of each, and of opening it on one device (no server)."""

from __future__ import annotations

import os
import statistics
import time
import uuid

from app.crypto.canonical import Header
from app.crypto.e2ee import ObjectContext, Recipient, Suite, generate_device_keys, open_sealed, seal

PLAINTEXT = os.urandom(4096)


# "mixed": every other recipient device is x25519, the others xwing (one object for both, version 2).
SUITE_MIXES = {"x25519": (Suite.X25519,), "xwing": (Suite.XWING,), "mixed": (Suite.XWING, Suite.X25519)}


def time_seal(mix: str, recipients: int, repeats: int) -> tuple[float, float]:
    suites = SUITE_MIXES[mix]
    author = generate_device_keys(suites[0])
    devices = {str(uuid.uuid4()): generate_device_keys(suites[i % len(suites)]) for i in range(recipients)}
    publics = {device_id: Recipient(keys.suite, keys.kem_public) for device_id, keys in devices.items()}
    seal_times, open_times = [], []
    for _ in range(repeats):
        case_id = str(uuid.uuid4())
        header = Header(case_id=case_id, kind="case", object_id=case_id, author_device_id=str(uuid.uuid4()))
        started = time.perf_counter()
        sealed = seal(PLAINTEXT, header, publics, author)
        seal_times.append(time.perf_counter() - started)
        device_id, keys = next(iter(devices.items()))
        started = time.perf_counter()
        open_sealed(
            sealed.header,
            sealed.ciphertext,
            sealed.envelopes[device_id],
            sealed.manifest,
            sealed.signature,
            device_id,
            keys,
            author.signing_public,
            served=ObjectContext(case_id, "case", case_id),
        )
        open_times.append(time.perf_counter() - started)
    return statistics.median(seal_times) * 1000, statistics.median(open_times) * 1000


def costs() -> list[dict]:
    rows = []
    for mix in SUITE_MIXES:
        for recipients, repeats in ((20, 30), (500, 5)):
            seal_ms, open_ms = time_seal(mix, recipients, repeats)
            rows.append(
                {
                    "suite": mix,
                    "recipients": recipients,
                    "seal_ms": round(seal_ms, 2),
                    "open_ms": round(open_ms, 2),
                }
            )
    return rows
