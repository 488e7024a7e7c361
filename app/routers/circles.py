"""Peer circles: creation, lists, membership, the recipient directory, epochs of keys and pseudonyms.

A circle the caller may not see answers 404 `circle_not_found`, exactly like a missing one; a member
without the right gets 403 with a stable code."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from app.deps import Db, Professional, TrailDep
from app.models.base import utcnow
from app.runtime.body_limits import LargeBody, large_body
from app.runtime.context import audited
from app.schemas.circles import (
    CircleCreate,
    CircleOut,
    CirclePage,
    EpochList,
    EpochUpload,
    EpochUploaded,
    InvitationCreate,
    MemberList,
    MembershipOut,
    PseudonymCreate,
    PseudonymCreated,
    PseudonymList,
    RoleUpdate,
)
from app.schemas.common import problems
from app.schemas.directory import ProvedDevices
from app.services import circle_epochs, circle_members, circle_pseudonyms, circles

router = APIRouter(prefix="/v1/circles", tags=["circles"])

Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=512)]


def on_circle(action: str):
    """The audit declaration of a route on one circle: the record names the circle."""
    return audited(action, resource="circle", id_param="circle_id")


@router.post(
    "",
    operation_id="createCircle",
    summary="Create a circle (open to an audience, or by invitation); the creator is its first moderator",
    status_code=status.HTTP_201_CREATED,
    response_model=CircleOut,
    responses=problems(400, 401, 403, 413, 422, 429),
    dependencies=[audited("circle.create")],
)
async def create_circle(body: CircleCreate, principal: Professional, db: Db) -> CircleOut:
    return await db.run(circles.create, principal, body, utcnow())


@router.get(
    "",
    operation_id="listCircles",
    summary="The caller's circles and invitations, or (joinable=true) open circles it may join; newest first",
    response_model=CirclePage,
    responses=problems(401, 403, 422),
    dependencies=[audited("circle.list")],
)
async def list_circles(
    principal: Professional, db: Db, joinable: bool = False, limit: Limit = 50, cursor: Cursor = None
) -> CirclePage:
    page = await db.run(circles.list_circles, principal, joinable=joinable, limit=limit, cursor=cursor)
    return CirclePage(items=page.items, next_cursor=page.next_cursor)


@router.get(
    "/{circle_id}",
    operation_id="getCircle",
    summary="A circle: name, description, access, audience, current epoch, the caller's role, member count",
    response_model=CircleOut,
    responses=problems(401, 403, 404, 422),
    dependencies=[on_circle("circle.read")],
)
async def get_circle(circle_id: uuid.UUID, principal: Professional, db: Db) -> CircleOut:
    return await db.run(circles.read, principal, circle_id)


@router.get(
    "/{circle_id}/members",
    operation_id="listCircleMembers",
    summary="The circle's members: name, profession, role (never a pseudonym)",
    response_model=MemberList,
    responses=problems(401, 403, 404, 422),
    dependencies=[on_circle("circle.member.list")],
)
async def list_members(circle_id: uuid.UUID, principal: Professional, db: Db) -> MemberList:
    return await db.run(circle_members.members, principal, circle_id)


@router.get(
    "/{circle_id}/recipients",
    operation_id="listCircleRecipients",
    summary="Every active device of every member, with directory proofs: what a rotation wraps for",
    response_model=ProvedDevices,
    responses=problems(401, 403, 404, 422),
    dependencies=[on_circle("circle.recipients")],
)
async def list_recipients(circle_id: uuid.UUID, principal: Professional, db: Db) -> ProvedDevices:
    return await db.run(circle_members.recipients, principal, circle_id)


@router.post(
    "/{circle_id}/join",
    operation_id="joinCircle",
    summary="Join an open circle of one's audience, or one the caller is invited to (the key must rotate)",
    response_model=MembershipOut,
    responses=problems(401, 403, 404, 409, 422, 429),
    dependencies=[on_circle("circle.join")],
)
async def join_circle(circle_id: uuid.UUID, principal: Professional, db: Db) -> MembershipOut:
    return await db.run(circle_members.join, principal, circle_id, utcnow())


@router.post(
    "/{circle_id}/leave",
    operation_id="leaveCircle",
    summary="Leave a circle (the key must rotate); the last moderator first promotes another member",
    response_model=MembershipOut,
    responses=problems(401, 403, 404, 409, 422, 429),
    dependencies=[on_circle("circle.leave")],
)
async def leave_circle(circle_id: uuid.UUID, principal: Professional, db: Db) -> MembershipOut:
    return await db.run(circle_members.leave, principal, circle_id, utcnow())


@router.post(
    "/{circle_id}/invitations",
    operation_id="inviteToCircle",
    summary="Invite a verified professional (moderators)",
    status_code=status.HTTP_201_CREATED,
    response_model=MembershipOut,
    responses=problems(400, 401, 403, 404, 409, 413, 422, 429),
    dependencies=[on_circle("circle.invite")],
)
async def invite(
    circle_id: uuid.UUID, body: InvitationCreate, principal: Professional, db: Db
) -> MembershipOut:
    return await db.run(circle_members.invite, principal, circle_id, body.user_id, utcnow())


@router.delete(
    "/{circle_id}/members/{user_id}",
    operation_id="removeCircleMember",
    summary="Remove a member (moderators; the key must rotate)",
    response_model=MembershipOut,
    responses=problems(401, 403, 404, 409, 422, 429),
    dependencies=[on_circle("circle.member.remove")],
)
async def remove_member(
    circle_id: uuid.UUID, user_id: uuid.UUID, principal: Professional, db: Db
) -> MembershipOut:
    return await db.run(circle_members.remove, principal, circle_id, user_id, utcnow())


@router.put(
    "/{circle_id}/members/{user_id}/role",
    operation_id="setCircleMemberRole",
    summary="Make a member a moderator, or a moderator a member (moderators)",
    response_model=MembershipOut,
    responses=problems(400, 401, 403, 404, 409, 413, 422, 429),
    dependencies=[on_circle("circle.member.role")],
)
async def set_role(
    circle_id: uuid.UUID, user_id: uuid.UUID, body: RoleUpdate, principal: Professional, db: Db
) -> MembershipOut:
    return await db.run(circle_members.set_role, principal, circle_id, user_id, body.role)


@router.post(
    "/{circle_id}/epochs",
    operation_id="postCircleEpoch",
    summary="Post a signed epoch statement with its wraps: a rotation (the next epoch, for exactly the "
    "members' devices) or a grant (more wraps of an existing epoch, for members' devices)",
    status_code=status.HTTP_201_CREATED,
    response_model=EpochUploaded,
    responses=problems(400, 401, 403, 404, 409, 413, 422, 429),
    dependencies=[on_circle("circle.epoch.rotate"), large_body(LargeBody.CIRCLE_EPOCH)],
)
async def post_epoch(
    circle_id: uuid.UUID, body: EpochUpload, principal: Professional, db: Db, trail: TrailDep
) -> EpochUploaded:
    trail.action = f"circle.epoch.{circle_epochs.statement_kind(body.statement)}"
    return await db.run(circle_epochs.upload, principal, circle_id, body, utcnow())


@router.get(
    "/{circle_id}/epochs",
    operation_id="listCircleEpochs",
    summary="The epochs the calling device (X-Confrere-Device) holds a wrap for, with their statements",
    response_model=EpochList,
    responses=problems(401, 403, 404, 422),
    dependencies=[on_circle("circle.epoch.read")],
)
async def list_epochs(circle_id: uuid.UUID, principal: Professional, db: Db, trail: TrailDep) -> EpochList:
    return await db.run(circle_epochs.held, principal, circle_id, trail.actor.device_id)


@router.post(
    "/{circle_id}/pseudonym",
    operation_id="createCirclePseudonym",
    summary="Create one's pseudonym in the circle, or bind one more device's key to it",
    status_code=status.HTTP_201_CREATED,
    response_model=PseudonymCreated,
    responses=problems(400, 401, 403, 404, 409, 413, 422, 429),
    dependencies=[on_circle("circle.pseudonym.create")],
)
async def create_pseudonym(
    circle_id: uuid.UUID, body: PseudonymCreate, principal: Professional, db: Db
) -> PseudonymCreated:
    return await db.run(circle_pseudonyms.create, principal, circle_id, body, utcnow())


@router.get(
    "/{circle_id}/pseudonyms",
    operation_id="listCirclePseudonyms",
    summary="Every pseudonym of the circle with its public keys (never who is behind it)",
    response_model=PseudonymList,
    responses=problems(401, 403, 404, 422),
    dependencies=[on_circle("circle.pseudonym.list")],
)
async def list_pseudonyms(circle_id: uuid.UUID, principal: Professional, db: Db) -> PseudonymList:
    return await db.run(circle_pseudonyms.listed, principal, circle_id)
