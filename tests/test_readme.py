"""The README's command blocks, run as written against a live server, as a newcomer would from a clone.

Each block marked `<!-- tested by tests/test_readme.py: NAME -->` runs in bash (`set -e`) from a folder
holding only a `.venv` link to this clone's, so `.venv/bin/confrere` resolves as in the README and files the
commands write stay out of the tree. Two substitutions only: the live server's URL for
http://127.0.0.1:8000, and a placeholder line `NAME='<...>'` gets what the reader would paste (here read
from the demo's own output).
"""

from __future__ import annotations

import re
import subprocess
import time

import pytest

from app.client.api import ConfrereApi
from app.client.clinician import Clinician
from app.crypto import totp
from tests.live_server import ROOT, live_server, settings_env

pytestmark = pytest.mark.slow

README_URL = "http://127.0.0.1:8000"
MARKER = re.compile(r"<!-- tested by tests/test_readme\.py: (\w+) -->\n```sh\n(.*?)```", re.DOTALL)
PLACEHOLDER = re.compile(r"^(\w+)='<[^>]*>'$", re.MULTILINE)
DEMO_PASSWORD = "confrere demo password"


def readme_blocks() -> dict[str, str]:
    return {name: body for name, body in MARKER.findall((ROOT / "README.md").read_text())}


def run_block(block: str, cwd, env, url: str, values: dict[str, str] | None = None) -> str:
    script = block.replace(README_URL, url)
    for name, value in (values or {}).items():
        script, count = re.subn(rf"^{name}='<[^>]*>'$", f"{name}='{value}'", script, flags=re.MULTILINE)
        assert count == 1, f"no placeholder {name} in the block"
    assert not PLACEHOLDER.search(script), "a placeholder was left unfilled"
    result = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, (
        f"README block failed:\n{script}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    return result.stdout


def test_the_readme_marks_its_runnable_blocks():
    assert set(readme_blocks()) == {"demo", "cli", "audit"}


def _wait_past_step(step: int) -> None:
    """A TOTP code is accepted once: wait until the demo's last code is no longer the current one."""
    while int(time.time()) // totp.STEP_SECONDS <= step:
        time.sleep(1)


def test_readme_commands_work_as_written(app, settings, tmp_path):
    """`app`: the suite's database is emptied afterwards of what the commands created."""
    blocks = readme_blocks()
    reader = tmp_path / "reader"
    reader.mkdir()
    (reader / ".venv").symlink_to(ROOT / ".venv")
    env = settings_env(settings) | {"CONFRERE_CLIENT_HOME": str(tmp_path / "client-home")}
    env.pop("CONFRERE_PASSWORD", None)
    with live_server(settings, tmp_path / "server.log") as server:
        first = run_block(blocks["demo"], reader, env, server.url)
        assert "9. Physician closed the case" in first

        # A browser registers a device for the demo physician: a rerun must leave it alone.
        browser = ConfrereApi(server.url)
        browser.login("demo.physician@confrere.local", DEMO_PASSWORD)
        browser_device = Clinician.enrol_device(browser, "x25519", "a browser").device_id

        second = run_block(blocks["demo"], reader, env, server.url)
        assert "9. Physician closed the case" in second
        assert [d["revoked_at"] for d in browser.devices() if d["id"] == browser_device] == [None]
        active_demo_devices = [
            d for d in browser.devices() if d["revoked_at"] is None and d["id"] != browser_device
        ]
        assert len(active_demo_devices) == 1, "the demo revokes the device it registered before"
        for account in ("demo.physician@confrere.local", "demo.dermatologist@confrere.local"):
            assert account in second
        assert f"password: '{DEMO_PASSWORD}'" in second
        otpauth = re.search(r"otpauth://totp/\S+", second).group(0)

        cli = run_block(blocks["cli"], reader, env, server.url)
        assert "answered" in cli
        assert "case.report_available" in cli
        assert (reader / "out" / "lesion.jpg").read_bytes() == b"a photo"

        state = (tmp_path / "client-home" / "demo-state.json").read_text()
        _wait_past_step(
            max(int(step) for step in re.findall(r'"demo\.compliance@confrere\.local": (\d+)', state))
        )
        audit = run_block(blocks["audit"], reader, env, server.url, {"OFFICER_TOTP": otpauth})
        assert "records verified (range" in audit
        assert "consistent with previous checkpoints of size" in audit
        assert (reader / "audit-2.zip.checkpoint").exists()
