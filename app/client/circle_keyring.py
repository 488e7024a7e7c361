"""What a circle member's device keeps (docs/circles.md, "Keys a client keeps"): the epoch keys it opened and
its pseudonym keys, saved in the CLI profile as JSON (base64 keys)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.client.api import b64, unb64
from app.crypto.circles import PseudonymKey


@dataclass
class OwnPseudonym:
    pseudonym_id: str
    key_id: str
    name: str
    key: PseudonymKey


@dataclass
class CircleKeyring:
    """What a device keeps of its circles: the epoch keys it opened and its pseudonym keys."""

    epochs: dict[str, dict[int, bytes]] = field(default_factory=dict)
    pseudonyms: dict[str, OwnPseudonym] = field(default_factory=dict)

    def key(self, circle_id: str, epoch: int) -> bytes | None:
        return self.epochs.get(circle_id, {}).get(epoch)

    def keep(self, circle_id: str, epoch: int, epoch_key: bytes) -> None:
        self.epochs.setdefault(circle_id, {})[epoch] = epoch_key

    def highest(self, circle_id: str) -> int:
        return max(self.epochs.get(circle_id, {}), default=0)

    def to_json(self) -> dict[str, Any]:
        return {
            "epochs": {c: {str(e): b64(k) for e, k in keys.items()} for c, keys in self.epochs.items()},
            "pseudonyms": {
                c: {
                    "pseudonym_id": p.pseudonym_id,
                    "key_id": p.key_id,
                    "name": p.name,
                    "key": b64(p.key.private),
                }
                for c, p in self.pseudonyms.items()
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CircleKeyring:
        return cls(
            epochs={
                c: {int(e): unb64(k) for e, k in keys.items()} for c, keys in data.get("epochs", {}).items()
            },
            pseudonyms={
                c: OwnPseudonym(p["pseudonym_id"], p["key_id"], p["name"], PseudonymKey(unb64(p["key"])))
                for c, p in data.get("pseudonyms", {}).items()
            },
        )
