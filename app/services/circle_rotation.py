"""When a circle's key must change: every change of who may read it (a member joins, leaves or is removed,
a member's device is revoked, a member is suspended) sets `rotation_required`, which holds posts until a
member posts the next epoch for the new set of devices (app/services/circle_epochs.py)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col, select

from app.models.circles import Circle, CircleMember, MembershipStatus
from app.notifications import circle_events


def require_rotation(session: Session, circle_ids: list[uuid.UUID], now: datetime) -> None:
    """Holds posts until the next epoch; members hear it (circle.rotation.required)."""
    if not circle_ids:
        return
    session.execute(update(Circle).where(col(Circle.id).in_(circle_ids)).values(rotation_required=True))
    for circle_id in circle_ids:
        circle_events.rotation_required(session, circle_id, now)


def member_devices_changed(session: Session, user_id: uuid.UUID, now: datetime) -> None:
    """A member's device was revoked or the member suspended: every circle they are in rotates."""
    query = select(CircleMember.circle_id).where(
        col(CircleMember.user_id) == user_id, col(CircleMember.status) == MembershipStatus.ACTIVE
    )
    require_rotation(session, list(session.exec(query).all()), now)
