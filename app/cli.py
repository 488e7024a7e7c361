"""The `confrere` command: serve, migrate, bootstrap the first admin, keys, the OpenAPI contract, the demo,
the audit and directory logs, the blob store, the periodic jobs, and the reference client's commands."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import secrets
import socket
import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config
from pydantic import ValidationError
from sqlmodel import col, select

from app import cli_operations as operations
from app.client import cli as client_cli
from app.config import Settings, get_settings, settings_problems
from app.platform.keyring import KeyringError

REPO_ROOT = Path(__file__).resolve().parent.parent
OPENAPI_PATH = REPO_ROOT / "openapi" / "openapi.json"
MIN_PASSWORD_LENGTH = 12


def alembic_config(settings: Settings, database_url: str | None = None) -> Config:
    config = Config(str(settings.alembic_ini))
    config.attributes["database_url"] = database_url or settings.resolved_database_url
    return config


def migrate(settings: Settings, revision: str = "head") -> list[str]:
    """The revisions applied (none when another node had already migrated: alembic/env.py takes a lock)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    config = alembic_config(settings)
    command.upgrade(config, revision)
    return config.attributes.get("applied", [])


def ensure_server_keys(settings: Settings) -> None:
    """Creates the server's keys for a database that holds no data yet; beside one that does, a missing key
    is an error (app.platform.keyring), never a new key."""
    from app.platform.keyring import load_server_keys
    from app.runtime.database import create_db_engine, holds_data

    engine = create_db_engine(settings)
    try:
        load_server_keys(settings, create_missing=not holds_data(engine))
    finally:
        engine.dispose()


def where(settings: Settings) -> str:
    database = "SQLite in the data dir" if settings.database_url is None else "CONFRERE_DATABASE_URL"
    return f"data dir {settings.data_dir} (keys in {settings.resolved_keys_dir}; database: {database})"


def create_admin(settings: Settings, email: str, password: str | None, name: str, if_missing: bool) -> int:
    from app.crypto.passwords import PasswordHasher
    from app.models.base import utcnow
    from app.models.users import Role, UserRole
    from app.runtime.database import create_db_engine, transaction
    from app.services.accounts import EmailTaken, provision

    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        print(f"error: the password needs at least {MIN_PASSWORD_LENGTH} characters", file=sys.stderr)
        return 1
    ensure_server_keys(settings)
    engine = create_db_engine(settings)
    generated = password is None
    password = password or secrets.token_urlsafe(18)
    hasher = PasswordHasher(settings.argon2_memory_kib, settings.argon2_iterations, settings.argon2_lanes)
    try:
        with transaction(engine) as session:
            if (
                if_missing
                and session.exec(select(UserRole).where(col(UserRole.role) == Role.ADMIN.value)).first()
            ):
                print("An admin exists already; nothing to do.")
                return 0
            provision(
                session,
                hasher,
                email=email,
                password=password,
                display_name=name,
                roles={Role.ADMIN},
                now=utcnow(),
            )
    except EmailTaken:
        print(f"error: an account with {email} exists", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"Admin created: {email}")
    if generated:
        print(f"Generated password (shown once): {password}")
    print("Log in, enrol TOTP (POST /v1/auth/mfa/totp), then log in again with a code to use admin routes.")
    return 0


def openapi_document() -> dict:
    from app.main import create_app

    with tempfile.TemporaryDirectory() as data_dir:
        app = create_app(Settings(data_dir=Path(data_dir), database_url=None))
        return app.openapi()


def render_openapi() -> str:
    return json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"


def write_openapi(check: bool) -> int:
    rendered = render_openapi()
    if check:
        current = OPENAPI_PATH.read_text() if OPENAPI_PATH.exists() else ""
        if current != rendered:
            print("openapi/openapi.json is out of date: run `confrere openapi`", file=sys.stderr)
            return 1
        return 0
    OPENAPI_PATH.parent.mkdir(exist_ok=True)
    OPENAPI_PATH.write_text(rendered)
    print(f"wrote {OPENAPI_PATH}")
    return 0


def port_in_use(host: str, port: int) -> bool:
    """Whether uvicorn would fail to listen there (it binds with SO_REUSEADDR, as create_server does)."""
    try:
        socket.create_server((host, port)).close()
    except OSError:
        return True
    return False


def serve(host: str, port: int, workers: int | None) -> None:
    """uvicorn with its standard extras (uvloop and httptools, picked by its "auto" loop and parser)."""
    import uvicorn

    from app.platform.logs import LOG_CONFIG

    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers or get_settings().serve_workers,
        proxy_headers=True,
        log_config=LOG_CONFIG,
    )


def _serve(args: argparse.Namespace) -> int:
    settings = get_settings()
    if port_in_use(args.host, args.port):
        print(
            f"error: {args.host}:{args.port} is already in use (another server?): choose another port, "
            f"e.g. `make run PORT={args.port + 1}` or `confrere serve --port {args.port + 1}`",
            file=sys.stderr,
        )
        return 1
    import logging.config

    from app.platform.logs import LOG_CONFIG

    # In the server's JSON log lines, like everything it says from here on.
    logging.config.dictConfig(LOG_CONFIG)
    log = logging.getLogger("confrere")
    workers = args.workers or settings.serve_workers
    if workers > 1 and settings.is_sqlite:
        log.warning("SQLite has one writer: several workers queue on its lock (PostgreSQL scales)")
    log.info("Confrere on http://%s:%s (%d worker(s)); %s", args.host, args.port, workers, where(settings))
    serve(args.host, args.port, workers)
    return 0


def _migrate(_: argparse.Namespace) -> int:
    settings = get_settings()
    applied = migrate(settings)
    ensure_server_keys(settings)
    print(where(settings))
    print(f"applied {len(applied)} migrations: {' '.join(applied)}" if applied else "nothing to migrate")
    return 0


def _create_admin(args: argparse.Namespace) -> int:
    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif args.prompt:
        password = getpass.getpass("Password: ")
    elif os.environ.get("CONFRERE_ADMIN_PASSWORD"):
        password = os.environ["CONFRERE_ADMIN_PASSWORD"]
    return create_admin(get_settings(), args.email, password, args.name, args.if_missing)


def _openapi(args: argparse.Namespace) -> int:
    return write_openapi(args.check)


def _init_keys(_: argparse.Namespace) -> int:
    from app.platform.keyring import load_server_keys

    settings = get_settings().model_copy(update={"generate_keys": True})
    keys = load_server_keys(settings, create_missing=True)
    print(f"server keys in {settings.resolved_keys_dir} (back them up; never lose the audit log's)")
    print(f"audit log verifier key: {keys.audit_log.verifier().key_string}")
    return 0


def _rotate_token_key(_: argparse.Namespace) -> int:
    from app.platform.keyring import rotate_token_key

    print(f"new token signing key: {rotate_token_key(get_settings())}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from app.client.demo import run_demo

    return run_demo(args.server, args.suite, args.accounts_command)


def _demo_accounts(_: argparse.Namespace) -> int:
    from app.config import Environment
    from app.crypto.passwords import PasswordHasher
    from app.models.base import utcnow
    from app.platform.keyring import load_server_keys
    from app.runtime.database import create_db_engine, transaction
    from app.services.demo_accounts import provision_demo_accounts

    settings = get_settings()
    if settings.environment is Environment.PRODUCTION:
        print("error: demo accounts are for development servers, never production", file=sys.stderr)
        return 1
    ensure_server_keys(settings)
    sealer = load_server_keys(settings, create_missing=False).sealer
    hasher = PasswordHasher(settings.argon2_memory_kib, settings.argon2_iterations, settings.argon2_lanes)
    engine = create_db_engine(settings)
    try:
        with transaction(engine) as session:
            described = provision_demo_accounts(session, hasher, sealer, utcnow())
    finally:
        engine.dispose()
    print(json.dumps(described, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="confrere", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("serve", help="serve the API")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8000)
    run.add_argument(
        "--workers", type=int, help="processes (CONFRERE_WORKERS; default 1 on SQLite, 2 on PostgreSQL)"
    )
    run.set_defaults(handler=_serve)

    commands.add_parser("migrate", help="upgrade the database to the latest schema").set_defaults(
        handler=_migrate
    )

    admin = commands.add_parser("create-admin", help="create an admin account (bootstrap)")
    admin.add_argument("--email", required=True)
    admin.add_argument("--name", default="Administrator")
    admin.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    admin.add_argument("--prompt", action="store_true", help="ask for the password")
    admin.add_argument("--if-missing", action="store_true", help="do nothing when an admin exists")
    admin.set_defaults(handler=_create_admin)

    spec = commands.add_parser("openapi", help="write openapi/openapi.json from the app")
    spec.add_argument("--check", action="store_true", help="fail when the committed file differs")
    spec.set_defaults(handler=_openapi)

    commands.add_parser(
        "init-keys", help="create the missing server keys once, before the first start of several nodes"
    ).set_defaults(handler=_init_keys)
    keys = commands.add_parser("rotate-token-key", help="add a new token signing key (old ones still verify)")
    keys.set_defaults(handler=_rotate_token_key)

    demo = commands.add_parser(
        "demo", help="play a whole encrypted case against a running development server"
    )
    demo.add_argument("--server", default="http://127.0.0.1:8000")
    demo.add_argument("--suite", choices=["x25519", "xwing"], default="xwing")
    demo.add_argument(
        "--accounts-command",
        help="command that prints the demo accounts as JSON, run on the server's machine (default: this "
        "installation's `confrere demo-accounts`; e.g. `docker compose exec -T api confrere demo-accounts`)",
    )
    demo.set_defaults(handler=_demo)

    commands.add_parser(
        "demo-accounts",
        help="create (or find) the demo accounts in this server's database; print how to log in as each",
    ).set_defaults(handler=_demo_accounts)

    operations.add_commands(commands)  # audit, directory, blobs, jobs
    client_cli.add_commands(commands)
    client_cli.add_profile_option(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in client_cli.CLIENT_COMMANDS:
        return client_cli.run(args)
    try:
        return args.handler(args)
    except ValidationError as error:
        if error.title != Settings.__name__:
            raise
        # Settings come from the environment: say which variable is wrong, in one line each, no traceback.
        for line in settings_problems(error):
            print(f"error: {line}", file=sys.stderr)
        return 2
    except KeyringError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
