"""Witnesses of the audit log post cosignatures of its checkpoints; anyone reads the cosigned checkpoint.

Both routes are public: a cosignature authenticates itself (a witness key the admin configured), and a
checkpoint is a size and a hash. docs/audit-log.md, Witnesses.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Response, status

from app.audit import witnesses
from app.audit.records import Purpose, Resource
from app.deps import AddressWriteLimit, SessionDep, SettingsDep, TrailDep, audited, unaudited
from app.models.base import utcnow
from app.routers.audit import NOTE_MEDIA_TYPE, AuditSigner
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
def get_cosigned_checkpoint(session: SessionDep, settings: SettingsDep) -> Response:
    size = witnesses.latest_witnessed_size(session, settings.witnesses)
    return Response(witnesses.cosigned_note(session, size, settings.witnesses), media_type=NOTE_MEDIA_TYPE)


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
def post_cosignature(
    note: Annotated[str, Body(media_type="text/plain", max_length=4096, examples=[_COSIGNED_EXAMPLE])],
    session: SessionDep,
    settings: SettingsDep,
    signer: AuditSigner,
    trail: TrailDep,
) -> CosignatureAccepted:
    stored = witnesses.accept(session, note.encode(), signer.verifier(), settings.witnesses, utcnow())
    trail.resource = Resource(type="audit_checkpoint", id=str(stored.size))
    return CosignatureAccepted(tree_size=stored.size, witnesses=list(stored.witnesses))
