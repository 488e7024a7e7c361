"""Peer circles (issue 19): what a post, a key rotation and a page of posts cost the client and the server,
for circles of 20, 200 and 2,000 members with 2 devices each (one x25519, one xwing: a phone and a laptop).

Members, devices and memberships are written straight into their tables (one shared password hash, real
device keys), as bench/seed.py does; epochs and posts go through the API of a real server process, with
real encryption by app/crypto/circles.py. Requests are timed one at a time over loopback (latency, not
throughput: the machine is shared) and the server's own checks are also timed in process.

    python -m bench.circles_bench [--database-url URL] [--posts 30] [--rotations 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, insert

from app.client.api import b64, unb64
from app.client.circle_content import post_content_bytes
from app.config import Environment, Settings
from app.crypto.circles import (
    PostContext,
    PostHeader,
    SealedPost,
    check_epoch_upload,
    check_post_upload,
    new_epoch,
    open_post,
    seal_post,
)
from app.crypto.e2ee import DeviceKeys, Recipient, Suite, generate_device_keys
from app.crypto.passwords import PasswordHasher
from app.models.base import utcnow
from app.models.circles import (
    Circle,
    CircleMember,
    MemberRole,
    MembershipStatus,
)
from app.models.devices import Device
from app.models.users import Profession, User, UserStatus
from app.platform.keyring import load_server_keys
from bench import seed
from bench.fixtures import CLIENT_HEADERS
from bench.harness import running_server
from bench.run import server_env

ROTATION_SIZES = (20, 200, 2000)
POST_SIZES = (20, 2000)
SUITES = (Suite.X25519, Suite.XWING)
BODY = "Une famille en désaccord sur la fin de vie de leur père : comment l'avez-vous vécu ? " * 6


@dataclass
class SeededCircle:
    circle_id: str
    members: int
    author_email: str
    author_device_id: str
    author_keys: DeviceKeys
    recipients: dict[str, Recipient]
    suites: dict[str, Suite]


def seed_circle(engine: Engine, members: int, password_hash: str) -> SeededCircle:
    """A circle of `members` active nurses with one x25519 and one xwing device each; the first is its
    moderator and the author of everything below. No epoch yet (the first rotation makes epoch 1)."""
    now = utcnow()
    circle_id = uuid.uuid4()
    users, devices, memberships = [], [], []
    recipients: dict[str, Recipient] = {}
    author_keys: DeviceKeys | None = None
    author_device = author_email = ""
    for number in range(members):
        user_id, email = uuid.uuid4(), f"circle-{circle_id.hex[:8]}-{number}@bench.example"
        users.append(
            {
                "id": user_id,
                "email": email,
                "password_hash": password_hash,
                "display_name": f"Infirmière {number}",
                "profession": Profession.NURSE.value,
                "status": UserStatus.ACTIVE.value,
                "verified_at": now,
                "created_at": now,
                "updated_at": now,
            }
        )
        memberships.append(
            {
                "circle_id": circle_id,
                "user_id": user_id,
                "role": (MemberRole.MODERATOR if number == 0 else MemberRole.MEMBER).value,
                "status": MembershipStatus.ACTIVE.value,
                "joined_at": now,
                "joined_epoch": 1,
            }
        )
        for suite in SUITES:
            keys, device_id = generate_device_keys(suite), uuid.uuid4()
            devices.append(
                {
                    "id": device_id,
                    "user_id": user_id,
                    "suite": suite.value,
                    "signing_public_key": keys.signing_public,
                    "kem_public_key": keys.kem_public,
                    "label": "bench device",
                    "created_at": now,
                }
            )
            recipients[str(device_id)] = Recipient(suite, keys.kem_public)
            if number == 0 and suite is Suite.XWING:
                author_keys, author_device, author_email = keys, str(device_id), email
    with engine.begin() as connection:
        connection.execute(insert(User), users)
        connection.execute(insert(Device), devices)
        connection.execute(
            insert(Circle),
            [
                {
                    "id": circle_id,
                    "name": f"Circle of {members}",
                    "description": "bench",
                    "access": "invitation",
                    "current_epoch": 0,
                    "rotation_required": True,
                    "created_by": users[0]["id"],
                    "created_at": now,
                }
            ],
        )
        connection.execute(insert(CircleMember), memberships)
    assert author_keys is not None
    suites = {device_id: recipient.suite for device_id, recipient in recipients.items()}
    return SeededCircle(str(circle_id), members, author_email, author_device, author_keys, recipients, suites)


def _ms(function: Callable[[], Any], repeats: int) -> float:
    """Median wall time of `function` in milliseconds."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


class Author:
    """The circle's moderator, talking to the server over HTTP."""

    def __init__(self, url: str, circle: SeededCircle) -> None:
        self.circle = circle
        token = httpx.post(
            f"{url}/v1/auth/token",
            json={"email": circle.author_email, "password": seed.PASSWORD},
            headers=CLIENT_HEADERS,
        ).json()["access_token"]
        self.http = httpx.Client(
            base_url=f"{url}/v1/circles/{circle.circle_id}",
            headers={
                **CLIENT_HEADERS,
                "Authorization": f"Bearer {token}",
                "X-Confrere-Device": circle.author_device_id,
            },
            timeout=300,
        )
        self.epoch = 0
        self.epoch_key = b""

    def call(self, method: str, path: str, **kwargs: Any) -> tuple[float, Any]:
        started = time.perf_counter()
        response = self.http.request(method, path, **kwargs)
        elapsed = 1000 * (time.perf_counter() - started)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return elapsed, response.json()

    def rotate(self) -> dict[str, float]:
        circle = self.circle
        started = time.perf_counter()
        sealed = new_epoch(
            circle.circle_id, self.epoch + 1, circle.author_keys, circle.author_device_id, circle.recipients
        )
        client_ms = 1000 * (time.perf_counter() - started)
        body = {
            "statement": b64(sealed.statement),
            "signature": b64(sealed.signature),
            "wraps": {device_id: b64(wrap) for device_id, wrap in sealed.wraps.items()},
        }
        checks_ms = _ms(
            lambda: check_epoch_upload(
                sealed.statement,
                sealed.signature,
                sealed.wraps,
                circle.author_keys.signing_public,
                circle.suites,
            ),
            3,
        )
        server_ms, _ = self.call("POST", "/epochs", json=body)
        self.epoch, self.epoch_key = self.epoch + 1, sealed.epoch_key
        return {"client_ms": client_ms, "server_request_ms": server_ms, "server_checks_ms": checks_ms}

    def _sealed_post(self) -> SealedPost:
        post_id = str(uuid.uuid4())
        header = PostHeader(
            author=self.circle.author_device_id,
            author_kind="device",
            circle_id=self.circle.circle_id,
            epoch=self.epoch,
            kind="post",
            object_id=post_id,
            parent_id=post_id,
        )
        return seal_post(
            self.epoch_key, header, post_content_bytes(BODY, "Fin de vie"), self.circle.author_keys
        )

    def post(self, count: int) -> dict[str, float]:
        client_ms = _ms(self._sealed_post, max(count, 50))
        server_times, check_times = [], []
        for _ in range(count):
            sealed = self._sealed_post()
            check_times.append(
                _ms(
                    lambda sealed=sealed: check_post_upload(
                        sealed.header,
                        sealed.manifest,
                        sealed.signature,
                        hashlib.sha256(sealed.ciphertext).digest(),
                        len(sealed.ciphertext),
                        self.circle.author_keys.signing_public,
                    ),
                    1,
                )
            )
            body = {
                "header": b64(sealed.header),
                "manifest": b64(sealed.manifest),
                "signature": b64(sealed.signature),
                "ciphertext": b64(sealed.ciphertext),
            }
            server_times.append(self.call("POST", "/posts", json=body)[0])
        return {
            "client_seal_ms": client_ms,
            "server_request_ms": statistics.median(server_times),
            "server_checks_ms": statistics.median(check_times),
        }

    def page(self, repeats: int) -> dict[str, float]:
        times, page = [], None
        for _ in range(repeats):
            elapsed, page = self.call("GET", "/posts")
            times.append(elapsed)
        assert page is not None
        items = page["items"]
        signing_public = self.circle.author_keys.signing_public

        def open_page() -> None:
            for item in items:
                sealed = item["sealed"]
                open_post(
                    self.epoch_key,
                    unb64(sealed["header"]),
                    unb64(sealed["manifest"]),
                    unb64(sealed["signature"]),
                    unb64(sealed["ciphertext"]),
                    signing_public,
                    served=PostContext(self.circle.circle_id, item["id"], "post", item["id"], item["epoch"]),
                )

        return {
            "posts": len(items),
            "server_request_ms": statistics.median(times),
            "client_open_ms": _ms(open_page, 5),
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    parser.add_argument("--posts", type=int, default=30, help="posts timed per circle size")
    parser.add_argument("--rotations", type=int, default=3, help="rotations timed per circle size")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="circles-bench-"))
    settings = Settings(
        environment=Environment.DEVELOPMENT, data_dir=work / "data", database_url=args.database_url
    )
    seed.fresh_database(settings)
    engine = seed.seed_engine(settings)
    load_server_keys(
        settings, create_missing=True
    )  # the server refuses to make keys for a database with data
    password_hash = PasswordHasher().hash(seed.PASSWORD)
    started = time.perf_counter()
    circles = {size: seed_circle(engine, size, password_hash) for size in ROTATION_SIZES}
    print(f"seeded circles of {ROTATION_SIZES} members in {time.perf_counter() - started:.0f} s", flush=True)
    results: dict[str, Any] = {"load_average_before": os.getloadavg(), "rotation": {}, "post": {}, "page": {}}
    with running_server(server_env(settings), work / "server.log") as server:
        for size, circle in circles.items():
            author = Author(server.url, circle)
            rotations = [author.rotate() for _ in range(args.rotations)]
            results["rotation"][size] = {
                key: statistics.median(r[key] for r in rotations) for key in rotations[0]
            } | {"devices": len(circle.recipients)}
            print(f"rotation, {size} members: {results['rotation'][size]}", flush=True)
            if size in POST_SIZES:
                results["post"][size] = author.post(args.posts)
                print(f"post, {size} members: {results['post'][size]}", flush=True)
                results["page"][size] = author.page(10)
                print(f"page of posts, {size} members: {results['page'][size]}", flush=True)
    results["load_average_after"] = os.getloadavg()
    out = work / "results.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"load average before {results['load_average_before']}, after {results['load_average_after']}")
    print(f"results in {out}")


if __name__ == "__main__":
    main()
