"""The reference client's encrypting side: what a clinician's device does around each API call.

It generates device keys, fetches recipient devices, seals and signs content before upload, and verifies
and opens what it downloads. Everything follows docs/e2ee.md; the server only ever sees ciphertext.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from app.client.api import ApiError, ConfrereApi, b64, unb64
from app.client.content import (
    CONTENT_VERSION,
    AttachmentRef,
    CaseContent,
    MessageContent,
    content_bytes,
    parse_as,
)
from app.client.directory import DirectoryTrust, fingerprint
from app.crypto.canonical import Header, Manifest, ShareStatement
from app.crypto.directory import SafetyNumber
from app.crypto.e2ee import (
    FORMAT_V1,
    DeviceKeys,
    E2EEError,
    ObjectContext,
    Recipient,
    Suite,
    check_context,
    generate_device_keys,
    open_kem_challenge,
    open_sealed,
    rewrap,
    seal,
    share_entry,
    sign_device_registration,
    sign_share,
    verify_manifest,
)
from app.crypto.key_backup import open_key_backup, seal_key_backup

FINAL_STATUSES = ("closed", "withdrawn")


@dataclass(frozen=True)
class Attachment:
    name: str
    media_type: str
    data: bytes
    id: str = field(default_factory=lambda: str(uuid.uuid4()))


class AttachmentRefused(Exception):
    """An attachment upload failed after its case was created; the case was withdrawn if it could be."""

    def __init__(self, case_id: str, name: str, error: Exception, withdrawn: bool):
        super().__init__(f"{name}: {error}")
        self.case_id, self.name, self.error, self.withdrawn = case_id, name, error, withdrawn


@dataclass(frozen=True)
class OpenedCase:
    """`content` is None when the decrypted case does not match its schema: show `raw_text` instead."""

    meta: dict[str, Any]
    content: CaseContent | None
    raw_text: str
    attachments: list[Attachment]


@dataclass(frozen=True)
class OpenedMessage:
    """`text` is the message's text, or the raw decrypted text when it does not match its schema."""

    id: str
    kind: str
    author_id: str
    created_at: str
    text: str
    parsed: bool


def _sealed_in(sealed) -> dict[str, Any]:
    return {
        "header": b64(sealed.header),
        "ciphertext": b64(sealed.ciphertext),
        "envelopes": [
            {"device_id": device, "wrapped_key": b64(key)} for device, key in sealed.envelopes.items()
        ],
        "manifest": b64(sealed.manifest),
        "signature": b64(sealed.signature),
    }


class SafetyNumberChanged(E2EEError):
    def __init__(self, user_id: str, pinned: str, now: str) -> None:
        super().__init__(
            "safety_number_changed",
            f"the devices of verified colleague {user_id} changed (safety number was {pinned}, is now "
            f"{now}): compare the new number with them, then mark them verified again",
        )


class Clinician:
    """One clinician's device talking to the API. It seals only for devices the directory log proves
    (`trust`), and refuses to seal for a verified colleague whose safety number changed."""

    def __init__(
        self,
        api: ConfrereApi,
        user_id: str,
        device_id: str,
        keys: DeviceKeys,
        trust: DirectoryTrust | None = None,
        verified_contacts: dict[str, str] | None = None,
    ):
        self.api = api
        self.user_id = user_id
        self.device_id = device_id
        self.keys = keys
        self.trust = trust or DirectoryTrust.first_use(api)
        # user id -> the safety number digits the user compared and marked verified
        self.verified_contacts = verified_contacts if verified_contacts is not None else {}
        api.device_id = device_id

    @classmethod
    def enrol_device(
        cls, api: ConfrereApi, suite: Suite | str, label: str, trust: DirectoryTrust | None = None
    ) -> Clinician:
        """Creates device keys here and registers their public halves, proving possession."""
        user_id = api.me()["id"]
        keys = generate_device_keys(Suite(suite))
        challenge = api.device_challenge(suite=str(keys.suite), kem_public_key=b64(keys.kem_public))
        nonce = unb64(challenge["challenge"])
        kem_proof = open_kem_challenge(keys, unb64(challenge["kem_challenge"]), nonce, user_id)
        device = api.register_device(
            challenge_id=challenge["challenge_id"],
            suite=str(keys.suite),
            signing_public_key=b64(keys.signing_public),
            kem_public_key=b64(keys.kem_public),
            label=label,
            kem_proof=b64(kem_proof),
            signature=b64(sign_device_registration(keys, nonce, user_id, kem_proof)),
        )
        return cls(api, user_id, device["id"], keys, trust)

    # -- the directory -----------------------------------------------------------------------------

    def proved(self, answer: dict[str, Any], *, check_pins: bool = True) -> list[dict[str, Any]]:
        """An answer's devices once the directory proves them all and no verified colleague's safety number
        changed; E2EEError (DirectoryRefusal, SafetyNumberChanged) otherwise, before anything is sealed."""
        devices = self.trust.verified(answer["checkpoint"], answer["devices"])
        if not check_pins:
            return devices
        by_user: dict[str, list[dict[str, Any]]] = {}
        for device in devices:
            by_user.setdefault(device["user_id"], []).append(device)
        for user_id, pinned in self.verified_contacts.items():
            if user_id in by_user and (now := fingerprint(user_id, by_user[user_id]).digits) != pinned:
                raise SafetyNumberChanged(user_id, pinned, now)
        return devices

    def own_devices(self, *, check_pins: bool = True) -> list[dict[str, Any]]:
        """This user's active devices, proved (the user may pin their own safety number too)."""
        listed, checkpoint = self.api.proved_devices()
        devices = [
            {
                "device_id": device["id"],
                "user_id": device["user_id"],
                "suite": device["suite"],
                "signing_public_key": device["signing_public_key"],
                "kem_public_key": device["kem_public_key"],
                "directory": device["directory"],
            }
            for device in listed
            if device["revoked_at"] is None
        ]
        return self.proved({"checkpoint": checkpoint, "devices": devices}, check_pins=check_pins)

    def colleague_devices(self, user_id: str, *, check_pins: bool = True) -> list[dict[str, Any]]:
        if user_id == self.user_id:
            return self.own_devices(check_pins=check_pins)
        return self.proved(self.api.user_devices(user_id), check_pins=check_pins)

    def safety_number(self, user_id: str) -> SafetyNumber:
        """The colleague's (or one's own) safety number, from devices the directory proves."""
        return fingerprint(user_id, self.colleague_devices(user_id, check_pins=False))

    def mark_verified(self, user_id: str) -> str:
        """Pins the colleague's current safety number: a later change is refused before sealing."""
        digits = self.safety_number(user_id).digits
        self.verified_contacts[user_id] = digits
        return digits

    def back_up_keys(self, passphrase: str) -> None:
        """Stores this device's keys in the account's key backup (docs/e2ee.md section 19, "Key backup")."""
        self.api.put_key_backup(seal_key_backup(passphrase, self.user_id, {self.device_id: self.keys}))

    @classmethod
    def restore(cls, api: ConfrereApi, passphrase: str) -> Clinician:
        """This account's backed-up device that is still active, its keys checked against the server's."""
        user_id = api.me()["id"]
        backed_up = open_key_backup(passphrase, user_id, api.key_backup())
        for device in api.devices():
            keys = backed_up.get(device["id"])
            if keys is not None and device["revoked_at"] is None:
                if (unb64(device["signing_public_key"]), unb64(device["kem_public_key"])) != (
                    keys.signing_public,
                    keys.kem_public,
                ):
                    raise E2EEError("backup_key_mismatch", "the backup's keys are not the device's")
                return cls(api, user_id, device["id"], keys)
        raise E2EEError("no_backed_up_device", "no active device of this account is in the backup")

    # -- writing -----------------------------------------------------------------------------------

    @staticmethod
    def recipients(devices: list[dict[str, Any]]) -> dict[str, Recipient]:
        """Every device, each in its own suite (format version 2: one object for x25519 and xwing)."""
        return {
            device["device_id"]: Recipient(Suite(device["suite"]), unb64(device["kem_public_key"]))
            for device in devices
        }

    def _own_devices(self) -> list[dict[str, Any]]:
        return self.own_devices()

    def _seal(
        self, case_id: str, kind: str, object_id: str, plaintext: bytes, recipients: dict[str, Recipient]
    ):
        header = Header(
            case_id=case_id,
            kind=kind,
            object_id=object_id,
            author_device_id=self.device_id,
        )
        return seal(plaintext, header, recipients, self.keys)

    def create_case(
        self,
        *,
        specialty: str,
        question: str,
        attachments: Sequence[Attachment] = (),
        priority: str = "routine",
        consent_at: datetime | None = None,
        named_specialist_id: str | None = None,
    ) -> str:
        case_id = str(uuid.uuid4())
        audience = self.proved(
            self.api.user_devices(named_specialist_id)
            if named_specialist_id
            else self.api.specialty_recipients(specialty)
        )
        recipients = self.recipients(audience + self._own_devices())
        body = CaseContent(
            v=CONTENT_VERSION,
            question=question,
            attachments=[
                AttachmentRef(id=item.id, name=item.name, media_type=item.media_type, size=len(item.data))
                for item in attachments
            ],
        )
        sealed = self._seal(case_id, "case", case_id, content_bytes(body), recipients)
        self.api.create_case(
            id=case_id,
            specialty=specialty,
            named_specialist_id=named_specialist_id,
            priority=priority,
            patient_consent_at=(consent_at or datetime.now(UTC)).isoformat(),
            sealed=_sealed_in(sealed),
        )
        for item in attachments:
            try:
                self._upload(case_id, item, recipients)
            except (ApiError, httpx.HTTPError) as error:
                raise AttachmentRefused(case_id, item.name, error, self._withdraw(case_id)) from error
        return case_id

    def _withdraw(self, case_id: str) -> bool:
        """A case missing an attachment must not wait in a queue as if complete."""
        try:
            self.api.transition(case_id, "withdraw")
        except ApiError:
            return False
        return True

    def _upload(self, case_id: str, item: Attachment, recipients: dict[str, Recipient]) -> None:
        sealed = self._seal(case_id, "attachment", item.id, item.data, recipients)
        meta = _sealed_in(sealed)
        del meta["ciphertext"]
        self.api.upload_attachment(case_id, {"id": item.id, **meta}, io.BytesIO(sealed.ciphertext))

    def _participant_recipients(self, case: dict[str, Any]) -> dict[str, Recipient]:
        """Everyone who takes part (the case's participants, shared colleagues included), and the specialty
        while the case waits in its queue."""
        participants = case["participants"]
        devices = self._own_devices() + self.proved(
            {
                "checkpoint": participants["checkpoint"],
                "devices": [device for user in participants["users"] for device in user["devices"]],
            }
        )
        if case["status"] == "open" and case["named_specialist_id"] is None:
            devices += self.proved(self.api.specialty_recipients(case["specialty"]))
        return self.recipients(devices)

    def post(self, case_id: str, kind: str, text: str) -> str:
        case = self.api.case(case_id)
        message_id = str(uuid.uuid4())
        body = content_bytes(MessageContent(v=CONTENT_VERSION, text=text))
        sealed = self._seal(case_id, kind, message_id, body, self._participant_recipients(case))
        self.api.post_message(case_id, id=message_id, kind=kind, sealed=_sealed_in(sealed))
        return message_id

    def transition(self, case_id: str, action: str, **extra: Any) -> dict[str, Any]:
        return self.api.transition(case_id, action, **extra)

    # -- reading -----------------------------------------------------------------------------------

    def _open(self, sealed: dict[str, Any], served: ObjectContext, ciphertext: bytes | None = None) -> bytes:
        """Verifies and decrypts an object the API served as `served` (docs/e2ee.md section 13)."""
        author = sealed["author_device"]
        header = Header.parse(unb64(sealed["header"]))
        if author["device_id"] != header.author_device_id:
            raise E2EEError("invalid_header", "the server named another author device than the header")
        mine = next((e for e in sealed["envelopes"] if e["device_id"] == self.device_id), None)
        if mine is None:
            raise E2EEError("no_envelope", "this device holds no envelope for the object")
        manifest = Manifest.parse(unb64(sealed["manifest"]))
        wrapped = unb64(mine["wrapped_key"])
        return open_sealed(
            unb64(sealed["header"]),
            ciphertext if ciphertext is not None else unb64(sealed["ciphertext"]),
            wrapped,
            unb64(sealed["manifest"]),
            unb64(sealed["signature"]),
            self.device_id,
            self.keys,
            unb64(author["signing_public_key"]),
            served=served,
            reshared=self.device_id not in manifest.envelopes,
        )

    def open_case(self, case_id: str) -> OpenedCase:
        case = self.api.case(case_id)
        parsed = parse_as(CaseContent, self._open(case["sealed"], ObjectContext(case_id, "case", case_id)))
        content = parsed.content
        names = {item.id: item for item in content.attachments} if content else {}
        attachments = []
        for attachment in case["attachments"]:
            ciphertext = self.api.download_attachment(case_id, attachment["id"])
            described = names.get(attachment["id"])
            served = ObjectContext(case_id, "attachment", attachment["id"])
            attachments.append(
                Attachment(
                    id=attachment["id"],
                    name=described.name if described else attachment["id"],
                    media_type=described.media_type if described else "application/octet-stream",
                    data=self._open(attachment["sealed"], served, ciphertext),
                )
            )
        return OpenedCase(meta=case, content=content, raw_text=parsed.raw_text, attachments=attachments)

    def read_messages(self, case_id: str) -> list[OpenedMessage]:
        opened = []
        for message in self.api.messages(case_id):
            served = ObjectContext(case_id, message["kind"], message["id"])
            # Every thread kind (message, info_request, info_response, report) has the message schema.
            parsed = parse_as(MessageContent, self._open(message["sealed"], served))
            opened.append(
                OpenedMessage(
                    id=message["id"],
                    kind=message["kind"],
                    author_id=message["author_id"],
                    created_at=message["created_at"],
                    text=parsed.content.text if parsed.content else parsed.raw_text,
                    parsed=parsed.content is not None,
                )
            )
        return opened

    # -- re-sharing --------------------------------------------------------------------------------

    def share(self, case_id: str, recipient_user_id: str) -> int:
        """Gives a colleague's devices access: re-wraps each object's key, signed by this device. Idempotent:
        the server keeps envelopes a device already holds. Returns how many envelopes were added."""
        targets = self.recipients(self.colleague_devices(recipient_user_id))
        return self._rewrap(case_id, recipient_user_id, targets)

    def catch_up(self, *, include_closed: bool = False) -> dict[str, int]:
        """Re-wraps, for this user's other active devices (a new one), the keys of the user's cases that
        this device holds: {case id: envelopes added}. Closed and withdrawn cases only when asked."""
        targets = self.recipients(
            [device for device in self.own_devices() if device["device_id"] != self.device_id]
        )
        added = {}
        for case in list(self.api.cases()):
            if targets and (include_closed or case["status"] not in FINAL_STATUSES):
                added[case["id"]] = self._rewrap(case["id"], self.user_id, targets)
        return added

    def _rewrap(self, case_id: str, recipient_user_id: str, targets: dict[str, Recipient]) -> int:
        case = self.api.case(case_id)
        objects = [(case["sealed"], ObjectContext(case_id, "case", case_id))]
        objects += [
            (item["sealed"], ObjectContext(case_id, "attachment", item["id"])) for item in case["attachments"]
        ]
        objects += [
            (message["sealed"], ObjectContext(case_id, message["kind"], message["id"]))
            for message in self.api.messages(case_id)
        ]
        envelopes, entries = [], []
        for sealed, served in objects:
            mine = next((e for e in sealed["envelopes"] if e["device_id"] == self.device_id), None)
            if mine is None:  # sealed before this device existed and never re-shared to it
                continue
            header, manifest = verify_manifest(
                unb64(sealed["header"]),
                unb64(sealed["manifest"]),
                unb64(sealed["signature"]),
                unb64(sealed["author_device"]["signing_public_key"]),
            )
            check_context(header, served)
            for device_id, recipient in targets.items():
                if header.v == FORMAT_V1 and recipient.suite is not header.suite:
                    continue  # a version 1 object can only be re-shared within its suite
                wrapped = rewrap(
                    header,
                    manifest,
                    unb64(mine["wrapped_key"]),
                    self.device_id,
                    self.keys,
                    device_id,
                    recipient,
                )
                envelopes.append(
                    {"object_id": header.object_id, "device_id": device_id, "wrapped_key": b64(wrapped)}
                )
                entries.append(share_entry(header, device_id, wrapped))
        if not envelopes:
            return 0
        statement, signature = sign_share(
            ShareStatement(case_id=case_id, sharer_device_id=self.device_id, entries=tuple(entries)),
            self.keys,
        )
        shared = self.api.share(
            case_id,
            recipient_user_id=recipient_user_id,
            sharer_device_id=self.device_id,
            statement=b64(statement),
            signature=b64(signature),
            envelopes=envelopes,
        )
        return shared["envelope_count"]
