"""The authorization matrix: every route of the app, in each ownership situation, called by every role, gets
exactly the answer in this table (status and stable code). Refused reads leak nothing: a hidden case answers
byte for byte like a missing one (but for the echoed path and request id), and no refusal carries sealed
data. A route added to the app without an entry here fails test_every_route_has_an_entry.

The people and cases are built once per module (tests/authz_world.py); write cells use fresh cases.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.crypto.e2ee import Suite, generate_device_keys
from app.platform.routes import api_routes
from tests.authz_circles import (
    invite,
    join,
    new_post,
    on_circle,
    on_member,
    open_session,
    pseudonym,
    rotation,
)
from tests.authz_world import (
    ADMIN,
    ADMIN_NO_TOTP,
    ANONYMOUS,
    DERM,
    OFFICER,
    OFFICER_NO_TOTP,
    OTHER_PHYSICIAN,
    READERS,
    REQUESTER,
    ROLES,
    SPECIALIST,
    SUSPENDED,
    UNVERIFIED,
    Build,
    Call,
    World,
    build_world,
    call,
    confirm_totp,
    create_new_case,
    export_of,
    get,
    key_backup_stored,
    log_in,
    on_case,
    post_attachment,
    post_message,
    refresh,
    register,
    register_own_device,
    revoke_own_device,
    sealed_markers,
    share_with_colleague,
    transition,
    webhook_body,
    webhook_of,
    with_fresh_session,
)
from tests.conftest import Accounts, built_app, make_settings
from tests.e2ee_helpers import challenge_body


@dataclass(frozen=True)
class Outcome:
    status: int
    code: str | None = None

    def __str__(self) -> str:
        return f"{self.status} {self.code or ''}".strip()


OK, CREATED, NO_CONTENT = Outcome(200), Outcome(201), Outcome(204)
UNAUTHENTICATED = Outcome(401, "unauthenticated")
CASE_NOT_FOUND = Outcome(404, "case_not_found")
CIRCLE_NOT_FOUND = Outcome(404, "circle_not_found")
MODERATOR_REQUIRED = Outcome(403, "moderator_required")
_PRINCIPAL = {ANONYMOUS: UNAUTHENTICATED, SUSPENDED: Outcome(401, "invalid_token")}
_ACTIVE = {**_PRINCIPAL, UNVERIFIED: Outcome(403, "account_not_active")}
_NON_CLINICIANS = (OFFICER, ADMIN, OFFICER_NO_TOTP, ADMIN_NO_TOTP)
_ROLE = Outcome(403, "role_required")
_MFA = Outcome(403, "mfa_required")


def _only(role: str, without_totp: str) -> dict[str, Outcome]:
    others = {r: _ROLE for r in ROLES if r not in (role, without_totp)}
    return {**others, **_ACTIVE, without_totp: _MFA}


# What the route's dependencies refuse before its own rules look at anything.
GUARDS: dict[str, dict[str, Outcome]] = {
    "public": {},
    "principal": _PRINCIPAL,
    "active": _ACTIVE,
    "clinician": {**_ACTIVE, **dict.fromkeys(_NON_CLINICIANS, _ROLE)},
    "specialist": {**_ACTIVE, **dict.fromkeys((*_NON_CLINICIANS, REQUESTER, OTHER_PHYSICIAN), _ROLE)},
    "officer": _only(OFFICER, OFFICER_NO_TOTP),
    "admin": _only(ADMIN, ADMIN_NO_TOTP),
}


def expect(guard: str, allowed: Outcome | dict[str, Outcome], default: Outcome | None = None):
    """The guard's refusals; then `allowed` for everyone past it, or per role with `default` for the rest."""
    refused = GUARDS[guard]
    expected = {}
    for role in ROLES:
        if role in refused:
            expected[role] = refused[role]
        elif isinstance(allowed, Outcome):
            expected[role] = allowed
        else:
            expected[role] = allowed.get(role, default)
    assert all(expected.values()), f"no outcome for some role: {expected}"
    return expected


def case_rule(allowed: dict[str, Outcome]) -> dict[str, Outcome]:
    """A route on one case: the given roles get their outcome, everyone else the missing-case answer."""
    return expect("principal", allowed, CASE_NOT_FOUND)


def circle_rule(moderator: Outcome, member: Outcome | None = None) -> dict[str, Outcome]:
    """A route on one circle: the requester moderates it, the specialist is a member, other clinicians are
    strangers to it (the missing-circle answer)."""
    return expect("clinician", {REQUESTER: moderator, SPECIALIST: member or moderator}, CIRCLE_NOT_FOUND)


def readers(situation: str, outcome: Outcome = OK) -> dict[str, Outcome]:
    return case_rule(dict.fromkeys(READERS[situation], outcome))


def situations(**named: tuple[Build, dict[str, Outcome]]) -> list[tuple[str, Build, dict[str, Outcome]]]:
    return [(name, build, expected) for name, (build, expected) in named.items()]


def one(build: Build, expected: dict[str, Outcome]) -> list[tuple[str, Build, dict[str, Outcome]]]:
    return [("any", build, expected)]


def _user(kind: str):
    def url(w: World, role: str) -> str:
        if kind == "self":
            return w.user_id(role)
        if kind == "missing":
            return str(uuid.uuid4())
        return {"pending": lambda: w.new_user(verified=False), "verified": w.new_user}[kind]()

    return url


def admin_on(action: str, kind: str, body=None) -> Build:
    return call(
        "PUT" if action == "roles" else "POST",
        lambda w, r: f"/v1/admin/users/{_user(kind)(w, r)}/{action}",
        body,
    )


SUSPEND = {"reason": "other"}
ROLES_BODY = {"roles": ["physician"], "specialties": []}
SELF_CHANGE = Outcome(403, "self_change_refused")
TOTP_ENABLED = Outcome(409, "totp_already_enabled")
_TOTP_ROLES = dict.fromkeys((OFFICER, ADMIN), TOTP_ENABLED)
_CLINICIAN_DIRECTORY = "clinician"


def _specialty() -> Build:
    def build(w: World, role: str) -> Call:
        code = f"matrix-{uuid.uuid4().hex[:8]}"
        return Call(
            "POST",
            "/v1/admin/specialties",
            json={"code": code, "name": "Matrix", "snomed_code": str(uuid.uuid4().int)[:12]},
        )

    return build


MATRIX: dict[tuple[str, str], list[tuple[str, Build, dict[str, Outcome]]]] = {
    # -- auth: public routes, then the caller's own session and TOTP
    ("POST", "/v1/auth/register"): one(register, expect("public", CREATED)),
    ("POST", "/v1/auth/token"): one(
        log_in,
        expect(
            "public",
            {ANONYMOUS: Outcome(401, "invalid_credentials"), SUSPENDED: Outcome(403, "account_not_active")},
            OK,
        ),
    ),
    ("POST", "/v1/auth/refresh"): one(
        refresh,
        expect("public", dict.fromkeys((ANONYMOUS, SUSPENDED), Outcome(401, "invalid_refresh_token")), OK),
    ),
    ("POST", "/v1/auth/logout"): one(
        with_fresh_session("POST", "/v1/auth/logout"), expect("principal", NO_CONTENT)
    ),
    ("POST", "/v1/auth/mfa/totp"): one(
        with_fresh_session("POST", "/v1/auth/mfa/totp"), expect("principal", _TOTP_ROLES, OK)
    ),
    ("POST", "/v1/auth/mfa/totp/confirm"): one(confirm_totp, expect("principal", _TOTP_ROLES, NO_CONTENT)),
    ("GET", "/.well-known/jwks.json"): one(get("/.well-known/jwks.json"), expect("public", OK)),
    # -- self
    ("GET", "/v1/me"): one(get("/v1/me"), expect("principal", OK)),
    ("PUT", "/v1/me/key-backup"): one(
        lambda w, r: Call("PUT", "/v1/me/key-backup", json={"blob": "c2VhbGVk"}), expect("active", NO_CONTENT)
    ),
    ("GET", "/v1/me/key-backup"): situations(
        stored=(key_backup_stored, expect("active", OK)),
    ),
    # -- devices and directory
    ("POST", "/v1/devices/challenge"): one(
        lambda w, r: Call(
            "POST", "/v1/devices/challenge", json=challenge_body(generate_device_keys(Suite.X25519))
        ),
        expect("active", CREATED),
    ),
    ("POST", "/v1/devices"): one(register_own_device, expect("active", CREATED)),
    ("GET", "/v1/devices"): one(get("/v1/devices"), expect("active", OK)),
    ("DELETE", "/v1/devices/{device_id:uuid}"): situations(
        own=(revoke_own_device, expect("active", NO_CONTENT)),
        someone_elses=(
            call("DELETE", lambda w, r: f"/v1/devices/{w.bystander.device.id}"),
            expect("active", Outcome(404, "device_not_found")),
        ),
    ),
    ("GET", "/v1/specialties"): one(get("/v1/specialties"), expect("public", OK)),
    ("GET", "/v1/professions"): one(get("/v1/professions"), expect("public", OK)),
    ("GET", "/v1/specialties/{code}/recipients"): situations(
        active=(get(f"/v1/specialties/{DERM}/recipients"), expect(_CLINICIAN_DIRECTORY, OK)),
        unknown=(
            get("/v1/specialties/astrology/recipients"),
            expect(_CLINICIAN_DIRECTORY, Outcome(404, "specialty_not_found")),
        ),
    ),
    ("GET", "/v1/users/{user_id}/devices"): situations(
        clinician=(
            call("GET", lambda w, r: f"/v1/users/{w.user_id(SPECIALIST)}/devices"),
            expect(_CLINICIAN_DIRECTORY, OK),
        ),
        compliance_officer=(
            call("GET", lambda w, r: f"/v1/users/{w.user_id(OFFICER)}/devices"),
            expect(_CLINICIAN_DIRECTORY, Outcome(404, "user_not_found")),
        ),
    ),
    ("GET", "/v1/clinicians"): one(
        call("GET", lambda w, r: f"/v1/clinicians?id={w.user_id(SPECIALIST)}&id={w.user_id(OFFICER)}"),
        expect(_CLINICIAN_DIRECTORY, OK),
    ),
    # -- cases
    ("POST", "/v1/cases"): one(create_new_case, expect("clinician", CREATED)),
    ("GET", "/v1/cases"): one(get("/v1/cases?sealed=true"), expect("clinician", OK)),
    ("GET", "/v1/cases/queue"): one(get("/v1/cases/queue?sealed=true"), expect("specialist", OK)),
    ("GET", "/v1/cases/{case_id}"): situations(**{name: (on_case(name), readers(name)) for name in READERS}),
    ("GET", "/v1/cases/{case_id}/messages"): situations(
        **{name: (on_case(name, "/messages"), readers(name)) for name in READERS}
    ),
    ("GET", "/v1/cases/{case_id}/attachments/{attachment_id}"): situations(
        **{name: (on_case(name, "/attachments/{attachment_id}"), readers(name)) for name in READERS},
        of_another_case=(
            lambda w, r: Call(
                "GET",
                f"/v1/cases/{w.cases['open_in_queue']['id']}/attachments/"
                f"{w.cases['claimed_by_colleague']['attachment_id']}",
            ),
            readers("open_in_queue", Outcome(404, "attachment_not_found")),
        ),
    ),
    ("POST", "/v1/cases/{case_id}/transitions"): situations(
        claim_open=(
            transition("open_in_queue", "claim"),
            case_rule({SPECIALIST: OK, REQUESTER: Outcome(403, "transition_not_allowed")}),
        ),
        withdraw_open=(
            transition("open_in_queue", "withdraw"),
            case_rule({REQUESTER: OK, SPECIALIST: Outcome(403, "transition_not_allowed")}),
        ),
        claim_taken=(
            transition("claimed_by_colleague", "claim"),
            case_rule(dict.fromkeys((REQUESTER, SPECIALIST), Outcome(409, "already_claimed"))),
        ),
        request_info_as_assignee=(
            transition("claimed_by_specialist", "request_info"),
            case_rule({SPECIALIST: OK, REQUESTER: Outcome(403, "transition_not_allowed")}),
        ),
    ),
    ("POST", "/v1/cases/{case_id}/envelopes"): situations(
        open=(
            share_with_colleague("open_in_queue"),
            case_rule({REQUESTER: CREATED, SPECIALIST: Outcome(403, "share_not_allowed")}),
        ),
        claimed_by_specialist=(
            share_with_colleague("claimed_by_specialist"),
            case_rule({REQUESTER: CREATED, SPECIALIST: CREATED}),
        ),
    ),
    ("POST", "/v1/cases/{case_id}/messages"): situations(
        open=(
            post_message("open_in_queue"),
            case_rule({REQUESTER: CREATED, SPECIALIST: Outcome(403, "write_not_allowed")}),
        ),
        claimed_by_specialist=(
            post_message("claimed_by_specialist"),
            case_rule({REQUESTER: CREATED, SPECIALIST: CREATED}),
        ),
    ),
    ("POST", "/v1/cases/{case_id}/attachments"): situations(
        open=(
            post_attachment("open_in_queue"),
            case_rule({REQUESTER: CREATED, SPECIALIST: Outcome(403, "write_not_allowed")}),
        ),
        claimed_by_specialist=(
            post_attachment("claimed_by_specialist"),
            case_rule({REQUESTER: CREATED, SPECIALIST: CREATED}),
        ),
    ),
    # -- peer circles: the requester moderates the circle, the specialist is a member
    ("POST", "/v1/circles"): one(
        lambda w, r: Call("POST", "/v1/circles", json={"name": "Matrix", "access": "invitation"}),
        expect("clinician", CREATED),
    ),
    ("GET", "/v1/circles"): one(get("/v1/circles"), expect("clinician", OK)),
    ("GET", "/v1/circles/{circle_id}"): one(on_circle("GET"), circle_rule(OK)),
    ("GET", "/v1/circles/{circle_id}/members"): one(on_circle("GET", "/members"), circle_rule(OK)),
    ("GET", "/v1/circles/{circle_id}/recipients"): one(on_circle("GET", "/recipients"), circle_rule(OK)),
    ("POST", "/v1/circles/{circle_id}/join"): one(
        join, expect("clinician", dict.fromkeys((REQUESTER, SPECIALIST), Outcome(409, "already_member")), OK)
    ),
    ("POST", "/v1/circles/{circle_id}/leave"): one(
        on_circle("POST", "/leave"), circle_rule(Outcome(409, "last_moderator"), OK)
    ),
    ("POST", "/v1/circles/{circle_id}/invitations"): one(invite, circle_rule(CREATED, MODERATOR_REQUIRED)),
    ("DELETE", "/v1/circles/{circle_id}/members/{user_id}"): one(
        on_member("DELETE"), circle_rule(OK, MODERATOR_REQUIRED)
    ),
    ("PUT", "/v1/circles/{circle_id}/members/{user_id}/role"): one(
        on_member("PUT", "/role", {"role": "moderator"}), circle_rule(OK, MODERATOR_REQUIRED)
    ),
    ("POST", "/v1/circles/{circle_id}/epochs"): one(rotation, circle_rule(CREATED)),
    ("GET", "/v1/circles/{circle_id}/epochs"): one(
        on_circle("GET", "/epochs", with_device=True), circle_rule(OK)
    ),
    ("POST", "/v1/circles/{circle_id}/pseudonym"): one(pseudonym, circle_rule(CREATED)),
    ("GET", "/v1/circles/{circle_id}/pseudonyms"): one(on_circle("GET", "/pseudonyms"), circle_rule(OK)),
    ("POST", "/v1/circles/{circle_id}/posts"): one(new_post, circle_rule(CREATED)),
    ("GET", "/v1/circles/{circle_id}/posts"): one(on_circle("GET", "/posts"), circle_rule(OK)),
    ("GET", "/v1/circles/{circle_id}/posts/{post_id}"): one(
        on_circle("GET", "/posts/{post_id}"), circle_rule(OK)
    ),
    ("PUT", "/v1/circles/{circle_id}/posts/{post_id}/reactions/{kind}"): one(
        on_circle("PUT", "/posts/{post_id}/reactions/helpful"), circle_rule(OK)
    ),
    ("DELETE", "/v1/circles/{circle_id}/posts/{post_id}/reactions/{kind}"): one(
        on_circle("DELETE", "/posts/{post_id}/reactions/helpful"), circle_rule(OK)
    ),
    ("POST", "/v1/circles/{circle_id}/posts/{post_id}/hide"): one(
        on_circle("POST", "/posts/{post_id}/hide", {"reason": "matrix"}), circle_rule(OK, MODERATOR_REQUIRED)
    ),
    ("POST", "/v1/circles/{circle_id}/posts/{post_id}/reports"): one(
        on_circle("POST", "/posts/{post_id}/reports", {"reason": "off_topic"}), circle_rule(CREATED)
    ),
    ("GET", "/v1/circles/{circle_id}/reports"): one(
        on_circle("GET", "/reports"), circle_rule(OK, MODERATOR_REQUIRED)
    ),
    ("POST", "/v1/circles/{circle_id}/sessions"): one(
        open_session, circle_rule(CREATED, Outcome(409, "session_not_allowed"))
    ),
    ("POST", "/v1/circles/{circle_id}/sessions/{session_id}/rounds"): one(
        on_circle("POST", "/sessions/{session_id}/rounds", {"round": "clarifying_questions"}),
        circle_rule(Outcome(403, "session_advance_forbidden"), OK),
    ),
    ("GET", "/v1/circles/{circle_id}/sessions/{session_id}"): one(
        on_circle("GET", "/sessions/{session_id}"), circle_rule(OK)
    ),
    # -- admin (TOTP session)
    ("GET", "/v1/admin/users"): one(get("/v1/admin/users"), expect("admin", OK)),
    ("POST", "/v1/admin/users/{user_id}/verify"): situations(
        pending=(admin_on("verify", "pending"), expect("admin", OK)),
        verified=(admin_on("verify", "verified"), expect("admin", Outcome(409, "already_verified"))),
        missing=(admin_on("verify", "missing"), expect("admin", Outcome(404, "user_not_found"))),
    ),
    ("POST", "/v1/admin/users/{user_id}/suspend"): situations(
        other=(admin_on("suspend", "verified", SUSPEND), expect("admin", OK)),
        self=(admin_on("suspend", "self", SUSPEND), expect("admin", SELF_CHANGE)),
    ),
    ("POST", "/v1/admin/users/{user_id}/reactivate"): situations(
        other=(admin_on("reactivate", "verified"), expect("admin", OK)),
        missing=(admin_on("reactivate", "missing"), expect("admin", Outcome(404, "user_not_found"))),
    ),
    ("PUT", "/v1/admin/users/{user_id}/roles"): situations(
        other=(admin_on("roles", "verified", ROLES_BODY), expect("admin", OK)),
        self=(admin_on("roles", "self", ROLES_BODY), expect("admin", SELF_CHANGE)),
    ),
    ("POST", "/v1/admin/specialties"): one(_specialty(), expect("admin", CREATED)),
    # -- the device directory log (public: public keys and ids only; the world registered devices)
    ("GET", "/v1/directory/checkpoint"): one(get("/v1/directory/checkpoint"), expect("public", OK)),
    ("GET", "/v1/directory/proof/inclusion"): one(
        get("/v1/directory/proof/inclusion", index=0), expect("public", OK)
    ),
    ("GET", "/v1/directory/proof/consistency"): one(
        get("/v1/directory/proof/consistency", first=1), expect("public", OK)
    ),
    ("GET", "/v1/directory/log/checkpoint"): one(get("/v1/directory/log/checkpoint"), expect("public", OK)),
    ("GET", "/v1/directory/log/tile/{path:path}"): one(
        get("/v1/directory/log/tile/0/000.p/1"), expect("public", OK)
    ),
    # -- audit (compliance officers with TOTP; the checkpoint, consistency proofs and witnesses are public)
    ("GET", "/v1/audit/checkpoint"): one(get("/v1/audit/checkpoint"), expect("public", OK)),
    ("GET", "/v1/audit/witness/checkpoint"): one(
        get("/v1/audit/witness/checkpoint"), expect("public", Outcome(404, "not_witnessed"))
    ),
    ("POST", "/v1/audit/witness/cosignatures"): one(
        lambda w, role: Call("POST", "/v1/audit/witness/cosignatures", data={"note": "not a checkpoint"}),
        expect("public", Outcome(422, "invalid_cosignature")),
    ),
    ("GET", "/v1/audit/proof/inclusion"): one(
        get("/v1/audit/proof/inclusion", index=0), expect("officer", OK)
    ),
    ("GET", "/v1/audit/proof/consistency"): one(
        get("/v1/audit/proof/consistency", first=1), expect("public", OK)
    ),
    ("GET", "/v1/audit/log/checkpoint"): one(get("/v1/audit/log/checkpoint"), expect("officer", OK)),
    ("GET", "/v1/audit/log/tile/{path:path}"): one(
        get("/v1/audit/log/tile/0/000.p/1"), expect("officer", OK)
    ),
    ("GET", "/v1/audit/events"): one(get("/v1/audit/events", limit=5), expect("officer", OK)),
    ("POST", "/v1/audit/exports"): one(
        lambda w, r: Call("POST", "/v1/audit/exports", json={"start": 0, "end": 1}),
        expect("officer", CREATED),
    ),
    ("GET", "/v1/audit/exports/{export_id}"): situations(
        own=(export_of("own"), expect("officer", OK)),
        another_officers=(export_of("other"), expect("officer", Outcome(404, "export_not_found"))),
    ),
    # -- notifications: a clinician's own events and webhooks; statistics for admins
    ("GET", "/v1/events"): one(get("/v1/events"), expect("clinician", OK)),
    ("GET", "/v1/admin/stats"): one(get("/v1/admin/stats"), expect("admin", OK)),
    ("POST", "/v1/webhooks"): one(
        lambda w, r: Call("POST", "/v1/webhooks", json=webhook_body()), expect("clinician", CREATED)
    ),
    ("GET", "/v1/webhooks"): one(get("/v1/webhooks"), expect("clinician", OK)),
    ("DELETE", "/v1/webhooks/{webhook_id}"): situations(
        own=(webhook_of("own"), expect("clinician", NO_CONTENT)),
        someone_elses=(webhook_of("other"), expect("clinician", Outcome(404, "webhook_not_found"))),
    ),
    ("GET", "/v1/webhooks/{webhook_id}/deliveries"): situations(
        own=(webhook_of("own", "/deliveries"), expect("clinician", OK)),
        someone_elses=(
            webhook_of("other", "/deliveries"),
            expect("clinician", Outcome(404, "webhook_not_found")),
        ),
    ),
    # -- operations: public probes; metrics need their own token, never a user's
    ("GET", "/healthz"): one(get("/healthz"), expect("public", OK)),
    ("GET", "/readyz"): one(get("/readyz"), expect("public", OK)),
    ("GET", "/metrics"): situations(
        user_token=(get("/metrics"), expect("public", UNAUTHENTICATED)),
        metrics_token=(
            lambda w, r: Call("GET", "/metrics", headers={"Authorization": "Bearer matrix-metrics-token"}),
            expect("public", OK),
        ),
    ),
}
CELLS = [(route, name, build, expected) for route, rows in MATRIX.items() for name, build, expected in rows]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, database_url: str, seed_rows) -> Iterator[World]:
    settings = make_settings(
        Path(tmp_path_factory.mktemp("matrix")),
        database_url,
        metrics_token="matrix-metrics-token",
        write_rate_per_minute=0,  # the limits have their own tests (tests/test_limits.py)
        audit_exports_per_hour=0,
        audit_sequencer_interval_seconds=0.05,
        webhook_allow_private_targets=True,
    )
    with built_app(settings, seed_rows) as app, TestClient(app) as client:
        built = build_world(client, Accounts(app=app, engine=app.state.runtime.engine), settings)
        built.markers = sealed_markers(built)
        built.missing = client.get(f"/v1/cases/{uuid.uuid4()}", headers=built.headers[REQUESTER])
        yield built


def test_every_route_has_an_entry(world: World):
    routes = {(method, route.path) for route in api_routes(world.client.app) for method in route.methods}
    assert set(MATRIX) == routes, {"without an entry": routes - set(MATRIX), "stale": set(MATRIX) - routes}
    for route, rows in MATRIX.items():
        for name, _, expected in rows:
            assert set(expected) == set(ROLES), (route, name)


_IGNORED = {"instance", "request_id"}


def _check_refusal(world: World, role: str, response, outcome: Outcome) -> list[str]:
    problems = []
    body = response.json()
    if body.get("code") != outcome.code:
        problems.append(f"code {body.get('code')}")
    leaked = [marker for marker in world.markers if marker in response.text]
    if leaked:
        problems.append(f"leaks sealed data or metadata: {leaked[:2]}")
    if outcome == CASE_NOT_FOUND:
        # Hidden answers exactly like missing: same body but for the echoed path, same header names.
        reference = world.missing.json()
        if {k: v for k, v in body.items() if k not in _IGNORED} != {
            k: v for k, v in reference.items() if k not in _IGNORED
        }:
            problems.append(f"404 differs from a missing case's: {body}")
        if set(response.headers) ^ set(world.missing.headers):
            problems.append(f"404 headers differ: {set(response.headers) ^ set(world.missing.headers)}")
    return problems


def _check_list(world: World, role: str, response) -> list[str]:
    """A list never shows a case that a direct read would refuse, nor other sealed data than that read."""
    hidden, differing = [], []
    for item in response.json()["items"]:
        read = world.client.get(f"/v1/cases/{item['id']}", headers=world.headers[role])
        if read.status_code != 200:
            hidden.append(item["id"])
        elif item["sealed"] != read.json()["sealed"]:
            differing.append(item["id"])
    problems = [f"lists cases it may not read: {hidden}"] if hidden else []
    return problems + ([f"lists other sealed data than a read: {differing}"] if differing else [])


@pytest.mark.parametrize(
    ("route", "situation", "build", "expected"),
    CELLS,
    ids=[f"{method} {path} [{name}]" for (method, path), name, _, _ in CELLS],
)
def test_matrix(world: World, route, situation, build, expected):
    mismatches = {}
    for role in ROLES:
        outcome = expected[role]
        world.changing = outcome.status < 400
        request = build(world, role)
        headers = world.headers[role] if request.headers is None else request.headers
        response = world.client.request(
            request.method,
            request.url,
            json=request.json,
            data=request.data,
            files=request.files,
            params=request.params,
            headers=headers,
        )
        problems = [] if response.status_code == outcome.status else [f"status {response.status_code}"]
        if not problems and response.status_code >= 400:
            problems += _check_refusal(world, role, response, outcome)
        elif not problems and route in (("GET", "/v1/cases"), ("GET", "/v1/cases/queue")):
            problems += _check_list(world, role, response)
        if problems:
            mismatches[role] = f"expected {outcome}, got {'; '.join(problems)}: {response.text[:300]}"
    assert not mismatches, "\n".join(f"{role}: {text}" for role, text in mismatches.items())
