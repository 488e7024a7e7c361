"""The device directory log: its append rate, specialty recipients with proofs for 20 and 500 devices (req/s
and the ratio to the token-only ceiling, wrk as in `bench.run`), and the client's verification cost per device
and per checkpoint. A short run of its own:

    python -m bench.directory_bench [--database-url URL] [--seconds 4] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import insert

from app.audit.sequencer import sequence_pending
from app.client.directory import as_proved
from app.config import Environment, Settings
from app.crypto import merkle
from app.crypto.directory import (
    Registration,
    check_consistent,
    check_proved_device,
    open_directory_checkpoint,
)
from app.crypto.e2ee import Suite, generate_device_keys, sign_device_registration
from app.crypto.passwords import PasswordHasher
from app.crypto.signed_note import NoteSigner, NoteVerifier
from app.directory.log import DIRECTORY_LOG, DirectoryLog
from app.models.base import utcnow
from app.models.devices import Device
from app.models.users import Role, User, UserRole, UserSpecialty, UserStatus
from app.platform.keyring import load_server_keys
from app.runtime.database import create_db_engine, transaction
from bench import seed
from bench.fixtures import CLIENT_HEADERS
from bench.harness import Load, Timing, cpu_seconds, measure, running_server

DEVICES_PER_SPECIALIST = 10
SIZES = (20, 500)
# wrk's connections per size, for the scenario and its token-only ceiling alike. A 500-device answer takes
# tens of ms to build, and the 32 connections of bench.run share one process's threads: each answer then
# waited about 32 times that, longer than a short run on a loaded machine, so no request completed.
CONNECTIONS = {20: 32, 500: 8}


def _user(session, role: Role, specialty: str | None, password_hash: str) -> uuid.UUID:
    now = utcnow()
    user = User(
        email=f"{uuid.uuid4().hex[:12]}@bench.example",
        password_hash=password_hash,
        display_name="bench",
        status=UserStatus.ACTIVE,
        verified_at=now,
    )
    session.add(user)
    session.flush()
    session.execute(insert(UserRole).values(user_id=user.id, role=role.value))
    if specialty:
        session.execute(insert(UserSpecialty).values(user_id=user.id, specialty_code=specialty))
    return user.id


def append_devices(
    settings: Settings, signer: NoteSigner, specialty: str, count: int, password_hash: str
) -> float:
    """Registers `count` devices for specialists of `specialty`, each device in a transaction of its own
    with its directory entry, as the registration route does; the entries appended per second."""
    engine = create_db_engine(settings)
    directory = DirectoryLog(signer)
    keys = [generate_device_keys(Suite.X25519) for _ in range(count)]
    owners = []
    with transaction(engine) as session:
        for _ in range((count + DEVICES_PER_SPECIALIST - 1) // DEVICES_PER_SPECIALIST):
            owners.append(_user(session, Role.SPECIALIST, specialty, password_hash))
    started = time.perf_counter()
    for number, device_keys in enumerate(keys):
        owner = owners[number // DEVICES_PER_SPECIALIST]
        challenge = os.urandom(32)
        with transaction(engine) as session:
            device = Device(
                user_id=owner,
                suite="x25519",
                signing_public_key=device_keys.signing_public,
                kem_public_key=device_keys.kem_public,
                label="bench",
                created_at=utcnow(),
            )
            session.add(device)
            session.flush()
            kem_proof = os.urandom(32)
            signature = sign_device_registration(device_keys, challenge, str(owner), kem_proof)
            directory.device_registered(session, device, Registration(challenge, kem_proof, signature))
    elapsed = time.perf_counter() - started
    engine.dispose()
    return count / elapsed


def _time_each(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def client_costs(url: str, token: str, specialty: str) -> dict[str, float]:
    """Verification on the client, in ms: one checkpoint signature, one consistency proof, one device; and
    the size of the answer."""
    headers = {**CLIENT_HEADERS, "Authorization": f"Bearer {token}"}
    response = httpx.get(f"{url}/v1/specialties/{specialty}/recipients", headers=headers)
    answer = response.json()
    key = httpx.get(f"{url}/v1/directory/checkpoint").headers["X-Confrere-Log-Key"]
    verifier = NoteVerifier.from_key_string(key)
    checkpoint = open_directory_checkpoint(answer["checkpoint"].encode(), verifier)
    first = checkpoint.size // 2
    proof = httpx.get(
        f"{url}/v1/directory/proof/consistency", params={"first": first, "second": checkpoint.size}
    ).json()
    older = open_directory_checkpoint(proof_checkpoint(url, first), verifier)
    hashes = [bytes.fromhex(node) for node in proof["hashes"]]
    devices = [as_proved(device) for device in answer["devices"]]
    per_device = _time_each(lambda: [check_proved_device(d, checkpoint) for d in devices], 5) / len(devices)
    return {
        "devices": len(devices),
        "answer_bytes": len(response.content),
        "checkpoint_signature_ms": 1000
        * _time_each(lambda: open_directory_checkpoint(answer["checkpoint"].encode(), verifier), 200),
        "consistency_proof_ms": 1000 * _time_each(lambda: check_consistent(older, checkpoint, hashes), 200),
        "per_device_ms": 1000 * per_device,
    }


def proof_checkpoint(url: str, size: int) -> bytes:
    """The signed checkpoint of an earlier size (every size the log reached was signed)."""
    return (
        httpx.get(f"{url}/v1/directory/proof/inclusion", params={"index": 0, "tree_size": size})
        .json()["checkpoint"]
        .encode()
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="directory-bench-"))
    settings = Settings(
        environment=Environment.DEVELOPMENT, data_dir=work / "data", database_url=args.database_url
    )
    seed.fresh_database(settings)
    # Every server key now, as `confrere migrate` makes them: a server refuses to create keys for a database
    # that already holds data.
    signer = load_server_keys(settings, create_missing=True).directory_log
    engine = seed.seed_engine(settings)
    codes = seed.specialty_codes(engine)[:2]
    password_hash = PasswordHasher().hash(seed.PASSWORD)
    with transaction(create_db_engine(settings)) as session:
        reader_id = _user(session, Role.PHYSICIAN, None, password_hash)
        reader_email = session.get(User, reader_id).email
    # The empty log's checkpoint, as the server signs it when it starts.
    sequence_pending(engine, signer, tables=DIRECTORY_LOG)
    pairs = list(zip(SIZES, codes, strict=True))
    rates = {size: append_devices(settings, signer, code, size, password_hash) for size, code in pairs}
    results: dict = {"append_rate_per_s": rates, "http": [], "client": {}}
    print(f"directory log appends (one transaction each): {rates}", flush=True)
    env = {
        **os.environ,
        "CONFRERE_ENVIRONMENT": settings.environment.value,
        "CONFRERE_DATA_DIR": str(settings.data_dir),
        "CONFRERE_DATABASE_URL": settings.resolved_database_url,
        "CONFRERE_ACCESS_TOKEN_TTL_SECONDS": "3600",
        "CONFRERE_JOBS_IN_PROCESS": "false",
    }
    timing = Timing(runs=args.runs, seconds=args.seconds, warmup=1)
    with running_server(env, work / "server.log") as server:
        token = httpx.post(
            f"{server.url}/v1/auth/token",
            json={"email": reader_email, "password": seed.PASSWORD},
            headers=CLIENT_HEADERS,
        ).json()["access_token"]
        for size, code in pairs:
            connections = CONNECTIONS[size]
            ceiling = Load(paths=["/bench/token"], token=token, connections=connections)
            load = Load(paths=[f"/v1/specialties/{code}/recipients"], token=token, connections=connections)
            result, ceiling_result = measure(
                f"recipients, {size} devices, {connections} connections",
                server.url,
                load,
                ceiling,
                timing,
                work,
                cpu_seconds=lambda _url: cpu_seconds(server),
            )
            print(
                f"  {result.name}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.1f} ms, p99 "
                f"{result.p99_ms:.1f} ms, {result.ratio:.0%} of token-only "
                f"({ceiling_result.rps:,.0f} req/s); server CPU {result.cpu_ms:.1f} ms/request, "
                f"{result.cpu_ratio:.0%} of token-only's; errors {result.errors}",
                flush=True,
            )
            results["http"].append(result.as_dict())
            results["client"][size] = client_costs(server.url, token, code)
            print(f"  client verification, {size} devices: {results['client'][size]}", flush=True)
    out = work / "results.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"results in {out}; merkle append in pure Python for reference: {_merkle_rate():,.0f} leaves/s")


def _merkle_rate() -> float:
    compact = merkle.CompactRange()
    leaf = merkle.leaf_hash(b"x" * 400)
    started = time.perf_counter()
    for _ in range(100_000):
        compact.append(leaf)
    return 100_000 / (time.perf_counter() - started)


if __name__ == "__main__":
    main()
