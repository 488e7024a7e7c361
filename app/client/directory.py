"""What the reference client checks before it seals for anyone, and how it watches its own account
(docs/e2ee.md "Device directory (key transparency)", docs/key-transparency.md).

`DirectoryTrust` holds the pinned directory log key and the last checkpoint this client accepted: every
answer that names devices must come with a checkpoint signed by that key and consistent with the last one,
and with a valid inclusion proof of each device's registration entry, whose keys must be the keys served.
Anything else raises DirectoryRefusal, and nothing is sealed. `Monitor` reads every entry of the log (its
tiles) since its last scan, checks that they hash to the signed root, and reports its user's devices.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from app.client.api import ConfrereApi, unb64
from app.crypto import merkle, tiles
from app.crypto.directory import (
    DeviceKeysOnRecord,
    DirectoryRefusal,
    EntryAction,
    ProvedDevice,
    SafetyNumber,
    check_consistent,
    check_proved_device,
    device_of,
    open_directory_checkpoint,
    parse_entry,
    safety_number,
)
from app.crypto.signed_note import Checkpoint, NoteVerifier


def as_proved(device: dict[str, Any]) -> ProvedDevice:
    """A device of an API answer (`directory` proof included) as the crypto checks take it."""
    directory = device.get("directory")
    return ProvedDevice(
        keys=DeviceKeysOnRecord(
            device_id=device["device_id"],
            user_id=device["user_id"],
            suite=device["suite"],
            signing_public_key=unb64(device["signing_public_key"]),
            kem_public_key=unb64(device["kem_public_key"]),
        ),
        index=directory["index"] if directory else None,
        entry=unb64(directory["entry"]) if directory else None,
        proof=tuple(bytes.fromhex(node) for node in directory["inclusion"]) if directory else (),
    )


class DirectoryTrust:
    """The pinned directory log key and the last checkpoint accepted (saved by `on_checkpoint`)."""

    def __init__(
        self,
        api: ConfrereApi,
        key_string: str,
        last_checkpoint: bytes | None = None,
        on_checkpoint: Callable[[bytes], None] | None = None,
    ) -> None:
        self.api = api
        self.verifier = NoteVerifier.from_key_string(key_string)
        self._last_note = last_checkpoint
        self._last = open_directory_checkpoint(last_checkpoint, self.verifier) if last_checkpoint else None
        self._on_checkpoint = on_checkpoint

    @classmethod
    def first_use(cls, api: ConfrereApi, **kwargs: Any) -> DirectoryTrust:
        """Pins the key the server announces (trust on first use): compare it out of band
        (`confrere directory key`) before relying on it."""
        return cls(api, api.directory_key(), **kwargs)

    @property
    def key_string(self) -> str:
        return self.verifier.key_string

    @property
    def last_checkpoint(self) -> Checkpoint | None:
        return self._last

    def accept(self, note: bytes) -> Checkpoint:
        """A checkpoint signed by the pinned key that extends the last one accepted; it becomes the last."""
        checkpoint = open_directory_checkpoint(note, self.verifier)
        previous = self._last
        if previous is not None and checkpoint.size == previous.size:
            check_consistent(previous, checkpoint, [])
        elif previous is not None:
            # An older checkpoint (a lagging replica) is fine as long as it is a prefix of what was seen.
            older, newer = sorted((previous, checkpoint), key=lambda seen: seen.size)
            proof = self.api.directory_consistency(older.size, newer.size)
            check_consistent(older, newer, [bytes.fromhex(node) for node in proof["hashes"]])
        if previous is None or checkpoint.size > previous.size:
            self._last, self._last_note = checkpoint, note
            if self._on_checkpoint is not None:
                self._on_checkpoint(note)
        return checkpoint

    def verified(self, checkpoint_note: str, devices: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """The devices of an answer, once every one of them is proved; DirectoryRefusal otherwise."""
        checkpoint = self.accept(checkpoint_note.encode())
        listed = list(devices)
        for device in listed:
            check_proved_device(as_proved(device), checkpoint)
        return listed


def keys_of(devices: Iterable[dict[str, Any]]) -> list[DeviceKeysOnRecord]:
    return [as_proved(device).keys for device in devices]


def fingerprint(user_id: str, devices: Iterable[dict[str, Any]]) -> SafetyNumber:
    return safety_number(user_id, keys_of(devices))


@dataclass
class Sighting:
    device_id: str
    registered_at: str
    revoked: bool = False


@dataclass
class MonitorState:
    size: int = 0
    compact_range: bytes = b""
    # The watched user's devices as the log tells them, by device id.
    devices: dict[str, Sighting] = field(default_factory=dict)


class Monitor:
    """Reads every directory entry since the last scan from the public tiles, checks that the whole log
    hashes to the trusted checkpoint, and keeps the watched user's device registrations and revocations."""

    def __init__(self, trust: DirectoryTrust, user_id: str, state: MonitorState | None = None) -> None:
        self.trust = trust
        self.user_id = user_id
        self.state = state or MonitorState()

    def scan(self) -> Checkpoint:
        checkpoint = self.trust.accept(self.trust.api.directory_checkpoint())
        compact = (
            merkle.CompactRange.from_bytes(self.state.compact_range)
            if self.state.compact_range
            else merkle.CompactRange()
        )
        position = compact.size
        while position < checkpoint.size:
            bundle_index = position // tiles.TILE_WIDTH
            width = min(tiles.TILE_WIDTH, checkpoint.size - bundle_index * tiles.TILE_WIDTH)
            entries = tiles.decode_entry_bundle(
                self.trust.api.directory_tile(tiles.entry_bundle_path(bundle_index, width))
            )
            if len(entries) != width:
                raise DirectoryRefusal("directory_log_mismatch", "an entry bundle has the wrong width")
            for entry in entries[position - bundle_index * tiles.TILE_WIDTH :]:
                compact.append(merkle.leaf_hash(entry))
                self._note(entry)
                position += 1
        if compact.root() != checkpoint.root_hash:
            raise DirectoryRefusal(
                "directory_log_mismatch",
                f"the log's entries do not hash to the signed root of size {checkpoint.size}",
            )
        self.state.size, self.state.compact_range = compact.size, compact.to_bytes()
        return checkpoint

    def _note(self, raw: bytes) -> None:
        entry = parse_entry(raw)
        if entry["user"] != self.user_id or entry["action"] not in (
            EntryAction.DEVICE_REGISTER,
            EntryAction.DEVICE_REVOKE,
        ):
            return
        device = device_of(entry)
        if entry["action"] is EntryAction.DEVICE_REGISTER:
            self.state.devices[device.device_id] = Sighting(device.device_id, entry["time"])
        elif device.device_id in self.state.devices:
            self.state.devices[device.device_id].revoked = True

    def unknown_devices(self, approved: Iterable[str]) -> list[Sighting]:
        """Devices registered to the watched user that the user never registered here nor approved."""
        known = set(approved)
        return [sighting for sighting in self.state.devices.values() if sighting.device_id not in known]
