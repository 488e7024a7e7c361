"""Specialties."""

from __future__ import annotations

from pydantic import Field

from app.schemas.common import RequestModel, ResponseModel


class SpecialtyOut(ResponseModel):
    code: str = Field(examples=["cardiology"])
    name: str = Field(examples=["Cardiology"])
    snomed_code: str = Field(examples=["394579002"], description="SNOMED CT code of the specialty.")
    active: bool


class SpecialtyCreate(RequestModel):
    code: str = Field(pattern=r"^[a-z][a-z0-9-]{1,39}$", examples=["sleep-medicine"])
    name: str = Field(min_length=2, max_length=120, examples=["Sleep medicine"])
    snomed_code: str = Field(pattern=r"^[0-9]{6,18}$", examples=["1571000175102"])
