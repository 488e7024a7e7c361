"""The `confrere` commands an operator runs beside the API (app.cli registers them): the audit log's and the
device directory log's sequencer, keys and checks, the attachment blob store's sweep, the periodic jobs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine

from app.config import Settings, get_settings
from app.platform.keyring import KeyringError


def add_commands(commands) -> None:
    """Adds `audit`, `directory`, `blobs` and `jobs` to the `confrere` subcommands."""
    from app.audit.export_command import add_export_arguments
    from app.audit.verify_command import add_verify_arguments
    from app.client.witness import add_witness_arguments

    audit = commands.add_parser("audit", help="the audit log: sequencer, verifier key, verification")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    sequencer = audit_commands.add_parser(
        "sequencer", help="sequence and sign the log until SIGTERM (when not run inside the API process)"
    )
    sequencer.add_argument("--once", action="store_true", help="sequence what is pending, then exit")
    sequencer.set_defaults(handler=_audit_sequencer)
    export = audit_commands.add_parser(
        "export", help="as a compliance officer's profile: export a bundle, download it and verify it"
    )
    add_export_arguments(export)
    export.set_defaults(handler=_audit_export)
    verify = audit_commands.add_parser("verify", help="verify an export bundle offline (no server, no DB)")
    add_verify_arguments(verify)
    verify.set_defaults(handler=_audit_verify)
    witness = audit_commands.add_parser(
        "witness", help="witness the log from another machine: check each checkpoint, cosign it"
    )
    add_witness_arguments(witness)
    witness.set_defaults(handler=_audit_witness)
    _add_key_and_check(audit_commands, "officers", _audit_key, _audit_check)

    directory = commands.add_parser("directory", help="the device directory log (key transparency)")
    directory_commands = directory.add_subparsers(dest="directory_command", required=True)
    _add_key_and_check(directory_commands, "users and monitors", _directory_key, _directory_check)

    blobs = commands.add_parser("blobs", help="the attachment blob store")
    blob_commands = blobs.add_subparsers(dest="blobs_command", required=True)
    sweep = blob_commands.add_parser(
        "sweep", help="remove blobs no attachment names (crashes, rollbacks) and interrupted uploads"
    )
    sweep.add_argument(
        "--grace-seconds",
        type=int,
        default=3600,
        help="keep anything younger: an upload in flight commits its blob before its row (default 3600)",
    )
    sweep.add_argument("--dry-run", action="store_true", help="report only")
    sweep.set_defaults(handler=_blobs_sweep)

    jobs = commands.add_parser("jobs", help="the periodic deadlines job (from cron, when not in the API)")
    jobs_commands = jobs.add_subparsers(dest="jobs_command", required=True)
    jobs_commands.add_parser(
        "run-once", help="notify overdue cases, escalate ignored named ones, auto-close, purge old events"
    ).set_defaults(handler=_jobs_run_once)


def _add_key_and_check(subcommands, audience: str, key_handler, check_handler) -> None:
    """`key` and `check` of a Merkle log (the audit log, the device directory log)."""
    subcommands.add_parser(
        "key", help=f"print the log's verifier key, to publish to {audience}"
    ).set_defaults(handler=key_handler)
    check = subcommands.add_parser(
        "check", help="recompute the log stored in the database and check it against its signed checkpoints"
    )
    check.add_argument("--key", help="the verifier key string or a file (default: this server's key)")
    check.set_defaults(handler=check_handler)


@contextmanager
def _database(settings: Settings) -> Iterator[Engine]:
    """An engine for one command, disposed of when the command ends."""
    from app.runtime.database import create_db_engine

    engine = create_db_engine(settings)
    try:
        yield engine
    finally:
        engine.dispose()


def _audit_sequencer(args: argparse.Namespace) -> int:
    import logging
    import signal

    from app.audit.sequencer import BackgroundSequencer, sequence_pending
    from app.platform.keyring import load_audit_log_signer
    from app.runtime.database import holds_data

    settings = get_settings()
    with _database(settings) as engine:
        signer = load_audit_log_signer(settings, create_missing=not holds_data(engine))
        if args.once:
            count = sequence_pending(engine, signer, settings.audit_sequencer_batch_size)
            print(f"sequenced {count} records")
            return 0
        logging.basicConfig(level=logging.INFO)
        sequencer = BackgroundSequencer(
            engine,
            signer,
            interval=settings.audit_sequencer_interval_seconds,
            batch_size=settings.audit_sequencer_batch_size,
        )
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, lambda *_: sequencer.stop())
        print(f"audit sequencer for {signer.name} running; SIGTERM or Ctrl-C stops it", flush=True)
        sequencer.run()
    print("audit sequencer stopped", flush=True)
    return 0


def _audit_verify(args: argparse.Namespace) -> int:
    from app.audit.verify_command import run_verify

    return run_verify(args)


def _audit_export(args: argparse.Namespace) -> int:
    from app.audit.export_command import run_export

    return run_export(args)


def _audit_witness(args: argparse.Namespace) -> int:
    from app.client.witness import run_witness

    return run_witness(args)


def _audit_key(_: argparse.Namespace) -> int:
    from app.platform.keyring import load_audit_log_signer

    print(load_audit_log_signer(get_settings(), create_missing=False).verifier().key_string)
    return 0


def _directory_key(_: argparse.Namespace) -> int:
    from app.platform.keyring import load_directory_log_signer

    print(load_directory_log_signer(get_settings(), create_missing=False).verifier().key_string)
    return 0


def _audit_check(args: argparse.Namespace) -> int:
    from app.audit.log import AUDIT_LOG
    from app.platform.keyring import load_audit_log_signer

    return _check_log(args, load_audit_log_signer, AUDIT_LOG)


def _directory_check(args: argparse.Namespace) -> int:
    from app.directory.log import DIRECTORY_LOG
    from app.platform.keyring import load_directory_log_signer

    return _check_log(args, load_directory_log_signer, DIRECTORY_LOG)


def _check_log(args: argparse.Namespace, load_signer, tables) -> int:
    from app.audit.log import LogVerificationError, verify_log
    from app.audit.verify_command import load_key
    from app.crypto.signed_note import NoteError, NoteVerifier

    settings = get_settings()
    try:
        if args.key:
            verifier = NoteVerifier.from_key_string(load_key(args.key))
        else:
            verifier = load_signer(settings, create_missing=False).verifier()
    except (NoteError, OSError, KeyringError) as exc:
        print(f"FAILED: key: {exc}", file=sys.stderr)
        return 1
    try:
        with _database(settings) as engine, engine.connect() as connection:
            report = verify_log(connection, verifier, tables)
    except LogVerificationError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    print(
        f"OK {report.origin}: {report.tree_size} records match the signed checkpoint "
        f"({report.checkpoints_checked} earlier checkpoints checked, {report.pending} records pending)"
    )
    return 0


def _blobs_sweep(args: argparse.Namespace) -> int:
    import time

    from app.platform.blobstore import open_blob_store, sweep
    from app.runtime.database import new_session
    from app.services.attachments import hold_publications, referenced_blobs

    settings = get_settings()
    with _database(settings) as engine:

        @contextmanager
        def excluding_uploads(hashes: list[str]):
            with new_session(engine) as session, session.begin():
                hold_publications(session, exclusive=True)
                yield referenced_blobs(session, hashes)

        store = open_blob_store(settings)
        older_than = time.time() - args.grace_seconds
        report = sweep(store, excluding_uploads, older_than=older_than, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    print(
        f"{verb} {len(report.orphans)} unreferenced blobs and {report.interrupted} interrupted uploads; "
        f"{report.young} unreferenced blobs are younger than {args.grace_seconds} s and were kept"
    )
    return 0


def _jobs_run_once(_: argparse.Namespace) -> int:
    from app.notifications.jobs import run_once
    from app.notifications.sequencer import sequence_pending

    settings = get_settings()
    with _database(settings) as engine:
        report = run_once(engine, settings)
        # Numbered now, so that streams and webhooks see them even when no API process runs.
        sequenced = sequence_pending(engine)
    if report is None:
        print("another process is running the jobs: nothing done")
        return 0
    done = report.deadlines
    print(
        f"{len(done.overdue)} overdue, {len(done.escalated)} escalated, {len(done.auto_closed)} auto-closed; "
        f"purged {report.purged_events} events and {report.forgotten_buckets} full rate limit buckets; "
        f"sequenced {sequenced} events"
    )
    return 0
