"""A case's thread (sealed messages) and its attachments: sealed files streamed through the blob store."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Annotated, BinaryIO

from fastapi import APIRouter, File, Form, Query, UploadFile, status
from fastapi.responses import StreamingResponse
from pydantic import Json
from starlette.concurrency import run_in_threadpool

from app.audit.records import Resource
from app.deps import BlobStoreDep, CurrentPrincipal, Db, SettingsDep, TrailDep
from app.models.base import utcnow
from app.platform.blobstore import CHUNK_BYTES
from app.routers.cases import on_case
from app.runtime.body_limits import LargeBody, large_body
from app.runtime.context import audited
from app.schemas.cases import AttachmentMeta, AttachmentOut, MessageCreate, MessageOut, MessagePage
from app.schemas.common import problems
from app.services import attachments, messages

router = APIRouter(prefix="/v1/cases/{case_id}", tags=["cases"])


@router.get(
    "/messages",
    operation_id="listCaseMessages",
    summary="The case's thread, oldest first, each message sealed (cursor pagination)",
    response_model=MessagePage,
    responses=problems(401, 404, 422),
    dependencies=[on_case("case.message.list")],
)
async def list_messages(
    case_id: uuid.UUID,
    principal: CurrentPrincipal,
    db: Db,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> MessagePage:
    return await db.run(messages.thread, principal, case_id, limit=limit, cursor=cursor)


@router.post(
    "/messages",
    operation_id="postCaseMessage",
    summary="Add a sealed message, information request or response, or the report",
    status_code=status.HTTP_201_CREATED,
    response_model=MessageOut,
    responses=problems(400, 401, 403, 404, 409, 413, 422, 429),
    dependencies=[audited("case.message.create"), large_body(LargeBody.SEALED_CASE_CONTENT)],
)
async def post_message(
    case_id: uuid.UUID,
    body: MessageCreate,
    principal: CurrentPrincipal,
    db: Db,
    settings: SettingsDep,
    trail: TrailDep,
) -> MessageOut:
    trail.resource = Resource(type="message", id=str(body.id), case_id=case_id)
    return await db.run(messages.post, principal, case_id, body, settings, utcnow())


@router.post(
    "/attachments",
    operation_id="uploadCaseAttachment",
    summary="Upload a sealed attachment: `meta` (JSON) then the `ciphertext` file part, streamed",
    status_code=status.HTTP_201_CREATED,
    response_model=AttachmentOut,
    responses=problems(400, 401, 403, 404, 409, 413, 422, 429),
    dependencies=[audited("case.attachment.create"), large_body(LargeBody.ATTACHMENT)],
)
async def upload_attachment(
    case_id: uuid.UUID,
    meta: Annotated[Json[AttachmentMeta], Form(description="The sealed object but its ciphertext, as JSON.")],
    ciphertext: Annotated[UploadFile, File(description="`nonce || AES-256-GCM(file)`, opaque bytes.")],
    principal: CurrentPrincipal,
    db: Db,
    settings: SettingsDep,
    blobs: BlobStoreDep,
    trail: TrailDep,
) -> AttachmentOut:
    trail.resource = Resource(type="attachment", id=str(meta.id), case_id=case_id)
    return await db.run(
        attachments.upload, principal, case_id, meta, ciphertext.file, blobs, settings, utcnow()
    )


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    with stream:
        while chunk := stream.read(CHUNK_BYTES):
            yield chunk


@router.get(
    "/attachments/{attachment_id}",
    operation_id="downloadCaseAttachment",
    summary="An attachment's ciphertext, streamed; its SHA-256 in X-Content-SHA256",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The ciphertext; verify it against the signed manifest before decrypting.",
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        },
        **problems(401, 404, 422),
    },
    dependencies=[
        audited("case.attachment.read", resource="attachment", id_param="attachment_id", case_param="case_id")
    ],
)
async def download_attachment(
    case_id: uuid.UUID,
    attachment_id: uuid.UUID,
    principal: CurrentPrincipal,
    db: Db,
    blobs: BlobStoreDep,
) -> StreamingResponse:
    row = await db.run(attachments.find, principal, case_id, attachment_id)
    # Opening an object of the S3 backend is a request to the store: off the event loop, as the reads are.
    stream = await run_in_threadpool(blobs.open, row.ciphertext_sha256)
    return StreamingResponse(
        _chunks(stream),
        media_type="application/octet-stream",
        headers={"Content-Length": str(row.ciphertext_size), "X-Content-SHA256": row.ciphertext_sha256},
    )
