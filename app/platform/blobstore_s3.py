"""The S3-compatible backend of the blob store (AWS S3, MinIO, Ceph, Garage), through boto3.

Keys: `<prefix>blobs/<sha256>` for published blobs, `<prefix>incoming/<random>` for uploads being checked.
An upload streams into an incoming object, in parts of `s3_part_bytes` (multipart upload once it exceeds
one part), hashing as it goes: it holds one part in memory, never the whole attachment. `commit` copies the
object to its hash's key inside the store (no byte passes through the node again) and the incoming object
is deleted either way. A download is the store's response body, read in chunks.

The sweep's ages are the store's Last-Modified times, compared with the sweeping machine's clock: the grace
period (an hour by default) must dwarf any skew between them.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from app.config import Settings
from app.platform.blobstore import (
    CHUNK_BYTES,
    SHA256_HEX,
    BlobMissing,
    BlobTooLarge,
    StoredBlob,
    check_sha256,
)

_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


class _S3Staged:
    def __init__(self, store: S3BlobStore, incoming_key: str, sha256: str, size: int):
        self.sha256, self.size = sha256, size
        self._store, self._incoming_key = store, incoming_key

    def commit(self) -> None:
        # A copy, even onto the same bytes, gives the blob a fresh Last-Modified: young again for the sweep.
        self._store.client.copy_object(
            Bucket=self._store.bucket,
            Key=self._store.key_of(self.sha256),
            CopySource={"Bucket": self._store.bucket, "Key": self._incoming_key},
        )


class S3BlobStore:
    def __init__(self, client: Any, bucket: str, *, prefix: str = "", part_bytes: int = 8 * 1024 * 1024):
        self.client, self.bucket, self.prefix, self.part_bytes = client, bucket, prefix, part_bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> S3BlobStore:
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            config=Config(
                retries={"mode": "standard"},
                # Path-style URLs work on every S3-compatible server; AWS itself picks its own.
                s3={"addressing_style": "path" if settings.s3_endpoint_url else "auto"},
                max_pool_connections=settings.db_pool_size,  # one per worker thread
            ),
        )
        assert settings.s3_bucket is not None  # Settings refuses s3 without a bucket
        return cls(client, settings.s3_bucket, prefix=settings.s3_prefix, part_bytes=settings.s3_part_bytes)

    def key_of(self, sha256: str) -> str:
        return f"{self.prefix}blobs/{check_sha256(sha256)}"

    @contextmanager
    def put(self, stream: BinaryIO, *, max_bytes: int) -> Iterator[_S3Staged]:
        key = f"{self.prefix}incoming/{uuid.uuid4().hex}"
        digest, size = hashlib.sha256(), 0
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            while True:
                part = _read_part(stream, self.part_bytes, max_bytes - size)
                size += len(part)
                digest.update(part)
                if len(part) < self.part_bytes and upload_id is None:  # all of it fits in one request
                    self.client.put_object(Bucket=self.bucket, Key=key, Body=part)
                    break
                if upload_id is None:
                    upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
                if part:
                    number = len(parts) + 1
                    etag = self.client.upload_part(
                        Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=part
                    )["ETag"]
                    parts.append({"PartNumber": number, "ETag": etag})
                if len(part) < self.part_bytes:
                    self.client.complete_multipart_upload(
                        Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                    )
                    upload_id = None
                    break
            yield _S3Staged(self, key, digest.hexdigest(), size)
        finally:
            if upload_id is not None:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def open(self, sha256: str) -> BinaryIO:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.key_of(sha256))["Body"]
        except ClientError as error:
            if _missing(error):
                raise BlobMissing(sha256) from None
            raise

    def exists(self, sha256: str) -> bool:
        return self.modified(sha256) is not None

    def delete(self, sha256: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key_of(sha256))

    def modified(self, sha256: str) -> float | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.key_of(sha256))
        except ClientError as error:
            if _missing(error):
                return None
            raise
        return head["LastModified"].timestamp()

    def blobs(self) -> Iterator[StoredBlob]:
        for item in self._listing(f"{self.prefix}blobs/"):
            name = item["Key"].rsplit("/", 1)[-1]
            if SHA256_HEX.fullmatch(name):
                yield StoredBlob(name, item["LastModified"].timestamp())

    def remove_interrupted(self, older_than: float, *, dry_run: bool) -> int:
        incoming = f"{self.prefix}incoming/"
        stale = [
            item["Key"] for item in self._listing(incoming) if item["LastModified"].timestamp() < older_than
        ]
        uploads = [
            upload
            for page in self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=incoming
            )
            for upload in page.get("Uploads", [])
            if upload["Initiated"].timestamp() < older_than
        ]
        if not dry_run:
            for key in stale:
                self.client.delete_object(Bucket=self.bucket, Key=key)
            for upload in uploads:
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
        return len(stale) + len(uploads)

    def _listing(self, prefix: str) -> Iterator[dict[str, Any]]:
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            yield from page.get("Contents", [])


def _read_part(stream: BinaryIO, part_bytes: int, allowed: int) -> bytes:
    """Up to `part_bytes` from `stream` (fewer only at its end); BlobTooLarge past `allowed`."""
    chunks, length = [], 0
    while length < part_bytes and (chunk := stream.read(min(CHUNK_BYTES, part_bytes - length))):
        length += len(chunk)
        if length > allowed:
            raise BlobTooLarge("the attachment is larger than allowed")
        chunks.append(chunk)
    return b"".join(chunks)


def _missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in _MISSING
