"""The device directory log, public: anyone may monitor it (it holds user and device ids and public keys,
nothing else). The same checkpoint, proofs and C2SP tlog-tiles as the audit log (docs/key-transparency.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.audit import inspection
from app.deps import Db, RuntimeDep
from app.directory.log import DIRECTORY_LOG
from app.routers.audit import IMMUTABLE, LOG_KEY_HEADER, NOTE_MEDIA_TYPE
from app.runtime.context import unaudited
from app.schemas.audit import ConsistencyProofOut, InclusionProofOut
from app.schemas.common import problems

router = APIRouter(prefix="/v1/directory", tags=["directory"])
_PUBLIC = unaudited("public device directory log: public keys and ids only, open to any monitor")
_NOTE = {"content": {"text/plain": {"example": "confrere.local/directory\n42\n...\n\n— ...\n"}}}


@router.get(
    "/checkpoint",
    operation_id="getDirectoryCheckpoint",
    summary="The directory log's latest signed checkpoint; its verifier key is in X-Confrere-Log-Key",
    response_class=Response,
    responses={
        200: {
            **_NOTE,
            "headers": {
                LOG_KEY_HEADER: {
                    "description": "The directory log's verifier key string (pin it; compare out of band)",
                    "schema": {"type": "string"},
                }
            },
        },
        **problems(422, 503),
    },
    dependencies=[_PUBLIC],
)
async def get_checkpoint(db: Db, runtime: RuntimeDep) -> Response:
    headers = {LOG_KEY_HEADER: runtime.directory_log.signer.verifier().key_string}
    note = (await db.run(inspection.head, DIRECTORY_LOG)).checkpoint
    return Response(note, media_type=NOTE_MEDIA_TYPE, headers=headers)


@router.get(
    "/proof/inclusion",
    operation_id="getDirectoryInclusionProof",
    summary="Prove that the entry at a position is in the directory log's tree of a given size",
    response_model=InclusionProofOut,
    responses=problems(404, 422, 503),
    dependencies=[_PUBLIC],
)
async def get_inclusion_proof(
    db: Db,
    index: Annotated[int, Query(ge=0, lt=2**63)],
    tree_size: Annotated[int | None, Query(ge=1, lt=2**63, description="Default: the latest.")] = None,
) -> InclusionProofOut:
    return InclusionProofOut.of(await db.run(inspection.inclusion, index, tree_size, DIRECTORY_LOG))


@router.get(
    "/proof/consistency",
    operation_id="getDirectoryConsistencyProof",
    summary="Prove that the directory log of size `first` is a prefix of the log of size `second`",
    response_model=ConsistencyProofOut,
    responses=problems(404, 422, 503),
    dependencies=[_PUBLIC],
)
async def get_consistency_proof(
    db: Db,
    first: Annotated[int, Query(ge=0, lt=2**63)],
    second: Annotated[int | None, Query(ge=0, lt=2**63, description="Default: the latest.")] = None,
) -> ConsistencyProofOut:
    return ConsistencyProofOut.of(await db.run(inspection.consistency, first, second, DIRECTORY_LOG))


@router.get(
    "/log/checkpoint",
    operation_id="getDirectoryTlogCheckpoint",
    summary="C2SP tlog-tiles: the directory log's latest checkpoint",
    response_class=Response,
    responses={200: _NOTE, **problems(422, 503)},
    dependencies=[_PUBLIC],
)
async def get_tlog_checkpoint(db: Db) -> Response:
    return Response((await db.run(inspection.head, DIRECTORY_LOG)).checkpoint, media_type=NOTE_MEDIA_TYPE)


@router.get(
    "/log/tile/{path:path}",
    operation_id="getDirectoryTile",
    summary="C2SP tlog-tiles: a hash tile `<L>/<N>[.p/<W>]` or an entry bundle `entries/<N>[.p/<W>]`",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}, **problems(404, 503)},
    dependencies=[_PUBLIC],
)
async def get_tile(path: str, db: Db) -> Response:
    data = await db.run(inspection.tile, f"tile/{path}", DIRECTORY_LOG)
    return Response(data, media_type="application/octet-stream", headers={"Cache-Control": IMMUTABLE})
