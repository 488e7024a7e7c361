"""`confrere circle ...`: peer circles from a terminal, sealing and opening locally (docs/circles.md).

Epoch keys and pseudonym keys are kept in the profile; every write rotates the circle key first when the
server says membership changed.
"""

from __future__ import annotations

import argparse
import sys

from app.client.circles import CircleDevice, OpenedPost

REACTIONS = ("helpful", "me_too")
REPORT_REASONS = ("patient_identifiable", "disrespectful", "off_topic", "misinformation", "other")


def add_circle_command(commands: argparse._SubParsersAction) -> None:
    circle = commands.add_parser("circle", help="peer circles: posts sealed for the circle's members")
    sub = circle.add_subparsers(dest="circle_command", required=True)
    create = sub.add_parser("create", help="create a circle (you are its moderator) and its first key")
    create.add_argument("name")
    create.add_argument("--description", default="")
    create.add_argument("--invitation", action="store_true", help="by invitation only (default: open)")
    create.add_argument("--profession", help="open to this profession only (nurse, psychologist, ...)")
    create.add_argument("--specialty", help="open to the specialists of this specialty only")
    listing = sub.add_parser("list", help="my circles (and with --joinable, open circles I may join)")
    listing.add_argument("--joinable", action="store_true")
    for name, text in (
        ("show", "a circle's details"),
        ("join", "join an open circle, or accept an invitation (rotates the key)"),
        ("leave", "leave a circle"),
        ("members", "the members and their roles"),
        ("rotate", "post a new epoch key for the current members' devices"),
    ):
        sub.add_parser(name, help=text).add_argument("circle_id")
    for name, text in (
        ("invite", "invite a colleague (moderator)"),
        ("remove", "remove a member and rotate"),
    ):
        command = sub.add_parser(name, help=text)
        command.add_argument("circle_id")
        command.add_argument("user_id")
    post = sub.add_parser("post", help="seal and post to the circle")
    post.add_argument("circle_id")
    post.add_argument("body")
    post.add_argument("--title")
    post.add_argument("--pseudonymous", action="store_true", help="under my pseudonym in this circle")
    reply = sub.add_parser("reply", help="reply to a post (or, with --session, in the session's round)")
    reply.add_argument("circle_id")
    reply.add_argument("post_id", nargs="?")
    reply.add_argument("body")
    reply.add_argument("--session", help="a co-development session id: write in its current round")
    reply.add_argument("--pseudonymous", action="store_true")
    read = sub.add_parser("read", help="open a page of posts, or one post and its replies")
    read.add_argument("circle_id")
    read.add_argument("post_id", nargs="?")
    read.add_argument("--cursor")
    react = sub.add_parser("react", help="react to a post")
    react.add_argument("circle_id")
    react.add_argument("post_id")
    react.add_argument("kind", choices=REACTIONS)
    react.add_argument("--undo", action="store_true")
    hide = sub.add_parser("hide", help="hide a post with a reason (moderator)")
    hide.add_argument("circle_id")
    hide.add_argument("post_id")
    hide.add_argument("reason")
    report = sub.add_parser("report", help="report a post to the moderators")
    report.add_argument("circle_id")
    report.add_argument("post_id")
    report.add_argument("reason", choices=REPORT_REASONS)
    report.add_argument("--note")
    pseudonym = sub.add_parser("pseudonym", help="take a pseudonym in the circle (keys stay on this device)")
    pseudonym.add_argument("circle_id")
    pseudonym.add_argument("name")
    grant = sub.add_parser("grant", help="share older epochs' keys with a member's devices")
    grant.add_argument("circle_id")
    grant.add_argument("user_id")
    grant.add_argument("epochs", nargs="+", type=int)
    session = sub.add_parser("session", help="co-development sessions")
    session_sub = session.add_subparsers(dest="session_command", required=True)
    opening = session_sub.add_parser("open", help="open a session on my post, with a facilitator")
    opening.add_argument("circle_id")
    opening.add_argument("post_id")
    opening.add_argument("--facilitator", required=True, help="the facilitator's user id")
    opening.add_argument("--deadline", required=True, help="ISO 8601 date and time with its offset")
    for name, text in (("next", "move to the next round (facilitator or moderator)"), ("show", "rounds")):
        command = session_sub.add_parser(name, help=text)
        command.add_argument("circle_id")
        command.add_argument("session_id")


def _print_post(post: OpenedPost, indent: str = "") -> None:
    reactions = " ".join(f"{kind}:{count}" for kind, count in post.meta.get("reactions", {}).items() if count)
    print(f"{indent}{post.id} [epoch {post.epoch}] {post.author} at {post.created_at} {reactions}".rstrip())
    if post.title:
        print(f"{indent}  # {post.title}")
    print(f"{indent}  {post.body if post.body is not None else '(' + str(post.unreadable) + ')'}")


def run_circle(args: argparse.Namespace, device: CircleDevice) -> int:
    api, command = device.api, args.circle_command
    if command == "create":
        audience = {"profession": args.profession} if args.profession else None
        audience = {"specialty": args.specialty} if args.specialty else audience
        access = "invitation" if args.invitation else "open"
        circle = device.create(args.name, args.description, access, audience)
        print(f"{circle['id']} (epoch {circle['current_epoch']})")
    elif command == "list":
        for circle in api.circles(joinable="true" if args.joinable else None):
            role = circle["my_role"] or "may join"
            print(f"{circle['id']}  {circle['name']}  {role}  {circle['member_count']} member(s)")
    elif command == "show":
        circle = api.circle(args.circle_id)
        for key in (
            "name",
            "description",
            "access",
            "audience",
            "current_epoch",
            "rotation_required",
            "my_role",
        ):
            print(f"{key}: {circle[key]}")
    elif command == "join":
        print(f"joined; epoch {device.join(args.circle_id)}")
    elif command == "leave":
        api.circle_action(args.circle_id, "leave")
        print("left the circle: posts made from now on are sealed without your devices")
    elif command == "members":
        for member in api.circle_members(args.circle_id):
            print(f"{member['user_id']}  {member['display_name']}  {member['profession']}  {member['role']}")
    elif command == "rotate":
        print(f"epoch {device.rotate(args.circle_id)}")
    elif command == "invite":
        api.circle_action(args.circle_id, "invitations", user_id=args.user_id)
        print("invited")
    elif command == "remove":
        print(f"removed; epoch {device.remove(args.circle_id, args.user_id)}")
    elif command == "post":
        print(device.post(args.circle_id, args.body, title=args.title, pseudonymous=args.pseudonymous))
    elif command == "reply":
        return _reply(args, device)
    elif command == "read":
        _read(args, device)
    elif command == "react":
        api.circle_reaction(args.circle_id, args.post_id, args.kind, on=not args.undo)
    elif command == "hide":
        api.circle_post_action(args.circle_id, args.post_id, "hide", reason=args.reason)
    elif command == "report":
        body = {"reason": args.reason} | ({"note": args.note} if args.note else {})
        api.circle_post_action(args.circle_id, args.post_id, "reports", **body)
    elif command == "pseudonym":
        own = device.pseudonym(args.circle_id, args.name)
        print(f"pseudonym {own.name} ({own.pseudonym_id}); this device's key {own.key_id}")
    elif command == "grant":
        print(f"{device.grant(args.circle_id, args.user_id, args.epochs)} wraps added")
    else:
        return _session(args, device)
    return 0


def _reply(args: argparse.Namespace, device: CircleDevice) -> int:
    if args.session:
        print(device.session_reply(args.circle_id, args.session, args.body, pseudonymous=args.pseudonymous))
    elif args.post_id:
        print(device.post(args.circle_id, args.body, parent_id=args.post_id, pseudonymous=args.pseudonymous))
    else:
        print("error: give the post to reply to, or --session", file=sys.stderr)
        return 2
    return 0


def _read(args: argparse.Namespace, device: CircleDevice) -> None:
    if args.post_id:
        post, replies = device.thread(args.circle_id, args.post_id)
        _print_post(post)
        for reply in replies:
            _print_post(reply, "    ")
        return
    posts, cursor = device.read(args.circle_id, cursor=args.cursor)
    for post in posts:
        _print_post(post)
    if cursor:
        print(f"more: --cursor {cursor}")


def _session(args: argparse.Namespace, device: CircleDevice) -> int:
    command = args.session_command
    if command == "open":
        session = device.open_session(args.circle_id, args.post_id, args.facilitator, args.deadline)
        print(f"{session['id']} round {session['round']}")
    elif command == "next":
        print(device.next_round(args.circle_id, args.session_id)["round"])
    else:
        session = device.api.circle_session(args.circle_id, args.session_id)
        print(f"round {session['round']}, deadline {session['deadline']}")
        for step in session["rounds"]:
            print(f"  {step['at']}  {step['round']}")
    return 0
