"""The sealed content's JSON Schema (docs/schemas/sealed-content.schema.json) and the reference client's
models are one definition: the committed schema is generated from the models."""

from __future__ import annotations

import json

import pytest

from app.client import circle_content
from app.client.content import (
    SCHEMA_PATH,
    AttachmentRef,
    CaseContent,
    MessageContent,
    Patient,
    content_bytes,
    json_schema,
    parse_content,
    schema_text,
)

ATTACHMENT = "11111111-1111-4111-8111-111111111111"


def test_the_committed_schema_is_the_models_schema() -> None:
    # On failure: python -m app.client.content, and review the diff.
    assert SCHEMA_PATH.read_text() == schema_text()
    schema = json.loads(SCHEMA_PATH.read_text())
    assert schema == json_schema()
    assert set(schema["$defs"]) == {"AttachmentRef", "CaseContent", "MessageContent", "Patient"}
    assert schema["$defs"]["CaseContent"]["required"] == ["v", "question"]


def test_what_the_client_writes_is_what_it_reads() -> None:
    case = CaseContent(
        v=1,
        question="q",
        attachments=[AttachmentRef(id=ATTACHMENT, name="a.png", media_type="image/png", size=3)],
    )
    assert parse_content("case", content_bytes(case)).content == case
    # The patient's age and sex only when given: no "patient": null for older readers to trip on.
    assert b"patient" not in content_bytes(case)
    with_patient = CaseContent(v=1, question="q", patient=Patient(age_years=58, sex="male"))
    assert parse_content("case", content_bytes(with_patient)).content == with_patient
    message = MessageContent(v=1, text="hello")
    for kind in ("message", "info_request", "info_response", "report"):
        assert parse_content(kind, content_bytes(message)).content == message


@pytest.mark.parametrize(
    ("kind", "plaintext"),
    [
        ("case", b"not json"),
        ("case", b'{"question":"no version"}'),
        ("case", b'{"v":"1","question":"a string version"}'),
        ("case", b'{"v":2,"question":"a later version"}'),
        ("case", b'{"v":1,"question":"q","attachments":[{"id":"X","name":"a","media_type":"b","size":1}]}'),
        ("case", b'{"v":1,"question":"q","patient":{"age_years":"58"}}'),
        ("case", b'{"v":1,"question":"q","patient":{"sex":"unknown"}}'),
        ("message", b'{"v":1,"text":7}'),
        ("report", b'{"v":1}'),
        ("message", b"\xff\xfe not UTF-8"),
        ("attachment", b'{"v":1,"text":"attachments have no JSON content"}'),
    ],
)
def test_content_that_does_not_match_is_kept_as_raw_text(kind: str, plaintext: bytes) -> None:
    parsed = parse_content(kind, plaintext)
    assert parsed.content is None
    assert parsed.raw_text == plaintext.decode("utf-8", errors="replace")


def test_unknown_fields_are_ignored() -> None:
    parsed = parse_content("message", b'{"v":1,"text":"hi","mood":"later content versions may add fields"}')
    assert parsed.content == MessageContent(v=1, text="hi")


def test_the_committed_circle_post_schema_is_the_models_schema() -> None:
    # On failure: python -m app.client.circle_content, and review the diff.
    assert circle_content.SCHEMA_PATH.read_text() == schema_text(circle_content.json_schema())
    schema = json.loads(circle_content.SCHEMA_PATH.read_text())
    assert set(schema["$defs"]) == {"CirclePostContent", "CircleReplyContent"}
    assert schema["$defs"]["CirclePostContent"]["required"] == ["body"]


def test_circle_posts_and_replies_read_what_the_client_writes() -> None:
    post = circle_content.parse_circle_content("post", circle_content.post_content_bytes("b", "t"))
    assert (post.content.body, post.content.title) == ("b", "t")
    assert b"title" not in circle_content.post_content_bytes("b")
    reply = circle_content.parse_circle_content("reply", circle_content.reply_content_bytes("r"))
    assert reply.content == circle_content.CircleReplyContent(body="r")


@pytest.mark.parametrize("plaintext", [b"not json", b'{"title":"no body"}', b'{"body":7}', b'{"body":""}'])
def test_circle_content_out_of_schema_is_shown_raw(plaintext: bytes) -> None:
    parsed = circle_content.parse_circle_content("post", plaintext)
    assert parsed.content is None
    assert parsed.raw_text == plaintext.decode()
