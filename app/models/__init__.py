"""Every table, imported here so that Alembic and the metadata see them all."""

from app.models.audit import AuditCheckpoint, AuditExport, AuditLogState, AuditRecord, AuditTreeNode
from app.models.auth import AuthSession, LoginThrottle, RefreshToken
from app.models.cases import Case, CaseObject, CaseShare, Envelope
from app.models.circles import (
    Circle,
    CircleEpoch,
    CircleEpochStatement,
    CircleEpochWrap,
    CircleMember,
    CirclePost,
    CirclePseudonym,
    CirclePseudonymKey,
    CircleReaction,
    CircleReport,
    CircleSession,
    CircleSessionRound,
)
from app.models.devices import Device, DeviceChallenge, KeyBackup
from app.models.directory import (
    DirectoryCheckpoint,
    DirectoryEntry,
    DirectoryLogState,
    DirectoryTreeNode,
)
from app.models.limits import RateLimitBucket
from app.models.notifications import Event, EventRecipient, Webhook, WebhookDelivery
from app.models.specialties import Specialty
from app.models.users import User, UserRole, UserSpecialty

__all__ = [
    "AuditCheckpoint",
    "AuditExport",
    "AuditLogState",
    "AuditRecord",
    "AuditTreeNode",
    "AuthSession",
    "Case",
    "CaseObject",
    "CaseShare",
    "Circle",
    "CircleEpoch",
    "CircleEpochStatement",
    "CircleEpochWrap",
    "CircleMember",
    "CirclePost",
    "CirclePseudonym",
    "CirclePseudonymKey",
    "CircleReaction",
    "CircleReport",
    "CircleSession",
    "CircleSessionRound",
    "Device",
    "DeviceChallenge",
    "DirectoryCheckpoint",
    "DirectoryEntry",
    "DirectoryLogState",
    "DirectoryTreeNode",
    "Envelope",
    "Event",
    "EventRecipient",
    "KeyBackup",
    "LoginThrottle",
    "RateLimitBucket",
    "RefreshToken",
    "Specialty",
    "User",
    "UserRole",
    "UserSpecialty",
    "Webhook",
    "WebhookDelivery",
]
