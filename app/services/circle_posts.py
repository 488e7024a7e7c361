"""Circle posts and replies: the server's checks of a sealed post (docs/e2ee.md section 20), storage, and
the views members read. A post is sealed once with the current epoch's key, whatever the circle's size.

A pseudonymous post's author is known to the server (author_id, and the audit record) but never put in an
answer: members see the pseudonym's id and name, moderators included."""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from app.authz import circle_rounds
from app.authz import circles as policies
from app.authz.principal import Principal
from app.crypto.circles import PostHeader, check_post_upload
from app.errors import Conflict, Forbidden, IdNotUsable, InvalidInput, NotFound
from app.models.circles import (
    AuthorKind,
    CircleMember,
    CirclePost,
    CirclePseudonym,
    CirclePseudonymKey,
    CircleReaction,
    CircleSession,
    ReactionKind,
)
from app.models.devices import Device
from app.models.users import User
from app.notifications import circle_events
from app.platform.keyset import Keyset
from app.platform.pagination import Page
from app.schemas.circles import (
    Hidden,
    MemberAuthor,
    PostCreate,
    PostOut,
    PostThread,
    PseudonymAuthor,
    SealedPost,
    SessionSummary,
)
from app.services import devices
from app.services.circles import Place, load
from app.services.e2ee_errors import e2ee_checks
from app.services.inserts import flush_new
from app.services.sealed import InvalidSigningDevice, ObjectMismatch, signing_device

NEWEST_FIRST = Keyset(CirclePost.created_at, CirclePost.id, descending=True)


class EpochRotationRequired(Conflict):
    code = "epoch_rotation_required"
    title = "The circle's members changed: post the next epoch's key first"


class StaleEpoch(Conflict):
    code = "stale_epoch"
    title = "The post is sealed for another epoch than the circle's current one"


class PostNotFound(NotFound):
    code = "post_not_found"
    title = "No such post in this circle"


class PostExists(Conflict):
    code = "post_exists"
    title = "A post with this id exists"


class SessionMismatch(InvalidInput):
    code = "session_mismatch"
    title = "The session is not open on the post this reply answers"


class SessionExpired(Conflict):
    code = "session_expired"
    title = "The session's deadline has passed"


class SessionRoundClosed(Conflict):
    code = "session_round_closed"
    title = "This round of the session is not the current one"


class SessionRoundForbidden(Forbidden):
    code = "session_round_forbidden"
    title = "The session's current round does not let you write"


class IllegalRound(Conflict):
    code = "illegal_round"
    title = "A session moves to the next round only"


class AdvanceForbidden(Forbidden):
    code = "session_advance_forbidden"
    title = "Only the session's facilitator or a moderator moves its rounds"


class InvalidFacilitator(InvalidInput):
    code = "invalid_facilitator"
    title = "The facilitator is another member than the presenter"


ROUND_REFUSALS: dict[circle_rounds.RoundRefusal, type[Exception]] = {
    circle_rounds.RoundRefusal.SESSION_EXPIRED: SessionExpired,
    circle_rounds.RoundRefusal.ROUND_CLOSED: SessionRoundClosed,
    circle_rounds.RoundRefusal.ROUND_FORBIDDEN: SessionRoundForbidden,
    circle_rounds.RoundRefusal.ILLEGAL_ROUND: IllegalRound,
    circle_rounds.RoundRefusal.ADVANCE_FORBIDDEN: AdvanceForbidden,
    circle_rounds.RoundRefusal.INVALID_FACILITATOR: InvalidFacilitator,
}


def enforce_round(refusal: circle_rounds.RoundRefusal | None) -> None:
    if refusal is not None:
        raise ROUND_REFUSALS[refusal]()


def load_post(session: Session, circle_id: uuid.UUID, post_id: uuid.UUID) -> CirclePost:
    post = session.get(CirclePost, post_id)
    if post is None or post.circle_id != circle_id:
        raise PostNotFound()
    return post


def _author_key(
    session: Session, principal: Principal, circle_id: uuid.UUID, header: PostHeader
) -> tuple[bytes, uuid.UUID | None, uuid.UUID | None]:
    """The signing key of the header's author, which must be the caller: its active device, or a key of
    its pseudonym in this circle on one of its active devices. Returns (key, device id, pseudonym key id)."""
    author = uuid.UUID(header.author)
    if header.author_kind == AuthorKind.DEVICE:
        device = signing_device(session, principal.id, author)
        return device.signing_public_key, device.id, None
    key = session.get(CirclePseudonymKey, author)
    pseudonym = session.get(CirclePseudonym, key.pseudonym_id) if key is not None else None
    key_device = session.get(Device, key.device_id) if key is not None else None
    if (
        key is None
        or pseudonym is None
        or key_device is None
        or pseudonym.circle_id != circle_id
        or pseudonym.user_id != principal.id
        or not key_device.is_active
    ):
        raise InvalidSigningDevice("the author is no key of your pseudonym in this circle")
    return key.public_key, None, key.id


def _check_session(
    session: Session,
    principal: Principal,
    place: Place,
    request: PostCreate,
    parent_id: uuid.UUID | None,
    now: datetime,
) -> None:
    if request.session is None:
        return
    co_session = session.get(CircleSession, request.session.session_id)
    if co_session is None or co_session.circle_id != place.circle.id or co_session.post_id != parent_id:
        raise SessionMismatch()
    role = circle_rounds.session_role(
        principal.id,
        co_session.presenter_id,
        co_session.facilitator_id,
        policies.is_moderator(place.membership),
    )
    enforce_round(
        circle_rounds.may_write(
            circle_rounds.Round(co_session.round), request.session.round, role, now, co_session.deadline
        )
    )


def create(
    session: Session, principal: Principal, circle_id: uuid.UUID, request: PostCreate, now: datetime
) -> PostOut:
    place = load(session, principal, circle_id)
    with e2ee_checks():
        claimed = PostHeader.parse(request.header)
    if claimed.circle_id != str(circle_id):
        raise ObjectMismatch("the header names another circle")
    if place.circle.rotation_required or place.circle.current_epoch == 0:
        raise EpochRotationRequired()
    if claimed.epoch != place.circle.current_epoch:
        raise StaleEpoch()
    key, device_id, pseudonym_key_id = _author_key(session, principal, circle_id, claimed)
    with e2ee_checks():
        header, _ = check_post_upload(
            request.header,
            request.manifest,
            request.signature,
            hashlib.sha256(request.ciphertext).digest(),
            len(request.ciphertext),
            key,
        )
    post_id = uuid.UUID(header.object_id)
    parent_id = None
    if header.kind == "reply":
        parent = load_post(session, circle_id, uuid.UUID(header.parent_id))
        if parent.parent_id is not None:
            raise ObjectMismatch("a reply answers a top-level post (one level of replies)")
        parent_id = parent.id
    elif request.session is not None:
        raise SessionMismatch("only replies are written in a session")
    _check_session(session, principal, place, request, parent_id, now)
    existing = session.get(CirclePost, post_id)
    if existing is not None:
        if existing.circle_id == circle_id:
            raise PostExists()
        raise IdNotUsable(("body", "header"))
    post = CirclePost(
        id=post_id,
        circle_id=circle_id,
        epoch=header.epoch,
        parent_id=parent_id,
        session_id=request.session.session_id if request.session else None,
        session_round=request.session.round.value if request.session else None,
        author_id=principal.id,
        author_kind=header.author_kind,
        author_device_id=device_id,
        pseudonym_key_id=pseudonym_key_id,
        header=request.header,
        manifest=request.manifest,
        signature=request.signature,
        ciphertext=request.ciphertext,
        created_at=now,
    )
    session.add(post)
    flush_new(session, PostExists())
    circle_events.post_created(session, circle_id, post.id, principal.id, now)
    return views(session, principal, place.membership, [post])[0]


def views(
    session: Session, principal: Principal, membership: CircleMember | None, posts: list[CirclePost]
) -> list[PostOut]:
    """Posts as members see them, in a fixed number of queries per page."""
    if not posts:
        return []
    ids = [post.id for post in posts]
    moderator = policies.is_moderator(membership)
    users = {
        user.id: user
        for user in session.exec(
            select(User).where(
                col(User.id).in_({p.author_id for p in posts if p.author_kind == AuthorKind.DEVICE})
            )
        ).all()
    }
    author_devices = {
        device.id: device
        for device in session.exec(
            select(Device).where(
                col(Device.id).in_({p.author_device_id for p in posts if p.author_device_id})
            )
        ).all()
    }
    pseudonyms = {
        key_id: (pseudonym_id, name)
        for key_id, pseudonym_id, name in session.exec(
            select(CirclePseudonymKey.id, CirclePseudonym.id, CirclePseudonym.name)
            .join(CirclePseudonym, col(CirclePseudonym.id) == CirclePseudonymKey.pseudonym_id)
            .where(col(CirclePseudonymKey.id).in_({p.pseudonym_key_id for p in posts if p.pseudonym_key_id}))
        ).all()
    }
    replies = dict(
        session.exec(
            select(CirclePost.parent_id, func.count())
            .where(col(CirclePost.parent_id).in_(ids))
            .group_by(col(CirclePost.parent_id))
        ).all()
    )
    counts: dict[uuid.UUID, dict[ReactionKind, int]] = defaultdict(lambda: dict.fromkeys(ReactionKind, 0))
    for post_id, kind, count in session.exec(
        select(CircleReaction.post_id, CircleReaction.kind, func.count())
        .where(col(CircleReaction.post_id).in_(ids))
        .group_by(col(CircleReaction.post_id), col(CircleReaction.kind))
    ).all():
        counts[post_id][ReactionKind(kind)] = count
    mine: dict[uuid.UUID, list[ReactionKind]] = defaultdict(list)
    for post_id, kind in session.exec(
        select(CircleReaction.post_id, CircleReaction.kind)
        .where(col(CircleReaction.post_id).in_(ids), col(CircleReaction.user_id) == principal.id)
        .order_by(col(CircleReaction.kind))
    ).all():
        mine[post_id].append(ReactionKind(kind))
    sessions = {
        row.post_id: row
        for row in session.exec(select(CircleSession).where(col(CircleSession.post_id).in_(ids))).all()
    }
    answers = []
    for post in posts:
        author: MemberAuthor | PseudonymAuthor
        if post.pseudonym_key_id is not None:
            pseudonym_id, name = pseudonyms[post.pseudonym_key_id]
            author = PseudonymAuthor(kind="pseudonym", pseudonym_id=pseudonym_id, name=name)
        else:
            author = MemberAuthor(
                kind="member", user_id=post.author_id, display_name=users[post.author_id].display_name
            )
        shown = post.hidden_at is None or moderator
        answers.append(
            PostOut(
                id=post.id,
                circle_id=post.circle_id,
                epoch=post.epoch,
                parent_id=post.parent_id,
                author=author,
                sealed=SealedPost(
                    author_device=devices.directory_entry(author_devices[post.author_device_id])
                    if post.author_device_id
                    else None,
                    header=post.header,
                    manifest=post.manifest,
                    signature=post.signature,
                    ciphertext=post.ciphertext,
                )
                if shown
                else None,
                hidden=Hidden(reason=post.hidden_reason or "", at=post.hidden_at) if post.hidden_at else None,
                reply_count=replies.get(post.id, 0),
                reactions=counts[post.id],
                my_reactions=mine[post.id],
                session=_summary(post, sessions.get(post.id)),
                created_at=post.created_at,
            )
        )
    return answers


def _summary(post: CirclePost, opened: CircleSession | None) -> SessionSummary | None:
    if opened is not None:
        return SessionSummary(
            session_id=opened.id, round=circle_rounds.Round(opened.round), deadline=opened.deadline
        )
    if post.session_id is not None and post.session_round is not None:
        return SessionSummary(session_id=post.session_id, round=circle_rounds.Round(post.session_round))
    return None


def page(
    session: Session, principal: Principal, circle_id: uuid.UUID, limit: int, cursor: str | None
) -> Page[PostOut]:
    """Top-level posts, newest first."""
    place = load(session, principal, circle_id)
    query = select(CirclePost).where(
        col(CirclePost.circle_id) == circle_id, col(CirclePost.parent_id).is_(None)
    )
    if cursor is not None:
        query = query.where(NEWEST_FIRST.after(cursor))
    rows = list(session.exec(query.order_by(*NEWEST_FIRST.order_by()).limit(limit + 1)).all())
    found = NEWEST_FIRST.page(rows, limit)
    return Page(items=views(session, principal, place.membership, found.items), next_cursor=found.next_cursor)


def thread(session: Session, principal: Principal, circle_id: uuid.UUID, post_id: uuid.UUID) -> PostThread:
    """A top-level post and its replies, oldest first (a reply's id answers with its thread)."""
    place = load(session, principal, circle_id)
    post = load_post(session, circle_id, post_id)
    if post.parent_id is not None:
        post = load_post(session, circle_id, post.parent_id)
    replies = session.exec(
        select(CirclePost)
        .where(col(CirclePost.parent_id) == post.id)
        .order_by(col(CirclePost.created_at), col(CirclePost.id))
    ).all()
    shown = views(session, principal, place.membership, [post, *replies])
    return PostThread(post=shown[0], replies=shown[1:])
