"""`confrere audit export`: a compliance officer asks the server for an export bundle, downloads it and
verifies it offline, as `confrere audit verify` would, before saying it is good.

It runs as the officer's client profile (`confrere login --totp ...`) and talks HTTP only; the bundle's
checkpoint is saved beside it, to pass as `--previous` next time: the next bundle then proves that the log
grew from it without rewriting history.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.audit.records import Outcome
from app.audit.verifier import BundleError, verify_bundle
from app.audit.verify_command import add_previous_argument, load_checkpoint_file, load_key
from app.client.api import ApiError
from app.client.cli import profile_session
from app.crypto.signed_note import Checkpoint, NoteError

CHECKPOINT_SUFFIX = ".checkpoint"


def add_export_arguments(export: argparse.ArgumentParser) -> None:
    export.add_argument(
        "--out", type=Path, default=Path("confrere-audit.zip"), help="where to save the bundle"
    )
    export.add_argument(
        "--key",
        help="the log's verifier key (string or file, from `confrere audit key`); without it the bundle is "
        "checked against the key the server announces, which proves less",
    )
    add_previous_argument(
        export, "checkpoint files of earlier exports: the bundle must prove the log grew from each"
    )
    span = export.add_argument_group("which records (a log range by default: all of it)")
    span.add_argument("--start", type=int, help="first log position")
    span.add_argument("--end", type=int, help="position after the last")
    span.add_argument("--since", help="records at or after this ISO 8601 time (makes a filtered export)")
    span.add_argument("--until", help="records strictly before this ISO 8601 time")
    span.add_argument("--actor", help="the acting user's id")
    span.add_argument("--case", help="the case's id")
    span.add_argument("--action", help="an action such as case.read or auth.login")
    span.add_argument("--outcome", choices=[outcome.value for outcome in Outcome])
    export.add_argument(
        "--format",
        dest="formats",
        action="append",
        choices=["fhir", "csv"],
        default=[],
        help="add a view: FHIR R4 AuditEvent NDJSON or CSV (repeatable)",
    )


def _request_body(args: argparse.Namespace, previous: list[bytes]) -> dict:
    filters = {
        name: getattr(args, name)
        for name in ("since", "until", "actor", "case", "action", "outcome")
        if getattr(args, name) is not None
    }
    body = {
        "start": args.start,
        "end": args.end,
        "filters": filters or None,
        "formats": args.formats,
        "consistency_from": sorted({_size(note) for note in previous}),
    }
    return {key: value for key, value in body.items() if value is not None}


def _size(note: bytes) -> int:
    return Checkpoint.parse(note.decode().split("\n\n", 1)[0] + "\n").size


def run_export(args: argparse.Namespace) -> int:
    try:
        previous = [load_checkpoint_file(path) for path in args.previous]
        key = load_key(args.key) if args.key else None
        with profile_session(args.profile) as (_, api):
            export = api.create_audit_export(**_request_body(args, previous))
            args.out.parent.mkdir(parents=True, exist_ok=True)
            with args.out.open("wb") as target:
                api.download(export["download"], target)
            if key is None:
                key = api.request("GET", "/v1/audit/checkpoint").headers["X-Confrere-Log-Key"]
                print(f"warning: checked against the key the server announces ({key}); pin it with --key")
        report = verify_bundle(args.out, key, previous)
    except ApiError as error:
        print(f"error: {error.code} ({error.status}): {error.detail or ''}", file=sys.stderr)
        return 1
    except (BundleError, NoteError, OSError, ValueError) as error:
        print(f"FAILED: {error}", file=sys.stderr)
        return 1
    checkpoint_path = args.out.with_name(args.out.name + CHECKPOINT_SUFFIX)
    checkpoint_path.write_text(export["checkpoint"] or "")
    print(f"saved {args.out}: {export['size_bytes']} bytes, {export['record_count']} records")
    print(report.summary())
    print(f"its checkpoint: {checkpoint_path} (pass it as --previous to the next export or verify)")
    return 0
