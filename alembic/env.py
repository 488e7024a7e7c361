"""Alembic environment: the database URL comes from the app's settings unless the caller passes one."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, func, pool, select

import app.models  # noqa: F401  (registers every table on the metadata)
from app.config import get_settings
from app.models.base import UTCDateTime, metadata

config = context.config
# pg_advisory_xact_lock key: "cfmigrat" in ASCII. Several nodes starting at once each run `confrere migrate`:
# the first takes the lock and upgrades (PostgreSQL runs the whole upgrade in one transaction), the others
# wait for it, then find the database at head and do nothing.
MIGRATION_LOCK_KEY = 0x6366_6D69_6772_6174


def _url() -> str:
    return config.attributes.get("database_url") or get_settings().resolved_database_url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _render_item(type_: str, obj, autogen_context):
    # Migrations must not import app code that may change later: store the plain column type.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _applied(*, step, **_) -> None:
    config.attributes.setdefault("applied", []).append(step.up_revision_id)


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
        render_item=_render_item,
        on_version_apply=_applied,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
