"""Specialties cases are routed to."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, or_, select

from app.errors import Conflict
from app.models.specialties import Specialty
from app.schemas.specialties import SpecialtyCreate


class SpecialtyExists(Conflict):
    code = "specialty_exists"
    title = "A specialty with this code or SNOMED CT code exists"


def list_active(session: Session) -> list[Specialty]:
    return list(session.exec(select(Specialty).where(Specialty.active).order_by(col(Specialty.code))).all())


def create(session: Session, request: SpecialtyCreate) -> Specialty:
    clash = session.exec(
        select(Specialty).where(
            or_(col(Specialty.code) == request.code, col(Specialty.snomed_code) == request.snomed_code)
        )
    ).first()
    if clash is not None:
        raise SpecialtyExists()
    specialty = Specialty(**request.model_dump())
    session.add(specialty)
    try:
        # Two admins adding one code at once both find no clash; the database's unique keys pick one.
        session.flush()
    except IntegrityError:
        raise SpecialtyExists() from None
    return specialty
