"""Pseudonyms: one per member and circle, one Ed25519 key per device of that member. The server checks
and keeps each key's binding (signed by the member's active device: the evidence of who is behind the
pseudonym); members only ever see the pseudonym's id, name and public keys."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime

from sqlmodel import Session, col, select

from app.authz.principal import Principal
from app.crypto.circles import PseudonymBinding, check_pseudonym_binding
from app.errors import Conflict, IdNotUsable
from app.models.circles import CirclePseudonym, CirclePseudonymKey
from app.schemas.circles import (
    PseudonymCreate,
    PseudonymCreated,
    PseudonymKeyOut,
    PseudonymList,
    PseudonymOut,
)
from app.services.circles import load
from app.services.e2ee_errors import e2ee_checks
from app.services.inserts import flush_new
from app.services.sealed import ObjectMismatch, signing_device


class PseudonymNameTaken(Conflict):
    code = "pseudonym_name_taken"
    title = "Another member of this circle uses this pseudonym"


class PseudonymKeyExists(Conflict):
    code = "pseudonym_key_exists"
    title = "This device already has a key for your pseudonym, or the key is in use"


def create(
    session: Session, principal: Principal, circle_id: uuid.UUID, request: PseudonymCreate, now: datetime
) -> PseudonymCreated:
    """The member's pseudonym on first use (its id is the binding's), then one more key per device."""
    load(session, principal, circle_id)
    with e2ee_checks():
        claimed = PseudonymBinding.parse(request.binding)
    device = signing_device(session, principal.id, uuid.UUID(claimed.device_id))
    with e2ee_checks():
        binding = check_pseudonym_binding(
            request.binding, request.binding_signature, device.signing_public_key, request.public_key
        )
    if binding.circle_id != str(circle_id):
        raise ObjectMismatch("the binding names another circle")
    pseudonym = session.exec(
        select(CirclePseudonym).where(
            col(CirclePseudonym.circle_id) == circle_id, col(CirclePseudonym.user_id) == principal.id
        )
    ).first()
    if pseudonym is None:
        pseudonym = _new_pseudonym(
            session, principal, circle_id, uuid.UUID(binding.pseudonym_id), request, now
        )
    elif str(pseudonym.id) != binding.pseudonym_id or pseudonym.name != request.name.strip():
        raise ObjectMismatch("you already have a pseudonym in this circle: bind the key to it, by its name")
    key = CirclePseudonymKey(
        pseudonym_id=pseudonym.id,
        device_id=device.id,
        public_key=request.public_key,
        binding=request.binding,
        binding_signature=request.binding_signature,
        created_at=now,
    )
    session.add(key)
    flush_new(session, PseudonymKeyExists())
    return PseudonymCreated(pseudonym_id=pseudonym.id, name=pseudonym.name, key_id=key.id)


def _new_pseudonym(
    session: Session,
    principal: Principal,
    circle_id: uuid.UUID,
    pseudonym_id: uuid.UUID,
    request: PseudonymCreate,
    now: datetime,
) -> CirclePseudonym:
    if session.get(CirclePseudonym, pseudonym_id) is not None:
        raise IdNotUsable(("body", "binding"))
    name = request.name.strip()
    taken = select(CirclePseudonym.id).where(
        col(CirclePseudonym.circle_id) == circle_id, col(CirclePseudonym.name) == name
    )
    if session.exec(taken).first() is not None:
        raise PseudonymNameTaken()
    pseudonym = CirclePseudonym(
        id=pseudonym_id, circle_id=circle_id, user_id=principal.id, name=name, created_at=now
    )
    session.add(pseudonym)
    flush_new(session, PseudonymNameTaken())
    return pseudonym


def listed(session: Session, principal: Principal, circle_id: uuid.UUID) -> PseudonymList:
    """Every pseudonym of the circle with its keys (to verify pseudonymous posts): never the member, the
    device or the binding."""
    load(session, principal, circle_id)
    pseudonyms = session.exec(
        select(CirclePseudonym)
        .where(col(CirclePseudonym.circle_id) == circle_id)
        .order_by(col(CirclePseudonym.name))
    ).all()
    keys: dict[uuid.UUID, list[PseudonymKeyOut]] = defaultdict(list)
    rows = session.exec(
        select(CirclePseudonymKey)
        .where(col(CirclePseudonymKey.pseudonym_id).in_([pseudonym.id for pseudonym in pseudonyms]))
        .order_by(col(CirclePseudonymKey.created_at), col(CirclePseudonymKey.id))
    ).all()
    for key in rows:
        keys[key.pseudonym_id].append(PseudonymKeyOut(key_id=key.id, public_key=key.public_key))
    return PseudonymList(pseudonyms=[PseudonymOut(id=p.id, name=p.name, keys=keys[p.id]) for p in pseudonyms])
