"""What the scenarios need from a running server: tokens, and cases created through the API with real sealed
content (so every server check ran on them), one of them with a real 5 MB sealed attachment."""

from __future__ import annotations

import io
import os
import time
import uuid
from dataclasses import dataclass

import httpx
import orjson
from sqlalchemy import Engine
from sqlmodel import Session, select

from app.crypto import totp
from app.models.cases import Case, CaseStatus
from app.services.case_lists import EARLIEST_DUE_FIRST
from bench.payloads import ATTACHMENT_BYTES, Author, case_body, sealed_attachment, sealed_json
from bench.seed import PASSWORD, QUEUE_SPECIALTY, Cast, Person

CLIENT_HEADERS = {"X-Confrere-Client": "confrere-bench/1"}


@dataclass(frozen=True)
class Tokens:
    reader: str
    cardiologist: str
    officer: str


def author(person: Person) -> Author:
    assert person.keys is not None
    return Author(device_id=str(person.device_id), keys=person.keys)


def _check(response: httpx.Response) -> dict:
    if response.status_code >= 400:
        raise RuntimeError(f"{response.request.method} {response.request.url.path}: {response.text}")
    return response.json()


# The last TOTP step each account used: the server refuses a step at or before it (replay).
_used_steps: dict[uuid.UUID, int] = {}


def _totp_code(person: Person) -> str:
    assert person.totp_secret is not None
    now_step = int(time.time()) // totp.STEP_SECONDS
    step = max(now_step, _used_steps.get(person.id, -1) + 1)
    if step > now_step + 1:  # beyond the server's one step of drift: wait for the clock
        time.sleep((step - 1) * totp.STEP_SECONDS - time.time() + 0.5)
    _used_steps[person.id] = step
    return totp.code_at(person.totp_secret, step * totp.STEP_SECONDS)


def login(url: str, person: Person) -> str:
    body = {"email": person.email, "password": PASSWORD}
    if person.totp_secret is not None:
        body["totp_code"] = _totp_code(person)
    return _check(httpx.post(f"{url}/v1/auth/token", json=body, headers=CLIENT_HEADERS))["access_token"]


def tokens(url: str, people: Cast) -> Tokens:
    return Tokens(login(url, people.reader), login(url, people.cardiologists[0]), login(url, people.officer))


def api_client(url: str, token: str, person: Person) -> httpx.Client:
    headers = {
        **CLIENT_HEADERS,
        "Authorization": f"Bearer {token}",
        "X-Confrere-Device": str(person.device_id),
    }
    return httpx.Client(base_url=url, headers=headers, timeout=60)


def create_cases(url: str, token: str, people: Cast, count: int) -> list[str]:
    """`count` cases of the reader for the queue specialty, sealed for its 20 devices, through the API."""
    ids = []
    with api_client(url, token, people.reader) as client:
        for _ in range(count):
            case_id = str(uuid.uuid4())
            body = case_body(author(people.reader), people.queue_recipients, QUEUE_SPECIALTY, case_id)
            _check(client.post("/v1/cases", json=body))
            ids.append(case_id)
    return ids


def upload_attachment(url: str, token: str, people: Cast, case_id: str) -> str:
    """A real 5 MB sealed attachment on the case, uploaded through the API; its id."""
    sealed = sealed_attachment(
        author(people.reader), people.queue_recipients, case_id, os.urandom(ATTACHMENT_BYTES)
    )
    attachment_id = orjson.loads(sealed.header)["object_id"]
    meta = {"id": attachment_id, **sealed_json(sealed, with_ciphertext=False)}
    files = {"ciphertext": ("ciphertext.bin", io.BytesIO(sealed.ciphertext), "application/octet-stream")}
    with api_client(url, token, people.reader) as client:
        _check(
            client.post(
                f"/v1/cases/{case_id}/attachments", data={"meta": orjson.dumps(meta).decode()}, files=files
            )
        )
    return attachment_id


def deep_queue_cursor(engine: Engine, depth: float) -> tuple[str, int]:
    """The cursor a client would hold after paging `depth` (0..1) of the way through the queue, and the
    queue's length."""
    queued = select(Case).where(
        Case.specialty == QUEUE_SPECIALTY,
        Case.status == CaseStatus.OPEN,
        Case.named_specialist_id.is_(None),
        Case.assignee_id.is_(None),
    )
    with Session(engine) as session:
        length = len(session.exec(queued.with_only_columns(Case.id)).all())
        rows = session.exec(
            queued.order_by(*EARLIEST_DUE_FIRST.order_by()).offset(int(length * depth)).limit(2)
        )
        page = EARLIEST_DUE_FIRST.page(list(rows.all()), 1)
    assert page.next_cursor is not None, "the queue is too short for a deep cursor"
    return page.next_cursor, length
