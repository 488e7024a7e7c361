"""`confrere audit witness`: an audit log witness, run by someone other than the server's operator (a
hospital's data protection officer, on their own machine).

Each round it fetches the log's latest checkpoint (public), checks the log's signature with the pinned log
key, proves it consistent with the last checkpoint it cosigned (the public consistency proof, RFC 9162),
records it in its state file, and only then posts back a C2SP tlog-cosignature (cosignature/v1). A log
that shrank, or whose history no longer extends the one this witness cosigned (a fork: one history shown to
the witness, another to someone else), gets no cosignature: the round fails with the evidence, and the
state keeps the last good checkpoint.

The state file (JSON, mode 0600) holds the witness's Ed25519 signer key, the pinned log key and the last
cosigned checkpoint; nothing in it comes from the server unchecked.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from app.crypto.cosignature import WitnessSigner
from app.crypto.merkle import ProofError, verify_consistency
from app.crypto.signed_note import Checkpoint, NoteError, NoteVerifier, open_checkpoint

CHECKPOINT_PATH = "/v1/audit/checkpoint"
CONSISTENCY_PATH = "/v1/audit/proof/consistency"
COSIGNATURE_PATH = "/v1/audit/witness/cosignatures"


class WitnessError(Exception):
    """The round could not complete (network, server answer, state file): nothing was cosigned."""


class ForkDetected(WitnessError):
    """The log presented a history inconsistent with the one this witness cosigned."""


@dataclass
class WitnessState:
    signer_key: str
    log_key: str
    checkpoint: str | None = None  # the text of the last cosigned checkpoint

    @classmethod
    def load(cls, path: Path) -> WitnessState:
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as error:
            raise WitnessError(f"cannot read the state file {path}: {error}") from error

    def save(self, path: Path) -> None:
        """Atomically: a crash leaves the old state or the new one, never a mix."""
        partial = path.with_name(path.name + ".part")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(asdict(self), handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(path)


def init_state(path: Path, name: str, log_key: str) -> WitnessSigner:
    """A new witness key and an empty history for the log of `log_key`; refuses to overwrite a state."""
    if path.exists():
        raise WitnessError(f"{path} exists: a witness keeps its key and history")
    NoteVerifier.from_key_string(log_key)
    signer = WitnessSigner.generate(name)
    WitnessState(signer.key_string, log_key).save(path)
    return signer


@dataclass(frozen=True)
class Round:
    size: int
    cosigned: bool  # False when the log had not grown since the last cosignature


def _get(http: httpx.Client, path: str, **params: int) -> httpx.Response:
    try:
        response = http.get(path, params=params)
    except httpx.HTTPError as error:
        raise WitnessError(f"GET {path}: {error}") from error
    if response.status_code != 200:
        raise WitnessError(f"GET {path}: HTTP {response.status_code} {response.text[:200]}")
    return response


def _check_extends(http: httpx.Client, previous: Checkpoint, latest: Checkpoint) -> None:
    if latest.size < previous.size:
        raise ForkDetected(f"the log shrank from {previous.size} to {latest.size} records")
    if latest.size == previous.size:
        if latest.root_hash != previous.root_hash:
            raise ForkDetected(f"two different roots for the tree of size {latest.size}")
        return
    answer = _get(http, CONSISTENCY_PATH, first=previous.size, second=latest.size).json()
    try:
        if answer["first"] != previous.size or answer["second"] != latest.size:
            raise ProofError("the proof is for other sizes")
        proof = [bytes.fromhex(node) for node in answer["hashes"]]
        verify_consistency(previous.size, latest.size, previous.root_hash, latest.root_hash, proof)
    except (ProofError, KeyError, TypeError, ValueError) as error:
        raise ForkDetected(
            f"the checkpoint of size {latest.size} does not extend the cosigned one of size "
            f"{previous.size}: {error}"
        ) from error


def witness_once(http: httpx.Client, state_path: Path, clock: Callable[[], float] = time.time) -> Round:
    """One round against the server `http` points at (its base URL)."""
    state = WitnessState.load(state_path)
    log_key = NoteVerifier.from_key_string(state.log_key)
    signer = WitnessSigner.from_key_string(state.signer_key)
    note = _get(http, CHECKPOINT_PATH).content
    try:
        latest = open_checkpoint(note, log_key)
    except NoteError as error:
        raise WitnessError(f"the checkpoint does not verify with the pinned log key: {error}") from error
    if state.checkpoint is not None:
        previous = Checkpoint.parse(state.checkpoint)
        _check_extends(http, previous, latest)
        if latest.size == previous.size:
            return Round(latest.size, cosigned=False)
    text = latest.to_text()
    # Recorded before the cosignature leaves: a witness never cosigns two histories, even across a crash.
    state.checkpoint = text
    state.save(state_path)
    body = note + signer.cosign(text, int(clock())).encode() + b"\n"
    try:
        response = http.post(COSIGNATURE_PATH, content=body, headers={"Content-Type": "text/plain"})
    except httpx.HTTPError as error:
        raise WitnessError(f"POST {COSIGNATURE_PATH}: {error}") from error
    if response.status_code != 201:
        raise WitnessError(f"POST {COSIGNATURE_PATH}: HTTP {response.status_code} {response.text[:200]}")
    return Round(latest.size, cosigned=True)


def add_witness_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state", type=Path, required=True, help="the witness's state file (JSON, 0600)")
    parser.add_argument("--init", metavar="NAME", help="create the state: a new witness key named NAME")
    parser.add_argument("--log-key", help="with --init: the log's verifier key (`confrere audit key`)")
    parser.add_argument("--server", help="the server's base URL, e.g. https://confrere.example")
    parser.add_argument("--every", type=float, metavar="SECONDS", help="repeat the round; default: once")


def run_witness(args: argparse.Namespace) -> int:
    """0 when the round(s) succeeded, 1 on an error, 2 when the log forked (nothing cosigned)."""
    if args.init:
        if not args.log_key:
            print("--init needs --log-key", file=sys.stderr)
            return 1
        try:
            signer = init_state(args.state, args.init, args.log_key)
        except (WitnessError, NoteError) as error:
            print(f"FAILED: {error}", file=sys.stderr)
            return 1
        print(f"witness key, for the server's CONFRERE_AUDIT_WITNESS_KEYS: {signer.verifier().key_string}")
        return 0
    if not args.server:
        print("--server is required", file=sys.stderr)
        return 1
    with httpx.Client(base_url=args.server, timeout=30) as http:
        while True:
            try:
                done = witness_once(http, args.state)
            except ForkDetected as fork:
                print(f"FORK: {fork}", file=sys.stderr)
                return 2
            except (WitnessError, NoteError) as error:
                print(f"FAILED: {error}", file=sys.stderr)
                if args.every is None:
                    return 1
            else:
                print(f"{'cosigned' if done.cosigned else 'unchanged'}: tree size {done.size}", flush=True)
            if args.every is None:
                return 0
            time.sleep(args.every)
