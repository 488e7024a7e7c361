"""Attachments: sealed photos and documents. The ciphertext streams into the blob store while it is hashed,
and is published only once the signed manifest vouches for that hash; the sealed metadata is a CaseObject."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import BinaryIO

from sqlmodel import Session, select

from app.authz.principal import Principal
from app.config import Settings
from app.errors import NotFound, PayloadTooLarge
from app.models.cases import CaseObject
from app.platform.blobstore import BlobStore, BlobTooLarge
from app.schemas.cases import AttachmentMeta, AttachmentOut
from app.services import sealed
from app.services.cases import load_visible, require_writer


class AttachmentNotFound(NotFound):
    code = "attachment_not_found"
    title = "No such attachment"


def upload(
    session: Session,
    principal: Principal,
    case_id: uuid.UUID,
    meta: AttachmentMeta,
    ciphertext: BinaryIO,
    blobs: BlobStore,
    settings: Settings,
    now: datetime,
) -> AttachmentOut:
    visible = load_visible(session, principal, case_id)
    require_writer(principal, visible, "attachment")
    target = visible.target("attachment", meta.id)
    try:
        with blobs.put(ciphertext, max_bytes=settings.max_attachment_bytes) as blob:
            digest = bytes.fromhex(blob.sha256)
            verified = sealed.verify(
                session, principal, target, meta, digest, blob.size, settings.max_envelopes_per_request
            )
            blob.commit()
    except BlobTooLarge:
        raise PayloadTooLarge(f"an attachment holds at most {settings.max_attachment_bytes} bytes") from None
    row = sealed.store(
        session,
        principal,
        target,
        meta,
        verified,
        ciphertext=None,
        ciphertext_sha256=digest,
        ciphertext_size=blob.size,
        now=now,
    )
    return AttachmentOut.model_validate(row)


def referenced_blobs(session: Session, hashes: Iterable[str]) -> set[str]:
    """Those of these blob hashes that an attachment row names (in batches: an IN list has limits)."""
    wanted, found = sorted(hashes), set()
    for start in range(0, len(wanted), 500):
        batch = wanted[start : start + 500]
        rows = session.exec(
            select(CaseObject.ciphertext_sha256).where(
                CaseObject.kind == "attachment", CaseObject.ciphertext_sha256.in_(batch)
            )
        )
        found.update(rows.all())
    return found


def find(session: Session, principal: Principal, case_id: uuid.UUID, attachment_id: uuid.UUID) -> CaseObject:
    case = load_visible(session, principal, case_id).case
    row = session.exec(
        select(CaseObject).where(
            CaseObject.id == attachment_id, CaseObject.case_id == case.id, CaseObject.kind == "attachment"
        )
    ).first()
    if row is None:
        raise AttachmentNotFound()
    return row
