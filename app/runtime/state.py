"""The runtime of the app: everything a request may use, built once per app and held, typed, in app.state.

Routers and dependencies reach it only through app.deps (RuntimeDep and the aliases built on it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy import Engine, text
from sqlmodel import Session

from app.config import Settings
from app.crypto.passwords import PasswordHasher
from app.crypto.signed_note import NoteSigner
from app.directory.log import DirectoryLog
from app.models.audit import AuditRecord
from app.models.base import table_of
from app.notifications.stream import EventStreams
from app.notifications.workers import Notifications
from app.platform.blobstore import BlobStore, open_blob_store
from app.platform.keyring import load_server_keys
from app.platform.ratelimit import RateLimits
from app.runtime.database import (
    WriteGate,
    create_db_engine,
    create_light_read_engine,
    create_read_engine,
    holds_data,
    new_session,
)
from app.services.auth import Authenticator

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    engine: Engine
    # The engine of requests that only read: on SQLite a read-only pool (app.runtime.database).
    read_engine: Engine
    # The engine of the light reads (inline_read routes): on PostgreSQL in autocommit.
    light_read_engine: Engine
    write_gate: WriteGate
    authenticator: Authenticator
    audit_log_signer: NoteSigner
    # Writes the device directory log's entries with the changes they record (app.directory.log).
    directory_log: DirectoryLog
    blobs: BlobStore
    rate_limits: RateLimits
    notifications: Notifications

    @property
    def event_streams(self) -> EventStreams:
        return self.notifications.streams

    def read_session(self) -> Session:
        """A session of its own on the read engine, for reads made outside a request's transaction."""
        return new_session(self.read_engine)

    def database_answers(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:
            logger.warning("readiness: the database does not answer", exc_info=True)
            return False
        return True

    def dispose(self) -> None:
        self.engine.dispose()
        self.read_engine.dispose()
        self.rate_limits.close()


def build_runtime(settings: Settings) -> Runtime:
    engine = create_db_engine(settings)
    read_engine = create_read_engine(settings, engine)
    keys = load_server_keys(settings, create_missing=not holds_data(engine))
    return Runtime(
        settings=settings,
        engine=engine,
        read_engine=read_engine,
        light_read_engine=create_light_read_engine(read_engine),
        # SQLite has one writer, PostgreSQL many (see WriteGate).
        write_gate=WriteGate(engine, table_of(AuditRecord), exclusive=settings.is_sqlite),
        authenticator=Authenticator(
            settings,
            keys.tokens,
            keys.sealer,
            PasswordHasher(settings.argon2_memory_kib, settings.argon2_iterations, settings.argon2_lanes),
        ),
        audit_log_signer=keys.audit_log,
        directory_log=DirectoryLog(keys.directory_log),
        blobs=open_blob_store(settings),
        rate_limits=RateLimits.from_settings(settings),
        notifications=Notifications(engine, read_engine, keys.sealer, settings),
    )


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime
