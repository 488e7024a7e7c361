"""The CLI's local state: server, tokens and this device's private keys, in a 0600 file per profile.

Private keys live only here, on the clinician's machine; the server never receives them.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.client.api import b64, unb64
from app.client.directory import MonitorState, Sighting
from app.crypto.e2ee import DeviceKeys, Suite


def client_home() -> Path:
    """Where the CLI keeps its profiles: CONFRERE_CLIENT_HOME, else ~/.config/confrere."""
    return Path(os.environ.get("CONFRERE_CLIENT_HOME") or Path.home() / ".config" / "confrere").absolute()


def profile_path(name: str) -> Path:
    return client_home() / f"{name}.json"


def write_private(path: Path, text: str) -> None:
    """Replaces the file atomically, readable by this user only (it holds tokens or private keys)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    temporary.replace(path)


@dataclass
class Profile:
    server: str
    email: str
    user_id: str | None = None
    access_token: str | None = None
    refresh_token: str | None = None
    device_id: str | None = None
    suite: str | None = None
    signing_private: str | None = None
    kem_private: str | None = None
    # The device directory log: its pinned verifier key, the last checkpoint accepted, the monitor's progress
    # (tree size, compact range) and what it saw of this user's devices.
    directory_key: str | None = None
    directory_checkpoint: str | None = None
    monitor_size: int = 0
    monitor_range: str = ""
    monitor_devices: dict[str, dict] = field(default_factory=dict)
    # Devices of this user registered here or approved with `confrere device approve`.
    approved_devices: list[str] = field(default_factory=list)
    # Colleagues marked verified: user id -> the safety number compared with them.
    verified_contacts: dict[str, str] = field(default_factory=dict)
    last_event_id: int | None = None
    # Peer circles: the epoch keys this device opened and its pseudonym keys (app/client/circles.py).
    circles: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Profile:
        if not path.exists():
            raise SystemExit(f"no profile at {path}: run `confrere login` first")
        return cls(**json.loads(path.read_text()))

    def save(self, path: Path) -> None:
        write_private(path, json.dumps(asdict(self), indent=2))

    def device_keys(self) -> DeviceKeys:
        if not (self.device_id and self.suite and self.signing_private and self.kem_private):
            raise SystemExit("this profile has no device yet: run `confrere device register`")
        return DeviceKeys(Suite(self.suite), unb64(self.signing_private), unb64(self.kem_private))

    def remember_device(self, device_id: str, keys: DeviceKeys) -> None:
        self.device_id, self.suite = device_id, str(keys.suite)
        self.signing_private, self.kem_private = b64(keys.signing_private), b64(keys.kem_private)
        self.approve(device_id)

    def approve(self, device_id: str) -> None:
        if device_id not in self.approved_devices:
            self.approved_devices.append(device_id)

    def monitor_state(self) -> MonitorState:
        return MonitorState(
            size=self.monitor_size,
            compact_range=unb64(self.monitor_range) if self.monitor_range else b"",
            devices={key: Sighting(**value) for key, value in self.monitor_devices.items()},
        )

    def keep_monitor_state(self, state: MonitorState) -> None:
        self.monitor_size, self.monitor_range = state.size, b64(state.compact_range)
        self.monitor_devices = {key: asdict(value) for key, value in state.devices.items()}
