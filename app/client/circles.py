"""The reference client's side of peer circles (docs/circles.md; format: docs/e2ee.md section 20).

A `CircleDevice` is one clinician's device in its circles: it rotates the circle key for exactly the member
devices the directory proves (the same checks as before sealing a case, docs/e2ee.md 18.3), opens the
epoch keys wrapped for it and keeps them (`CircleKeyring`, saved in the CLI profile), seals each post once
with its epoch's key, and verifies and opens what it reads. A removed member keeps the keys it held and
so still reads what was posted before its removal, never after.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from app.client.api import ApiError, ConfrereApi, b64, unb64
from app.client.circle_content import parse_circle_content, post_content_bytes, reply_content_bytes
from app.client.circle_keyring import CircleKeyring, OwnPseudonym
from app.client.clinician import Clinician
from app.crypto.circles import (
    CircleError,
    EpochStatement,
    PostContext,
    PostHeader,
    PseudonymKey,
    SealedEpoch,
    Signer,
    new_epoch,
    open_epoch,
    open_post,
    pseudonym_binding,
    seal_post,
    sign_pseudonym_binding,
)
from app.crypto.e2ee import Recipient

# The server's answers that mean "rotate the circle key first" (docs/circles.md).
ROTATE_CODES = frozenset({"epoch_rotation_required", "members_changed"})
# Another member rotated first (`epoch_conflict`) or the post's epoch is no longer current (`stale_epoch`):
# read the epochs again and retry.
EPOCH_CONFLICT, STALE_EPOCH = "epoch_conflict", "stale_epoch"
ROTATION_ATTEMPTS = 3
# The order of co-development rounds, as the server enforces it (app/authz/circle_rounds.py; a test
# checks that the two agree).
ROUNDS = ("situation", "clarifying_questions", "ideas", "action_plan", "closed")


@dataclass(frozen=True)
class OpenedPost:
    """A post or reply as a member sees it. `body` is None when this device cannot open it (`unreadable`
    says why: hidden, posted before it joined, or a refusal code); `raw` when it does not match its schema."""

    id: str
    epoch: int
    author: str
    created_at: str
    title: str | None
    body: str | None
    unreadable: str | None
    meta: dict[str, Any]


def _author_name(author: dict[str, Any]) -> str:
    if author["kind"] == "pseudonym":
        return f"{author['name']} (pseudonym)"
    return author["display_name"]


class CircleDevice:
    """One device of a member in its circles, on top of the clinician's device keys and directory trust."""

    def __init__(self, clinician: Clinician, keyring: CircleKeyring | None = None) -> None:
        self.clinician = clinician
        self.api: ConfrereApi = clinician.api
        self.keyring = keyring if keyring is not None else CircleKeyring()

    # -- membership ---------------------------------------------------------------------------------

    def create(
        self, name: str, description: str = "", access: str = "open", audience: dict | None = None
    ) -> dict:
        """Creates the circle (its creator is its first moderator) and its first epoch key."""
        body: dict[str, Any] = {"name": name, "description": description, "access": access}
        if audience:
            body["audience"] = audience
        circle = self.api.create_circle(**body)
        self.rotate(circle["id"])
        return self.api.circle(circle["id"])

    def join(self, circle_id: str) -> int:
        """Joins and rotates at once: the new epoch includes this member's devices. Returns the epoch."""
        self.api.circle_action(circle_id, "join")
        return self.rotate(circle_id)

    def remove(self, circle_id: str, user_id: str) -> int:
        """Removes a member (moderator) and rotates at once: nothing posted after is sealed for them."""
        self.api.remove_circle_member(circle_id, user_id)
        return self.rotate(circle_id)

    # -- epochs -------------------------------------------------------------------------------------

    def _member_recipients(self, circle_id: str, user_id: str | None = None) -> dict[str, Recipient]:
        """Every active device of every member (or of one member), each proved by the directory; refused if
        the server names a device of someone it does not list as a member."""
        devices = self.clinician.proved(self.api.circle_recipients(circle_id))
        members = {member["user_id"] for member in self.api.circle_members(circle_id)}
        strangers = {device["user_id"] for device in devices} - members
        if strangers:
            raise CircleError("wrap_set_mismatch", "the server names devices of users who are not members")
        return Clinician.recipients([d for d in devices if user_id is None or d["user_id"] == user_id])

    def rotate(self, circle_id: str) -> int:
        """Posts a new epoch for exactly the members' devices; refetches and retries while membership moves
        under it (`409 members_changed`). Returns the new epoch."""
        for attempt in range(ROTATION_ATTEMPTS):
            recipients = self._member_recipients(circle_id)
            epoch = self.api.circle(circle_id)["current_epoch"] + 1
            sealed = new_epoch(circle_id, epoch, self.clinician.keys, self.clinician.device_id, recipients)
            try:
                self._upload_epoch(circle_id, sealed)
            except ApiError as error:
                if error.code in ROTATE_CODES | {EPOCH_CONFLICT} and attempt + 1 < ROTATION_ATTEMPTS:
                    continue
                raise
            self.keyring.keep(circle_id, epoch, sealed.epoch_key)
            return epoch
        raise AssertionError("unreachable: the last attempt returns or raises")

    def sync(self, circle_id: str) -> dict[str, Any]:
        """Opens every epoch key wrapped for this device that it does not hold yet; returns the answer."""
        held = self.api.circle_epochs(circle_id)
        rotations = {
            item["epoch"]: EpochStatement.parse(unb64(item["statement"])).key_commitment
            for item in held["epochs"]
            if item["kind"] == "rotate"
        }
        for item in held["epochs"]:
            if self.keyring.key(circle_id, item["epoch"]) is not None:
                continue
            statement = unb64(item["statement"])
            author = item["author_device"]
            if EpochStatement.parse(statement).author_device_id != author["device_id"]:
                raise CircleError(
                    "invalid_epoch_statement", "the server named another author than the statement"
                )
            epoch_key = open_epoch(
                statement,
                unb64(item["signature"]),
                unb64(item["wrap"]),
                self.clinician.keys,
                self.clinician.device_id,
                unb64(author["signing_public_key"]),
                circle_id=circle_id,
                epoch=item["epoch"],
                rotation_commitment=rotations.get(item["epoch"]) if item["kind"] == "grant" else None,
            )
            self.keyring.keep(circle_id, item["epoch"], epoch_key)
        return held

    def grant(self, circle_id: str, user_id: str, epochs: list[int]) -> int:
        """Shares older epochs' keys this device holds with a member's devices (a moderator's act, or one's
        own new device), one grant per device so that a device that already holds a wrap of the epoch is
        skipped. Returns how many wraps were added."""
        recipients = self._member_recipients(circle_id, user_id)
        if not recipients:
            raise CircleError("wrap_set_mismatch", "the user has no active device in this circle")
        self.sync(circle_id)
        added = 0
        for epoch in epochs:
            epoch_key = self.keyring.key(circle_id, epoch)
            if epoch_key is None:
                raise CircleError("no_epoch_key", f"this device holds no key of epoch {epoch}")
            for device_id, recipient in recipients.items():
                sealed = new_epoch(
                    circle_id,
                    epoch,
                    self.clinician.keys,
                    self.clinician.device_id,
                    {device_id: recipient},
                    "grant",
                    epoch_key,
                )
                try:
                    added += self._upload_epoch(circle_id, sealed)["wrap_count"]
                except ApiError as error:
                    if error.code != "wrap_already_held":
                        raise
        return added

    def _upload_epoch(self, circle_id: str, sealed: SealedEpoch) -> dict[str, Any]:
        return self.api.circle_action(
            circle_id,
            "epochs",
            statement=b64(sealed.statement),
            signature=b64(sealed.signature),
            wraps={device_id: b64(wrap) for device_id, wrap in sealed.wraps.items()},
        )

    def _writing_epoch(self, circle_id: str) -> tuple[int, bytes]:
        """The current epoch and its key, rotating first when the server asks for it; refuses a current epoch
        lower than one this device already holds (docs/e2ee.md 20.6, `epoch_rollback`)."""
        held = self.sync(circle_id)
        if held["rotation_required"] or held["current_epoch"] == 0:
            self.rotate(circle_id)
            held = self.sync(circle_id)
        epoch = held["current_epoch"]
        if epoch < self.keyring.highest(circle_id):
            raise CircleError("epoch_rollback", "the server names an older epoch than one this device holds")
        epoch_key = self.keyring.key(circle_id, epoch)
        if epoch_key is None:
            raise CircleError("no_epoch_key", f"this device holds no key of the current epoch {epoch}")
        return epoch, epoch_key

    # -- writing ------------------------------------------------------------------------------------

    def pseudonym(self, circle_id: str, name: str) -> OwnPseudonym:
        """This member's pseudonym in the circle, with a key of this device bound to it."""
        existing = self.keyring.pseudonyms.get(circle_id)
        if existing is not None:
            return existing
        key = PseudonymKey.generate()
        pseudonym_id = str(uuid.uuid4())
        binding = pseudonym_binding(circle_id, self.clinician.device_id, pseudonym_id, key.public)
        binding_bytes, signature = sign_pseudonym_binding(binding, self.clinician.keys)
        created = self.api.circle_action(
            circle_id,
            "pseudonym",
            name=name,
            public_key=b64(key.public),
            binding=b64(binding_bytes),
            binding_signature=b64(signature),
        )
        own = OwnPseudonym(created["pseudonym_id"], created["key_id"], created["name"], key)
        self.keyring.pseudonyms[circle_id] = own
        return own

    def post(
        self,
        circle_id: str,
        body: str,
        *,
        title: str | None = None,
        parent_id: str | None = None,
        pseudonymous: bool = False,
        session: dict[str, str] | None = None,
    ) -> str:
        """Seals once under the current epoch's key and posts; rotates and retries once when the server
        answers that the key must change first. Returns the post's id."""
        post_id = str(uuid.uuid4())
        kind: Literal["post", "reply"] = "reply" if parent_id else "post"
        plaintext = reply_content_bytes(body) if parent_id else post_content_bytes(body, title)
        for attempt in range(2):
            epoch, epoch_key = self._writing_epoch(circle_id)
            signer: Signer
            if pseudonymous:
                own = self.keyring.pseudonyms.get(circle_id)
                if own is None:
                    raise CircleError("no_pseudonym", "create a pseudonym in this circle first")
                author, author_kind, signer = own.key_id, "pseudonym", own.key
            else:
                author, author_kind, signer = self.clinician.device_id, "device", self.clinician.keys
            header = PostHeader(
                author=author,
                author_kind=author_kind,
                circle_id=circle_id,
                epoch=epoch,
                kind=kind,
                object_id=post_id,
                parent_id=parent_id or post_id,
            )
            sealed = seal_post(epoch_key, header, plaintext, signer)
            try:
                self.api.circle_action(
                    circle_id,
                    "posts",
                    header=b64(sealed.header),
                    manifest=b64(sealed.manifest),
                    signature=b64(sealed.signature),
                    ciphertext=b64(sealed.ciphertext),
                    **({"session": session} if session else {}),
                )
            except ApiError as error:
                if attempt == 0 and error.code in ROTATE_CODES | {STALE_EPOCH}:
                    if error.code in ROTATE_CODES:
                        self.rotate(circle_id)
                    continue
                raise
            return post_id
        raise AssertionError("unreachable: the second attempt returns or raises")

    # -- reading ------------------------------------------------------------------------------------

    def _author_key(
        self, post: dict[str, Any], header: PostHeader, pseudonym_keys: dict[str, bytes]
    ) -> bytes:
        sealed = post["sealed"]
        if header.author_kind == "device":
            device = sealed["author_device"]
            author = post["author"]
            if (
                author["kind"] != "member"
                or device is None
                or (device["device_id"], device["user_id"]) != (header.author, author["user_id"])
            ):
                raise CircleError("invalid_post_header", "the server named another author than the header")
            return unb64(device["signing_public_key"])
        key = pseudonym_keys.get(f"{post['author'].get('pseudonym_id')}/{header.author}")
        if post["author"]["kind"] != "pseudonym" or key is None:
            raise CircleError(
                "invalid_post_header", "the header's pseudonym key is not the listed pseudonym's"
            )
        return key

    def _open(self, circle_id: str, post: dict[str, Any], pseudonym_keys: dict[str, bytes]) -> OpenedPost:
        title = body = unreadable = None
        sealed = post["sealed"]
        epoch_key = self.keyring.key(circle_id, post["epoch"])
        if sealed is None:
            unreadable = f"hidden: {post['hidden']['reason']}" if post.get("hidden") else "hidden"
        elif epoch_key is None:
            unreadable = f"no key of epoch {post['epoch']} on this device (posted before it joined)"
        else:
            try:
                header = PostHeader.parse(unb64(sealed["header"]))
                kind = "reply" if post["parent_id"] else "post"
                served = PostContext(
                    circle_id, post["id"], kind, post["parent_id"] or post["id"], post["epoch"]
                )
                plaintext = open_post(
                    epoch_key,
                    unb64(sealed["header"]),
                    unb64(sealed["manifest"]),
                    unb64(sealed["signature"]),
                    unb64(sealed["ciphertext"]),
                    self._author_key(post, header, pseudonym_keys),
                    served=served,
                )
            except CircleError as error:
                unreadable = f"refused: {error.code}"
            else:
                parsed = parse_circle_content(kind, plaintext)
                body = parsed.content.body if parsed.content else parsed.raw_text
                title = getattr(parsed.content, "title", None)
        return OpenedPost(
            post["id"],
            post["epoch"],
            _author_name(post["author"]),
            post["created_at"],
            title,
            body,
            unreadable,
            post,
        )

    def _pseudonym_keys(self, circle_id: str) -> dict[str, bytes]:
        return {
            f"{pseudonym['id']}/{key['key_id']}": unb64(key["public_key"])
            for pseudonym in self.api.circle_pseudonyms(circle_id)
            for key in pseudonym["keys"]
        }

    def read(
        self, circle_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> tuple[list[OpenedPost], str | None]:
        """A page of top-level posts, newest first, each opened if this device can; and the next cursor."""
        self.sync(circle_id)
        page = self.api.circle_posts(circle_id, cursor=cursor, limit=limit)
        keys = self._pseudonym_keys(circle_id)
        return [self._open(circle_id, post, keys) for post in page["items"]], page.get("next_cursor")

    def thread(self, circle_id: str, post_id: str) -> tuple[OpenedPost, list[OpenedPost]]:
        self.sync(circle_id)
        thread = self.api.circle_thread(circle_id, post_id)
        keys = self._pseudonym_keys(circle_id)
        return self._open(circle_id, thread["post"], keys), [
            self._open(circle_id, r, keys) for r in thread["replies"]
        ]

    # -- co-development sessions ----------------------------------------------------------------------

    def open_session(self, circle_id: str, post_id: str, facilitator_id: str, deadline: str) -> dict:
        return self.api.circle_action(
            circle_id, "sessions", post_id=post_id, facilitator_id=facilitator_id, deadline=deadline
        )

    def next_round(self, circle_id: str, session_id: str) -> dict:
        """Moves the session to the round after its current one (facilitator or moderator)."""
        current = self.api.circle_session(circle_id, session_id)["round"]
        position = ROUNDS.index(current)
        if position + 1 == len(ROUNDS):
            raise CircleError("illegal_round", "the session is closed")
        return self.api.move_circle_session(circle_id, session_id, ROUNDS[position + 1])

    def session_reply(self, circle_id: str, session_id: str, body: str, *, pseudonymous: bool = False) -> str:
        """A reply in the session's current round, on the post the session was opened on."""
        session = self.api.circle_session(circle_id, session_id)
        return self.post(
            circle_id,
            body,
            parent_id=session["post_id"],
            pseudonymous=pseudonymous,
            session={"session_id": session_id, "round": session["round"]},
        )
