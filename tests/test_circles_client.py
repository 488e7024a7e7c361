"""The reference client's circles (app/client/circles.py) over HTTP against the in-process server, with real
encryption: what a removed member, a new member, a granted member and a pseudonymous author can and cannot
read, the automatic rotation on membership changes, sessions and the `confrere circle` CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app import cli
from app.authz.circle_rounds import ROUNDS
from app.client import circles as client_circles
from app.client.api import ApiError
from app.client.circle_keyring import CircleKeyring
from app.client.circles import CircleDevice
from app.crypto.circles import CircleError
from app.models.users import Profession
from tests.test_directory_cli import confrere  # noqa: F401 (the fixture)
from tests.test_directory_client import Tampering
from tests.test_directory_client import device_of as clinician_device


@pytest.fixture
def tampering(client) -> Tampering:
    return Tampering(client._transport)


@pytest.fixture
def device_of(tampering):
    """A new device (its own login and keys) of an account, as the reference client, through a transport
    the test may tamper with (the server as an attacker runs it)."""
    return lambda account, suite="x25519": CircleDevice(clinician_device(account, tampering, suite))


@pytest.fixture
def member(accounts, device_of):
    """A verified professional with one registered device."""

    def make(profession: Profession = Profession.NURSE, suite: str = "x25519") -> CircleDevice:
        return device_of(accounts.create(profession=profession), suite)

    return make


def bodies(device: CircleDevice, circle_id: str) -> dict[str, str | None]:
    """Post id -> the body this device opens (None when it cannot)."""
    posts, _ = device.read(circle_id)
    return {post.id: post.body for post in posts}


def test_a_removed_member_reads_what_came_before_and_nothing_after(member):
    moderator, nurse, psychologist = member(), member(suite="xwing"), member(Profession.PSYCHOLOGIST)
    circle_id = moderator.create("Soins palliatifs", access="open")["id"]
    assert nurse.join(circle_id) == 2 and psychologist.join(circle_id) == 3
    before = moderator.post(circle_id, "Avant le départ", title="Premier")
    assert bodies(nurse, circle_id)[before] == "Avant le départ"

    assert moderator.remove(circle_id, nurse.clinician.user_id) == 4
    after = psychologist.post(circle_id, "Après le départ")
    assert psychologist.keyring.highest(circle_id) == 4
    assert bodies(moderator, circle_id)[after] == "Après le départ"
    # The removed member keeps the keys it opened: what it could read, it still reads on its device...
    assert nurse.keyring.highest(circle_id) == 3
    with pytest.raises(ApiError) as refused:
        nurse.read(circle_id)
    assert refused.value.status == 404
    # ...offline: the post it saw before is still open to it, the post after has no key on its device.
    thread = moderator.api.circle_thread(circle_id, after)
    opened = nurse._open(circle_id, thread["post"], {})
    assert opened.body is None and "no key of epoch 4" in (opened.unreadable or "")
    old = nurse._open(circle_id, moderator.api.circle_thread(circle_id, before)["post"], {})
    assert old.body == "Avant le départ"


def test_a_new_member_reads_from_joining_on_until_a_moderator_grants_older_epochs(member):
    moderator, early, late = member(), member(), member(Profession.MIDWIFE, suite="xwing")
    circle_id = moderator.create("Périnatalité", access="open")["id"]
    early.join(circle_id)
    old = early.post(circle_id, "Une question ancienne")
    joined_epoch = late.join(circle_id)
    new = early.post(circle_id, "Une question récente")
    seen = bodies(late, circle_id)
    assert seen[new] == "Une question récente"
    assert seen[old] is None
    old_epoch = next(post.epoch for post in late.read(circle_id)[0] if post.id == old)
    assert old_epoch < joined_epoch

    assert moderator.grant(circle_id, late.clinician.user_id, [old_epoch]) == 1
    assert bodies(late, circle_id)[old] == "Une question ancienne"
    # A grant of a key this device does not hold is refused before anything is sent.
    with pytest.raises(CircleError) as refused:
        late.grant(circle_id, early.clinician.user_id, [99])
    assert refused.value.code == "no_epoch_key"


def test_a_members_new_device_gets_the_older_epochs_from_its_first_device(accounts, device_of, member):
    moderator, account = member(), accounts.create(profession=Profession.PHARMACIST)
    phone = device_of(account)
    circle_id = moderator.create("Officine", access="open")["id"]
    phone.join(circle_id)
    old = moderator.post(circle_id, "Avant le nouvel appareil")
    laptop = device_of(account, "xwing")
    # A new device is not a membership change: the epoch goes on, and the new device holds none of it.
    new = moderator.post(circle_id, "Après le nouvel appareil")
    assert bodies(laptop, circle_id) == {new: None, old: None}
    epoch = moderator.api.circle_thread(circle_id, old)["post"]["epoch"]
    # The phone already holds that epoch: only the laptop receives a wrap.
    assert phone.grant(circle_id, str(account.id), [epoch]) == 1
    assert bodies(laptop, circle_id) == {new: "Après le nouvel appareil", old: "Avant le nouvel appareil"}
    assert phone.grant(circle_id, str(account.id), [epoch]) == 0


def test_the_client_wraps_for_no_device_of_someone_the_server_does_not_list_as_member(member, tampering):
    moderator, nurse = member(), member()
    circle_id = moderator.create("Liste des membres", access="open")["id"]
    nurse.join(circle_id)

    def hide_the_nurse(request, response):
        if request.url.path.endswith("/members"):
            members = [m for m in response.json()["members"] if m["user_id"] != nurse.clinician.user_id]
            return httpx.Response(200, json={"members": members})
        return response

    tampering.rewrite = hide_the_nurse
    epoch = moderator.api.circle(circle_id)["current_epoch"]
    with pytest.raises(CircleError) as refused:
        moderator.rotate(circle_id)
    assert refused.value.code == "wrap_set_mismatch"
    tampering.rewrite = None
    assert moderator.api.circle(circle_id)["current_epoch"] == epoch


def test_a_member_joining_makes_the_next_writer_rotate_automatically(member):
    moderator, first, second = member(), member(), member()
    circle_id = moderator.create("Douleur chronique", access="open")["id"]
    first.join(circle_id)
    # `second` joins without rotating (an older client, or a crash): the server holds posts until a rotation.
    second.api.circle_action(circle_id, "join")
    assert moderator.api.circle(circle_id)["rotation_required"] is True
    post_id = first.post(circle_id, "Rotation faite par le client")
    detail = moderator.api.circle(circle_id)
    assert detail["rotation_required"] is False and detail["current_epoch"] == 3
    assert bodies(second, circle_id)[post_id] == "Rotation faite par le client"


def test_a_pseudonymous_post_shows_the_pseudonym_and_opens_with_its_key(member):
    moderator, author, reader = member(), member(), member(Profession.PSYCHOLOGIST)
    circle_id = moderator.create("Parole libre", access="open")["id"]
    author.join(circle_id)
    reader.join(circle_id)
    own = author.pseudonym(circle_id, "Colibri")
    post_id = author.post(circle_id, "Je n'ose pas en parler à mon équipe", pseudonymous=True)
    reply_id = reader.post(circle_id, "Merci de le partager", parent_id=post_id)
    post, replies = reader.thread(circle_id, post_id)
    assert (post.body, post.author) == ("Je n'ose pas en parler à mon équipe", "Colibri (pseudonym)")
    assert post.meta["author"] == {"kind": "pseudonym", "pseudonym_id": own.pseudonym_id, "name": "Colibri"}
    assert post.meta["sealed"]["author_device"] is None
    assert [(reply.id, reply.body) for reply in replies] == [(reply_id, "Merci de le partager")]
    # The pseudonym's keys stay in the keyring, which the profile saves and loads.
    saved = CircleKeyring.from_json(author.keyring.to_json())
    assert saved.pseudonyms[circle_id].key.public == own.key.public
    assert saved.epochs == author.keyring.epochs


def test_a_post_signed_with_another_pseudonyms_key_is_refused_by_readers(member):
    moderator, author = member(), member()
    circle_id = moderator.create("Attribution", access="open")["id"]
    author.join(circle_id)
    author.pseudonym(circle_id, "Héron")
    post_id = author.post(circle_id, "Texte", pseudonymous=True)
    item = moderator.api.circle_thread(circle_id, post_id)["post"]
    keys = moderator._pseudonym_keys(circle_id)
    # A server that attributes the post to another pseudonym id: the reader finds no such key for it.
    moved = item | {"author": item["author"] | {"pseudonym_id": "00000000-0000-4000-8000-000000000000"}}
    moderator.sync(circle_id)
    assert moderator._open(circle_id, moved, keys).unreadable == "refused: invalid_post_header"
    # A server that serves the post under another id: context_mismatch.
    assert moderator._open(circle_id, item | {"id": moved["author"]["pseudonym_id"]}, keys).unreadable == (
        "refused: context_mismatch"
    )


def test_the_writer_refuses_an_epoch_older_than_one_it_holds(member):
    moderator = member()
    circle_id = moderator.create("Retour arrière", access="open")["id"]
    moderator.keyring.keep(circle_id, 7, bytes(32))
    with pytest.raises(CircleError) as refused:
        moderator.post(circle_id, "Sous une vieille clé ?")
    assert refused.value.code == "epoch_rollback"


def test_a_co_development_session_through_the_client(member):
    presenter, facilitator, colleague = member(), member(), member(Profession.PSYCHOLOGIST)
    circle_id = presenter.create("Codéveloppement", access="open")["id"]
    facilitator.join(circle_id)
    colleague.join(circle_id)
    post_id = presenter.post(circle_id, "Ma situation", title="Situation")
    deadline = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    session_id = presenter.open_session(circle_id, post_id, facilitator.clinician.user_id, deadline)["id"]
    presenter.session_reply(circle_id, session_id, "Le contexte")
    with pytest.raises(ApiError) as refused:
        colleague.session_reply(circle_id, session_id, "Trop tôt")
    assert (refused.value.status, refused.value.code) == (403, "session_round_forbidden")
    assert facilitator.next_round(circle_id, session_id)["round"] == "clarifying_questions"
    question = colleague.session_reply(circle_id, session_id, "Depuis quand ?")
    assert facilitator.next_round(circle_id, session_id)["round"] == "ideas"
    with pytest.raises(ApiError) as listening:
        presenter.session_reply(circle_id, session_id, "Je réponds")
    assert listening.value.code == "session_round_forbidden"
    _, replies = colleague.thread(circle_id, post_id)
    assert [reply.body for reply in replies] == ["Le contexte", "Depuis quand ?"]
    assert question in [reply.id for reply in replies]


def test_the_clients_round_order_is_the_servers():
    assert tuple(str(r) for r in ROUNDS) == client_circles.ROUNDS


def confrere_as(profile: str, *argv: str) -> int:
    return cli.main([*argv, "--profile", profile])


@pytest.mark.usefixtures("confrere")
def test_the_circle_cli_creates_posts_reads_and_runs_a_session(accounts, capsys):
    for profile in ("nurse", "colleague"):
        account = accounts.create(profession=Profession.NURSE)
        assert confrere_as(profile, "login", "--server", "http://testserver", "--email", account.email) == 0
        assert confrere_as(profile, "device", "register", "--suite", "x25519") == 0
    capsys.readouterr()
    assert confrere_as("nurse", "circle", "create", "Nuits difficiles") == 0
    circle_id = capsys.readouterr().out.split()[0]
    assert confrere_as("colleague", "circle", "join", circle_id) == 0
    assert confrere_as("colleague", "circle", "pseudonym", circle_id, "Chouette") == 0
    assert confrere_as("colleague", "circle", "post", circle_id, "Garde seule", "--pseudonymous") == 0
    post_id = capsys.readouterr().out.split()[-1]
    assert confrere_as("nurse", "circle", "react", circle_id, post_id, "me_too") == 0
    assert confrere_as("nurse", "circle", "read", circle_id) == 0
    shown = capsys.readouterr().out
    assert "Chouette (pseudonym)" in shown and "Garde seule" in shown and "me_too:1" in shown
    assert confrere_as("nurse", "circle", "members", circle_id) == 0
    members = capsys.readouterr().out
    assert "moderator" in members and "Chouette" not in members
    # The epoch keys survive in the colleague's profile: a later command opens without asking again.
    assert confrere_as("colleague", "circle", "read", circle_id, post_id) == 0
    assert "Garde seule" in capsys.readouterr().out

    assert confrere_as("nurse", "circle", "post", circle_id, "Mon cas", "--title", "Cas") == 0
    case_id = capsys.readouterr().out.split()[-1]
    colleague_id = next(line.split()[0] for line in members.splitlines() if line.endswith("  member"))
    deadline = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    opening = ("circle", "session", "open", circle_id, case_id, "--facilitator", colleague_id)
    assert confrere_as("nurse", *opening, "--deadline", deadline) == 0
    session_id = capsys.readouterr().out.split()[0]
    assert confrere_as("nurse", "circle", "reply", circle_id, "--session", session_id, "Le contexte") == 0
    assert confrere_as("colleague", "circle", "reply", circle_id, "--session", session_id, "Trop tôt") == 1
    assert "session_round_forbidden" in capsys.readouterr().err
    assert confrere_as("colleague", "circle", "session", "next", circle_id, session_id) == 0
    assert capsys.readouterr().out.strip() == "clarifying_questions"
    assert confrere_as("nurse", "circle", "session", "show", circle_id, session_id) == 0
    assert "round clarifying_questions" in capsys.readouterr().out
