"""The audit log: its public checkpoint, and for compliance officers (with TOTP) proofs, tiles, queries and
export bundles. Every officer route is itself audited, with the compliance purpose."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Response, status
from fastapi.responses import FileResponse
from sqlmodel import Session

from app.audit import inspection
from app.audit.records import Purpose, Resource, recorded_tile_path
from app.deps import ComplianceOfficer, Db, ExportingOfficer, RuntimeDep, SettingsDep, TrailDep
from app.models.audit import AuditExport
from app.models.base import utcnow
from app.runtime.context import audited, unaudited
from app.schemas.audit import (
    AuditEventOut,
    AuditEventPage,
    AuditExportOut,
    ConsistencyProofOut,
    EventQuery,
    ExportCreate,
    InclusionProofOut,
)
from app.schemas.common import problems

router = APIRouter(prefix="/v1/audit", tags=["audit"])
LOG_KEY_HEADER = "X-Confrere-Log-Key"
NOTE_MEDIA_TYPE = "text/plain; charset=utf-8"
# A tile's path names its width, so its bytes never change, partial tiles included.
IMMUTABLE = "private, max-age=31536000, immutable"
COMPLIANCE = Purpose.COMPLIANCE
_NOTE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/plain": {"example": "confrere.local/audit\n42\n...\n\n— ...\n"}}}
}


def _declare(action: str, resource: str = "audit_log", id_param: str | None = None):
    return audited(action, resource=resource, id_param=id_param, purpose=COMPLIANCE)


@router.get(
    "/checkpoint",
    operation_id="getAuditCheckpoint",
    summary="The latest signed checkpoint (C2SP signed note); the verifier key is in X-Confrere-Log-Key",
    response_class=Response,
    responses={
        200: {
            **_NOTE[200],
            "headers": {
                LOG_KEY_HEADER: {
                    "description": "The log's verifier key string (C2SP note verifier key)",
                    "schema": {"type": "string"},
                }
            },
        },
        **problems(422, 503),
    },
    dependencies=[unaudited("public signed tree head: a size and a hash, no personal data")],
)
async def get_checkpoint(db: Db, runtime: RuntimeDep) -> Response:
    note = (await db.run(inspection.head)).checkpoint
    headers = {LOG_KEY_HEADER: runtime.audit_log_signer.verifier().key_string}
    return Response(note, media_type=NOTE_MEDIA_TYPE, headers=headers)


@router.get(
    "/proof/inclusion",
    operation_id="getAuditInclusionProof",
    summary="Prove that the record at a log position is in the tree of a given size",
    response_model=InclusionProofOut,
    responses=problems(401, 403, 404, 422, 503),
    dependencies=[_declare("audit.proof")],
)
async def get_inclusion_proof(
    _: ComplianceOfficer,
    db: Db,
    index: Annotated[int, Query(ge=0)],
    tree_size: Annotated[int | None, Query(ge=1, description="Default: the latest checkpoint.")] = None,
) -> InclusionProofOut:
    return InclusionProofOut.of(await db.run(inspection.inclusion, index, tree_size))


@router.get(
    "/proof/consistency",
    operation_id="getAuditConsistencyProof",
    summary="Prove that the tree of size `first` is a prefix of the tree of size `second` (public)",
    response_model=ConsistencyProofOut,
    responses=problems(404, 422, 503),
    dependencies=[unaudited("public: hashes of the log, which witnesses and anyone may check")],
)
async def get_consistency_proof(
    db: Db,
    first: Annotated[int, Query(ge=0)],
    second: Annotated[int | None, Query(ge=0, description="Default: the latest checkpoint.")] = None,
) -> ConsistencyProofOut:
    return ConsistencyProofOut.of(await db.run(inspection.consistency, first, second))


@router.get(
    "/log/checkpoint",
    operation_id="getAuditTlogCheckpoint",
    summary="C2SP tlog-tiles: the latest checkpoint",
    response_class=Response,
    responses={**_NOTE, **problems(401, 403, 503)},
    dependencies=[_declare("audit.tiles")],
)
async def get_tlog_checkpoint(_: ComplianceOfficer, db: Db) -> Response:
    return Response((await db.run(inspection.head)).checkpoint, media_type=NOTE_MEDIA_TYPE)


@router.get(
    "/log/tile/{path:path}",
    operation_id="getAuditTile",
    summary="C2SP tlog-tiles: a hash tile `<L>/<N>[.p/<W>]` or an entry bundle `entries/<N>[.p/<W>]`",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}, **problems(401, 403, 404, 503)},
    dependencies=[_declare("audit.tiles")],
)
async def get_tile(path: str, _: ComplianceOfficer, db: Db, trail: TrailDep) -> Response:
    trail.resource = Resource(type="audit_tile", id=recorded_tile_path(f"tile/{path}"))
    data = await db.run(inspection.tile, f"tile/{path}")
    return Response(data, media_type="application/octet-stream", headers={"Cache-Control": IMMUTABLE})


@router.get(
    "/events",
    operation_id="listAuditEvents",
    summary="Query audit records by time, actor, case, action and outcome (cursor pagination, id order)",
    response_model=AuditEventPage,
    responses=problems(401, 403, 422),
    dependencies=[_declare("audit.query")],
)
async def list_events(_: ComplianceOfficer, db: Db, query: Annotated[EventQuery, Query()]) -> AuditEventPage:
    page = await db.run(inspection.list_events, query.to_filter(), query.limit, query.cursor)
    items = [AuditEventOut(position=item.position, record=orjson.loads(item.record)) for item in page.items]
    return AuditEventPage(items=items, next_cursor=page.next_cursor)


def _export_out(session: Session, export: AuditExport) -> AuditExportOut:
    parameters = inspection.parameters_of(export)
    checkpoint = inspection.checkpoint_of(session, export)
    return AuditExportOut(
        id=export.id,
        created_at=export.created_at,
        status=export.status,
        kind=parameters["kind"],
        start=parameters["start"],
        end=parameters["end"],
        tree_size=export.tree_size,
        record_count=export.record_count,
        size_bytes=export.file_size,
        sha256=export.file_sha256,
        checkpoint=checkpoint.decode() if checkpoint else None,
        download=f"/v1/audit/exports/{export.id}",
    )


@router.post(
    "/exports",
    operation_id="createAuditExport",
    summary="Export records with their proofs as a bundle that verifies offline (`confrere audit verify`)",
    status_code=status.HTTP_201_CREATED,
    response_model=AuditExportOut,
    responses=problems(400, 401, 403, 413, 422, 429, 503),
    dependencies=[_declare("audit.export", resource="audit_export")],
)
async def create_export(
    body: ExportCreate,
    officer: ExportingOfficer,
    db: Db,
    runtime: RuntimeDep,
    trail: TrailDep,
) -> AuditExportOut:
    request = inspection.ExportRequest(
        start=body.start,
        end=body.end,
        event_filter=body.filters.to_filter() if body.filters else None,
        formats=tuple(dict.fromkeys(body.formats)),
        consistency_from=tuple(body.consistency_from),
        witnessed=body.witnessed,
    )
    export = await db.run(
        inspection.create_export,
        request,
        officer_id=officer.id,
        signer=runtime.audit_log_signer,
        witnesses=runtime.settings.witnesses,
        exports_dir=runtime.settings.exports_dir,
        now=utcnow(),
    )
    trail.resource = Resource(type="audit_export", id=str(export.id))
    return await db.run(_export_out, export)


@router.get(
    "/exports/{export_id}",
    operation_id="downloadAuditExport",
    summary="Download an export bundle (application/zip); only its creator may",
    response_class=FileResponse,
    responses={200: {"content": {"application/zip": {}}}, **problems(401, 403, 404, 422)},
    dependencies=[_declare("audit.export.download", resource="audit_export", id_param="export_id")],
)
async def download_export(
    export_id: uuid.UUID, officer: ComplianceOfficer, db: Db, settings: SettingsDep
) -> FileResponse:
    export, path = await db.run(inspection.export_file, export_id, officer.id, settings.exports_dir)
    return FileResponse(path, media_type="application/zip", filename=f"confrere-audit-{export.id}.zip")
