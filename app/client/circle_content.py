"""What is inside a circle post or reply (docs/e2ee.md section 20.4): docs/schemas/circle-post.schema.json is
generated from these models (`python -m app.client.circle_content`; a test fails on drift).

Readers validate what they decrypt and show anything else as raw text (app/client/content.py's rule).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.client.content import Parsed, parse_as, schema_document, schema_text

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "schemas" / "circle-post.schema.json"
SCHEMA_ID = "https://confrere.example/schemas/circle-post.schema.json"
MAX_TITLE_LENGTH = 200


class CircleReplyContent(BaseModel):
    """Sealed content of a reply (header kind `reply`)."""

    # Readers ignore fields they do not know; strict types, as for case content.
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    body: str = Field(min_length=1, description="The text, free form.")


class CirclePostContent(CircleReplyContent):
    """Sealed content of a top-level post (header kind `post`)."""

    title: str | None = Field(
        default=None, max_length=MAX_TITLE_LENGTH, description="A short title; absent when not given."
    )


def post_content_bytes(body: str, title: str | None = None) -> bytes:
    return CirclePostContent(body=body, title=title).model_dump_json(exclude_none=True).encode()


def reply_content_bytes(body: str) -> bytes:
    return CircleReplyContent(body=body).model_dump_json().encode()


def parse_circle_content(kind: str, plaintext: bytes) -> Parsed[CircleReplyContent]:
    """`plaintext` against the model of the header's kind (`post` or `reply`)."""
    model: type[CircleReplyContent] = CirclePostContent if kind == "post" else CircleReplyContent
    return parse_as(model, plaintext)


def json_schema() -> dict[str, Any]:
    return schema_document(
        [CirclePostContent, CircleReplyContent],
        SCHEMA_ID,
        "Confrere circle post content",
        "The plaintext inside a circle post or reply (docs/e2ee.md section 20.4), UTF-8 JSON. Header kind "
        "`post`: CirclePostContent; kind `reply`: CircleReplyContent.",
    )


if __name__ == "__main__":
    SCHEMA_PATH.write_text(schema_text(json_schema()))
    sys.stdout.write(f"wrote {SCHEMA_PATH}\n")
