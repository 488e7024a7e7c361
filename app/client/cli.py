"""`confrere login | device | case ...`: the whole clinical flow from a terminal, encrypting locally."""

from __future__ import annotations

import argparse
import getpass
import mimetypes
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.client.api import ApiError, ConfrereApi
from app.client.clinician import Attachment, Clinician
from app.client.profile import Profile, profile_path
from app.crypto.e2ee import E2EEError, Suite

TRANSITIONS = ("claim", "decline", "request_info", "provide_info", "answer", "close", "withdraw")
DECLINE_REASONS = ("outside_expertise", "unavailable", "insufficient_information", "other")
MESSAGE_KINDS = ("message", "info_request", "info_response", "report")


def add_commands(commands: argparse._SubParsersAction) -> None:
    login = commands.add_parser("login", help="log in and remember the session in a local profile")
    login.add_argument("--server", default="http://127.0.0.1:8000")
    login.add_argument("--email", required=True)
    login.add_argument("--totp", help="current TOTP code, when enrolled")

    device = commands.add_parser("device", help="this machine as an end-to-end encryption device")
    device_commands = device.add_subparsers(dest="device_command", required=True)
    register = device_commands.add_parser(
        "register", help="create keys here and register their public halves"
    )
    register.add_argument("--suite", choices=[suite.value for suite in Suite], default=Suite.XWING.value)
    register.add_argument("--label", default="confrere CLI")

    case = commands.add_parser("case", help="create, list, read and answer cases")
    case_commands = case.add_subparsers(dest="case_command", required=True)
    create = case_commands.add_parser("create", help="encrypt and submit a case")
    create.add_argument("--specialty", required=True)
    create.add_argument("--question", required=True)
    create.add_argument("--photo", action="append", default=[], type=Path, help="file to attach (repeatable)")
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

    events = commands.add_parser("events", help="follow my notifications: ids, types and times, no content")
    events.add_argument("--last-event-id", type=int, help="replay what came after this event id")
    events.add_argument("--once", action="store_true", help="stop when the server ends the stream")

    for parser in (login, device, case, events):
        parser.add_argument("--profile", default=os.environ.get("CONFRERE_PROFILE", "default"))


@contextmanager
def _session(profile_name: str) -> Iterator[tuple[Profile, ConfrereApi]]:
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


def _clinician(profile: Profile, api: ConfrereApi) -> Clinician:
    keys = profile.device_keys()
    return Clinician(api, profile.user_id or api.me()["id"], profile.device_id or "", keys)


def run(args: argparse.Namespace) -> int:
    try:
        return _dispatch(args)
    except ApiError as error:
        print(
            f"error: {error.code} ({error.status}){': ' + error.detail if error.detail else ''}",
            file=sys.stderr,
        )
    except E2EEError as error:
        print(f"refused by this device: {error.code}: {error}", file=sys.stderr)
    return 1


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "login":
        password = os.environ.get("CONFRERE_PASSWORD") or getpass.getpass("Password: ")
        api = ConfrereApi(args.server)
        api.login(args.email, password, args.totp)
        path = profile_path(args.profile)
        profile = Profile.load(path) if path.exists() else Profile(server=args.server, email=args.email)
        profile.server, profile.email, profile.user_id = args.server, args.email, api.me()["id"]
        profile.access_token, profile.refresh_token = api.access_token, api.refresh_token
        profile.save(path)
        print(f"logged in as {args.email} (profile {args.profile})")
        return 0
    with _session(args.profile) as (profile, api):
        if args.command == "events":
            return _follow(api, args.last_event_id, args.once)
        if args.command == "device":
            clinician = Clinician.enrol_device(api, args.suite, args.label)
            profile.remember_device(clinician.device_id, clinician.keys)
            print(
                f"device {clinician.device_id} registered ({args.suite}); private keys stay in this profile"
            )
            return 0
        return _case(args, _clinician(profile, api))


def _follow(api: ConfrereApi, last_event_id: int | None, once: bool) -> int:
    try:
        for event in api.events(last_event_id, reconnect=not once):
            if event["type"] == "stream.gap":
                print("some events were purged or missed: reload your case lists", flush=True)
                continue
            message = f" message {event['object_id']}" if event.get("object_id") else ""
            print(
                f"{event['id']}  {event['created_at']}  {event['type']:<22} case {event['case_id']}{message}",
                flush=True,
            )
    except KeyboardInterrupt:
        pass
    return 0


def _case(args: argparse.Namespace, clinician: Clinician) -> int:
    command = args.case_command
    if command == "create":
        attachments = [
            Attachment(
                name=path.name,
                media_type=mimetypes.guess_type(path.name)[0] or "application/octet-stream",
                data=path.read_bytes(),
            )
            for path in args.photo
        ]
        case_id = clinician.create_case(
            specialty=args.specialty,
            question=args.question,
            attachments=attachments,
            priority=args.priority,
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
        print(f"{clinician.share(args.case_id, args.user)} envelopes uploaded")
    return 0
