"""The blob store, one suite for both backends (the file system, and S3 on a real S3-compatible server):
content-addressed, published only on commit, bounded while streaming, swept without racing uploads."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
import tracemalloc
import uuid
from contextlib import contextmanager

import pytest
from sqlalchemy import update

from app.config import BlobBackend
from app.models.cases import CaseObject
from app.models.users import Role
from app.platform.blobstore import BlobMissing, BlobStore, BlobTooLarge, FilesystemBlobStore, sweep
from app.platform.blobstore_s3 import S3BlobStore
from app.runtime.database import new_session, transaction
from app.services.attachments import hold_publications, referenced_blobs
from tests.e2ee_helpers import attachment_upload, clinician, create_case, upload
from tests.s3_server import S3_ENV

PART_BYTES = 5 * 1024 * 1024


@pytest.fixture(params=[BlobBackend.FILESYSTEM, BlobBackend.S3])
def backend(request) -> BlobBackend:
    return request.param


@pytest.fixture
def store(backend, tmp_path, request, monkeypatch) -> BlobStore:
    if backend is BlobBackend.FILESYSTEM:
        return FilesystemBlobStore(tmp_path / "blobs")
    server = request.getfixturevalue("s3")
    for name, value in server.settings_env(server.new_bucket()).items():
        monkeypatch.setenv(name, value)
    from app.config import Settings

    store = S3BlobStore.from_settings(Settings(blob_backend=BlobBackend.S3))
    assert store.part_bytes == PART_BYTES
    return store


def _put(store: BlobStore, data: bytes) -> str:
    with store.put(io.BytesIO(data), max_bytes=len(data)) as blob:
        blob.commit()
    return blob.sha256


def _leftovers(store: BlobStore) -> tuple[list[str], int]:
    """The published blobs, and what interrupted uploads left aside."""
    return [blob.sha256 for blob in store.blobs()], store.remove_interrupted(time.time() + 60, dry_run=True)


@pytest.mark.parametrize("size", [0, 1_600_000, 2 * PART_BYTES, 2 * PART_BYTES + 1])
def test_a_blob_is_published_under_its_hash_only_when_committed(store, size):
    data = os.urandom(size)
    digest = hashlib.sha256(data).hexdigest()
    with store.put(io.BytesIO(data), max_bytes=len(data)) as blob:
        assert (blob.sha256, blob.size) == (digest, len(data))
        assert not store.exists(digest)
    assert _leftovers(store) == ([], 0)  # not committed: nothing left behind

    for _ in range(2):  # the same bytes twice: one blob
        assert _put(store, data) == digest
    assert _leftovers(store) == ([digest], 0)
    with store.open(digest) as stored:
        assert stored.read() == data
    store.delete(digest)
    assert not store.exists(digest)
    with pytest.raises(BlobMissing):
        store.open(digest)


def test_oversized_streams_and_failed_checks_leave_nothing(store):
    for size in (11, PART_BYTES + 11):  # caught in the first part, or after a part was uploaded
        with pytest.raises(BlobTooLarge), store.put(io.BytesIO(bytes(size)), max_bytes=size - 1):
            pass
    with pytest.raises(ValueError, match="refused"), store.put(io.BytesIO(b"x"), max_bytes=10):
        raise ValueError("refused by the caller's checks")
    assert _leftovers(store) == ([], 0)
    with pytest.raises(ValueError, match="SHA-256"):
        store.open("../../etc/passwd")


class _Zeros(io.RawIOBase):
    """`size` bytes made as they are read: the test's own copy of the attachment takes no memory."""

    def __init__(self, size: int):
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


def test_a_large_attachment_streams_through_in_bounded_memory(store):
    size = 8 * PART_BYTES  # 40 MiB
    tracemalloc.start()
    try:
        with store.put(io.BufferedReader(_Zeros(size)), max_bytes=size) as blob:
            blob.commit()
        peak_in = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        read = 0
        with store.open(blob.sha256) as stored:
            while chunk := stored.read(1024 * 1024):
                read += len(chunk)
        peak_out = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (blob.size, read) == (size, size)
    # A part and the SDK's copies of it (about three parts, measured), never the whole attachment.
    assert peak_in < 4 * PART_BYTES < size
    assert peak_out < PART_BYTES


def test_sweep_removes_unreferenced_blobs_once_past_their_grace(store):
    kept, orphan = _put(store, b"named by a row"), _put(store, b"named by nothing")
    with store.put(io.BytesIO(b"interrupted"), max_bytes=100):  # a crash here would leave it aside...
        assert _leftovers(store)[1] == 1
        grace = sweep(store, _references({kept}), older_than=time.time() - 3600)
        assert (grace.orphans, grace.interrupted, grace.young) == ([], 0, 1)

    dry = sweep(store, _references({kept}), older_than=time.time() + 60, dry_run=True)
    assert dry.orphans == [orphan]
    assert store.exists(orphan)
    done = sweep(store, _references({kept}), older_than=time.time() + 60)
    assert (done.orphans, done.young) == ([orphan], 0)
    assert _leftovers(store) == ([kept], 0)


def _references(named: set[str]):
    @contextmanager
    def guard(hashes):
        yield named & set(hashes)

    return guard


@pytest.fixture
def settings(settings, backend, request, monkeypatch):
    if backend is BlobBackend.FILESYSTEM:
        return settings
    server = request.getfixturevalue("s3")
    bucket = server.new_bucket()
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    return settings.model_copy(
        update={"blob_backend": BlobBackend.S3, "s3_bucket": bucket, "s3_endpoint_url": server.endpoint_url}
    )


def test_a_sweep_waits_for_an_upload_that_published_and_keeps_its_blob(client, accounts, app, engine):
    """The multi-node race: an upload has published its blob, its row is not committed yet; a sweep with
    no grace at all must neither see the blob as unreferenced nor delete it."""
    store: BlobStore = app.state.runtime.blobs
    physician = clinician(client, accounts, Role.PHYSICIAN)
    derm = clinician(client, accounts, Role.SPECIALIST, specialties=("dermatology",))
    case = create_case(client, physician, derm.devices, specialty="dermatology")
    meta, ciphertext = attachment_upload(physician.device, case["id"], b"photo", [*derm.devices])
    assert upload(client, physician.headers, case["id"], meta, ciphertext).status_code == 201
    replaced = hashlib.sha256(ciphertext).hexdigest()

    def guard(hashes):
        @contextmanager
        def excluding_uploads():
            with new_session(engine) as session, session.begin():
                hold_publications(session, exclusive=True)
                yield referenced_blobs(session, hashes)

        return excluding_uploads()

    swept = []
    with transaction(engine) as uploading:  # an upload (of new bytes for that row), mid-request
        hold_publications(uploading, exclusive=False)
        published = _put(store, b"the new bytes")
        sweeper = threading.Thread(
            target=lambda: swept.append(sweep(store, guard, older_than=time.time() + 60)), daemon=True
        )
        sweeper.start()
        sweeper.join(timeout=1)
        assert not swept  # held off while the upload's transaction is open
        uploading.execute(
            update(CaseObject)
            .where(CaseObject.id == uuid.UUID(meta["id"]))
            .values(ciphertext_sha256=published)
        )
    sweeper.join(timeout=60)
    assert swept[0].orphans == [replaced]
    assert store.exists(published)
