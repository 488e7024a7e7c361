"""The filesystem blob store: content-addressed, published only on commit, bounded while streaming."""

from __future__ import annotations

import hashlib
import io

import pytest

from app.platform.blobstore import BlobTooLarge, FilesystemBlobStore


def _files(root) -> list[str]:
    return sorted(path.name for path in root.rglob("*") if path.is_file())


def test_a_blob_is_published_under_its_hash_only_when_committed(tmp_path):
    store = FilesystemBlobStore(tmp_path / "blobs")
    data = b"opaque ciphertext" * 100_000
    digest = hashlib.sha256(data).hexdigest()
    with store.put(io.BytesIO(data), max_bytes=len(data)) as blob:
        assert (blob.sha256, blob.size) == (digest, len(data))
        assert not store.exists(digest)
    assert _files(tmp_path) == []  # not committed: nothing left behind

    for _ in range(2):  # the same bytes twice: one blob
        with store.put(io.BytesIO(data), max_bytes=len(data)) as blob:
            blob.commit()
    assert _files(tmp_path) == [digest]
    with store.open(digest) as stored:
        assert stored.read() == data
    store.delete(digest)
    assert not store.exists(digest)


def test_oversized_streams_and_failed_checks_leave_nothing(tmp_path):
    store = FilesystemBlobStore(tmp_path)
    with pytest.raises(BlobTooLarge), store.put(io.BytesIO(bytes(11)), max_bytes=10):
        pass
    with pytest.raises(ValueError, match="refused"), store.put(io.BytesIO(b"x"), max_bytes=10):
        raise ValueError("refused by the caller's checks")
    assert _files(tmp_path) == []
    with pytest.raises(ValueError, match="SHA-256"):
        store.open("../../etc/passwd")
