"""The device directory log in answers: a device with the proof of its registration entry, and the checkpoint
the proofs lead to (docs/key-transparency.md)."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated

from pydantic import Field

from app.schemas.common import ResponseModel
from app.schemas.sealed import Base64, DirectoryDevice

# An entry is at most one tlog-tiles entry (65,535 bytes).
Entry = Annotated[bytes, Base64(65_535)]
_CHECKPOINT = (
    "The directory log's latest signed checkpoint (C2SP signed note) that every proof here leads to; "
    "verify it with the pinned directory log key."
)


class DeviceProof(ResponseModel):
    index: int = Field(ge=0, description="The position of the device's registration entry in the log.")
    entry: Entry = Field(description="The registration entry's exact bytes (canonical JSON).")
    inclusion: list[str] = Field(description="RFC 9162 inclusion proof to the checkpoint: hex hashes.")


class ProvedDevice(DirectoryDevice):
    directory: DeviceProof | None = Field(
        description="Null only for a device registered before the directory log existed: clients refuse "
        "to seal for it (docs/key-transparency.md)."
    )


class ProvedDevices(ResponseModel):
    checkpoint: str = Field(description=_CHECKPOINT)
    devices: list[ProvedDevice]


class SpecialtyRecipients(ProvedDevices):
    specialty: str = Field(examples=["dermatology"])


class UserDevices(ProvedDevices):
    user_id: uuid.UUID


class ParticipantRole(StrEnum):
    REQUESTER = "requester"
    ASSIGNEE = "assignee"
    NAMED_SPECIALIST = "named_specialist"
    SHARED = "shared"


class Participant(ResponseModel):
    user_id: uuid.UUID
    roles: list[ParticipantRole]
    devices: list[ProvedDevice] = Field(description="The participant's active devices, each with its proof.")


class Participants(ResponseModel):
    checkpoint: str = Field(description=_CHECKPOINT)
    users: list[Participant]


class DirectoryEntryOut(ResponseModel):
    index: int
    entry: Entry
