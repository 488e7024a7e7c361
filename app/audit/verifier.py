"""Offline verification of an audit export bundle: no server, no database, only the log's verifier key.

It checks, in order: the archive's member list and sha256 digests (bundle.json); that the bundle's
verifier key is the trusted one; the checkpoint's signature and origin; that the records are exactly the
log's records (a range proof, or one inclusion proof per record of a filtered export); that every view
(FHIR, CSV) is exactly the one those records give; and that every checkpoint kept from earlier exports is a
prefix of this one (nothing earlier was altered, reordered or removed).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path
from typing import IO, Any, cast

from app.audit.bundle import (
    BUNDLE_FORMAT,
    BUNDLE_JSON,
    BUNDLE_VERSION,
    CHECKPOINT,
    CONSISTENCY,
    POSITIONS,
    RANGE_PROOF,
    RECORDS,
    RESERVED_MEMBERS,
    VERIFIER_KEY,
)
from app.audit.renderings import build_view
from app.crypto.cosignature import WitnessKey, cosignatures
from app.crypto.merkle import (
    ProofError,
    complete_range,
    leaf_hash,
    left_compact_range,
    verify_consistency,
    verify_inclusion,
)
from app.crypto.signed_note import Checkpoint, NoteError, NoteVerifier, SignatureError, open_checkpoint
from app.crypto.tiles import MAX_ENTRY_SIZE

MAX_JSON_MEMBER_BYTES = 16 << 20
MAX_POSITION_LINE_BYTES = 1 << 16
_HASH_HEX = re.compile(r"[0-9a-f]{64}")
_READ_CHUNK = 1 << 20


class BundleError(ValueError):
    """The bundle does not verify; the message names the member or record and the check that failed."""


@dataclass(frozen=True)
class VerificationReport:
    origin: str
    tree_size: int
    root_hash: bytes
    kind: str
    record_count: int
    start: int | None
    end: int | None
    previous_sizes: tuple[int, ...]
    witnesses: tuple[str, ...] = ()

    def summary(self) -> str:
        scope = f"range [{self.start}, {self.end})" if self.kind == "range" else "filtered export"
        lines = [
            f"OK {self.origin}: checkpoint size {self.tree_size}, root {_b64(self.root_hash)}",
            f"{self.record_count} records verified ({scope})",
        ]
        if self.previous_sizes:
            sizes = ", ".join(str(size) for size in self.previous_sizes)
            lines.append(f"consistent with previous checkpoints of size {sizes}")
        if self.witnesses:
            lines.append(f"checkpoint cosigned by witnesses {', '.join(self.witnesses)}")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Manifest:
    origin: str
    tree_size: int
    kind: str
    start: int
    end: int
    record_count: int
    members: dict[str, str]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise BundleError(message)


def _read_json(archive: zipfile.ZipFile, name: str) -> Any:
    with archive.open(name) as member:
        data = member.read(MAX_JSON_MEMBER_BYTES + 1)
    _require(len(data) <= MAX_JSON_MEMBER_BYTES, f"{name}: larger than {MAX_JSON_MEMBER_BYTES} bytes")
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleError(f"{name}: not valid JSON ({exc})") from exc


def _parse_hashes(value: object, where: str) -> list[bytes]:
    _require(isinstance(value, list), f"{where}: expected a list of hex hashes")
    hashes = []
    items: list[object] = value  # type: ignore[assignment]
    for position, item in enumerate(items):
        _require(
            isinstance(item, str) and bool(_HASH_HEX.fullmatch(item)), f"{where}[{position}]: not a hash"
        )
        hashes.append(bytes.fromhex(cast(str, item)))
    return hashes


def _parse_manifest(archive: zipfile.ZipFile) -> _Manifest:
    names = [info.filename for info in archive.infolist()]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    _require(not duplicates, f"archive: duplicate members {duplicates}")
    _require(BUNDLE_JSON in names, f"archive: no {BUNDLE_JSON}")
    doc = _read_json(archive, BUNDLE_JSON)
    _require(isinstance(doc, dict), f"{BUNDLE_JSON}: not an object")
    _require(doc.get("format") == BUNDLE_FORMAT, f"{BUNDLE_JSON}: format is not {BUNDLE_FORMAT}")
    _require(
        doc.get("version") == BUNDLE_VERSION, f"{BUNDLE_JSON}: unsupported version {doc.get('version')!r}"
    )
    origin, tree_size, record_count = doc.get("origin"), doc.get("tree_size"), doc.get("record_count")
    _require(isinstance(origin, str) and bool(origin), f"{BUNDLE_JSON}: origin missing")
    _require(_is_count(tree_size), f"{BUNDLE_JSON}: tree_size is not a count")
    _require(_is_count(record_count), f"{BUNDLE_JSON}: record_count is not a count")
    export = doc.get("export")
    _require(isinstance(export, dict), f"{BUNDLE_JSON}: export missing")
    kind = export.get("kind")
    if kind == "range":
        start, end = export.get("start"), export.get("end")
        _require(_is_count(start) and _is_count(end), f"{BUNDLE_JSON}: range start and end must be counts")
        _require(start <= end <= tree_size, f"{BUNDLE_JSON}: range [{start}, {end}) is not within the tree")
        _require(
            record_count == end - start,
            f"{BUNDLE_JSON}: record_count {record_count} does not match range [{start}, {end})",
        )
        proof_member = RANGE_PROOF
    elif kind == "filtered":
        start, end, proof_member = 0, tree_size, POSITIONS
    else:
        raise BundleError(f"{BUNDLE_JSON}: unknown export kind {kind!r}")
    members = doc.get("members")
    _require(isinstance(members, dict), f"{BUNDLE_JSON}: members missing")
    for name in (CHECKPOINT, VERIFIER_KEY, RECORDS, proof_member):
        _require(name in members, f"{BUNDLE_JSON}: required member {name} is not listed")
    for name, digest in members.items():
        _require(
            isinstance(digest, str) and bool(_HASH_HEX.fullmatch(digest)),
            f"{BUNDLE_JSON}: bad sha256 for {name}",
        )
        _require(name in names, f"{BUNDLE_JSON}: member {name} is missing from the archive")
    for name in names:
        _require(
            name == BUNDLE_JSON or name in members, f"archive: member {name} is not listed in {BUNDLE_JSON}"
        )
    return _Manifest(origin, tree_size, kind, start, end, record_count, members)


def _check_member_digests(archive: zipfile.ZipFile, manifest: _Manifest) -> None:
    for name, expected in manifest.members.items():
        digest = hashlib.sha256()
        with archive.open(name) as member:
            while chunk := member.read(_READ_CHUNK):
                digest.update(chunk)
        _require(digest.hexdigest() == expected, f"{BUNDLE_JSON}: member {name} sha256 mismatch")


def _open_signed_checkpoint(note: bytes, trusted: NoteVerifier, what: str) -> Checkpoint:
    try:
        return open_checkpoint(note, trusted)
    except SignatureError as exc:
        raise BundleError(f"{what} signature: {exc}") from exc
    except NoteError as exc:
        raise BundleError(f"{what}: {exc}") from exc


def _lines(member: IO[bytes], limit: int, name: str) -> Iterator[bytes]:
    """Newline-terminated lines without the newline, refusing lines longer than the limit."""
    line_number = 0
    while line := member.readline(limit + 1):
        line_number += 1
        if not line.endswith(b"\n"):
            reason = "too long" if len(line) > limit else "not newline-terminated"
            raise BundleError(f"{name} line {line_number}: {reason}")
        yield line[:-1]


def _verify_range(
    archive: zipfile.ZipFile, manifest: _Manifest, checkpoint: Checkpoint, wanted_sizes: set[int]
) -> dict[int, bytes]:
    """Check the records against the checkpoint; return the roots at wanted sizes within [start, end]."""
    doc = _read_json(archive, RANGE_PROOF)
    _require(
        isinstance(doc, dict) and set(doc) == {"left", "right"}, f"{RANGE_PROOF}: expected left and right"
    )
    left = _parse_hashes(doc["left"], f"{RANGE_PROOF} left")
    right = _parse_hashes(doc["right"], f"{RANGE_PROOF} right")
    try:
        compact = left_compact_range(manifest.start, left)
    except ProofError as exc:
        raise BundleError(f"{RANGE_PROOF}: {exc}") from exc
    roots = {}
    if manifest.start in wanted_sizes:
        roots[manifest.start] = compact.root()
    with archive.open(RECORDS) as member:
        for record in _lines(member, MAX_ENTRY_SIZE, RECORDS):
            compact.append(leaf_hash(record))
            if compact.size in wanted_sizes:
                roots[compact.size] = compact.root()
    count = compact.size - manifest.start
    _require(
        count == manifest.record_count,
        f"{RECORDS}: {count} records, {BUNDLE_JSON} says {manifest.record_count}",
    )
    try:
        computed = complete_range(compact, checkpoint.size, right)
    except ProofError as exc:
        raise BundleError(f"{RANGE_PROOF}: {exc}") from exc
    _require(
        computed == checkpoint.root_hash,
        f"{RECORDS}: root mismatch: computed {_b64(computed)}, checkpoint says {_b64(checkpoint.root_hash)}",
    )
    return roots


def _parse_position(line: bytes, line_number: int) -> tuple[int, list[bytes]]:
    where = f"{POSITIONS} line {line_number}"
    try:
        doc = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleError(f"{where}: not valid JSON") from exc
    _require(isinstance(doc, dict) and set(doc) == {"index", "proof"}, f"{where}: expected index and proof")
    _require(_is_count(doc["index"]), f"{where}: index is not a count")
    return doc["index"], _parse_hashes(doc["proof"], f"{where} proof")


def _verify_filtered(archive: zipfile.ZipFile, manifest: _Manifest, checkpoint: Checkpoint) -> None:
    count = 0
    previous_index = -1
    with archive.open(RECORDS) as records, archive.open(POSITIONS) as positions:
        record_lines = _lines(records, MAX_ENTRY_SIZE, RECORDS)
        position_lines = _lines(positions, MAX_POSITION_LINE_BYTES, POSITIONS)
        for record, position in zip_longest(record_lines, position_lines):
            _require(
                record is not None and position is not None,
                f"{RECORDS} and {POSITIONS} differ in length after {count} records",
            )
            count += 1
            index, proof = _parse_position(position, count)
            _require(
                index > previous_index,
                f"{POSITIONS} line {count}: index {index} is not after {previous_index}",
            )
            previous_index = index
            try:
                verify_inclusion(leaf_hash(record), index, checkpoint.size, proof, checkpoint.root_hash)
            except ProofError as exc:
                raise BundleError(f"record {index}: {exc}") from exc
    _require(
        count == manifest.record_count,
        f"{RECORDS}: {count} records, {BUNDLE_JSON} says {manifest.record_count}",
    )


def _positioned_records(archive: zipfile.ZipFile, manifest: _Manifest) -> Iterator[tuple[int, bytes]]:
    """(position, record) of the records already verified, for rebuilding the views."""
    with archive.open(RECORDS) as records:
        record_lines = _lines(records, MAX_ENTRY_SIZE, RECORDS)
        if manifest.kind == "range":
            yield from enumerate(record_lines, start=manifest.start)
            return
        with archive.open(POSITIONS) as positions:
            position_lines = _lines(positions, MAX_POSITION_LINE_BYTES, POSITIONS)
            for number, (record, position) in enumerate(zip(record_lines, position_lines, strict=True), 1):
                yield _parse_position(position, number)[0], record


def _check_views(archive: zipfile.ZipFile, manifest: _Manifest) -> None:
    """Every member beyond the evidence is a view that the verified records must give byte for byte: a view
    edited to tell another story (denials shown as successes), bundle.json's digests recomputed, fails."""
    for name, expected in manifest.members.items():
        if name in RESERVED_MEMBERS:
            continue
        digest = hashlib.sha256()
        try:
            for chunk in build_view(name, _positioned_records(archive, manifest), manifest.origin):
                digest.update(chunk)
        except KeyError as exc:
            if exc.args == (name,):
                raise BundleError(f"{name}: not a view this verifier can rebuild from the records") from exc
            raise BundleError(f"{name}: the records do not give this view (missing {exc})") from exc
        except (TypeError, ValueError) as exc:
            raise BundleError(f"{name}: the records do not give this view ({exc})") from exc
        _require(digest.hexdigest() == expected, f"{name}: differs from the view the signed records give")


def _consistency_proofs(archive: zipfile.ZipFile, manifest: _Manifest) -> dict[int, list[bytes]]:
    if CONSISTENCY not in manifest.members:
        return {}
    doc = _read_json(archive, CONSISTENCY)
    _require(isinstance(doc, list), f"{CONSISTENCY}: expected a list")
    proofs: dict[int, list[bytes]] = {}
    for position, item in enumerate(doc):
        where = f"{CONSISTENCY}[{position}]"
        _require(
            isinstance(item, dict) and set(item) == {"old_size", "proof"},
            f"{where}: expected old_size and proof",
        )
        old_size = item["old_size"]
        _require(_is_count(old_size) and old_size not in proofs, f"{where}: old_size is not a new count")
        proofs[old_size] = _parse_hashes(item["proof"], f"{where} proof")
    return proofs


def _check_previous(
    previous: Checkpoint,
    checkpoint: Checkpoint,
    computed_roots: dict[int, bytes],
    proofs: dict[int, list[bytes]],
) -> None:
    where = f"previous checkpoint size {previous.size}"
    _require(
        previous.size <= checkpoint.size,
        f"{where}: newer than the bundle's checkpoint (size {checkpoint.size})",
    )
    if previous.size in computed_roots:
        computed = computed_roots[previous.size]
        _require(
            computed == previous.root_hash,
            f"{where}: not consistent: the records give root {_b64(computed)}, "
            f"the previous checkpoint says {_b64(previous.root_hash)}",
        )
        return
    if 0 < previous.size < checkpoint.size:
        _require(previous.size in proofs, f"{where}: no consistency proof in {CONSISTENCY}")
    try:
        verify_consistency(
            previous.size,
            checkpoint.size,
            previous.root_hash,
            checkpoint.root_hash,
            proofs.get(previous.size, []),
        )
    except ProofError as exc:
        raise BundleError(f"{where}: not consistent: {exc}") from exc


def _check_witnesses(note: bytes, witnesses: Sequence[WitnessKey]) -> None:
    try:
        _, found = cosignatures(note, list(witnesses))
    except NoteError as exc:
        raise BundleError(f"checkpoint: {exc}") from exc
    cosigned = {cosignature.witness.key_string for cosignature in found}
    for witness in witnesses:
        _require(
            witness.key_string in cosigned,
            f"checkpoint: no valid cosignature by witness {witness.name}+{witness.key_id.hex()}",
        )


def verify_bundle(
    path: str | Path,
    trusted_key: str,
    previous_checkpoints: Sequence[bytes] = (),
    witnesses: Sequence[str] = (),
) -> VerificationReport:
    """Verify a bundle against the trusted verifier key and checkpoints kept from earlier exports; with
    `witnesses` (their verifier keys), the bundle's checkpoint must carry a cosignature by each."""
    try:
        required = [WitnessKey.from_key_string(key) for key in witnesses]
    except NoteError as exc:
        raise BundleError(f"witness key: {exc}") from exc
    try:
        trusted = NoteVerifier.from_key_string(trusted_key.strip())
    except NoteError as exc:
        raise BundleError(f"trusted key: {exc}") from exc
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BundleError(f"bundle: cannot open as a ZIP archive ({exc})") from exc
    with archive:
        manifest = _parse_manifest(archive)
        _check_member_digests(archive, manifest)
        with archive.open(VERIFIER_KEY) as member:
            bundle_key = member.read(MAX_JSON_MEMBER_BYTES).decode(errors="replace")
        _require(bundle_key.strip() == trusted.key_string, f"{VERIFIER_KEY}: does not match the trusted key")
        with archive.open(CHECKPOINT) as member:
            note = member.read(MAX_JSON_MEMBER_BYTES)
        checkpoint = _open_signed_checkpoint(note, trusted, "checkpoint")
        _check_witnesses(note, required)
        _require(
            checkpoint.origin == manifest.origin,
            f"{BUNDLE_JSON}: origin {manifest.origin!r} differs from the checkpoint's {checkpoint.origin!r}",
        )
        _require(
            checkpoint.size == manifest.tree_size,
            f"{BUNDLE_JSON}: tree_size {manifest.tree_size} differs from the checkpoint's {checkpoint.size}",
        )
        previous = [
            _open_signed_checkpoint(note, trusted, f"previous checkpoint #{number}")
            for number, note in enumerate(previous_checkpoints, start=1)
        ]
        if manifest.kind == "range":
            # Left hashes + records give the root at every size in [start, end]: no proof needed there.
            wanted = {cp.size for cp in previous if manifest.start <= cp.size <= manifest.end}
            computed_roots = _verify_range(archive, manifest, checkpoint, wanted)
        else:
            _verify_filtered(archive, manifest, checkpoint)
            computed_roots = {}
        _check_views(archive, manifest)
        proofs = _consistency_proofs(archive, manifest)
        for earlier in previous:
            _check_previous(earlier, checkpoint, computed_roots, proofs)
    return VerificationReport(
        origin=checkpoint.origin,
        tree_size=checkpoint.size,
        root_hash=checkpoint.root_hash,
        kind=manifest.kind,
        record_count=manifest.record_count,
        start=manifest.start if manifest.kind == "range" else None,
        end=manifest.end if manifest.kind == "range" else None,
        previous_sizes=tuple(cp.size for cp in previous),
        witnesses=tuple(witness.name for witness in required),
    )
