"""Limits shared by every API node on PostgreSQL: the write rate buckets (one row per caller) and the
login lockout. On SQLite the buckets stay in each process's memory (docs/reliability.md, section 4)."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text

from app.models.users import Role
from app.platform.ratelimit import RateLimited, SharedRateLimiter, create_limits_engine, forget_full_buckets
from tests.conftest import PASSWORD
from tests.live_server import live_server


@pytest.fixture
def postgres(settings):
    if settings.is_sqlite:
        pytest.skip("shared limits live in PostgreSQL; on SQLite they are per process by design")
    return settings


def test_two_limiters_draw_on_one_bucket_and_say_when_to_retry(postgres, engine):
    nodes = [create_limits_engine(postgres) for _ in range(2)]
    try:
        one, other = (SharedRateLimiter(node, "writes", 1, 2, "writes") for node in nodes)
        one.check("user:a")
        other.check("user:a")
        with pytest.raises(RateLimited) as refused:
            one.check("user:a")
        assert 50 <= int(refused.value.headers["Retry-After"]) <= 60  # one token a minute
        other.check("user:b")  # another caller has a budget of its own
        SharedRateLimiter(nodes[0], "writes", 0, 1, "writes").check("user:a")  # 0 disables
        with nodes[0].connect() as connection:
            assert forget_full_buckets(connection, now=0) == 0  # none full yet
            assert forget_full_buckets(connection, now=2**40) == 2
    finally:
        for node in nodes:
            node.dispose()


def test_a_check_survives_a_database_restart_of_its_connection(postgres, engine):
    limits = create_limits_engine(postgres)
    try:
        limiter = SharedRateLimiter(limits, "writes", 60, 5, "writes")
        limiter.check("user:a")
        with limits.connect() as connection:  # the pool's one connection, which checks use
            pid = connection.execute(text("SELECT pg_backend_pid()")).scalar()
        with engine.connect() as other:
            assert other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
        limiter.check("user:a")  # on a new connection, not a 500
    finally:
        limits.dispose()


@pytest.mark.slow
def test_two_server_processes_share_one_budget_and_one_lockout(postgres, engine, accounts, tmp_path):
    env = {"CONFRERE_WRITE_RATE_PER_MINUTE": "1", "CONFRERE_WRITE_BURST": "6"}
    account = accounts.create(Role.PHYSICIAN)
    with (
        live_server(postgres, tmp_path / "a.log", env) as node_a,
        live_server(postgres, tmp_path / "b.log", env) as node_b,
    ):
        nodes = [node_a.url, node_b.url] * 4

        def attempt(url: str, password: str) -> httpx.Response:
            body = {"email": account.email, "password": password}
            return httpx.post(f"{url}/v1/auth/token", json=body, timeout=30)

        # Five failures, three on one node and two on the other, lock the account (five allowed).
        assert [attempt(url, "wrong password!").status_code for url in nodes[:5]] == [401] * 5
        locked = attempt(nodes[5], PASSWORD)
        assert (locked.status_code, locked.json()["code"]) == (429, "account_locked")
        # Six attempts from this address took the burst of six, three on each node: one budget, not two.
        for url in nodes[6:8]:
            refused = attempt(url, PASSWORD)
            assert (refused.status_code, refused.json()["code"]) == (429, "rate_limited")
            assert int(refused.headers["Retry-After"]) > 0
