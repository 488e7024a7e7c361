"""Re-sharing: a participant's device wraps a case's content keys for a colleague's devices (docs/e2ee.md
section 12) and signs the list; the server checks the statement, the objects and the recipient."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Session, col, select

from app.authz import queries
from app.authz.cases import has_access, may_be_shared_with, may_share
from app.authz.policies import enforce
from app.authz.principal import Principal
from app.crypto.e2ee import Header, Suite, check_share
from app.errors import Conflict, RecipientNotEligible
from app.models.cases import CaseObject, CaseShare, Envelope
from app.models.devices import Device
from app.notifications import outbox
from app.schemas.cases import ShareOut, ShareRequest
from app.services import sealed
from app.services.cases import load_visible
from app.services.e2ee_errors import e2ee_checks
from app.services.inserts import flush_new


class EnvelopeExists(Conflict):
    code = "envelope_exists"
    title = "A device already holds an envelope for one of these objects"


def share(
    session: Session,
    principal: Principal,
    case_id: uuid.UUID,
    request: ShareRequest,
    max_envelopes: int,
    now: datetime,
) -> ShareOut:
    visible = load_visible(session, principal, case_id)
    case = visible.case
    enforce(may_share(principal, case, visible.shared))
    sharer = sealed.signing_device(session, principal.id, request.sharer_device_id)
    recipient = queries.load_members(session, [request.recipient_user_id]).get(request.recipient_user_id)
    if recipient is None:
        raise RecipientNotEligible()
    enforce(may_be_shared_with(recipient, case))

    sealed.check_envelope_count(len(request.envelopes), max_envelopes)
    envelopes = {(str(e.object_id), str(e.device_id)): e.wrapped_key for e in request.envelopes}
    if len(envelopes) != len(request.envelopes):
        raise sealed.duplicate_envelopes()
    object_ids = {e.object_id for e in request.envelopes}
    device_ids = {e.device_id for e in request.envelopes}
    devices = {d.id: d for d in session.exec(select(Device).where(col(Device.id).in_(device_ids))).all()}
    if len(devices) != len(device_ids) or any(
        device.user_id != recipient.id or not device.is_active for device in devices.values()
    ):
        raise RecipientNotEligible("every envelope goes to an active device of the recipient")
    # Only this case's objects are known here, so an entry naming any other object is refused.
    stored = session.exec(
        select(CaseObject.id, CaseObject.header).where(
            col(CaseObject.case_id) == case.id, col(CaseObject.id).in_(object_ids)
        )
    ).all()
    with e2ee_checks():
        statement = check_share(
            request.statement,
            request.signature,
            sharer.signing_public_key,
            envelopes,
            header_by_object={str(object_id): Header.parse(header) for object_id, header in stored},
            recipient_suites={str(device.id): Suite(device.suite) for device in devices.values()},
        )
    if statement.case_id != str(case.id) or statement.sharer_device_id != str(sharer.id):
        raise sealed.ObjectMismatch("the statement names another case or sharer device")

    row = CaseShare(
        case_id=case.id,
        recipient_id=recipient.id,
        sharer_id=principal.id,
        sharer_device_id=sharer.id,
        statement=request.statement,
        signature=request.signature,
        # A specialist who sees the case in the queue anyway gets keys but no lasting part in it.
        grants_access=not has_access(recipient, case, frozenset()),
        created_at=now,
    )
    session.add(row)
    session.add_all(
        Envelope(
            object_id=uuid.UUID(object_id),
            device_id=uuid.UUID(device_id),
            wrapped_key=wrapped_key,
            share_id=row.id,
            created_at=now,
        )
        for (object_id, device_id), wrapped_key in envelopes.items()
    )
    flush_new(session, EnvelopeExists())
    now_shared = (visible.shared | {recipient.id}) if row.grants_access else visible.shared
    outbox.case_shared(session, case, now_shared, recipient.id, principal.id, now)
    return ShareOut(recipient_user_id=recipient.id, envelope_count=len(envelopes))
