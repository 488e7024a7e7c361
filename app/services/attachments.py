"""Attachments: sealed photos and documents. The ciphertext streams into the blob store while it is hashed,
and is published only once the signed manifest vouches for that hash; the sealed metadata is a CaseObject."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import BinaryIO

from sqlalchemy import func
from sqlmodel import Session, col, select

from app.authz.principal import Principal
from app.config import Settings
from app.errors import NotFound, PayloadTooLarge, readable_size
from app.models.cases import CaseObject, ObjectKind
from app.platform.blobstore import BlobStore, BlobTooLarge
from app.schemas.cases import AttachmentMeta, AttachmentOut
from app.services import sealed
from app.services.cases import load_visible, require_writer

# pg_advisory_xact_lock key: "cfblobs" in ASCII (the sequencers and jobs hold others).
PUBLICATION_LOCK_KEY = 0x63_66_62_6C_6F_62_73


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
    require_writer(principal, visible, ObjectKind.ATTACHMENT)
    target = visible.target(ObjectKind.ATTACHMENT, meta.id)
    try:
        with blobs.put(ciphertext, max_bytes=settings.max_attachment_bytes) as blob:
            digest = bytes.fromhex(blob.sha256)
            verified = sealed.verify(session, principal, target, meta, digest, blob.size, settings)
            hold_publications(session, exclusive=False)
            blob.commit()
    except BlobTooLarge:
        raise PayloadTooLarge(
            f"an attachment holds at most {readable_size(settings.max_attachment_bytes)}"
        ) from None
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


def hold_publications(session: Session, *, exclusive: bool) -> None:
    """Until the transaction ends: shared, an upload may publish its blob; exclusive, none may (the sweep,
    app.platform.blobstore.sweep, which so never removes a blob that an upload's row is about to name). On
    PostgreSQL an advisory lock shared by every node; on SQLite nothing to take: every writing transaction, an
    upload's from its first read to its commit, already holds the database's single write lock."""
    if session.get_bind().dialect.name == "postgresql":
        lock = func.pg_advisory_xact_lock if exclusive else func.pg_advisory_xact_lock_shared
        session.execute(select(lock(PUBLICATION_LOCK_KEY)))
    else:
        session.connection()  # begins the transaction, and with it SQLite's write lock (app.runtime.database)


def referenced_blobs(session: Session, hashes: Iterable[str]) -> set[str]:
    """Those of these blob hashes that an attachment row names (in batches: an IN list has limits)."""
    wanted, found = sorted(hashes), set[str]()
    for start in range(0, len(wanted), 500):
        batch = wanted[start : start + 500]
        rows = session.exec(
            select(CaseObject.ciphertext_sha256).where(
                col(CaseObject.kind) == ObjectKind.ATTACHMENT, col(CaseObject.ciphertext_sha256).in_(batch)
            )
        )
        found.update(rows.all())
    return found


def find(session: Session, principal: Principal, case_id: uuid.UUID, attachment_id: uuid.UUID) -> CaseObject:
    case = load_visible(session, principal, case_id).case
    row = session.exec(
        select(CaseObject).where(
            col(CaseObject.id) == attachment_id,
            col(CaseObject.case_id) == case.id,
            col(CaseObject.kind) == ObjectKind.ATTACHMENT,
        )
    ).first()
    if row is None:
        raise AttachmentNotFound()
    return row
