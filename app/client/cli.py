"""`confrere login | device | case | circle | events | totp ...`: the whole clinical flow from a terminal,
encrypting locally. `--profile NAME` (or CONFRERE_PROFILE) picks the identity anywhere on the line;
CONFRERE_PASSWORD answers `login`'s password prompt; CONFRERE_CLIENT_HOME moves the profiles (default
~/.config/confrere)."""

from __future__ import annotations

import argparse
import base64
import getpass
import mimetypes
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx

from app.client.api import ApiError, ConfrereApi
from app.client.circle_cli import add_circle_command, run_circle
from app.client.circle_keyring import CircleKeyring
from app.client.circles import CircleDevice
from app.client.clinician import Attachment, AttachmentRefused, Clinician
from app.client.directory import DirectoryTrust, Monitor
from app.client.profile import Profile, profile_path
from app.crypto import totp
from app.crypto.e2ee import E2EEError, Suite

TRANSITIONS = ("claim", "decline", "request_info", "provide_info", "answer", "close", "withdraw")
DECLINE_REASONS = ("outside_expertise", "unavailable", "insufficient_information", "other")
MESSAGE_KINDS = ("message", "info_request", "info_response", "report")
CLIENT_COMMANDS = ("login", "device", "user", "case", "circle", "events", "totp")
# The server's default CONFRERE_MAX_ATTACHMENT_BYTES: checked here before anything is sent.
MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024


def consent_time(text: str) -> datetime:
    """`now`, or an ISO 8601 date/time; without a time zone it is this machine's local time."""
    if text == "now":
        return datetime.now().astimezone()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not `now` nor a date/time such as 2026-03-01T09:30 or 2026-03-01"
        ) from None
    return moment if moment.tzinfo else moment.astimezone()


def add_profile_option(parser: argparse.ArgumentParser, *, top: bool = True) -> None:
    """`--profile` on the top-level parser and on every subcommand, so it is accepted anywhere on the line;
    below the top its default is SUPPRESS, so that a subcommand does not reset what was given before it."""
    parser.add_argument(
        "--profile",
        default=os.environ.get("CONFRERE_PROFILE") or "default" if top else argparse.SUPPRESS,
        help="client profile: server, session and device keys (env CONFRERE_PROFILE; default: default)",
    )
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subcommand in dict.fromkeys(action.choices.values()):
                add_profile_option(subcommand, top=False)


def add_commands(commands: argparse._SubParsersAction) -> None:
    login = commands.add_parser("login", help="log in and remember the session in a local profile")
    login.add_argument("--server", default="http://127.0.0.1:8000")
    login.add_argument("--email", required=True)
    login.add_argument("--totp", help="current TOTP code, when enrolled")
    login.add_argument(
        "--directory-key",
        help="the directory log's verifier key to pin (as published by the operator); without it the key "
        "the server announces is pinned on first use",
    )

    device = commands.add_parser("device", help="this machine as an end-to-end encryption device")
    device_commands = device.add_subparsers(dest="device_command", required=True)
    register = device_commands.add_parser(
        "register", help="create keys here and register their public halves"
    )
    register.add_argument("--suite", choices=[suite.value for suite in Suite], default=Suite.XWING.value)
    register.add_argument("--label", default="confrere CLI")
    device_commands.add_parser(
        "audit", help="read my entries in the directory log and warn about devices I did not approve"
    )
    approve = device_commands.add_parser("approve", help="approve a device of mine registered elsewhere")
    approve.add_argument("device_id")
    catch_up = device_commands.add_parser(
        "catch-up", help="re-wrap the keys of my open cases for my other devices (a new one)"
    )
    catch_up.add_argument("--all", action="store_true", help="closed and withdrawn cases too")

    user = commands.add_parser("user", help="colleagues' safety numbers")
    user_commands = user.add_subparsers(dest="user_command", required=True)
    show_fingerprint = user_commands.add_parser(
        "fingerprint", help="a user's safety number (mine by default): digits to read aloud, QR payload"
    )
    show_fingerprint.add_argument("user_id", nargs="?")
    verify = user_commands.add_parser(
        "verify", help="mark a colleague verified after comparing the safety number with them"
    )
    verify.add_argument("user_id")

    case = commands.add_parser("case", help="create, list, read and answer cases")
    case_commands = case.add_subparsers(dest="case_command", required=True)
    create = case_commands.add_parser("create", help="encrypt and submit a case")
    create.add_argument("--specialty", required=True)
    create.add_argument("--question", required=True)
    create.add_argument(
        "--consent",
        required=True,
        type=consent_time,
        help="when the patient consented to the tele-expertise: `now` or a date/time (2026-03-01T09:30)",
    )
    create.add_argument("--photo", action="append", default=[], type=Path, help="file to attach (repeatable)")
    create.add_argument(
        "--max-attachment-bytes",
        type=int,
        default=MAX_ATTACHMENT_BYTES,
        help="the server's CONFRERE_MAX_ATTACHMENT_BYTES (default 25 MiB); larger files are refused here",
    )
    create.add_argument("--priority", choices=["routine", "urgent"], default="routine")
    create.add_argument("--named-specialist", help="user id of a specialist to address the case to")
    listing = case_commands.add_parser("list", help="cases I take part in")
    listing.add_argument("--status")
    case_commands.add_parser("queue", help="open cases of my specialties")
    show = case_commands.add_parser("show", help="download, verify and decrypt a case and its thread")
    show.add_argument("case_id")
    show.add_argument("--save-attachments", type=Path, help="folder to write decrypted attachments to")
    reply = case_commands.add_parser("reply", help="post an encrypted message")
    reply.add_argument("case_id")
    reply.add_argument("--text", required=True)
    reply.add_argument("--kind", choices=MESSAGE_KINDS, default="message")
    move = case_commands.add_parser("transition", help="claim, decline, answer, close, ...")
    move.add_argument("case_id")
    move.add_argument("action", choices=TRANSITIONS)
    move.add_argument("--reason", choices=DECLINE_REASONS)
    move.add_argument("--report-message", help="id of the report message (answer)")
    share = case_commands.add_parser("share", help="re-share a case with a colleague's devices")
    share.add_argument("case_id")
    share.add_argument("--user", required=True)

    add_circle_command(commands)

    events = commands.add_parser(
        "events",
        help="my notifications (ids, types and times, no content): those since the last run, then live",
    )
    events.add_argument(
        "--last-event-id",
        type=int,
        help="print what came after this event id (default: after the last printed)",
    )
    events.add_argument(
        "--once", action="store_true", help="print what is waiting, then exit (no live stream)"
    )

    totp_command = commands.add_parser("totp", help="TOTP codes without a phone (development and tests)")
    totp_commands = totp_command.add_subparsers(dest="totp_command", required=True)
    code = totp_commands.add_parser("code", help="print the current code of a TOTP secret (single use)")
    code.add_argument(
        "--secret",
        default=os.environ.get("CONFRERE_TOTP_SECRET"),
        help="the base32 secret or the otpauth:// URI from enrolment (env CONFRERE_TOTP_SECRET)",
    )


@contextmanager
def profile_session(profile_name: str) -> Iterator[tuple[Profile, ConfrereApi]]:
    path = profile_path(profile_name)
    profile = Profile.load(path)
    api = ConfrereApi(profile.server)
    api.access_token, api.refresh_token = profile.access_token, profile.refresh_token
    try:
        yield profile, api
    finally:
        profile.access_token, profile.refresh_token = api.access_token, api.refresh_token
        profile.save(path)
        api.close()


def _trust(profile: Profile, api: ConfrereApi) -> DirectoryTrust:
    """The profile's pinned directory key (pinned now on first use) and last accepted checkpoint."""
    if profile.directory_key is None:
        profile.directory_key = api.directory_key()
        print(
            f"pinned the directory log key {profile.directory_key}: compare it with the one your "
            "organization publishes",
            file=sys.stderr,
        )

    def keep(note: bytes) -> None:
        profile.directory_checkpoint = note.decode()

    last = profile.directory_checkpoint.encode() if profile.directory_checkpoint else None
    return DirectoryTrust(api, profile.directory_key, last, on_checkpoint=keep)


def _clinician(profile: Profile, api: ConfrereApi) -> Clinician:
    keys = profile.device_keys()
    return Clinician(
        api,
        profile.user_id or api.me()["id"],
        profile.device_id or "",
        keys,
        _trust(profile, api),
        profile.verified_contacts,
    )


def _audit_devices(profile: Profile, api: ConfrereApi) -> int:
    """Scans the directory log for this user's devices; 2 when one was neither registered here nor
    approved (a device added behind the user's back until proven otherwise)."""
    monitor = Monitor(_trust(profile, api), profile.user_id or api.me()["id"], profile.monitor_state())
    checkpoint = monitor.scan()
    profile.keep_monitor_state(monitor.state)
    unknown = monitor.unknown_devices(profile.approved_devices)
    for sighting in unknown:
        state = "since revoked" if sighting.revoked else "ACTIVE"
        print(
            f"WARNING: device {sighting.device_id} was registered to your account at "
            f"{sighting.registered_at} ({state}) and you never approved it: if it is not yours, revoke it "
            "and tell your administrator",
            file=sys.stderr,
        )
    print(
        f"directory log checked up to size {checkpoint.size}: {len(monitor.state.devices)} device(s) of "
        f"yours on record, {len(unknown)} unknown"
    )
    return 2 if unknown else 0


def totp_code(secret_or_uri: str, now: float) -> str:
    secret = secret_or_uri
    if secret_or_uri.startswith("otpauth://"):
        secret = parse_qs(urlparse(secret_or_uri).query).get("secret", [""])[0]
    secret = secret.replace(" ", "").upper()
    return totp.code_at(base64.b32decode(secret + "=" * (-len(secret) % 8)), now)


def _totp(args: argparse.Namespace) -> int:
    if not args.secret:
        print("error: give --secret (or CONFRERE_TOTP_SECRET)", file=sys.stderr)
        return 2
    now = time.time()
    try:
        code = totp_code(args.secret, now)
    except ValueError:
        print("error: the secret is not base32 (nor an otpauth:// URI)", file=sys.stderr)
        return 2
    left = totp.STEP_SECONDS - int(now) % totp.STEP_SECONDS
    print(code)
    print(f"valid {left} s more; the server accepts each code once", file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        return _dispatch(args)
    except AttachmentRefused as refused:
        outcome = (
            f"case {refused.case_id} was withdrawn (it stays in `confrere case list` as withdrawn)"
            if refused.withdrawn
            else f"case {refused.case_id} could not be withdrawn: run "
            f"`confrere case transition {refused.case_id} withdraw`"
        )
        print(
            f"error: the attachment {refused.name} was refused ({refused.error}); {outcome}", file=sys.stderr
        )
    except ApiError as error:
        print(
            f"error: {error.code} ({error.status}){': ' + error.detail if error.detail else ''}",
            file=sys.stderr,
        )
    except E2EEError as error:
        print(f"refused by this device: {error.code}: {error}", file=sys.stderr)
    except httpx.TransportError as error:
        print(
            f"error: the server does not answer ({error}): is it running, at this address?", file=sys.stderr
        )
    return 1


def _ask_password() -> str:
    try:
        return getpass.getpass("Password: ")
    except EOFError:
        raise SystemExit("error: no password: set CONFRERE_PASSWORD, or run `login` in a terminal") from None


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "totp":
        return _totp(args)
    if args.command == "login":
        password = os.environ.get("CONFRERE_PASSWORD") or _ask_password()
        api = ConfrereApi(args.server)
        api.login(args.email, password, args.totp)
        path = profile_path(args.profile)
        profile = Profile.load(path) if path.exists() else Profile(server=args.server, email=args.email)
        profile.server, profile.email, profile.user_id = args.server, args.email, api.me()["id"]
        profile.access_token, profile.refresh_token = api.access_token, api.refresh_token
        if args.directory_key:
            profile.directory_key = args.directory_key
        try:
            print(f"logged in as {args.email} (profile {args.profile})")
            # Monitoring on login: a device added behind the user's back shows at once.
            return _audit_devices(profile, api) if profile.device_id else 0
        finally:
            profile.save(path)
    with profile_session(args.profile) as (profile, api):
        if args.command == "events":
            return _events(profile, api, args.last_event_id, args.once)
        if args.command == "device":
            return _device(args, profile, api)
        if args.command == "user":
            return _user(args, profile, _clinician(profile, api))
        if args.command == "circle":
            device = CircleDevice(_clinician(profile, api), CircleKeyring.from_json(profile.circles))
            try:
                return run_circle(args, device)
            finally:
                profile.circles = device.keyring.to_json()
        return _case(args, _clinician(profile, api))


def _device(args: argparse.Namespace, profile: Profile, api: ConfrereApi) -> int:
    command = args.device_command
    if command == "register":
        clinician = Clinician.enrol_device(api, args.suite, args.label, _trust(profile, api))
        profile.remember_device(clinician.device_id, clinician.keys)
        print(f"device {clinician.device_id} registered ({args.suite}); private keys stay in this profile")
    elif command == "audit":
        return _audit_devices(profile, api)
    elif command == "approve":
        profile.approve(args.device_id)
        print(f"device {args.device_id} approved")
    elif command == "catch-up":
        added = _clinician(profile, api).catch_up(include_closed=args.all)
        print(f"{sum(added.values())} envelopes added over {len(added)} case(s)")
    return 0


def _user(args: argparse.Namespace, profile: Profile, clinician: Clinician) -> int:
    if args.user_command == "fingerprint":
        user_id = args.user_id or clinician.user_id
        number = clinician.safety_number(user_id)
        pinned = profile.verified_contacts.get(user_id)
        status = (
            "verified" if pinned == number.digits else "CHANGED since verified" if pinned else "unverified"
        )
        print(f"safety number of {user_id} ({status}):\n  {number.digits}\nQR payload: {number.qr_payload}")
    else:
        digits = clinician.mark_verified(args.user_id)
        print(f"{args.user_id} marked verified with safety number {digits}")
    return 0


def _print_event(event: dict) -> None:
    message = f" message {event['object_id']}" if event.get("object_id") else ""
    print(
        f"{event['id']}  {event['created_at']}  {event['type']:<22} case {event['case_id']}{message}",
        flush=True,
    )


GAP_NOTE = "some events were purged or missed: reload your case lists"


def _events(profile: Profile, api: ConfrereApi, last_event_id: int | None, once: bool) -> int:
    """What is waiting (since the last run of this profile, or everything kept the first time), page by
    page; then, unless `once`, the live stream. The profile remembers the last event printed."""
    resume = last_event_id if last_event_id is not None else profile.last_event_id or 0
    while True:
        page = api.event_page(resume)
        if page["gap"]:
            print(GAP_NOTE, flush=True)
        for event in page["items"]:
            _print_event(event)
        profile.last_event_id = resume = page["last_event_id"]
        if not page["items"]:
            break
    if once:
        return 0
    print("-- following live (Ctrl-C stops)", file=sys.stderr, flush=True)
    try:
        for event in api.events(resume):
            if event["type"] == "stream.gap":
                print(GAP_NOTE, flush=True)
                continue
            _print_event(event)
            profile.last_event_id = event["id"]
    except KeyboardInterrupt:
        pass
    return 0


def _read_attachments(paths: list[Path], max_bytes: int) -> list[Attachment] | None:
    """Every file, read and within the limit, before anything is sent: None (and why) otherwise."""
    attachments, problems = [], []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as error:
            problems.append(f"cannot read {path}: {error.strerror or error}")
            continue
        if len(data) > max_bytes:
            problems.append(f"{path} holds {len(data)} bytes; the server accepts at most {max_bytes}")
            continue
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        attachments.append(Attachment(name=path.name, media_type=media_type, data=data))
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        print("nothing was sent: no case was created", file=sys.stderr)
        return None
    return attachments


def _case(args: argparse.Namespace, clinician: Clinician) -> int:
    command = args.case_command
    if command == "create":
        attachments = _read_attachments(args.photo, args.max_attachment_bytes)
        if attachments is None:
            return 1
        case_id = clinician.create_case(
            specialty=args.specialty,
            question=args.question,
            attachments=attachments,
            priority=args.priority,
            consent_at=args.consent,
            named_specialist_id=args.named_specialist,
        )
        print(case_id)
    elif command in ("list", "queue"):
        rows = clinician.api.cases(status=args.status) if command == "list" else clinician.api.queue()
        for case in rows:
            overdue = " OVERDUE" if case["overdue"] else ""
            print(
                f"{case['id']}  {case['status']:<14} {case['specialty']:<16} {case['priority']:<8} "
                f"due {case['due_at']}{overdue}"
            )
    elif command == "show":
        opened = clinician.open_case(args.case_id)
        meta = opened.meta
        print(f"case {meta['id']} [{meta['status']}] {meta['specialty']} {meta['priority']}")
        print(f"due {meta['due_at']}")
        if opened.content is not None:
            print(f"question: {opened.content.question}")
        else:
            print(f"content (not in the expected format, shown as raw text): {opened.raw_text}")
        for attachment in opened.attachments:
            print(f"attachment: {attachment.name} ({attachment.media_type}, {len(attachment.data)} bytes)")
            if args.save_attachments:
                args.save_attachments.mkdir(parents=True, exist_ok=True)
                (args.save_attachments / Path(attachment.name).name).write_bytes(attachment.data)
        for message in clinician.read_messages(args.case_id):
            raw = "" if message.parsed else " (not in the expected format, shown as raw text)"
            print(f"[{message.created_at}] {message.kind} from {message.author_id}{raw}: {message.text}")
    elif command == "reply":
        print(clinician.post(args.case_id, args.kind, args.text))
    elif command == "transition":
        extra = {"reason": args.reason} if args.reason else {}
        if args.report_message:
            extra["report_message_id"] = args.report_message
        print(clinician.transition(args.case_id, args.action, **extra)["status"])
    elif command == "share":
        print(f"{clinician.share(args.case_id, args.user)} envelopes added")
    return 0
