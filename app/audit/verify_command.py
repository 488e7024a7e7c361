"""`confrere audit verify`: the offline verifier (app.audit.verifier) as a command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from app.audit.verifier import BundleError, verify_bundle
from app.crypto.signed_note import NoteError, NoteVerifier


def _key_text(value: str) -> str:
    """A key string given inline, or read from the file it names."""
    path = Path(value)
    return path.read_text().strip() if "+" not in value and path.is_file() else value


def load_key(value: str) -> str:
    """A verifier key string given inline, or read from the file it names."""
    try:
        return NoteVerifier.from_key_string(value).key_string
    except NoteError:
        path = Path(value)
        if path.is_file():
            return path.read_text().strip()
        raise


def add_verify_arguments(verify: argparse.ArgumentParser) -> None:
    """The arguments of `verify`, shared with the `confrere audit verify` command."""
    verify.add_argument("bundle", type=Path, help="the export bundle (.zip)")
    verify.add_argument("--key", required=True, help="the log's verifier key string, or a file holding it")
    verify.add_argument(
        "--witness",
        action="append",
        default=[],
        metavar="WITNESS_KEY",
        help="require the checkpoint cosigned by this witness (key string or file); repeatable",
    )
    add_previous_argument(verify, "checkpoint files kept from earlier exports")


def add_previous_argument(parser: argparse.ArgumentParser, meaning: str) -> None:
    """`--previous CHECKPOINT ...`, of `verify` and `export`."""
    parser.add_argument(
        "--previous", nargs="+", action="extend", default=[], type=Path, metavar="CHECKPOINT", help=meaning
    )


def load_checkpoint_file(path: Path) -> bytes:
    """A checkpoint saved by a person: blank lines an editor or `echo` added at the end are dropped (a note
    ends with exactly one newline); Windows line endings are named, since they change the signed text."""
    data = path.read_bytes()
    if b"\r" in data:
        raise NoteError(f"{path}: the file has Windows (CRLF) line endings; save the checkpoint with LF only")
    note = data.rstrip(b"\n") + b"\n"
    if b"\n\n" not in note:
        raise NoteError(f"{path}: not a signed checkpoint (no blank line between its text and signatures)")
    return note


def run_verify(args: argparse.Namespace) -> int:
    try:
        key = load_key(args.key)
        previous = [load_checkpoint_file(path) for path in args.previous]
        witnesses = [_key_text(value) for value in args.witness]
        report = verify_bundle(args.bundle, key, previous, witnesses)
    except (BundleError, NoteError, OSError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`verify BUNDLE --key VKEY [--previous CHECKPOINT ...]`: 0 when the bundle verifies, 1 otherwise."""
    parser = argparse.ArgumentParser(
        prog="confrere audit", description="Verify Confrere audit exports offline."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    add_verify_arguments(commands.add_parser("verify", help="verify an export bundle"))
    return run_verify(parser.parse_args(argv))
