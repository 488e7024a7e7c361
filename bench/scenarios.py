"""The HTTP scenarios: what wrk sends for each, with bodies made in advance where each request creates."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import orjson

from bench import payloads
from bench.fixtures import Tokens, author
from bench.harness import Load
from bench.seed import PASSWORD, QUEUE_SPECIALTY, Cast

QUEUE_PAGE = 50


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    load: Load


@dataclass(frozen=True)
class Targets:
    """Where the scenarios act: cases created through the API, and the queue's deep cursor. The cases that
    are read are never written to, so that what the writing scenarios add (thousands of messages and
    attachments) does not change what a read costs at the next size."""

    read_cases: list[str]
    written_cases: list[str]
    attachment_id: str  # on written_cases[0]
    deep_cursor: str


def token_ceiling(tokens: Tokens) -> Load:
    """The route that only validates an access token: every result is also given as a ratio to it."""
    return Load(paths=["/bench/token"], token=tokens.reader)


def references(tokens: Tokens) -> list[Scenario]:
    """The bare JSON ceiling, and both ceilings as `async def` routes (no worker thread); bench/app.py."""
    return [
        Scenario("plain", "Bare JSON route (ceiling)", Load(paths=["/bench/plain"])),
        Scenario("plain_async", "Bare JSON route, async def", Load(paths=["/bench/plain-async"])),
        Scenario(
            "token_async",
            "Token-only route, async def",
            Load(paths=["/bench/token-async"], token=tokens.reader),
        ),
    ]


def read_scenarios(tokens: Tokens, targets: Targets) -> list[Scenario]:
    """The reads whose cost must not grow with the number of cases."""
    queue = f"/v1/cases/queue?specialty={QUEUE_SPECIALTY}&limit={QUEUE_PAGE}"
    return [
        Scenario("queue_first", "Specialty queue, first page", Load([queue], token=tokens.cardiologist)),
        Scenario(
            "queue_deep",
            "Specialty queue, deep cursor",
            Load([f"{queue}&cursor={targets.deep_cursor}"], token=tokens.cardiologist),
        ),
        Scenario(
            "case_list", "My cases, first page", Load([f"/v1/cases?limit={QUEUE_PAGE}"], token=tokens.reader)
        ),
        Scenario(
            "case_read",
            "Open a case (audited)",
            Load([f"/v1/cases/{case_id}" for case_id in targets.read_cases], token=tokens.reader),
        ),
    ]


def write_scenarios(
    tokens: Tokens, people: Cast, targets: Targets, work_dir: Path, bodies: int, uploads: int
) -> list[Scenario]:
    """Everything else; `bodies` (and `uploads`) bounds how many requests a creating scenario may make."""
    reader = author(people.reader)
    recipients = people.queue_recipients
    case_bodies = payloads.write_lines(
        work_dir / "cases.ndjson",
        bodies,
        partial(payloads.new_case_body, reader, recipients, QUEUE_SPECIALTY),
    )
    message_bodies = payloads.write_lines(
        work_dir / "messages.ndjson",
        bodies,
        partial(payloads.new_message_body, reader, recipients, targets.written_cases),
    )
    message_paths = [
        f"/v1/cases/{targets.written_cases[i % len(targets.written_cases)]}/messages" for i in range(bodies)
    ]
    shared = payloads.shared_ciphertext(
        reader, targets.written_cases[0], os.urandom(payloads.ATTACHMENT_BYTES)
    )
    upload_file = work_dir / "attachment.bin"
    upload_file.write_bytes(shared.ciphertext)
    sha256 = hashlib.sha256(shared.ciphertext).hexdigest()
    metas = work_dir / "attachments.ndjson"
    with metas.open("wb") as out:
        for _ in range(uploads):
            meta = payloads.attachment_meta(reader, recipients, targets.written_cases[0], shared, sha256)
            out.write(orjson.dumps(meta) + b"\n")
    logins = work_dir / "logins.ndjson"
    logins.write_bytes(
        b"".join(
            orjson.dumps({"email": person.email, "password": PASSWORD}) + b"\n"
            for person in people.physicians
        )
    )
    attachments = f"/v1/cases/{targets.written_cases[0]}/attachments"
    return [
        Scenario("me", "Who am I (GET /v1/me, audited)", Load(["/v1/me"], token=tokens.reader)),
        Scenario(
            "case_read_unaudited",
            "Open a case, no audit record (bench route)",
            Load([f"/bench/cases/{case_id}" for case_id in targets.read_cases], token=tokens.reader),
        ),
        Scenario(
            "case_create",
            "Create a case, 20 envelopes",
            Load(["/v1/cases"], method="POST", token=tokens.reader, bodies=case_bodies),
        ),
        Scenario(
            "message_post",
            "Post a message, 20 envelopes",
            Load(message_paths, method="POST", token=tokens.reader, bodies=message_bodies),
        ),
        Scenario(
            "attachment_upload",
            "Upload a 5 MB attachment",
            Load([attachments], method="POST", token=tokens.reader, bodies=metas, upload=upload_file),
        ),
        Scenario(
            "attachment_download",
            "Download a 5 MB attachment",
            Load([f"{attachments}/{targets.attachment_id}"], token=tokens.reader),
        ),
        Scenario(
            "audit_query",
            "Audit query by case (officer)",
            Load(
                [f"/v1/audit/events?case={case_id}&limit=100" for case_id in targets.read_cases],
                token=tokens.officer,
            ),
        ),
        Scenario(
            "login",
            "Log in (Argon2id)",
            Load(["/v1/auth/token"], method="POST", bodies=logins, reuse_bodies=True),
        ),
    ]
