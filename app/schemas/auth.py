"""Login, tokens and TOTP enrolment."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from app.schemas.common import RequestModel, ResponseModel

TotpCode = Field(pattern=r"^[0-9]{6}$", examples=["492039"])


class LoginRequest(RequestModel):
    email: str = Field(min_length=3, max_length=254, examples=["dr.martin@example.org"])
    password: str = Field(min_length=1, max_length=128, examples=["correct horse battery staple"])
    totp_code: str | None = Field(default=None, pattern=r"^[0-9]{6}$", examples=[None])


class RefreshRequest(RequestModel):
    refresh_token: str = Field(min_length=20, max_length=200)


class TokenResponse(ResponseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105
    expires_in: int = Field(description="Seconds until the access token expires.")
    refresh_token: str = Field(description="Opaque; single use: every refresh returns a new one.")
    refresh_expires_in: int


class TotpEnrolment(ResponseModel):
    secret: str = Field(description="Base32 secret, for manual entry in an authenticator app.")
    otpauth_uri: str = Field(description="otpauth:// URI, usually shown as a QR code.")


class TotpConfirmRequest(RequestModel):
    code: str = TotpCode
