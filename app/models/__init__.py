"""Every table, imported here so that Alembic and the metadata see them all."""

from app.models.audit import AuditRecord
from app.models.auth import AuthSession, LoginThrottle, RefreshToken
from app.models.specialties import Specialty
from app.models.users import User, UserRole, UserSpecialty

__all__ = [
    "AuditRecord",
    "AuthSession",
    "LoginThrottle",
    "RefreshToken",
    "Specialty",
    "User",
    "UserRole",
    "UserSpecialty",
]
