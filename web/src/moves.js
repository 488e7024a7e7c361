// Which moves a user's part in a case allows, from the case's clear metadata: the rules of
// app/authz/cases.py (TRANSITIONS and the writers of may_write) and docs/api.md sections 7 and 8. They only
// decide which buttons to show; the server stays the authority, and a refusal is shown from its code.

const PENDING = ["open", "claimed", "awaiting_info"];
const FINAL = ["closed", "withdrawn"];

// The decline reasons of docs/api.md section 8: codes, never free text.
export const DECLINE_REASONS = {
  outside_expertise: "Outside my expertise",
  unavailable: "I am not available",
  insufficient_information: "Not enough information to answer",
  other: "Other reason",
};

function parts(kase, user) {
  const me = user.id;
  return {
    me,
    isRequester: kase.requester_id === me,
    isAssignee: kase.assignee_id === me,
    isSpecialistOfCase:
      user.roles.includes("specialist") && (user.specialties ?? []).includes(kase.specialty),
  };
}

// The transitions (api.md section 8 actions) this user may try on the case as it is now.
export function allowedMoves(kase, user) {
  const { me, isRequester, isAssignee, isSpecialistOfCase } = parts(kase, user);
  const { status } = kase;
  const rules = {
    claim:
      status === "open" && !kase.assignee_id && !isRequester &&
      (kase.named_specialist_id ? kase.named_specialist_id === me : isSpecialistOfCase),
    // An open case is declined by the specialist it is offered to; a claimed one by its assignee.
    decline: status === "open" ? kase.named_specialist_id === me : status === "claimed" && isAssignee,
    request_info: status === "claimed" && isAssignee,
    answer: status === "claimed" && isAssignee,
    provide_info: status === "awaiting_info" && isRequester,
    close: status === "answered" && isRequester,
    withdraw: PENDING.includes(status) && isRequester,
  };
  return new Set(Object.keys(rules).filter((action) => rules[action]));
}

// Plain messages: the requester and the assignee (shared colleagues too, but the client does not know the
// shared list), and nobody once the case is closed or withdrawn.
export function mayPost(kase, user) {
  const { isRequester, isAssignee } = parts(kase, user);
  return !FINAL.includes(kase.status) && (isRequester || isAssignee);
}
