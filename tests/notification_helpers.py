"""Event stream and webhook test helpers: an SSE reader over TestClient, the events a user was sent, and a
real HTTP receiver on 127.0.0.1 that records what it gets and answers with scripted statuses."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func
from sqlmodel import select

from app.models.notifications import Event
from app.notifications import feed
from app.notifications.sequencer import sequence_pending
from app.runtime.database import new_session
from tests.e2ee_helpers import create_case, devices_of, post_message

EVENT_FIELDS = {"id", "type", "case_id", "object_id", "created_at"}


def move(client, person, case_id: str, action: str, **extra):
    response = client.post(
        f"/v1/cases/{case_id}/transitions", json={"action": action, **extra}, headers=person.headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def whole_flow(client, people, marker: str) -> dict:
    """A case from question to closing, every sealed text carrying the marker; the sealed bodies it sent."""
    physician, derm = people["physician"], people["derm"]
    everyone = devices_of(physician, derm, people["derm2"])
    case = create_case(client, physician, everyone, f"{marker} question", specialty="dermatology")
    case_id = case["id"]
    move(client, derm, case_id, "claim")
    both = devices_of(physician, derm)
    sealed = [case["sealed"]["ciphertext"]]
    for person, kind, action in [
        (derm, "info_request", "request_info"),
        (physician, "info_response", "provide_info"),
    ]:
        message = post_message(client, person, case_id, kind, f"{marker} {kind}", both).json()
        sealed.append(message["sealed"]["ciphertext"])
        move(client, person, case_id, action)
    report = post_message(client, derm, case_id, "report", f"{marker} report", both).json()
    sealed.append(report["sealed"]["ciphertext"])
    move(client, derm, case_id, "answer", report_message_id=report["id"])
    move(client, physician, case_id, "close")
    return {"case_id": case_id, "sealed": sealed}


def sse_blocks(lines: Iterable[str]) -> Iterator[dict[str, str]]:
    """SSE blocks as {field: value} (comments under ":"), one per blank-line-terminated block."""
    block: dict[str, str] = {}
    for line in lines:
        if line == "":
            if block:
                yield block
            block = {}
            continue
        name, _, value = line.partition(":")
        block[name] = value.removeprefix(" ")
    if block:
        yield block


@dataclass
class StreamRead:
    events: list[dict] = field(default_factory=list)
    blocks: list[dict[str, str]] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)

    @property
    def last_id(self) -> int:
        return int([block["id"] for block in self.blocks if "id" in block][-1])


def read_stream(
    client: TestClient, headers: dict, *, count: int, last_event_id: int | None = None, on_open=None
) -> StreamRead:
    """Reads the stream until `count` events came (or the server ends it: keep its lifetime short).
    `on_open` runs once the stream is open, e.g. to start the actions whose events it should see."""
    read = StreamRead()
    extra = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        extra["Last-Event-ID"] = str(last_event_id)
    with client.stream("GET", "/v1/events", headers=headers | extra) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        for block in sse_blocks(_recording(lines, read.raw)):
            read.blocks.append(block)
            if on_open is not None:
                on_open()
                on_open = None
            if "data" in block:
                read.events.append(json.loads(block["data"]))
                if len(read.events) >= count:
                    break
    return read


def _recording(lines: Iterator[str], raw: list[str]) -> Iterator[str]:
    for line in lines:
        raw.append(line)
        yield line


def sequence_all(engine: Engine) -> None:
    """Until no committed event lacks a position (the app's own sequencer may hold the lock meanwhile)."""
    while True:
        sequence_pending(engine)
        with new_session(engine) as session:
            if session.exec(select(func.count()).where(Event.position.is_(None))).one() == 0:
                return
        time.sleep(0.01)


def events_of(engine: Engine, user_id: str | uuid.UUID) -> list[tuple[str, str]]:
    """(type, case_id) of every event addressed to the user, after sequencing what is pending."""
    sequence_all(engine)
    with new_session(engine) as session:
        events = feed.addressed_to(session, uuid.UUID(str(user_id)), 0, 10_000, up_to=2**62)
    return [(event.type, str(event.case_id)) for event in events]


def circle_events_of(engine: Engine, user_id: str | uuid.UUID, circle_id: str | None = None) -> list[dict]:
    """Every circle event the user reads (of one circle if given), as the feed shows it, in order."""
    sequence_all(engine)
    with new_session(engine) as session:
        events = feed.addressed_to(session, uuid.UUID(str(user_id)), 0, 10_000, up_to=2**62)
    return [
        event.model_dump(mode="json")
        for event in events
        if event.circle_id is not None and (circle_id is None or str(event.circle_id) == circle_id)
    ]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A webhook receiver: ThreadingHTTPServer on a free loopback port. Answers each POST with the next of
    `statuses` (then 200), and records it; with `trickle_seconds`, sends its answer a byte at a time, that
    long apart (a receiver that never lets an attempt end by itself)."""

    def __init__(self, statuses: Iterable[int] = (), trickle_seconds: float | None = None) -> None:
        self.received: list[Received] = []
        self.statuses = list(statuses)
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.received.append(Received(self.path, dict(self.headers.items()), body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                if trickle_seconds is not None:
                    self._trickle(f"HTTP/1.1 {status} OK\r\nContent-Length: 0\r\n\r\n".encode())
                    return
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _trickle(self, answer: bytes) -> None:
                for byte in answer:
                    try:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                    except OSError:  # the sender gave up and closed the connection
                        return
                    time.sleep(trickle_seconds)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
