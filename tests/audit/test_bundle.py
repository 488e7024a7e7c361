import hashlib
import io
import json
import re
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from app.audit.bundle import ConsistencyProof, FilteredExport, RangeExport, write_bundle
from app.audit.verifier import BundleError, verify_bundle
from app.audit.verify_command import main
from app.crypto.merkle import (
    CompactRange,
    MemoryNodeStore,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    range_proof,
    root_at,
)
from app.crypto.signed_note import Checkpoint, NoteSigner, sign_checkpoint

ORIGIN = "confrere.example/audit"
SIGNER = NoteSigner.from_seed(ORIGIN, bytes(range(32)))
KEY = SIGNER.verifier().key_string
IMPOSTOR = NoteSigner.from_seed(ORIGIN, bytes(32))  # same name, another key


def record(i: int, fork: str = "") -> bytes:
    body = {"seq_hint": i, "v": 1} | ({"fork": fork} if fork else {})
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


class Log:
    """A synthetic audit log: records, the nodes the sequencer would store, signed checkpoints."""

    def __init__(self, records: list[bytes]) -> None:
        self.records = records
        self.store = MemoryNodeStore()
        compact = CompactRange()
        for data in records:
            self.store.add(compact.append(leaf_hash(data)))

    def checkpoint(self, size: int, signer: NoteSigner = SIGNER) -> bytes:
        return sign_checkpoint(Checkpoint(ORIGIN, size, root_at(self.store, size)), signer)

    def consistency(self, sizes: list[int], size: int) -> list[ConsistencyProof]:
        return [ConsistencyProof(old, consistency_proof(self.store, old, size)) for old in sizes]


LOG = Log([record(i) for i in range(100)])
# Shares the first 40 records with LOG, then diverges: a fork the server could have shown someone.
FORK = Log(LOG.records[:40] + [record(i, "fork") for i in range(40, 100)])


class WriteOnly(io.RawIOBase):
    """A non-seekable output, like an HTTP response body."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.chunks.append(bytes(data))
        return len(data)


def write_range(path: Path, start: int, end: int, size: int = 100, consistency_sizes=(), **kwargs) -> Path:
    out = WriteOnly()
    write_bundle(
        out,
        origin=ORIGIN,
        tree_size=size,
        checkpoint_note=LOG.checkpoint(size),
        verifier_key=KEY,
        records=(LOG.records[i] for i in range(start, end)),
        export=RangeExport(start, end, range_proof(LOG.store, start, end, size)),
        consistency=LOG.consistency(list(consistency_sizes), size),
        **kwargs,
    )
    path.write_bytes(b"".join(out.chunks))
    return path


def write_filtered(path: Path, positions: list[int], size: int = 100, consistency_sizes=()) -> Path:
    with path.open("wb") as out:
        write_bundle(
            out,
            origin=ORIGIN,
            tree_size=size,
            checkpoint_note=LOG.checkpoint(size),
            verifier_key=KEY,
            records=(LOG.records[i] for i in positions),
            export=FilteredExport(
                {"action": "case.read", "case_id": "c-42"},
                ((i, inclusion_proof(LOG.store, i, size)) for i in positions),
            ),
            consistency=LOG.consistency(list(consistency_sizes), size),
        )
    return path


def rewrite(path: Path, edit: Callable[[dict[str, bytes]], None], fix_manifest: bool = True) -> Path:
    """Tamper with a bundle the way an attacker would: change members, then make bundle.json agree."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    edit(members)
    if fix_manifest:
        manifest = json.loads(members["bundle.json"])
        manifest["members"] = {
            name: hashlib.sha256(data).hexdigest() for name, data in members.items() if name != "bundle.json"
        }
        members["bundle.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def edit_lines(name: str, change: Callable[[list[bytes]], None]) -> Callable[[dict[str, bytes]], None]:
    def edit(members: dict[str, bytes]) -> None:
        lines = members[name].split(b"\n")[:-1]
        change(lines)
        members[name] = b"".join(line + b"\n" for line in lines)

    return edit


def edit_manifest(**changes) -> Callable[[dict[str, bytes]], None]:
    def edit(members: dict[str, bytes]) -> None:
        manifest = json.loads(members["bundle.json"])
        for key, value in changes.items():
            if key in ("start", "end"):
                manifest["export"][key] = value
            else:
                manifest[key] = value
        members["bundle.json"] = json.dumps(manifest).encode()

    return edit


def fails(path: Path, message: str, previous=(), key: str = KEY) -> None:
    with pytest.raises(BundleError, match=re.escape(message)):
        verify_bundle(path, key, previous)


# --- bundles that verify ---


def test_full_range_bundle_verifies_with_previous_checkpoints(tmp_path):
    path = write_range(tmp_path / "b.zip", 0, 100)
    report = verify_bundle(path, KEY, [LOG.checkpoint(0), LOG.checkpoint(37), LOG.checkpoint(100)])
    assert (report.kind, report.start, report.end, report.record_count) == ("range", 0, 100, 100)
    assert report.tree_size == 100 and report.previous_sizes == (0, 37, 100)
    assert report.root_hash == root_at(LOG.store, 100)


def test_bundle_members_and_manifest(tmp_path):
    path = write_range(tmp_path / "b.zip", 10, 20, views={"records.csv": [b"seq\n", b"10\n"]})
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        manifest = json.loads(archive.read("bundle.json"))
        lines = archive.read("records.ndjson").split(b"\n")
    assert names == [
        "checkpoint",
        "verifier.key",
        "records.ndjson",
        "range_proof.json",
        "records.csv",
        "bundle.json",
    ]
    assert manifest["export"] == {"kind": "range", "start": 10, "end": 20}
    assert manifest["record_count"] == 10 and manifest["tree_size"] == 100 and manifest["origin"] == ORIGIN
    assert lines[0] == LOG.records[10] and lines[-1] == b""


def test_partial_range_uses_proofs_and_records_for_previous_checkpoints(tmp_path):
    path = write_range(tmp_path / "b.zip", 30, 70, consistency_sizes=[10, 85])
    previous = [LOG.checkpoint(size) for size in (10, 30, 50, 70, 85, 100)]
    assert verify_bundle(path, KEY, previous).previous_sizes == (10, 30, 50, 70, 85, 100)


def test_partial_range_in_a_larger_tree(tmp_path):
    path = write_range(tmp_path / "b.zip", 5, 9, size=64)
    assert verify_bundle(path, KEY).record_count == 4


def test_filtered_bundle_verifies(tmp_path):
    path = write_filtered(tmp_path / "b.zip", [3, 17, 18, 64, 99], consistency_sizes=[50])
    report = verify_bundle(path, KEY, [LOG.checkpoint(50)])
    assert (report.kind, report.record_count, report.start) == ("filtered", 5, None)


def test_empty_filtered_bundle_verifies(tmp_path):
    assert verify_bundle(write_filtered(tmp_path / "b.zip", []), KEY).record_count == 0


# --- tampering, each caught with a precise message ---


def test_edited_record_byte(tmp_path):
    path = write_range(tmp_path / "b.zip", 0, 100)

    def edit(lines):
        lines[17] = lines[17].replace(b'"seq_hint":17', b'"seq_hint":71')

    rewrite(path, edit_lines("records.ndjson", edit))
    fails(path, "records.ndjson: root mismatch: computed ")


def test_edited_record_without_updating_the_manifest(tmp_path):
    path = write_range(tmp_path / "b.zip", 0, 100)
    rewrite(path, edit_lines("records.ndjson", lambda lines: lines.__setitem__(3, b"{}")), fix_manifest=False)
    fails(path, "bundle.json: member records.ndjson sha256 mismatch")


def test_edited_record_in_a_filtered_export(tmp_path):
    path = write_filtered(tmp_path / "b.zip", [3, 17, 64])
    rewrite(path, edit_lines("records.ndjson", lambda lines: lines.__setitem__(1, record(17, "edited"))))
    fails(path, "record 17: inclusion proof does not match root")


def test_deleted_record(tmp_path):
    path = write_range(tmp_path / "b.zip", 0, 100)
    rewrite(path, edit_lines("records.ndjson", lambda lines: lines.pop(50)))
    fails(path, "records.ndjson: 99 records, bundle.json says 100")


def test_deleted_record_with_adjusted_counts(tmp_path):
    path = write_range(tmp_path / "b.zip", 0, 100)
    rewrite(path, edit_lines("records.ndjson", lambda lines: lines.pop(50)))
    rewrite(path, edit_manifest(record_count=99, end=99))
    fails(path, "range_proof.json: range proof: 0 right hashes for [99, 100), expected 1")


def test_deleted_record_in_a_filtered_export(tmp_path):
    path = write_filtered(tmp_path / "b.zip", [3, 17, 64])
    rewrite(path, edit_lines("records.ndjson", lambda lines: lines.pop(1)))
    # The remaining records no longer line up with their proofs.
    fails(path, "record 17: inclusion proof does not match root")


def test_reordered_records(tmp_path):
    path = write_range(tmp_path / "b.zip", 20, 60)

    def swap(lines):
        lines[4], lines[5] = lines[5], lines[4]

    rewrite(path, edit_lines("records.ndjson", swap))
    fails(path, "records.ndjson: root mismatch")


def test_reordered_records_in_a_filtered_export(tmp_path):
    path = write_filtered(tmp_path / "b.zip", [3, 17, 64])

    def swap(lines):
        lines[0], lines[1] = lines[1], lines[0]

    rewrite(path, edit_lines("records.ndjson", swap))
    fails(path, "record 3: inclusion proof does not match root")


def test_truncated_tail(tmp_path):
    path = write_range(tmp_path / "b.zip", 0, 100)
    rewrite(path, edit_lines("records.ndjson", lambda lines: lines.__delitem__(slice(90, None))))
    fails(path, "records.ndjson: 90 records, bundle.json says 100")


def test_truncated_tail_passed_off_as_a_smaller_range(tmp_path):
    path = write_range(tmp_path / "b.zip", 0, 100)
    rewrite(path, edit_lines("records.ndjson", lambda lines: lines.__delitem__(slice(90, None))))
    rewrite(path, edit_manifest(record_count=90, end=90))
    fails(path, "range_proof.json: range proof: 0 right hashes for [90, 100), expected 3")


def test_truncated_archive(tmp_path):
    path = write_range(tmp_path / "b.zip", 0, 100)
    path.write_bytes(path.read_bytes()[:-200])
    fails(path, "bundle: cannot open as a ZIP archive")


def test_checkpoint_signed_by_another_key(tmp_path):
    path = write_range(tmp_path / "b.zip", 0, 100)
    rewrite(path, lambda members: members.__setitem__("checkpoint", LOG.checkpoint(100, IMPOSTOR)))
    fails(path, f"checkpoint signature: no valid signature for key {ORIGIN}+{SIGNER.key_id.hex()}")


def test_bundle_carrying_another_verifier_key(tmp_path):
    path = write_range(tmp_path / "b.zip", 0, 100)

    def swap_keys(members):
        members["checkpoint"] = LOG.checkpoint(100, IMPOSTOR)
        members["verifier.key"] = IMPOSTOR.verifier().key_string.encode() + b"\n"

    rewrite(path, swap_keys)
    fails(path, "verifier.key: does not match the trusted key")


def test_previous_checkpoint_from_a_forked_log(tmp_path):
    path = write_range(tmp_path / "b.zip", 0, 100)
    fails(path, "previous checkpoint size 60: not consistent: the records give root", [FORK.checkpoint(60)])


def test_previous_checkpoint_from_a_forked_log_proved_by_consistency(tmp_path):
    path = write_filtered(tmp_path / "b.zip", [3, 17], consistency_sizes=[60])
    message = "previous checkpoint size 60: not consistent: consistency proof does not match the old root"
    fails(path, message, [FORK.checkpoint(60)])


def test_previous_checkpoint_before_the_fork_is_consistent(tmp_path):
    path = write_filtered(tmp_path / "b.zip", [3, 17], consistency_sizes=[40])
    verify_bundle(path, KEY, [FORK.checkpoint(40)])


def test_previous_checkpoint_without_a_consistency_proof(tmp_path):
    path = write_range(tmp_path / "b.zip", 50, 60)
    fails(path, "previous checkpoint size 20: no consistency proof in consistency.json", [LOG.checkpoint(20)])


def test_previous_checkpoint_newer_than_the_bundle(tmp_path):
    path = write_range(tmp_path / "b.zip", 0, 50, size=50)
    fails(
        path,
        "previous checkpoint size 60: newer than the bundle's checkpoint (size 50)",
        [LOG.checkpoint(60)],
    )


def test_previous_checkpoint_signed_by_another_key(tmp_path):
    path = write_range(tmp_path / "b.zip", 0, 100)
    fails(path, "previous checkpoint #1 signature: no valid signature", [LOG.checkpoint(10, IMPOSTOR)])


def test_unlisted_member(tmp_path):
    path = write_range(tmp_path / "b.zip", 0, 10)
    rewrite(path, lambda members: members.__setitem__("extra.txt", b"x"), fix_manifest=False)
    fails(path, "archive: member extra.txt is not listed in bundle.json")


def test_a_view_the_verifier_cannot_rebuild_is_refused(tmp_path):
    path = write_range(tmp_path / "b.zip", 0, 10, views={"notes.txt": [b"all is well\n"]})
    fails(path, "notes.txt: not a view this verifier can rebuild from the records")
    # These synthetic records are not audit records: no CSV view comes from them.
    path = write_range(tmp_path / "c.zip", 0, 10, views={"records.csv": [b"position\n"]})
    fails(path, "records.csv: the records do not give this view")


def test_edited_view_is_caught_by_its_digest(tmp_path):
    path = write_range(tmp_path / "b.zip", 0, 10, views={"fhir.ndjson": [b"{}\n"]})
    rewrite(path, lambda members: members.__setitem__("fhir.ndjson", b"[]\n"), fix_manifest=False)
    fails(path, "bundle.json: member fhir.ndjson sha256 mismatch")


# --- writer ---


def test_writer_refuses_inconsistent_inputs():
    export = RangeExport(0, 3, range_proof(LOG.store, 0, 3, 100))
    common = {
        "origin": ORIGIN,
        "tree_size": 100,
        "checkpoint_note": b"",
        "verifier_key": KEY,
        "export": export,
    }
    with pytest.raises(ValueError, match="got 2 records"):
        write_bundle(io.BytesIO(), records=iter(LOG.records[:2]), **common)
    with pytest.raises(ValueError, match="newline"):
        write_bundle(io.BytesIO(), records=[b"a\nb"], **common)
    with pytest.raises(ValueError, match="view member name"):
        write_bundle(io.BytesIO(), records=[], views={"../x": []}, **common)


def test_verification_streams_with_flat_memory(tmp_path):
    log_size = 50_000
    records = [record(i) for i in range(log_size)]
    compact, store = CompactRange(), MemoryNodeStore()
    for data in records:
        store.add(compact.append(leaf_hash(data)))
    path = tmp_path / "big.zip"
    with path.open("wb") as out:
        write_bundle(
            out,
            origin=ORIGIN,
            tree_size=log_size,
            checkpoint_note=sign_checkpoint(Checkpoint(ORIGIN, log_size, compact.root()), SIGNER),
            verifier_key=KEY,
            records=iter(records),
            export=RangeExport(0, log_size, range_proof(store, 0, log_size, log_size)),
        )
    tracemalloc.start()
    verify_bundle(path, KEY)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 4 << 20  # the records alone are ~1.2 MB; the tree state is O(log n)


# --- command line ---


def test_cli_ok_and_failure(tmp_path, capsys):
    path = write_range(tmp_path / "b.zip", 0, 100)
    key_file = tmp_path / "log.vkey"
    key_file.write_text(KEY + "\n")
    previous = tmp_path / "checkpoint-60"
    previous.write_bytes(LOG.checkpoint(60))
    assert main(["verify", str(path), "--key", KEY, "--previous", str(previous)]) == 0
    assert "OK confrere.example/audit: checkpoint size 100" in capsys.readouterr().out
    assert main(["verify", str(path), "--key", str(key_file)]) == 0
    forked = tmp_path / "forked-60"
    forked.write_bytes(FORK.checkpoint(60))
    assert main(["verify", str(path), "--key", KEY, "--previous", str(previous), str(forked)]) == 1
    assert "FAILED: previous checkpoint size 60: not consistent" in capsys.readouterr().err
    assert main(["verify", str(tmp_path / "missing.zip"), "--key", KEY]) == 1


def test_cli_reads_a_checkpoint_saved_with_extra_newlines_and_names_crlf(tmp_path, capsys):
    path = write_range(tmp_path / "b.zip", 0, 100)
    saved = tmp_path / "checkpoint-60"
    saved.write_bytes(LOG.checkpoint(60) + b"\n\n")
    assert main(["verify", str(path), "--key", KEY, "--previous", str(saved)]) == 0
    assert "consistent with previous checkpoints of size 60" in capsys.readouterr().out
    saved.write_bytes(LOG.checkpoint(60).replace(b"\n", b"\r\n"))
    assert main(["verify", str(path), "--key", KEY, "--previous", str(saved)]) == 1
    assert "Windows (CRLF) line endings" in capsys.readouterr().err
    saved.write_bytes(b"confrere.example/audit\n60\n")
    assert main(["verify", str(path), "--key", KEY, "--previous", str(saved)]) == 1
    assert "not a signed checkpoint" in capsys.readouterr().err


def test_deleted_position_line_in_a_filtered_export(tmp_path):
    path = write_filtered(tmp_path / "b.zip", [3, 17, 64])
    rewrite(path, edit_lines("positions.ndjson", lambda lines: lines.pop()))
    fails(path, "records.ndjson and positions.ndjson differ in length after 2 records")
