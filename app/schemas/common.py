"""Base models shared by every request and response schema."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    field_validator,
)


def storable_text(value: str) -> str:
    """Text every database here can store: PostgreSQL refuses NUL, and no driver encodes a lone surrogate
    (JSON's "\\ud800"). Refused as input rather than failing, as a 500, at the database."""
    if "\x00" in value:
        raise ValueError("text may not contain NUL characters")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    return value


def _storable(value: object) -> object:
    if isinstance(value, str):
        storable_text(value)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _storable(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable(key)
            _storable(item)
    return value


class RequestModel(BaseModel):
    """Strict input: unknown fields are refused rather than silently dropped."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: object) -> object:
        return _storable(value)


def _in_utc(value: datetime) -> datetime:
    # Near the ends of the calendar an offset can push a time out of range; it is stored in UTC.
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is out of range once converted to UTC") from None


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _iso_8601(value: object) -> object:
    # Pydantic also reads numbers (and numeric strings, as a query sends them) as Unix times: `until=0.5`
    # would be 1970. The contract says date-time, so only an ISO 8601 string (or a datetime) is one.
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_DATE.match(value)):
        return value
    raise ValueError("expected an ISO 8601 date-time with a time zone, e.g. 2026-01-31T09:00:00Z")


# An instant with a time zone, normalised to UTC: year 1 at +14:00 is refused here, not by the database.
UtcDateTime = Annotated[AwareDatetime, BeforeValidator(_iso_8601), AfterValidator(_in_utc)]
# An integer in a JSON body: true, 1.0 and "1" are refused (query parameters, always strings, use int).
JsonInt = Annotated[int, Strict()]


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details. `code` is stable: clients branch on it, never on `title` or `detail`."""

    type: str = Field(default="about:blank", examples=["about:blank"])
    title: str = Field(examples=["Not found"])
    status: int = Field(examples=[404])
    code: str = Field(examples=["not_found"])
    detail: str | None = Field(default=None, examples=["No such case"])
    instance: str | None = Field(default=None, examples=["/v1/cases/0b6f..."])
    request_id: str | None = None
    errors: list[FieldError] | None = None


_PROBLEM_DESCRIPTIONS = {
    400: "The body cannot be parsed (not UTF-8 JSON, or a broken multipart stream)",
    401: "Missing, expired or invalid credentials",
    403: "Authenticated, but this role, account state or session may not do this",
    404: "Not found, or not visible to the caller (the two are indistinguishable)",
    409: "Conflicts with the current state",
    413: "Body too large",
    422: "Invalid input",
    429: "Too many requests: see Retry-After",
    503: "Not ready",
}


def problems(*statuses: int) -> dict[int | str, dict]:
    """OpenAPI declarations of the problem+json answers a route can give."""
    return {
        status: {
            "model": Problem,
            "description": _PROBLEM_DESCRIPTIONS[status],
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
