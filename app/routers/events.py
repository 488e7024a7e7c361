"""The caller's events: a Server-Sent Events stream, or a JSON page for clients that poll; both resume from
Last-Event-ID (docs/notifications.md)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from sqlmodel import Session

from app.deps import Db, Professional, RuntimeDep
from app.notifications import feed
from app.runtime.context import audited
from app.schemas.common import problems
from app.schemas.notifications import EventPage

router = APIRouter(prefix="/v1/events", tags=["notifications"])

EVENT_STREAM = "text/event-stream"
SSE_EXAMPLE = (
    "retry: 3000\nid: 41\n\n"
    "id: 42\nevent: case.claimed\n"
    'data: {"id":42,"type":"case.claimed","case_id":"0b6f3c1e-7d2a-4e43-9a51-3f0c2b8d9e10",'
    '"created_at":"2026-11-26T09:30:00.123456Z"}\n\n'
    ": heartbeat\nid: 57\n\n"
)


def _page(session: Session, user_id: uuid.UUID, last_event_id: int | None, limit: int) -> EventPage:
    return feed.page(session, user_id, feed.resume_point(session, last_event_id), limit)


@router.get(
    "",
    operation_id="streamEvents",
    summary="The caller's events, ids, types and times only: an SSE stream (Accept: text/event-stream) "
    "or one JSON page",
    response_model=EventPage,
    responses={
        200: {
            "description": "With `Accept: text/event-stream`, a stream whose events' `data` are `EventOut` "
            "objects; the server ends it after a few minutes: reconnect with `Last-Event-ID`. Otherwise "
            "one page of JSON.",
            "content": {EVENT_STREAM: {"schema": {"type": "string"}, "example": SSE_EXAMPLE}},
        },
        **problems(401, 403, 422),
    },
    dependencies=[audited("event.list")],
)
async def stream_events(
    request: Request,
    principal: Professional,
    db: Db,
    runtime: RuntimeDep,
    last_event_id: Annotated[
        int | None,
        Header(
            alias="Last-Event-ID",
            ge=0,
            le=2**62,
            description="The last event id received: what came after it is replayed (within retention).",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Page size of the JSON answer.")] = 100,
) -> EventPage | StreamingResponse:
    # Read, not declared: a declared Accept parameter would make generated clients ask for the stream.
    if EVENT_STREAM not in request.headers.get("accept", ""):
        return await db.run(_page, principal.id, last_event_id, limit)
    # The request's session (and its audit record) is committed and closed before a stream starts.
    resume = await db.run(feed.resume_point, last_event_id)
    return StreamingResponse(
        runtime.event_streams.stream(principal.id, principal.session_id, resume),
        media_type=EVENT_STREAM,
        # Proxies such as nginx buffer responses unless told not to; an event must leave at once.
        headers={"X-Accel-Buffering": "no"},
    )
