"""Fixtures: the database is built through the migrations, once per run, and emptied between tests.

Set CONFRERE_TEST_DATABASE_URL to run the whole suite against PostgreSQL; the default is SQLite.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, insert, select, text
from sqlalchemy.pool import NullPool

from app.cli import alembic_config
from app.config import Environment, Settings
from app.crypto import totp
from app.crypto.passwords import PasswordHasher
from app.main import create_app
from app.models.base import metadata, utcnow
from app.models.users import Profession, Role, User, UserRole, UserSpecialty, UserStatus
from app.runtime.database import transaction
from app.services.auth import totp_context
from tests.s3_server import S3Server, s3_server

PASSWORD = "a long enough test password"
HASHER = PasswordHasher()
_PASSWORD_HASH = HASHER.hash(PASSWORD)


def _test_database_url(tmp_root: Path) -> str:
    return os.environ.get("CONFRERE_TEST_DATABASE_URL") or f"sqlite:///{tmp_root / 'confrere-test.db'}"


def _reset_postgres_schema(url: str) -> None:
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = _test_database_url(tmp_path_factory.mktemp("db"))
    if url.startswith("postgresql"):
        _reset_postgres_schema(url)
    from alembic import command

    command.upgrade(alembic_config(Settings(), url), "head")
    return url


@pytest.fixture(scope="session")
def seed_rows(database_url: str) -> dict[str, list[dict]]:
    """Rows the migrations insert (the specialties), restored after each test empties the tables."""
    engine = create_engine(database_url, poolclass=NullPool)
    with engine.connect() as connection:
        rows = {
            "specialties": [
                dict(row._mapping) for row in connection.execute(select(metadata.tables["specialties"]))
            ]
        }
    engine.dispose()
    return rows


def make_settings(data_dir: Path, database_url: str, **overrides: Any) -> Settings:
    """The settings every test app starts from."""
    defaults = {"metrics_token": "test-metrics-token", "db_pool_size": 10}
    return Settings(
        environment=Environment.TEST,
        data_dir=data_dir,
        database_url=database_url,
        **(defaults | overrides),
    )


@contextmanager
def built_app(settings: Settings, seed_rows: dict[str, list[dict]]) -> Iterator[FastAPI]:
    """An app on the suite's database, whose tables are emptied (but for the seed rows) afterwards."""
    application = create_app(settings)
    try:
        yield application
    finally:
        _empty_tables(application.state.runtime.engine, seed_rows)
        application.state.runtime.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url)


@pytest.fixture
def app(settings: Settings, seed_rows: dict[str, list[dict]]) -> Iterator[FastAPI]:
    with built_app(settings, seed_rows) as application:
        yield application


def _empty_tables(engine: Engine, seed_rows: dict[str, list[dict]]) -> None:
    with engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(table.delete())
        for name, rows in seed_rows.items():
            if rows:
                connection.execute(insert(metadata.tables[name]), rows)


@pytest.fixture
def engine(app) -> Engine:
    return app.state.runtime.engine


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client


@dataclass
class Account:
    id: uuid.UUID
    email: str
    password: str = PASSWORD
    totp_secret: bytes | None = None
    roles: tuple[Role, ...] = ()
    _last_step: int = field(default=0)

    def next_totp_code(self) -> str:
        """A code for a step not used yet (the server refuses replays within the same 30 s step)."""
        assert self.totp_secret is not None
        step = max(int(time.time()) // totp.STEP_SECONDS, self._last_step + 1)
        self._last_step = step
        return totp.code_at(self.totp_secret, step * totp.STEP_SECONDS)


@dataclass
class Accounts:
    app: object
    engine: Engine
    counter: int = 0

    def create(
        self,
        *roles: Role,
        specialties: tuple[str, ...] = (),
        verified: bool = True,
        status: UserStatus = UserStatus.ACTIVE,
        with_totp: bool | None = None,
        profession: Profession = Profession.PHYSICIAN,
    ) -> Account:
        self.counter += 1
        email = f"user{self.counter}-{uuid.uuid4().hex[:6]}@example.org"
        wants_totp = (
            with_totp if with_totp is not None else bool({Role.ADMIN, Role.COMPLIANCE_OFFICER} & set(roles))
        )
        secret = totp.new_secret() if wants_totp else None
        sealer = self.app.state.runtime.authenticator.sealer
        with transaction(self.engine) as session:
            user = User(
                email=email,
                password_hash=_PASSWORD_HASH,
                display_name=f"Test user {self.counter}",
                profession=profession.value,
                status=status if verified else UserStatus.PENDING,
                verified_at=utcnow() if verified else None,
            )
            session.add(user)
            session.flush()
            if secret is not None:
                user.totp_secret_sealed = sealer.seal(secret, totp_context(user.id))
                user.totp_confirmed_at = utcnow()
            session.add_all(UserRole(user_id=user.id, role=role.value) for role in roles)
            session.add_all(UserSpecialty(user_id=user.id, specialty_code=code) for code in specialties)
            user_id = user.id
        return Account(id=user_id, email=email, totp_secret=secret, roles=roles)


@pytest.fixture
def accounts(app, engine) -> Accounts:
    return Accounts(app=app, engine=engine)


def login(client: TestClient, account: Account) -> dict:
    body = {"email": account.email, "password": account.password}
    if account.totp_secret is not None:
        body["totp_code"] = account.next_totp_code()
    response = client.post("/v1/auth/token", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def auth_headers(client: TestClient, account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {login(client, account)['access_token']}"}


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    return body


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's S3 server, one per test session, started on first use."""
    try:
        with s3_server(tmp_path_factory.mktemp("s3") / "moto.log") as server:
            yield server
    except RuntimeError as error:
        pytest.skip(f"NO S3 TESTS: the S3-compatible test server (moto[server]) cannot start: {error}")
