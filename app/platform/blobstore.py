"""Storage of opaque attachment ciphertexts, addressed by their SHA-256.

`put` copies a stream aside while hashing it and publishes nothing until the caller, having checked the
hash against the signed manifest, calls `commit()`: a refused upload leaves no blob behind. A blob committed
by a request whose transaction then rolls back (or whose process is killed before it commits) is an orphan:
harmless (content-addressed, unreferenced) and removed by `confrere blobs sweep` (`sweep` below), with the
temporary files of uploads that a crash interrupted.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

CHUNK_BYTES = 1024 * 1024
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
INCOMING_PREFIX = ".incoming-"


@dataclass
class SweepReport:
    orphans: list[str] = field(default_factory=list)  # hashes of unreferenced blobs (removed unless dry run)
    interrupted: int = 0  # temporary files of uploads that never finished
    young: int = 0  # unreferenced blobs within the grace period: maybe an upload about to commit


class BlobTooLarge(ValueError):
    pass


class IncomingBlob(Protocol):
    sha256: str
    size: int

    def commit(self) -> None:
        """Publish the bytes under their hash (idempotent: the same bytes may already be there)."""


class BlobStore(Protocol):
    def put(self, stream: BinaryIO, *, max_bytes: int) -> AbstractContextManager[IncomingBlob]: ...

    def open(self, sha256: str) -> BinaryIO: ...

    def exists(self, sha256: str) -> bool: ...

    def delete(self, sha256: str) -> None: ...


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
    fsynced, then renamed into place: a reader never sees a partial blob."""

    def __init__(self, root: Path):
        self.root = root

    def path_of(self, sha256: str) -> Path:
        if not _SHA256_HEX.fullmatch(sha256):
            raise ValueError("a blob is named by its lowercase hex SHA-256")
        return self.root / sha256[:2] / sha256

    @contextmanager
    def put(self, stream: BinaryIO, *, max_bytes: int) -> Iterator[_Staged]:
        self.root.mkdir(parents=True, exist_ok=True)
        descriptor, name = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
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
        return self.path_of(sha256).open("rb")

    def exists(self, sha256: str) -> bool:
        return self.path_of(sha256).is_file()

    def delete(self, sha256: str) -> None:
        self.path_of(sha256).unlink(missing_ok=True)

    def sweep(
        self, referenced: Callable[[Iterable[str]], set[str]], *, older_than: float, dry_run: bool = False
    ) -> SweepReport:
        """Removes blobs that `referenced` does not vouch for, and interrupted uploads, last modified
        before `older_than` (a Unix time). The grace period protects an upload whose blob is committed but
        whose transaction is not yet: its row is about to name it. A blob is checked again just before it
        goes, since an upload of the same bytes republishes it (a fresh file) at any time."""
        report = SweepReport()
        if not self.root.is_dir():
            return report
        for path in self.root.glob(f"{INCOMING_PREFIX}*"):
            if _modified(path) < older_than:
                report.interrupted += 1
                if not dry_run:
                    path.unlink(missing_ok=True)
        blobs = {path.name: path for path in self.root.glob("??/*") if _SHA256_HEX.fullmatch(path.name)}
        kept = referenced(blobs)
        for sha256, path in sorted(blobs.items()):
            if sha256 in kept:
                continue
            if _modified(path) >= older_than:
                report.young += 1
                continue
            report.orphans.append(sha256)
            if not dry_run:
                path.unlink(missing_ok=True)
        return report


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # removed meanwhile: nothing left to sweep
        return float("inf")


def _fsync_dir(path: Path) -> None:
    # The rename itself is durable only once its directory entry is.
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
