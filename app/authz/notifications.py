"""Who may learn, by ids, that something happened to a case (app/notifications/outbox.py resolves
recipients)."""

from __future__ import annotations

import uuid
from collections.abc import Set

from app.authz.policies import ALLOW, Decision, deny
from app.authz.visibility import Party, is_clinician, is_participant, is_specialist_of
from app.errors import Refusal
from app.models.cases import Case


def may_be_notified(party: Party, case: Case, shared: Set[uuid.UUID]) -> Decision:
    """Its participants, and the specialists of its specialty: they see it while it waits in their queue,
    and learn when it leaves it (claimed, withdrawn). An event carries no content, only ids, a type and a
    time; still, nobody else hears of the case at all, and never an inactive account."""
    if not is_clinician(party):
        return deny(Refusal.NOT_A_CLINICIAN)
    if is_participant(party, case, shared) or is_specialist_of(party, case.specialty):
        return ALLOW
    return deny(Refusal.NOT_VISIBLE)
