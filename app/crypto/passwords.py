"""Argon2id password hashing (PHC strings), with equal work for unknown accounts."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

SALT_BYTES = 16
HASH_BYTES = 32


@dataclass(frozen=True)
class PasswordHasher:
    memory_kib: int = 19456
    iterations: int = 2
    lanes: int = 1

    def _kdf(self) -> Argon2id:
        return Argon2id(
            salt=os.urandom(SALT_BYTES),
            length=HASH_BYTES,
            iterations=self.iterations,
            lanes=self.lanes,
            memory_cost=self.memory_kib,
        )

    def hash(self, password: str) -> str:
        return self._kdf().derive_phc_encoded(password.encode())

    def verify(self, password: str, phc: str) -> bool:
        try:
            Argon2id.verify_phc_encoded(password.encode(), phc)
        except (InvalidKey, ValueError):
            return False
        return True

    @cached_property
    def _decoy(self) -> str:
        return self.hash(os.urandom(16).hex())

    def burn(self, password: str) -> None:
        """Spend the same time as a real check, so a login cannot tell unknown accounts from known ones."""
        self.verify(password, self._decoy)
