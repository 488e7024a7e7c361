"""Circle posts over HTTP with real cryptography: pseudonymous posts never show their author to members (in
any answer or event), checks of sealed posts, moderation and reactions, co-development sessions' rounds,
and the audit record of every refusal."""

from __future__ import annotations

import json
import time
from datetime import timedelta

from sqlmodel import Session

from app.client.api import b64, unb64
from app.crypto.circles import PseudonymKey, pseudonym_binding, sign_pseudonym_binding
from app.models.base import utcnow
from app.models.users import Profession
from app.notifications import deadlines
from tests.circle_helpers import (
    audit_of,
    create_circle,
    invite_and_join,
    make_pseudonym,
    open_epochs,
    post,
    post_body,
    professional,
    read_post,
    rotate,
)
from tests.conftest import assert_problem
from tests.notification_helpers import circle_events_of


def _circle(client, accounts, members: int = 3):
    people = [
        professional(client, accounts, profession)
        for profession in (
            Profession.NURSE,
            Profession.PSYCHOLOGIST,
            Profession.PHYSICIAN,
            Profession.MIDWIFE,
        )[:members]
    ]
    circle = create_circle(client, people[0])["id"]
    invite_and_join(client, circle, people[0], *people[1:])
    rotate(client, circle, people[0])
    for person in people[1:]:
        open_epochs(client, circle, person)
    return circle, people


def test_a_pseudonymous_post_never_shows_its_author(client, accounts, engine):
    circle, (moderator, author, reader) = _circle(client, accounts)
    make_pseudonym(client, circle, author, "Colibri")
    created = post(client, circle, author, "Je n'en peux plus de ces gardes", pseudonym=True)
    assert created.status_code == 201, created.text
    post_id = created.json()["id"]
    pseudonyms = client.get(f"/v1/circles/{circle}/pseudonyms", headers=reader.headers()).json()["pseudonyms"]
    assert [p["name"] for p in pseudonyms] == ["Colibri"]
    key = unb64(pseudonyms[0]["keys"][0]["public_key"])
    reply = post(client, circle, reader, "Courage", parent_id=post_id)
    assert reply.status_code == 201, reply.text

    answers = {
        "list": client.get(f"/v1/circles/{circle}/posts", headers=reader.headers()),
        "thread": client.get(f"/v1/circles/{circle}/posts/{post_id}", headers=reader.headers()),
        "moderator list": client.get(f"/v1/circles/{circle}/posts", headers=moderator.headers()),
        "pseudonyms": client.get(f"/v1/circles/{circle}/pseudonyms", headers=moderator.headers()),
        "hide": client.post(
            f"/v1/circles/{circle}/posts/{post_id}/hide",
            json={"reason": "Hors sujet"},
            headers=moderator.headers(),
        ),
        "react": client.put(
            f"/v1/circles/{circle}/posts/{post_id}/reactions/me_too", headers=reader.headers()
        ),
    }
    for name, response in answers.items():
        assert response.status_code == 200, (name, response.text)
        assert author.id not in response.text, name
        assert author.device.id not in response.text, name
    thread = answers["thread"].json()
    assert thread["post"]["author"]["kind"] == "pseudonym"
    assert thread["post"]["author"]["name"] == "Colibri"
    assert read_post(reader, thread["post"], key) == "Je n'en peux plus de ces gardes"
    assert thread["post"]["sealed"]["author_device"] is None
    # Hidden: members see the reason, not the post; the moderator still sees it.
    assert answers["hide"].json()["hidden"]["reason"] == "Hors sujet"
    listed = client.get(f"/v1/circles/{circle}/posts", headers=reader.headers()).json()["items"][0]
    assert listed["sealed"] is None and listed["hidden"]["reason"] == "Hors sujet"
    assert listed["reactions"] == {"helpful": 0, "me_too": 1} and listed["my_reactions"] == ["me_too"]
    assert listed["reply_count"] == 1
    # Events: members hear of the post, never by whom; the author hears nothing of its own post.
    for member in (moderator, reader):
        created_events = [
            e for e in circle_events_of(engine, member.id) if e["type"] == "circle.post.created"
        ]
        assert any(e["object_id"] == post_id for e in created_events)
        assert all(author.id not in json.dumps(e) for e in created_events)
    assert not any(e["object_id"] == post_id for e in circle_events_of(engine, author.id))
    # The audit record names the real author.
    assert ("circle.post.create", "success", 201) in audit_of(engine, author.id)


def test_pseudonyms_are_bound_to_the_callers_device(client, accounts):
    circle, (_, author, reader) = _circle(client, accounts)
    make_pseudonym(client, circle, author, "Colibri")
    assert_problem(make_pseudonym(client, circle, reader, "Colibri", expect=409), 409, "pseudonym_name_taken")
    # A binding signed by another device than the caller's: refused.
    key = PseudonymKey.generate()
    binding, signature = sign_pseudonym_binding(
        pseudonym_binding(circle, author.device.id, "5b1e6c1e-7d2a-4e43-9a51-3f0c2b8d9e10", key.public),
        author.device.keys,
    )
    body = {
        "name": "Mésange",
        "public_key": b64(key.public),
        "binding": b64(binding),
        "binding_signature": b64(signature),
    }
    stolen = client.post(f"/v1/circles/{circle}/pseudonym", json=body, headers=reader.headers())
    assert_problem(stolen, 422, "invalid_signing_device")
    # Posting under someone else's pseudonym key: refused.
    reader.pseudonyms[circle] = author.pseudonyms[circle]
    assert_problem(post(client, circle, reader, "usurpation", pseudonym=True), 422, "invalid_signing_device")


def test_posts_are_checked(client, accounts, engine):
    circle, (moderator, member, _) = _circle(client, accounts)
    tampered = post_body(member, circle, 1, "hello")
    tampered["ciphertext"] = b64(unb64(tampered["ciphertext"])[:-1] + b"\x00")
    response = client.post(f"/v1/circles/{circle}/posts", json=tampered, headers=member.headers())
    assert_problem(response, 422, "ciphertext_hash_mismatch")
    forged = post_body(member, circle, 1, "hello")
    forged["signature"] = b64(bytes(64))
    assert_problem(
        client.post(f"/v1/circles/{circle}/posts", json=forged, headers=member.headers()),
        422,
        "invalid_signature",
    )
    # Signed as another member's device.
    other = post_body(moderator, circle, 1, "not mine")
    assert_problem(
        client.post(f"/v1/circles/{circle}/posts", json=other, headers=member.headers()),
        422,
        "invalid_signing_device",
    )
    member.keys[(circle, 2)] = bytes(32)  # an epoch the circle is not at
    assert_problem(post(client, circle, member, "ahead", epoch=2), 409, "stale_epoch")
    created = post(client, circle, member, "ok")
    assert created.status_code == 201
    again = client.post(
        f"/v1/circles/{circle}/posts",
        json={**post_body(member, circle, 1, "x"), "header": created.json()["sealed"]["header"]},
        headers=member.headers(),
    )
    assert again.status_code == 422  # the manifest no longer matches the header
    statuses = [status for action, _, status in audit_of(engine, member.id) if action == "circle.post.create"]
    assert statuses.count(422) >= 4 and 409 in statuses


def test_moderation_rules(client, accounts):
    circle, (moderator, member, other) = _circle(client, accounts)
    post_id = post(client, circle, member, "un cas difficile").json()["id"]
    assert_problem(
        client.post(
            f"/v1/circles/{circle}/posts/{post_id}/hide", json={"reason": "x"}, headers=member.headers()
        ),
        403,
        "moderator_required",
    )
    report = client.post(
        f"/v1/circles/{circle}/posts/{post_id}/reports",
        json={"reason": "patient_identifiable", "note": "le nom du patient"},
        headers=other.headers(),
    )
    assert report.status_code == 201, report.text
    assert_problem(
        client.get(f"/v1/circles/{circle}/reports", headers=member.headers()), 403, "moderator_required"
    )
    reports = client.get(f"/v1/circles/{circle}/reports", headers=moderator.headers()).json()["reports"]
    assert [r["post_id"] for r in reports] == [post_id] and other.id not in json.dumps(reports)
    hidden = client.post(
        f"/v1/circles/{circle}/posts/{post_id}/hide",
        json={"reason": "Données patient"},
        headers=moderator.headers(),
    )
    assert hidden.status_code == 200
    assert_problem(
        client.post(
            f"/v1/circles/{circle}/posts/{post_id}/hide", json={"reason": "x"}, headers=moderator.headers()
        ),
        409,
        "already_hidden",
    )
    # Roles: the last moderator cannot leave while others remain; promoted, it can.
    assert_problem(
        client.post(f"/v1/circles/{circle}/leave", headers=moderator.headers()), 409, "last_moderator"
    )
    promoted = client.put(
        f"/v1/circles/{circle}/members/{member.id}/role",
        json={"role": "moderator"},
        headers=moderator.headers(),
    )
    assert promoted.status_code == 200 and promoted.json()["role"] == "moderator"
    assert client.post(f"/v1/circles/{circle}/leave", headers=moderator.headers()).status_code == 200
    members = client.get(f"/v1/circles/{circle}/members", headers=member.headers()).json()["members"]
    assert {m["user_id"] for m in members} == {member.id, other.id}
    reaction = client.delete(
        f"/v1/circles/{circle}/posts/{post_id}/reactions/helpful", headers=other.headers()
    )
    assert reaction.status_code == 200


def test_a_session_refuses_writes_out_of_its_round(client, accounts, engine):
    circle, (presenter, facilitator, member) = _circle(client, accounts)
    post_id = post(client, circle, presenter, "Situation: un patient agressif").json()["id"]
    deadline = (utcnow() + timedelta(days=1)).isoformat()
    assert_problem(
        client.post(
            f"/v1/circles/{circle}/sessions",
            json={"post_id": post_id, "facilitator_id": facilitator.id, "deadline": deadline},
            headers=member.headers(),
        ),
        409,
        "session_not_allowed",
    )
    opened = client.post(
        f"/v1/circles/{circle}/sessions",
        json={"post_id": post_id, "facilitator_id": facilitator.id, "deadline": deadline},
        headers=presenter.headers(),
    )
    assert opened.status_code == 201, opened.text
    session_id = opened.json()["id"]

    def write(person, round_):
        return post(
            client,
            circle,
            person,
            f"{round_}",
            parent_id=post_id,
            session={"session_id": session_id, "round": round_},
        )

    def move(person, round_):
        return client.post(
            f"/v1/circles/{circle}/sessions/{session_id}/rounds",
            json={"round": round_},
            headers=person.headers(),
        )

    assert write(presenter, "situation").status_code == 201
    assert_problem(write(member, "situation"), 403, "session_round_forbidden")
    assert_problem(write(member, "ideas"), 409, "session_round_closed")
    assert_problem(move(member, "clarifying_questions"), 403, "session_advance_forbidden")
    assert_problem(move(facilitator, "ideas"), 409, "illegal_round")
    assert move(facilitator, "clarifying_questions").status_code == 200
    assert write(member, "clarifying_questions").status_code == 201
    assert write(presenter, "clarifying_questions").status_code == 201
    assert move(facilitator, "ideas").status_code == 200
    assert_problem(write(presenter, "ideas"), 403, "session_round_forbidden")
    assert write(member, "ideas").status_code == 201
    assert move(facilitator, "action_plan").status_code == 200
    assert_problem(write(member, "action_plan"), 403, "session_round_forbidden")
    assert write(presenter, "action_plan").status_code == 201
    closed = move(facilitator, "closed")
    assert closed.status_code == 200 and closed.json()["closed_at"] is not None
    assert_problem(write(presenter, "closed"), 409, "session_round_closed")
    assert_problem(move(facilitator, "situation"), 409, "illegal_round")
    read = client.get(f"/v1/circles/{circle}/sessions/{session_id}", headers=member.headers()).json()
    assert [r["round"] for r in read["rounds"]] == [
        "situation",
        "clarifying_questions",
        "ideas",
        "action_plan",
        "closed",
    ]
    refused = [(a, s) for a, _, s in audit_of(engine, member.id) if s >= 400]
    assert ("circle.post.create", 403) in refused and ("circle.post.create", 409) in refused
    assert ("circle.session.round", 403) in refused


def test_the_deadline_worker_closes_expired_sessions(client, accounts, engine, settings):
    circle, (presenter, facilitator, member) = _circle(client, accounts)
    post_id = post(client, circle, presenter, "situation").json()["id"]
    deadline = utcnow() + timedelta(hours=1)
    session_id = client.post(
        f"/v1/circles/{circle}/sessions",
        json={"post_id": post_id, "facilitator_id": facilitator.id, "deadline": deadline.isoformat()},
        headers=presenter.headers(),
    ).json()["id"]
    with Session(engine) as session:
        report = deadlines.run(session, settings, deadline + timedelta(seconds=1), "test-run")
        session.commit()
    assert [str(i) for i in report.closed_sessions] == [session_id]
    read = client.get(f"/v1/circles/{circle}/sessions/{session_id}", headers=member.headers()).json()
    assert read["round"] == "closed"
    assert any(
        e["type"] == "circle.session.round" and e["object_id"] == session_id
        for e in circle_events_of(engine, member.id)
    )


def test_a_session_refuses_every_write_after_its_deadline(client, accounts):
    circle, (presenter, facilitator, _) = _circle(client, accounts)
    post_id = post(client, circle, presenter, "situation").json()["id"]
    deadline = utcnow() + timedelta(seconds=1)
    opened = client.post(
        f"/v1/circles/{circle}/sessions",
        json={"post_id": post_id, "facilitator_id": facilitator.id, "deadline": deadline.isoformat()},
        headers=presenter.headers(),
    )
    assert opened.status_code == 201, opened.text
    session_id = opened.json()["id"]
    time.sleep(max(0.0, (deadline - utcnow()).total_seconds()) + 0.05)
    late = post(
        client,
        circle,
        presenter,
        "late",
        parent_id=post_id,
        session={"session_id": session_id, "round": "situation"},
    )
    assert_problem(late, 409, "session_expired")
    moved = client.post(
        f"/v1/circles/{circle}/sessions/{session_id}/rounds",
        json={"round": "clarifying_questions"},
        headers=facilitator.headers(),
    )
    assert_problem(moved, 409, "session_expired")
