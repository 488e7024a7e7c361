"""Storage of opaque attachment ciphertexts, addressed by their SHA-256: one interface, two backends.

The file system (below) is the embedded default; an S3-compatible object store (blobstore_s3.py beside it)
serves several API nodes. `open_blob_store` picks one from the settings.

`put` copies a stream aside while hashing it and publishes nothing until the caller, having checked the
hash against the signed manifest, calls `commit()`: a refused upload leaves no blob behind. A blob committed
by a request whose transaction then rolls back (or whose process is killed before it commits) is an orphan:
harmless (content-addressed, unreferenced) and removed by `confrere blobs sweep` (`sweep` below), with what
uploads that a crash interrupted left aside.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import BinaryIO, Protocol

from app.config import BlobBackend, Settings

CHUNK_BYTES = 1024 * 1024
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
INCOMING_PREFIX = ".incoming-"
SWEEP_BATCH = 500


@dataclass
class SweepReport:
    orphans: list[str] = field(default_factory=list)  # hashes of unreferenced blobs (removed unless dry run)
    interrupted: int = 0  # what uploads that never finished left aside
    young: int = 0  # unreferenced blobs within the grace period: maybe an upload about to commit


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    modified: float  # Unix time of its last publication


class BlobTooLarge(ValueError):
    pass


class BlobMissing(FileNotFoundError):
    pass


class IncomingBlob(Protocol):
    sha256: str
    size: int

    def commit(self) -> None:
        """Publish the bytes under their hash (idempotent: the same bytes may already be there). Publishing
        again makes the blob young again (see `sweep`)."""


class BlobStore(Protocol):
    def put(self, stream: BinaryIO, *, max_bytes: int) -> AbstractContextManager[IncomingBlob]: ...

    def open(self, sha256: str) -> BinaryIO:
        """The blob's bytes, to read in chunks and close; BlobMissing if there is none."""
        ...

    def exists(self, sha256: str) -> bool: ...

    def delete(self, sha256: str) -> None: ...

    def blobs(self) -> Iterator[StoredBlob]: ...

    def modified(self, sha256: str) -> float | None:
        """When the blob was last published, None if it is gone."""
        ...

    def remove_interrupted(self, older_than: float, *, dry_run: bool) -> int:
        """Removes what uploads started before `older_than` and never finished left aside; how many."""
        ...


def check_sha256(sha256: str) -> str:
    if not SHA256_HEX.fullmatch(sha256):
        raise ValueError("a blob is named by its lowercase hex SHA-256")
    return sha256


# Given hashes, holds off the publication of new blobs while open and yields those of them that a row names.
ReferenceGuard = Callable[[list[str]], AbstractContextManager[set[str]]]


def sweep(
    store: BlobStore, guard: ReferenceGuard, *, older_than: float, dry_run: bool = False
) -> SweepReport:
    """Removes blobs that no row names, last published before `older_than` (a Unix time), and what
    interrupted uploads left aside.

    The race with uploads, on any number of nodes: an upload publishes its blob (commit), then its
    transaction inserts the row that names it. A sweep that read "unreferenced, old" before that row
    commits, then deleted, would lose an acknowledged attachment (the blob may be an old orphan that the
    upload republished). So each batch is checked and removed inside `guard`, which the caller makes
    exclusive with publication (app.services.attachments.hold_publications: a PostgreSQL advisory lock that
    every upload holds, shared, from publishing to the end of its transaction; on SQLite the single write
    transaction): while it is held no blob is published, every upload that published before has committed
    or rolled back, and its row is visible. The grace period covers uploads still streaming aside."""
    report = SweepReport(interrupted=store.remove_interrupted(older_than, dry_run=dry_run))
    listing = store.blobs()
    while batch := list(islice(listing, SWEEP_BATCH)):
        with guard([blob.sha256 for blob in batch]) as referenced:
            for blob in batch:
                if blob.sha256 in referenced:
                    continue
                modified = store.modified(blob.sha256)  # republished since the listing?
                if modified is None:
                    continue
                if modified >= older_than:
                    report.young += 1
                    continue
                report.orphans.append(blob.sha256)
                if not dry_run:
                    store.delete(blob.sha256)
    return report


def open_blob_store(settings: Settings) -> BlobStore:
    if settings.blob_backend is BlobBackend.S3:
        from app.platform.blobstore_s3 import S3BlobStore  # boto3 loads only where it is used

        return S3BlobStore.from_settings(settings)
    return FilesystemBlobStore(settings.resolved_blobs_dir)


class _Staged:
    def __init__(self, store: FilesystemBlobStore, temp_path: Path, sha256: str, size: int):
        self.sha256, self.size = sha256, size
        self._store, self._temp_path = store, temp_path

    def commit(self) -> None:
        target = self._store.path_of(self.sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        self._temp_path.replace(target)
        _fsync_dir(target.parent)


class FilesystemBlobStore:
    """Files under `root/<first two hex digits>/<sha256>`, each written to a temporary file beside the blobs,
    fsynced, then renamed into place: a reader never sees a partial blob. Several nodes would need one
    shared file system; the S3 backend is the way to several nodes."""

    def __init__(self, root: Path):
        self.root = root

    def path_of(self, sha256: str) -> Path:
        return self.root / sha256[:2] / check_sha256(sha256)

    @contextmanager
    def put(self, stream: BinaryIO, *, max_bytes: int) -> Iterator[_Staged]:
        self.root.mkdir(parents=True, exist_ok=True)
        descriptor, name = tempfile.mkstemp(dir=self.root, prefix=INCOMING_PREFIX)
        temp_path = Path(name)
        try:
            digest, size = hashlib.sha256(), 0
            with os.fdopen(descriptor, "wb") as out:
                while chunk := stream.read(CHUNK_BYTES):
                    size += len(chunk)
                    if size > max_bytes:
                        raise BlobTooLarge(f"at most {max_bytes} bytes")
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            yield _Staged(self, temp_path, digest.hexdigest(), size)
        finally:
            temp_path.unlink(missing_ok=True)  # gone already once committed

    def open(self, sha256: str) -> BinaryIO:
        try:
            return self.path_of(sha256).open("rb")
        except FileNotFoundError:
            raise BlobMissing(sha256) from None

    def exists(self, sha256: str) -> bool:
        return self.path_of(sha256).is_file()

    def delete(self, sha256: str) -> None:
        self.path_of(sha256).unlink(missing_ok=True)

    def blobs(self) -> Iterator[StoredBlob]:
        if not self.root.is_dir():
            return
        for path in sorted(self.root.glob("??/*")):
            modified = _modified(path)
            if SHA256_HEX.fullmatch(path.name) and modified is not None:
                yield StoredBlob(path.name, modified)

    def modified(self, sha256: str) -> float | None:
        return _modified(self.path_of(sha256))

    def remove_interrupted(self, older_than: float, *, dry_run: bool) -> int:
        removed = 0
        for path in self.root.glob(f"{INCOMING_PREFIX}*") if self.root.is_dir() else ():
            modified = _modified(path)
            if modified is not None and modified < older_than:
                removed += 1
                if not dry_run:
                    path.unlink(missing_ok=True)
        return removed


def _modified(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # removed meanwhile: nothing left to sweep
        return None


def _fsync_dir(path: Path) -> None:
    # The rename itself is durable only once its directory entry is.
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
