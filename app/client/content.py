"""What is inside a sealed object: the content schema (docs/schemas/sealed-content.schema.json is generated
from these models: `python -m app.client.content`, and a test fails on drift).

A reader validates what it decrypts against the model of the header's kind and shows anything else as raw
text rather than failing: a newer or foreign client may write what this one does not know.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.json_schema import models_json_schema

CONTENT_VERSION: Literal[1] = 1
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "schemas" / "sealed-content.schema.json"
SCHEMA_ID = "https://confrere.example/schemas/sealed-content.schema.json"


class _Content(BaseModel):
    # Readers ignore fields they do not know (a later content version may add some); writers send only
    # these. Strict: "1" is not 1, and a number is not a string.
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    v: Literal[1] = Field(description="Content version: 1.")


class AttachmentRef(BaseModel):
    """What the case says about one of its attachments (the attachment object itself is the raw bytes)."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    id: str = Field(pattern=UUID_PATTERN, description="The attachment's object id (its header's object_id).")
    name: str = Field(max_length=255, description="File name to show and save as.")
    media_type: str = Field(max_length=255, description="IANA media type, e.g. image/jpeg.")
    size: int = Field(ge=0, description="Plaintext size in bytes.")


class Patient(BaseModel):
    """What the requester chose to say about the patient: both optional, never a name."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    age_years: int | None = Field(default=None, ge=0, description="Age in whole years.")
    sex: Literal["female", "male", "other"] | None = Field(default=None, description="Sex.")


class CaseContent(_Content):
    """Sealed content of an object of kind `case`."""

    question: str = Field(description="The clinical question, free text.")
    patient: Patient | None = Field(
        default=None, description="The patient's age and sex, when the requester gave them; absent otherwise."
    )
    attachments: list[AttachmentRef] = Field(default=[], description="The case's attachments, in order.")


class MessageContent(_Content):
    """Sealed content of an object of kind `message`, `info_request`, `info_response` or `report`."""

    text: str = Field(description="The message, free text.")


_MODEL_BY_KIND: dict[str, type[_Content]] = {
    "case": CaseContent,
    "message": MessageContent,
    "info_request": MessageContent,
    "info_response": MessageContent,
    "report": MessageContent,
}


ContentT = TypeVar("ContentT", bound=BaseModel)


@dataclass(frozen=True)
class Parsed(Generic[ContentT]):
    """Decrypted content: `content` when it matches its schema, else None and `raw_text` is what to show."""

    content: ContentT | None
    raw_text: str


def parse_as(model: type[ContentT], plaintext: bytes) -> Parsed[ContentT]:
    raw_text = plaintext.decode("utf-8", errors="replace")
    try:
        return Parsed(model.model_validate_json(plaintext), raw_text)
    except ValidationError:
        return Parsed(None, raw_text)


def parse_content(kind: str, plaintext: bytes) -> Parsed[_Content]:
    """`plaintext` checked against the schema of the header's `kind` (attachments have none)."""
    model = _MODEL_BY_KIND.get(kind)
    if model is None:
        return Parsed(None, plaintext.decode("utf-8", errors="replace"))
    return parse_as(model, plaintext)


def content_bytes(content: _Content) -> bytes:
    return content.model_dump_json(exclude_none=True).encode()


def schema_document(
    models: list[type[BaseModel]], schema_id: str, title: str, description: str
) -> dict[str, Any]:
    """A JSON Schema 2020-12 document defining `models` under `$defs`."""
    _, definitions = models_json_schema([(m, "validation") for m in models], ref_template="#/$defs/{model}")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": schema_id,
        "title": title,
        "description": description,
        **definitions,
    }


def json_schema() -> dict[str, Any]:
    return schema_document(
        [CaseContent, MessageContent],
        SCHEMA_ID,
        "Confrere sealed content, content version 1",
        "The plaintext inside a sealed object (docs/e2ee.md section 15), UTF-8 JSON. Kind "
        "`case`: CaseContent; kinds `message`, `info_request`, `info_response`, `report`: MessageContent; "
        "kind `attachment`: the file's raw bytes (described by the case's `attachments`).",
    )


def schema_text(schema: dict[str, Any] | None = None) -> str:
    return json.dumps(json_schema() if schema is None else schema, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    SCHEMA_PATH.parent.mkdir(parents=True, exist_ok=True)
    SCHEMA_PATH.write_text(schema_text())
    sys.stdout.write(f"wrote {SCHEMA_PATH}\n")
