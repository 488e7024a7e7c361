"""The canonical JSON objects of peer circles (docs/e2ee.md section 20): epoch statement, post header and
manifest, pseudonym binding. Strict parsers: anything but an object's own canonical bytes is refused.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from app.crypto.canonical import (
    CONTENT_AEAD,
    MIN_CIPHERTEXT_SIZE,
    dumps,
    loads,
    require_fields,
    require_int,
    require_sha256_hex,
    require_uuid,
)
from app.crypto.e2ee_keys import E2EEError, Suite

CIRCLE_FORMAT = 1
EPOCH_KINDS = frozenset({"rotate", "grant"})
POST_KINDS = frozenset({"post", "reply"})
AUTHOR_KINDS = frozenset({"device", "pseudonym"})

P = ParamSpec("P")
R = TypeVar("R")


class CircleError(E2EEError):
    """A circle refusal with a stable code (docs/e2ee.md section 20.7), e.g. `invalid_epoch_statement`."""


def circle_errors(function: Callable[P, R]) -> Callable[P, R]:
    """Every refusal of this module's API is a CircleError, whichever shared helper raised it."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except CircleError:
            raise
        except E2EEError as error:
            raise CircleError(error.code, str(error)) from None

    return wrapper


def _require_format(obj: Mapping[str, Any], code: str) -> None:
    version = obj.get("v")
    if type(version) is not int or version != CIRCLE_FORMAT:
        raise CircleError(code, "unsupported circle format version")


def _require_epoch(value: object, code: str) -> int:
    epoch = require_int(value, "epoch", code)
    if epoch < 1:
        raise CircleError(code, "epoch numbers start at 1")
    return epoch


def sha256_digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@dataclass(frozen=True)
class WrapEntry:
    """What an epoch statement signs of one wrap: its SHA-256 (hex) and the KEM suite it is sealed in."""

    sha256: str
    suite: Suite

    def __post_init__(self) -> None:
        require_sha256_hex(self.sha256, "wrap sha256", "invalid_epoch_statement")
        if not isinstance(self.suite, str):
            raise CircleError("invalid_epoch_statement", "a wrap's suite is a string")
        object.__setattr__(self, "suite", Suite(self.suite))


@dataclass(frozen=True, kw_only=True)
class EpochStatement:
    """The signed record of an epoch key's wraps: `rotate` starts an epoch, `grant` adds wraps to one."""

    author_device_id: str
    circle_id: str
    epoch: int
    key_commitment: str
    kind: str
    wraps: dict[str, WrapEntry]
    v: int = CIRCLE_FORMAT

    def __post_init__(self) -> None:
        code = "invalid_epoch_statement"
        if type(self.v) is not int or self.v != CIRCLE_FORMAT:
            raise CircleError(code, "unsupported epoch statement version")
        require_uuid(self.author_device_id, "author_device_id", code)
        require_uuid(self.circle_id, "circle_id", code)
        _require_epoch(self.epoch, code)
        require_sha256_hex(self.key_commitment, "key_commitment", code)
        if not isinstance(self.kind, str) or self.kind not in EPOCH_KINDS:
            raise CircleError(code, "kind must be 'rotate' or 'grant'")
        if not isinstance(self.wraps, Mapping) or not self.wraps:
            raise CircleError(code, "wraps must be a non-empty object")
        for device_id, entry in self.wraps.items():
            require_uuid(device_id, "wrap device id", code)
            if not isinstance(entry, WrapEntry):
                raise CircleError(code, "a wrap entry is a WrapEntry")
        object.__setattr__(self, "wraps", dict(self.wraps))

    def to_bytes(self) -> bytes:
        return dumps(
            {
                "v": self.v,
                "author_device_id": self.author_device_id,
                "circle_id": self.circle_id,
                "epoch": self.epoch,
                "key_commitment": self.key_commitment,
                "kind": self.kind,
                "wraps": {
                    device_id: {"sha256": entry.sha256, "suite": str(entry.suite)}
                    for device_id, entry in self.wraps.items()
                },
            }
        )

    @classmethod
    @circle_errors
    def parse(cls, raw: bytes) -> EpochStatement:
        code = "invalid_epoch_statement"
        obj = loads(raw)
        _require_format(obj, code)
        require_fields(
            obj, {"v", "author_device_id", "circle_id", "epoch", "key_commitment", "kind", "wraps"}, code
        )
        wraps = obj["wraps"]
        if not isinstance(wraps, dict):
            raise CircleError(code, "wraps must be an object")
        entries = {}
        for device_id, entry in wraps.items():
            if not isinstance(entry, dict):
                raise CircleError(code, "a wrap entry is an object")
            require_fields(entry, {"sha256", "suite"}, code)
            entries[device_id] = WrapEntry(entry["sha256"], entry["suite"])
        return cls(**{**obj, "wraps": entries})


@dataclass(frozen=True, kw_only=True)
class PostHeader:
    """The clear, signed header of a post or reply: AES-GCM associated data and post key context."""

    author: str
    author_kind: str
    circle_id: str
    epoch: int
    kind: str
    object_id: str
    parent_id: str
    aead: str = CONTENT_AEAD
    v: int = CIRCLE_FORMAT

    def __post_init__(self) -> None:
        code = "invalid_post_header"
        if type(self.v) is not int or self.v != CIRCLE_FORMAT:
            raise CircleError(code, "unsupported post header version")
        if self.aead != CONTENT_AEAD:
            raise CircleError("unknown_suite", "unknown content AEAD")
        for name in ("author", "circle_id", "object_id", "parent_id"):
            require_uuid(getattr(self, name), name, code)
        _require_epoch(self.epoch, code)
        if not isinstance(self.author_kind, str) or self.author_kind not in AUTHOR_KINDS:
            raise CircleError(code, "author_kind must be 'device' or 'pseudonym'")
        if not isinstance(self.kind, str) or self.kind not in POST_KINDS:
            raise CircleError(code, "kind must be 'post' or 'reply'")
        # A post is its own parent; a reply naming itself would pass for a post.
        if (self.kind == "post") != (self.parent_id == self.object_id):
            raise CircleError(code, "parent_id equals object_id exactly when kind is 'post'")

    def to_bytes(self) -> bytes:
        return dumps(
            {
                "v": self.v,
                "aead": self.aead,
                "author": self.author,
                "author_kind": self.author_kind,
                "circle_id": self.circle_id,
                "epoch": self.epoch,
                "kind": self.kind,
                "object_id": self.object_id,
                "parent_id": self.parent_id,
            }
        )

    def sha256(self) -> bytes:
        return sha256_digest(self.to_bytes())

    @classmethod
    @circle_errors
    def parse(cls, raw: bytes) -> PostHeader:
        code = "invalid_post_header"
        obj = loads(raw)
        _require_format(obj, code)
        require_fields(
            obj,
            {"v", "aead", "author", "author_kind", "circle_id", "epoch", "kind", "object_id", "parent_id"},
            code,
        )
        return cls(**obj)


@dataclass(frozen=True, kw_only=True)
class PostManifest:
    """What a post's author signs: the header and the ciphertext, by hash."""

    ciphertext_sha256: str
    ciphertext_size: int
    header_sha256: str
    v: int = CIRCLE_FORMAT

    def __post_init__(self) -> None:
        code = "invalid_post_manifest"
        if type(self.v) is not int or self.v != CIRCLE_FORMAT:
            raise CircleError(code, "unsupported post manifest version")
        require_sha256_hex(self.ciphertext_sha256, "ciphertext_sha256", code)
        require_sha256_hex(self.header_sha256, "header_sha256", code)
        if require_int(self.ciphertext_size, "ciphertext_size", code) < MIN_CIPHERTEXT_SIZE:
            raise CircleError(code, "ciphertext is shorter than nonce and tag")

    def to_bytes(self) -> bytes:
        return dumps(
            {
                "v": self.v,
                "ciphertext_sha256": self.ciphertext_sha256,
                "ciphertext_size": self.ciphertext_size,
                "header_sha256": self.header_sha256,
            }
        )

    @classmethod
    @circle_errors
    def parse(cls, raw: bytes) -> PostManifest:
        code = "invalid_post_manifest"
        obj = loads(raw)
        _require_format(obj, code)
        require_fields(obj, {"v", "ciphertext_sha256", "ciphertext_size", "header_sha256"}, code)
        return cls(**obj)


@dataclass(frozen=True, kw_only=True)
class PseudonymBinding:
    """A device's signed statement that a pseudonym key is its own: the server's evidence of the author."""

    circle_id: str
    device_id: str
    pseudonym_id: str
    public_key_sha256: str
    v: int = CIRCLE_FORMAT

    def __post_init__(self) -> None:
        code = "invalid_pseudonym_binding"
        if type(self.v) is not int or self.v != CIRCLE_FORMAT:
            raise CircleError(code, "unsupported pseudonym binding version")
        require_uuid(self.circle_id, "circle_id", code)
        require_uuid(self.device_id, "device_id", code)
        require_uuid(self.pseudonym_id, "pseudonym_id", code)
        require_sha256_hex(self.public_key_sha256, "public_key_sha256", code)

    def to_bytes(self) -> bytes:
        return dumps(
            {
                "v": self.v,
                "circle_id": self.circle_id,
                "device_id": self.device_id,
                "pseudonym_id": self.pseudonym_id,
                "public_key_sha256": self.public_key_sha256,
            }
        )

    @classmethod
    @circle_errors
    def parse(cls, raw: bytes) -> PseudonymBinding:
        code = "invalid_pseudonym_binding"
        obj = loads(raw)
        _require_format(obj, code)
        require_fields(obj, {"v", "circle_id", "device_id", "pseudonym_id", "public_key_sha256"}, code)
        return cls(**obj)
