"""Client-side cost of sealing a case for 20 and 500 recipient devices, in each suite (no server)."""

from __future__ import annotations

import os
import statistics
import time
import uuid

from app.crypto.canonical import Header
from app.crypto.e2ee import Suite, generate_device_keys, open_sealed, seal

PLAINTEXT = os.urandom(4096)


def time_seal(suite: Suite, recipients: int, repeats: int) -> tuple[float, float]:
    author = generate_device_keys(suite)
    devices = {str(uuid.uuid4()): generate_device_keys(suite) for _ in range(recipients)}
    publics = {device_id: keys.kem_public for device_id, keys in devices.items()}
    seal_times, open_times = [], []
    for _ in range(repeats):
        case_id = str(uuid.uuid4())
        header = Header(
            suite=suite, case_id=case_id, kind="case", object_id=case_id, author_device_id=str(uuid.uuid4())
        )
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
        )
        open_times.append(time.perf_counter() - started)
    return statistics.median(seal_times) * 1000, statistics.median(open_times) * 1000


def costs() -> list[dict]:
    rows = []
    for suite in Suite:
        for recipients, repeats in ((20, 30), (500, 5)):
            seal_ms, open_ms = time_seal(suite, recipients, repeats)
            rows.append(
                {
                    "suite": suite.value,
                    "recipients": recipients,
                    "seal_ms": round(seal_ms, 2),
                    "open_ms": round(open_ms, 2),
                }
            )
    return rows
