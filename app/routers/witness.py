"""Witnesses of the audit log post cosignatures of its checkpoints; anyone reads the cosigned checkpoint.

Both routes are public: a cosignature authenticates itself (a witness key the admin configured), and a
checkpoint is a size and a hash. docs/audit-log.md, Witnesses.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Response, status
from sqlmodel import Session

from app.audit import witnesses
from app.audit.records import Purpose, Resource
from app.crypto.cosignature import WitnessKey
from app.deps import AddressWriteLimit, Db, RuntimeDep, TrailDep
from app.models.base import utcnow
from app.routers.audit import NOTE_MEDIA_TYPE
from app.runtime.context import audited, unaudited
from app.schemas.audit import CosignatureAccepted
from app.schemas.common import problems

router = APIRouter(prefix="/v1/audit/witness", tags=["audit"])
_COSIGNED_EXAMPLE = (
    "confrere.local/audit\n42\nKj3…=\n\n"
    "— confrere.local/audit KKBD…=\n— dpo.hospital.example/witness jWbP…==\n"
)


@router.get(
    "/checkpoint",
    operation_id="getAuditCosignedCheckpoint",
    summary="The latest checkpoint cosigned by every configured witness, with their cosignatures (public)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"example": _COSIGNED_EXAMPLE}}}, **problems(404)},
    dependencies=[unaudited("public signed tree head and witness cosignatures: sizes and hashes")],
)
async def get_cosigned_checkpoint(db: Db, runtime: RuntimeDep) -> Response:
    note = await db.run(_latest_cosigned, runtime.settings.witnesses)
    return Response(note, media_type=NOTE_MEDIA_TYPE)


def _latest_cosigned(session: Session, configured: list[WitnessKey]) -> bytes:
    return witnesses.cosigned_note(session, witnesses.latest_witnessed_size(session, configured), configured)


@router.post(
    "/cosignatures",
    operation_id="postAuditCosignature",
    summary="A witness posts its C2SP tlog-cosignature of a checkpoint: the signed note plus its line",
    status_code=status.HTTP_201_CREATED,
    response_model=CosignatureAccepted,
    responses=problems(400, 403, 413, 422, 429),
    dependencies=[
        audited("audit.cosignature.create", resource="audit_checkpoint", purpose=Purpose.COMPLIANCE),
        AddressWriteLimit,
    ],
)
async def post_cosignature(
    note: Annotated[str, Body(media_type="text/plain", max_length=4096, examples=[_COSIGNED_EXAMPLE])],
    db: Db,
    runtime: RuntimeDep,
    trail: TrailDep,
) -> CosignatureAccepted:
    log_key, configured = runtime.audit_log_signer.verifier(), runtime.settings.witnesses
    stored = await db.run(witnesses.accept, note.encode(), log_key, configured, utcnow())
    trail.resource = Resource(type="audit_checkpoint", id=str(stored.size))
    return CosignatureAccepted(tree_size=stored.size, witnesses=list(stored.witnesses))
