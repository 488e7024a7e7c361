"""Base models shared by every request and response schema."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RequestModel(BaseModel):
    """Strict input: unknown fields are refused rather than silently dropped."""

    model_config = ConfigDict(extra="forbid")


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
    400: "Bad request",
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
