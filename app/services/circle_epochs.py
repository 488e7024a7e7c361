"""Circle epochs: the server's checks of a rotation or a grant (docs/e2ee.md section 20) and each device's
wraps. The server never holds an epoch key: it checks that a rotation wraps the new key for exactly the
active devices of the circle's members, that a grant only adds wraps for members' devices and commits to
its epoch's key, and that the author is the caller's active device. A non-member's device never receives
a wrap, and a device is only ever served its own."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import insert, update
from sqlmodel import Session, col, select

from app.authz import circles as policies
from app.authz.principal import Principal
from app.crypto.circles import CircleError, EpochStatement, check_epoch_upload, check_grant_commitment
from app.crypto.e2ee import Suite
from app.errors import Conflict, InvalidInput, RecipientNotEligible
from app.models.circles import (
    Circle,
    CircleEpoch,
    CircleEpochStatement,
    CircleEpochWrap,
    EpochStatementKind,
)
from app.models.devices import Device
from app.schemas.circles import EpochList, EpochUpload, EpochUploaded, HeldEpoch
from app.services import circle_members, devices
from app.services.circles import Place, active_members, load
from app.services.e2ee_errors import e2ee_checks
from app.services.inserts import flush_new
from app.services.sealed import ObjectMismatch, signing_device


class MembersChanged(Conflict):
    code = "members_changed"
    title = "The members' devices differ from the rotation's wraps: fetch the recipients again and retry"


class EpochConflict(Conflict):
    code = "epoch_conflict"
    title = "Another member posted this epoch first: fetch the epochs and use the current one"


class EpochNotFound(InvalidInput):
    code = "epoch_not_found"
    title = "A grant names an epoch that does not exist"


class WrapAlreadyHeld(Conflict):
    code = "wrap_already_held"
    title = "A device already holds a wrap of this epoch"


class DeviceRequired(InvalidInput):
    code = "device_required"
    title = "Send X-Confrere-Device: the device whose wraps to list"


def _store_statement(
    session: Session,
    principal: Principal,
    place: Place,
    statement: EpochStatement,
    request: EpochUpload,
    now: datetime,
) -> CircleEpochStatement:
    row = CircleEpochStatement(
        circle_id=place.circle.id,
        epoch=statement.epoch,
        kind=statement.kind,
        statement=request.statement,
        signature=request.signature,
        author_id=principal.id,
        author_device_id=uuid.UUID(statement.author_device_id),
        created_at=now,
    )
    session.add(row)
    session.flush()
    session.execute(
        insert(CircleEpochWrap),
        [
            {
                "circle_id": place.circle.id,
                "epoch": statement.epoch,
                "device_id": device_id,
                "statement_id": row.id,
                "wrap": wrap,
            }
            for device_id, wrap in request.wraps.items()
        ],
    )
    return row


def upload(
    session: Session, principal: Principal, circle_id: uuid.UUID, request: EpochUpload, now: datetime
) -> EpochUploaded:
    place = load(session, principal, circle_id, for_update=True)
    with e2ee_checks():
        claimed = EpochStatement.parse(request.statement)
    if claimed.circle_id != str(circle_id):
        raise ObjectMismatch("the statement names another circle")
    author = signing_device(session, principal.id, uuid.UUID(claimed.author_device_id))
    wraps = {str(device_id): wrap for device_id, wrap in request.wraps.items()}
    if claimed.kind == EpochStatementKind.ROTATE:
        targets = {str(device.id): device for device in circle_members.recipient_devices(session, circle_id)}
        if set(wraps) != set(targets):
            raise MembersChanged()
        if claimed.epoch != place.circle.current_epoch + 1:
            raise EpochConflict()
    else:
        targets = _grant_targets(session, place, claimed.epoch, wraps)
    with e2ee_checks():
        statement = check_epoch_upload(
            request.statement,
            request.signature,
            wraps,
            author.signing_public_key,
            {device_id: Suite(device.suite) for device_id, device in targets.items()},
        )
    if statement.kind == EpochStatementKind.ROTATE:
        _rotate(session, place, statement)
    else:
        _check_grant(session, place, statement)
    _store_statement(session, principal, place, statement, request, now)
    return EpochUploaded(
        epoch=statement.epoch,
        kind=statement.kind,
        wrap_count=len(wraps),
        current_epoch=place.circle.current_epoch,
    )


def _rotate(session: Session, place: Place, statement: EpochStatement) -> None:
    """One rotation per epoch number: the circle moves only from the epoch the statement follows, so of
    two members rotating at once one wins and the other gets epoch_conflict."""
    moved = session.exec(
        update(Circle)
        .where(col(Circle.id) == place.circle.id, col(Circle.current_epoch) == statement.epoch - 1)
        .values(current_epoch=statement.epoch, rotation_required=False)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:
        raise EpochConflict()
    session.add(
        CircleEpoch(circle_id=place.circle.id, epoch=statement.epoch, key_commitment=statement.key_commitment)
    )
    flush_new(session, EpochConflict())
    session.refresh(place.circle)


def _grant_targets(session: Session, place: Place, epoch: int, wraps: dict[str, bytes]) -> dict[str, Device]:
    """A grant adds wraps for members' active devices only: of an epoch the member joined by, or of an
    older one when a moderator shares it."""
    found = session.exec(
        select(Device).where(col(Device.id).in_([uuid.UUID(device_id) for device_id in wraps]))
    )
    by_id = {str(device.id): device for device in found}
    members = {member.user_id: member for member in active_members(session, place.circle.id)}
    moderator = policies.is_moderator(place.membership)
    for device_id in wraps:
        device = by_id.get(device_id)
        member = members.get(device.user_id) if device is not None else None
        if device is None or not device.is_active or member is None:
            raise RecipientNotEligible("a wrap targets a device of no member of the circle")
        if epoch < (member.joined_epoch or 0) and not moderator:
            raise RecipientNotEligible("only a moderator shares an epoch older than a member's joining")
    return by_id


def _check_grant(session: Session, place: Place, grant: EpochStatement) -> None:
    rotation_row = session.exec(
        select(CircleEpochStatement).where(
            col(CircleEpochStatement.circle_id) == place.circle.id,
            col(CircleEpochStatement.epoch) == grant.epoch,
            col(CircleEpochStatement.kind) == EpochStatementKind.ROTATE,
        )
    ).first()
    if rotation_row is None:
        raise EpochNotFound()
    with e2ee_checks():
        check_grant_commitment(grant, EpochStatement.parse(rotation_row.statement))
    held = session.exec(
        select(CircleEpochWrap.device_id).where(
            col(CircleEpochWrap.circle_id) == place.circle.id,
            col(CircleEpochWrap.epoch) == grant.epoch,
            col(CircleEpochWrap.device_id).in_([uuid.UUID(device_id) for device_id in grant.wraps]),
        )
    ).first()
    if held is not None:
        raise WrapAlreadyHeld()


def held(
    session: Session, principal: Principal, circle_id: uuid.UUID, device_id: uuid.UUID | None
) -> EpochList:
    """The caller's device's own wraps, with the statements they came with (never another device's)."""
    place = load(session, principal, circle_id)
    if device_id is None:
        raise DeviceRequired()
    rows = session.exec(
        select(CircleEpochWrap, CircleEpochStatement)
        .join(CircleEpochStatement, col(CircleEpochStatement.id) == CircleEpochWrap.statement_id)
        .where(col(CircleEpochWrap.circle_id) == circle_id, col(CircleEpochWrap.device_id) == device_id)
        .order_by(col(CircleEpochWrap.epoch))
    ).all()
    authors = {
        device.id: device
        for device in session.exec(
            select(Device).where(col(Device.id).in_({statement.author_device_id for _, statement in rows}))
        ).all()
    }
    return EpochList(
        device_id=device_id,
        current_epoch=place.circle.current_epoch,
        rotation_required=place.circle.rotation_required,
        epochs=[
            HeldEpoch(
                epoch=wrap.epoch,
                kind=statement.kind,
                statement=statement.statement,
                signature=statement.signature,
                author_device=devices.directory_entry(authors[statement.author_device_id]),
                wrap=wrap.wrap,
            )
            for wrap, statement in rows
        ],
    )


def statement_kind(raw: bytes) -> str:
    """The kind an uploaded statement claims, for the audit record's action (rotate unless it says grant;
    the upload's checks refuse anything malformed)."""
    try:
        return EpochStatement.parse(raw).kind
    except CircleError:
        return EpochStatementKind.ROTATE.value
