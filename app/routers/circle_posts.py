"""Circle posts and replies (sealed with the epoch's key), reactions, reports and moderation, and
co-development sessions. Routes on a circle the caller may not see answer 404 `circle_not_found`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from app.deps import Db, Professional
from app.models.base import utcnow
from app.models.circles import ReactionKind
from app.runtime.context import audited
from app.schemas.circles import (
    HideRequest,
    PostCreate,
    PostOut,
    PostPage,
    PostThread,
    ReportCreate,
    ReportList,
    ReportOut,
    RoundMove,
    SessionOpen,
    SessionOut,
)
from app.schemas.common import problems
from app.services import circle_moderation, circle_posts, circle_sessions

router = APIRouter(prefix="/v1/circles/{circle_id}", tags=["circles"])

Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=512)]


def on_circle(action: str):
    return audited(action, resource="circle", id_param="circle_id")


@router.post(
    "/posts",
    operation_id="createCirclePost",
    summary="Post or reply, sealed with the current epoch's key and signed by the caller's device or "
    "pseudonym key; in a co-development session, in its current round",
    status_code=status.HTTP_201_CREATED,
    response_model=PostOut,
    responses=problems(400, 401, 403, 404, 409, 413, 422, 429),
    dependencies=[on_circle("circle.post.create")],
)
async def create_post(circle_id: uuid.UUID, body: PostCreate, principal: Professional, db: Db) -> PostOut:
    return await db.run(circle_posts.create, principal, circle_id, body, utcnow())


@router.get(
    "/posts",
    operation_id="listCirclePosts",
    summary="Top-level posts, newest first (cursor pagination), with reply and reaction counts",
    response_model=PostPage,
    responses=problems(401, 403, 404, 422),
    dependencies=[on_circle("circle.post.list")],
)
async def list_posts(
    circle_id: uuid.UUID, principal: Professional, db: Db, limit: Limit = 50, cursor: Cursor = None
) -> PostPage:
    page = await db.run(circle_posts.page, principal, circle_id, limit, cursor)
    return PostPage(items=page.items, next_cursor=page.next_cursor)


@router.get(
    "/posts/{post_id}",
    operation_id="getCirclePost",
    summary="A post and its replies, oldest first",
    response_model=PostThread,
    responses=problems(401, 403, 404, 422),
    dependencies=[on_circle("circle.post.read")],
)
async def get_post(circle_id: uuid.UUID, post_id: uuid.UUID, principal: Professional, db: Db) -> PostThread:
    return await db.run(circle_posts.thread, principal, circle_id, post_id)


@router.put(
    "/posts/{post_id}/reactions/{kind}",
    operation_id="setCircleReaction",
    summary="React to a post (helpful, me_too); idempotent",
    response_model=PostOut,
    responses=problems(401, 403, 404, 409, 422, 429),
    dependencies=[on_circle("circle.reaction.set")],
)
async def set_reaction(
    circle_id: uuid.UUID, post_id: uuid.UUID, kind: ReactionKind, principal: Professional, db: Db
) -> PostOut:
    return await db.run(circle_moderation.react, principal, circle_id, post_id, kind, utcnow())


@router.delete(
    "/posts/{post_id}/reactions/{kind}",
    operation_id="deleteCircleReaction",
    summary="Take one's reaction back; idempotent",
    response_model=PostOut,
    responses=problems(401, 403, 404, 422, 429),
    dependencies=[on_circle("circle.reaction.delete")],
)
async def delete_reaction(
    circle_id: uuid.UUID, post_id: uuid.UUID, kind: ReactionKind, principal: Professional, db: Db
) -> PostOut:
    return await db.run(circle_moderation.unreact, principal, circle_id, post_id, kind)


@router.post(
    "/posts/{post_id}/hide",
    operation_id="hideCirclePost",
    summary="Hide a post with a clear reason (moderators); members then see the reason, not the post",
    response_model=PostOut,
    responses=problems(400, 401, 403, 404, 409, 413, 422, 429),
    dependencies=[on_circle("circle.post.hide")],
)
async def hide_post(
    circle_id: uuid.UUID, post_id: uuid.UUID, body: HideRequest, principal: Professional, db: Db
) -> PostOut:
    return await db.run(circle_moderation.hide, principal, circle_id, post_id, body, utcnow())


@router.post(
    "/posts/{post_id}/reports",
    operation_id="reportCirclePost",
    summary="Report a post to the circle's moderators",
    status_code=status.HTTP_201_CREATED,
    response_model=ReportOut,
    responses=problems(400, 401, 403, 404, 413, 422, 429),
    dependencies=[on_circle("circle.post.report")],
)
async def report_post(
    circle_id: uuid.UUID, post_id: uuid.UUID, body: ReportCreate, principal: Professional, db: Db
) -> ReportOut:
    return await db.run(circle_moderation.report, principal, circle_id, post_id, body, utcnow())


@router.get(
    "/reports",
    operation_id="listCircleReports",
    summary="The latest reports of the circle's posts, newest first (moderators)",
    response_model=ReportList,
    responses=problems(401, 403, 404, 422),
    dependencies=[on_circle("circle.report.list")],
)
async def list_reports(
    circle_id: uuid.UUID, principal: Professional, db: Db, limit: Limit = 50
) -> ReportList:
    return await db.run(circle_moderation.reports, principal, circle_id, limit)


@router.post(
    "/sessions",
    operation_id="openCircleSession",
    summary="Open a co-development session on one's own top-level post, with a facilitator and a deadline",
    status_code=status.HTTP_201_CREATED,
    response_model=SessionOut,
    responses=problems(400, 401, 403, 404, 409, 413, 422, 429),
    dependencies=[on_circle("circle.session.open")],
)
async def open_session(
    circle_id: uuid.UUID, body: SessionOpen, principal: Professional, db: Db
) -> SessionOut:
    return await db.run(circle_sessions.open_session, principal, circle_id, body, utcnow())


@router.post(
    "/sessions/{session_id}/rounds",
    operation_id="advanceCircleSession",
    summary="Move a session to its next round (the facilitator or a moderator)",
    response_model=SessionOut,
    responses=problems(400, 401, 403, 404, 409, 413, 422, 429),
    dependencies=[on_circle("circle.session.round")],
)
async def advance_session(
    circle_id: uuid.UUID, session_id: uuid.UUID, body: RoundMove, principal: Professional, db: Db
) -> SessionOut:
    return await db.run(circle_sessions.advance, principal, circle_id, session_id, body, utcnow())


@router.get(
    "/sessions/{session_id}",
    operation_id="getCircleSession",
    summary="A session: presenter (as on its post), facilitator, current round, deadline, rounds' history",
    response_model=SessionOut,
    responses=problems(401, 403, 404, 422),
    dependencies=[on_circle("circle.session.read")],
)
async def get_session(
    circle_id: uuid.UUID, session_id: uuid.UUID, principal: Professional, db: Db
) -> SessionOut:
    return await db.run(circle_sessions.read, principal, circle_id, session_id)
