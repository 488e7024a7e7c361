"""Circle events fan out when they are read: one event row per circle event, whatever the circle's size, and
each member reads those of its membership only (from joining until leaving or removal), never those it caused,
never who wrote a pseudonymous post; in the same order and with the same cursor as case events."""

from __future__ import annotations

import uuid

from sqlalchemy import func
from sqlmodel import Session, select

from app.models.notifications import Event, EventRecipient
from app.models.users import Profession
from tests.circle_helpers import (
    create_circle,
    invite_and_join,
    make_pseudonym,
    open_epochs,
    post,
    professional,
    rotate,
)
from tests.notification_helpers import EVENT_FIELDS, circle_events_of


def _posted(client, circle: str, author, text: str, **options) -> str:
    """Rotates first when the circle requires it (after a membership change), then posts."""
    detail = client.get(f"/v1/circles/{circle}", headers=author.headers()).json()
    if detail["rotation_required"]:
        rotate(client, circle, author)
    response = post(client, circle, author, text, **options)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _posts_seen(engine, member, circle: str) -> list[str]:
    return [
        event["object_id"]
        for event in circle_events_of(engine, member.id, circle)
        if event["type"] == "circle.post.created"
    ]


def test_members_read_the_events_of_their_membership_only(client, accounts, engine):
    moderator, early, late = (
        professional(client, accounts, profession)
        for profession in (Profession.NURSE, Profession.PSYCHOLOGIST, Profession.MIDWIFE)
    )
    circle = create_circle(client, moderator)["id"]
    invite_and_join(client, circle, moderator, early)
    before_late = _posted(client, circle, moderator, "avant")
    invite_and_join(client, circle, moderator, late)
    after_late = _posted(client, circle, moderator, "après")
    # The newcomer reads from its joining on; the early member reads both; the author neither.
    assert _posts_seen(engine, late, circle) == [after_late]
    assert _posts_seen(engine, early, circle) == [before_late, after_late]
    assert _posts_seen(engine, moderator, circle) == []
    # Its own joining is not an event for the newcomer; the others hear of it.
    assert "circle.member.joined" not in [e["type"] for e in circle_events_of(engine, late.id, circle)]
    assert [e["type"] for e in circle_events_of(engine, early.id, circle)].count("circle.member.joined") == 1

    removed = client.delete(f"/v1/circles/{circle}/members/{early.id}", headers=moderator.headers())
    assert removed.status_code == 200, removed.text
    after_removal = _posted(client, circle, moderator, "sans vous")
    # A removed member reads nothing new, and keeps what it read as a member.
    assert _posts_seen(engine, early, circle) == [before_late, after_late]
    assert _posts_seen(engine, late, circle) == [after_late, after_removal]
    assert "circle.member.left" in [e["type"] for e in circle_events_of(engine, late.id, circle)]


def test_a_post_writes_one_event_and_no_recipient_rows(client, accounts, engine):
    people = [professional(client, accounts) for _ in range(4)]
    circle = create_circle(client, people[0])["id"]
    invite_and_join(client, circle, people[0], *people[1:])
    post_id = _posted(client, circle, people[0], "une fois")
    with Session(engine) as session:
        events = session.exec(select(Event).where(Event.object_id == uuid.UUID(post_id))).all()
        listed = session.exec(
            select(func.count())
            .select_from(EventRecipient)
            .join(Event, Event.id == EventRecipient.event_id)
            .where(Event.circle_id == uuid.UUID(circle))
        ).one()
    assert len(events) == 1 and listed == 0
    for member in people[1:]:
        assert _posts_seen(engine, member, circle) == [post_id]


def test_a_pseudonymous_posts_event_names_no_author(client, accounts, engine):
    moderator, author, reader = (professional(client, accounts) for _ in range(3))
    circle = create_circle(client, moderator)["id"]
    invite_and_join(client, circle, moderator, author, reader)
    rotate(client, circle, moderator)
    open_epochs(client, circle, author)
    make_pseudonym(client, circle, author, "Colibri")
    post_id = _posted(client, circle, author, "sous pseudonyme", pseudonym=True)
    for member in (moderator, reader):
        (event,) = [e for e in circle_events_of(engine, member.id, circle) if e["object_id"] == post_id]
        assert set(event) == EVENT_FIELDS | {"circle_id"} and author.id not in str(event)
    assert post_id not in _posts_seen(engine, author, circle)


def test_circle_and_case_events_share_one_order_and_cursor(client, accounts, engine):
    moderator, member = professional(client, accounts), professional(client, accounts)
    circle = create_circle(client, moderator)["id"]
    invite_and_join(client, circle, moderator, member)
    posts = [_posted(client, circle, moderator, f"message {n}") for n in range(3)]
    expected = [e["id"] for e in circle_events_of(engine, member.id)]
    pages, cursor = [], 0
    while True:
        page = client.get(
            "/v1/events", params={"limit": 2}, headers=member.headers() | {"Last-Event-ID": str(cursor)}
        ).json()
        if not page["items"]:
            break
        pages.append(page["items"])
        cursor = page["last_event_id"]
    read = [event for items in pages for event in items]
    assert [event["id"] for event in read] == expected == sorted(expected)
    assert [e["object_id"] for e in read if e["type"] == "circle.post.created"] == posts
    assert all(len(items) <= 2 for items in pages)
