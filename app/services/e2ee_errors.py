"""E2EE format refusals (app.crypto raises E2EEError, which knows no HTTP) as typed API errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from app.crypto.e2ee import E2EEError
from app.errors import InvalidInput


class SealedRefused(InvalidInput):
    """Carries the format's own stable code (docs/e2ee.md section 14), e.g. `invalid_signature`."""

    title = "The encrypted content or its keys were refused"

    def __init__(self, error: E2EEError):
        super().__init__(str(error))
        self.code = error.code  # type: ignore[misc]  # the format's own code, per refusal


@contextmanager
def e2ee_checks() -> Iterator[None]:
    try:
        yield
    except E2EEError as error:
        raise SealedRefused(error) from None
