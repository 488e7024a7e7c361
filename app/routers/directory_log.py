"""The device directory log, public: anyone may monitor it (it holds user and device ids and public keys,
nothing else). The same checkpoint, proofs and C2SP tlog-tiles as the audit log (docs/key-transparency.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.deps import SessionDep, unaudited
from app.directory.log import DIRECTORY_LOG
from app.routers.audit import IMMUTABLE, LOG_KEY_HEADER, NOTE_MEDIA_TYPE
from app.schemas.audit import ConsistencyProofOut, InclusionProofOut
from app.schemas.common import problems
from app.services import audit

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
        **problems(503),
    },
    dependencies=[_PUBLIC],
)
def get_checkpoint(session: SessionDep, request: Request) -> Response:
    headers = {LOG_KEY_HEADER: request.app.state.directory_log.signer.verifier().key_string}
    return Response(
        audit.head(session, DIRECTORY_LOG).checkpoint, media_type=NOTE_MEDIA_TYPE, headers=headers
    )


@router.get(
    "/proof/inclusion",
    operation_id="getDirectoryInclusionProof",
    summary="Prove that the entry at a position is in the directory log's tree of a given size",
    response_model=InclusionProofOut,
    responses=problems(404, 422, 503),
    dependencies=[_PUBLIC],
)
def get_inclusion_proof(
    session: SessionDep,
    index: Annotated[int, Query(ge=0, lt=2**63)],
    tree_size: Annotated[int | None, Query(ge=1, lt=2**63, description="Default: the latest.")] = None,
) -> InclusionProofOut:
    return InclusionProofOut.of(audit.inclusion(session, index, tree_size, DIRECTORY_LOG))


@router.get(
    "/proof/consistency",
    operation_id="getDirectoryConsistencyProof",
    summary="Prove that the directory log of size `first` is a prefix of the log of size `second`",
    response_model=ConsistencyProofOut,
    responses=problems(404, 422, 503),
    dependencies=[_PUBLIC],
)
def get_consistency_proof(
    session: SessionDep,
    first: Annotated[int, Query(ge=0, lt=2**63)],
    second: Annotated[int | None, Query(ge=0, lt=2**63, description="Default: the latest.")] = None,
) -> ConsistencyProofOut:
    return ConsistencyProofOut.of(audit.consistency(session, first, second, DIRECTORY_LOG))


@router.get(
    "/log/checkpoint",
    operation_id="getDirectoryTlogCheckpoint",
    summary="C2SP tlog-tiles: the directory log's latest checkpoint",
    response_class=Response,
    responses={200: _NOTE, **problems(503)},
    dependencies=[_PUBLIC],
)
def get_tlog_checkpoint(session: SessionDep) -> Response:
    return Response(audit.head(session, DIRECTORY_LOG).checkpoint, media_type=NOTE_MEDIA_TYPE)


@router.get(
    "/log/tile/{path:path}",
    operation_id="getDirectoryTile",
    summary="C2SP tlog-tiles: a hash tile `<L>/<N>[.p/<W>]` or an entry bundle `entries/<N>[.p/<W>]`",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}, **problems(404, 503)},
    dependencies=[_PUBLIC],
)
def get_tile(path: str, session: SessionDep) -> Response:
    data = audit.tile(session, f"tile/{path}", DIRECTORY_LOG)
    return Response(data, media_type="application/octet-stream", headers={"Cache-Control": IMMUTABLE})
