"""Canonical JSON and the E2EE objects encoded with it: header, manifest, share statement (docs/e2ee.md).

Every string these objects carry is drawn from [0-9a-z-] (suite and kind names, UUIDs, lowercase hex), so the
canonical form never needs an escape and every platform's JSON writer produces the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from app.crypto.e2ee_keys import E2EEError, Suite

MAX_SAFE_INTEGER = 2**53 - 1  # integers above this lose precision in JavaScript clients

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def dumps(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _refuse_constant(name: str) -> Any:
    raise E2EEError("not_canonical", f"JSON constant {name} is not allowed")


def _refuse_float(text: str) -> Any:
    raise E2EEError("not_canonical", "JSON numbers must be integers")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise E2EEError("not_canonical", "duplicate JSON key")
    return obj


def loads(raw: bytes) -> dict[str, Any]:
    """Parse `raw` and require it to be exactly its own canonical serialization."""
    try:
        obj = json.loads(
            raw.decode("utf-8"),
            parse_constant=_refuse_constant,
            parse_float=_refuse_float,
            object_pairs_hook=_unique_keys,
        )
    except E2EEError:
        raise
    except (ValueError, RecursionError):  # bad UTF-8 or JSON, or an integer too long to convert
        raise E2EEError("not_canonical", "not valid UTF-8 JSON") from None
    if not isinstance(obj, dict) or dumps(obj) != raw:
        raise E2EEError("not_canonical", "JSON is not in canonical form")
    return obj


def require_fields(obj: Mapping[str, Any], fields: set[str], code: str) -> None:
    if set(obj) != fields:
        raise E2EEError(code, f"fields must be exactly {sorted(fields)}")


def require_uuid(value: object, name: str, code: str) -> str:
    if not isinstance(value, str) or not _UUID.fullmatch(value):
        raise E2EEError(code, f"{name} must be a lowercase hyphenated UUID")
    return value


def require_sha256_hex(value: object, name: str, code: str) -> str:
    if not isinstance(value, str) or not _SHA256_HEX.fullmatch(value):
        raise E2EEError(code, f"{name} must be 64 lowercase hex digits")
    return value


def require_int(value: object, name: str, code: str) -> int:
    # bool is an int subclass in Python; it is not a JSON integer.
    if type(value) is not int or not 0 <= value <= MAX_SAFE_INTEGER:
        raise E2EEError(code, f"{name} must be an integer in [0, 2^53-1]")
    return value


FORMAT_V1 = 1
FORMAT_V2 = 2
# Version 1 objects stay readable; new objects are version 2 (docs/e2ee.md section 2).
FORMAT_VERSIONS = frozenset({FORMAT_V1, FORMAT_V2})
# The one content AEAD, named in version 2 headers so that a later one can be told apart.
CONTENT_AEAD = "aes-256-gcm"
OBJECT_KINDS = frozenset({"case", "attachment", "message", "info_request", "info_response", "report"})
# Kinds posted to a case's thread after creation (the case itself and attachments are not messages).
MESSAGE_KINDS = frozenset({"message", "info_request", "info_response", "report"})
# nonce || AES-GCM tag: the smallest possible content ciphertext (empty plaintext).
MIN_CIPHERTEXT_SIZE = 12 + 16


def _require_version(obj: Mapping[str, Any], code: str) -> int:
    version = obj.get("v")
    if type(version) is not int or version not in FORMAT_VERSIONS:
        raise E2EEError(code, "unsupported format version")
    return version


@dataclass(frozen=True, kw_only=True)
class Header:
    """The clear, canonical header of a sealed object: AES-GCM associated data and HPKE `info` context.

    Version 2 (the default) names the content AEAD and leaves the KEM suite to each envelope; version 1
    named one KEM suite for every envelope of the object and is only read, never written, by clients.
    """

    case_id: str
    kind: str
    object_id: str
    author_device_id: str
    v: int = FORMAT_V2
    suite: Suite | None = None
    aead: str | None = None

    def __post_init__(self) -> None:
        code = "invalid_header"
        if type(self.v) is not int or self.v not in FORMAT_VERSIONS:
            raise E2EEError(code, "unsupported header version")
        if self.v == FORMAT_V1:
            if self.suite is None or self.aead is not None:
                raise E2EEError(code, "a version 1 header names a suite and no aead")
            object.__setattr__(self, "suite", Suite(self.suite))
        else:
            if self.suite is not None:
                raise E2EEError(code, "a version 2 header names no suite: each envelope names its own")
            aead = CONTENT_AEAD if self.aead is None else self.aead
            if aead != CONTENT_AEAD:
                raise E2EEError("unknown_suite", "unknown content AEAD")
            object.__setattr__(self, "aead", aead)
        require_uuid(self.case_id, "case_id", code)
        require_uuid(self.object_id, "object_id", code)
        require_uuid(self.author_device_id, "author_device_id", code)
        if not isinstance(self.kind, str) or self.kind not in OBJECT_KINDS:
            raise E2EEError(code, "unknown object kind")
        # A case is its own object; any other object id equal to the case id would alias the case.
        if (self.kind == "case") != (self.object_id == self.case_id):
            raise E2EEError(code, "object_id must equal case_id exactly when kind is 'case'")

    def _fields(self) -> dict[str, Any]:
        common = {
            "v": self.v,
            "case_id": self.case_id,
            "kind": self.kind,
            "object_id": self.object_id,
            "author_device_id": self.author_device_id,
        }
        if self.v == FORMAT_V1:
            return common | {"suite": str(self.suite)}
        return common | {"aead": self.aead}

    def to_bytes(self) -> bytes:
        return dumps(self._fields())

    @property
    def sha256(self) -> bytes:
        return hashlib.sha256(self.to_bytes()).digest()

    @classmethod
    def parse(cls, raw: bytes) -> Header:
        obj = loads(raw)
        version = _require_version(obj, "invalid_header")
        own = "suite" if version == FORMAT_V1 else "aead"
        require_fields(obj, {"v", "case_id", "kind", "object_id", "author_device_id", own}, "invalid_header")
        return cls(**obj)


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """What the author signs: header, ciphertext and every envelope by hash, and the key commitment.

    `envelopes` maps device id to the envelope's hex SHA-256; in version 2 `envelope_suites` maps the same
    device ids to each envelope's KEM suite (serialized together: `{"sha256": ..., "suite": ...}`). In
    version 1 `envelope_suites` is empty: every envelope is of the header's suite.
    """

    header_sha256: str
    ciphertext_sha256: str
    ciphertext_size: int
    envelopes: dict[str, str]
    key_commitment: str
    v: int = FORMAT_V2
    envelope_suites: dict[str, Suite] = field(default_factory=dict)

    def __post_init__(self) -> None:
        code = "invalid_manifest"
        if type(self.v) is not int or self.v not in FORMAT_VERSIONS:
            raise E2EEError(code, "unsupported manifest version")
        require_sha256_hex(self.header_sha256, "header_sha256", code)
        require_sha256_hex(self.ciphertext_sha256, "ciphertext_sha256", code)
        require_sha256_hex(self.key_commitment, "key_commitment", code)
        if require_int(self.ciphertext_size, "ciphertext_size", code) < MIN_CIPHERTEXT_SIZE:
            raise E2EEError(code, "ciphertext is shorter than nonce and tag")
        if not isinstance(self.envelopes, Mapping) or not self.envelopes:
            raise E2EEError(code, "envelopes must be a non-empty object")
        for device_id, digest in self.envelopes.items():
            require_uuid(device_id, "envelope device id", code)
            require_sha256_hex(digest, "envelope hash", code)
        object.__setattr__(self, "envelopes", dict(self.envelopes))
        wanted = set(self.envelopes) if self.v == FORMAT_V2 else set()
        if set(self.envelope_suites) != wanted:
            raise E2EEError(code, "version 2 names the suite of every envelope, version 1 of none")
        suites = {device_id: Suite(suite) for device_id, suite in self.envelope_suites.items()}
        object.__setattr__(self, "envelope_suites", suites)

    def to_bytes(self) -> bytes:
        envelopes: Mapping[str, Any] = self.envelopes
        if self.v == FORMAT_V2:
            envelopes = {
                device_id: {"sha256": digest, "suite": str(self.envelope_suites[device_id])}
                for device_id, digest in self.envelopes.items()
            }
        return dumps(
            {
                "v": self.v,
                "header_sha256": self.header_sha256,
                "ciphertext_sha256": self.ciphertext_sha256,
                "ciphertext_size": self.ciphertext_size,
                "envelopes": envelopes,
                "key_commitment": self.key_commitment,
            }
        )

    @classmethod
    def parse(cls, raw: bytes) -> Manifest:
        code = "invalid_manifest"
        obj = loads(raw)
        version = _require_version(obj, code)
        require_fields(
            obj,
            {"v", "header_sha256", "ciphertext_sha256", "ciphertext_size", "envelopes", "key_commitment"},
            code,
        )
        envelopes = obj["envelopes"]
        if version == FORMAT_V1 or not isinstance(envelopes, dict):
            return cls(**obj)
        for entry in envelopes.values():
            if not isinstance(entry, dict):
                raise E2EEError(code, "a version 2 envelope entry is an object")
            require_fields(entry, {"sha256", "suite"}, code)
            if not isinstance(entry["suite"], str):
                raise E2EEError(code, "an envelope suite is a string")
        return cls(
            **{
                **obj,
                "envelopes": {device_id: entry["sha256"] for device_id, entry in envelopes.items()},
                "envelope_suites": {device_id: entry["suite"] for device_id, entry in envelopes.items()},
            }
        )


# The share statement did not change in format version 2: it serves both versions.
SHARE_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class ShareEntry:
    object_id: str
    header_sha256: str
    recipient_device_id: str
    envelope_sha256: str

    def __post_init__(self) -> None:
        require_uuid(self.object_id, "object_id", "invalid_share")
        require_uuid(self.recipient_device_id, "recipient_device_id", "invalid_share")
        require_sha256_hex(self.header_sha256, "header_sha256", "invalid_share")
        require_sha256_hex(self.envelope_sha256, "envelope_sha256", "invalid_share")

    @property
    def key(self) -> tuple[str, str]:
        return (self.object_id, self.recipient_device_id)

    def as_json(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, kw_only=True)
class ShareStatement:
    """A participant's signed record of the envelopes it wrapped for a new device (entries sorted by key)."""

    case_id: str
    sharer_device_id: str
    entries: tuple[ShareEntry, ...]
    v: int = SHARE_VERSION

    def __post_init__(self) -> None:
        code = "invalid_share"
        if require_int(self.v, "v", code) != SHARE_VERSION:
            raise E2EEError(code, "unsupported share statement version")
        require_uuid(self.case_id, "case_id", code)
        require_uuid(self.sharer_device_id, "sharer_device_id", code)
        entries = tuple(sorted(self.entries, key=lambda e: e.key))
        if not entries or len({e.key for e in entries}) != len(entries):
            raise E2EEError(code, "entries must be non-empty and unique by (object_id, recipient_device_id)")
        object.__setattr__(self, "entries", entries)

    def to_bytes(self) -> bytes:
        return dumps(
            {
                "v": self.v,
                "case_id": self.case_id,
                "sharer_device_id": self.sharer_device_id,
                "entries": [e.as_json() for e in self.entries],
            }
        )

    @classmethod
    def parse(cls, raw: bytes) -> ShareStatement:
        obj = loads(raw)
        require_fields(obj, {f.name for f in fields(cls)}, "invalid_share")
        items = obj["entries"]
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise E2EEError("invalid_share", "entries must be a list of objects")
        for item in items:
            require_fields(item, {f.name for f in fields(ShareEntry)}, "invalid_share")
        statement = cls(**{**obj, "entries": tuple(ShareEntry(**i) for i in items)})
        if statement.to_bytes() != raw:
            raise E2EEError("not_canonical", "share entries are not sorted")
        return statement
