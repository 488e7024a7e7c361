"""A thin, typed-enough httpx wrapper over the Confrere HTTP API: one method per operation, no crypto.

Errors come back as `ApiError` carrying the problem+json `code`, so callers branch on stable codes.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

import httpx

CLIENT_NAME = "confrere-python/1"
LOG_KEY_HEADER = "X-Confrere-Log-Key"
DIRECTORY_CHECKPOINT_HEADER = "X-Confrere-Directory-Checkpoint"
# The server sends a heartbeat every 15 s by default: a minute of silence means a dead connection.
EVENT_STREAM_TIMEOUT = httpx.Timeout(30, read=60)
RECONNECT_SECONDS = 3.0


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str | None):
        super().__init__(f"{status} {code}: {detail}" if detail else f"{status} {code}")
        self.status = status
        self.code = code
        self.detail = detail


class ConfrereApi:
    def __init__(self, base_url: str, *, transport: httpx.BaseTransport | None = None, timeout: float = 30):
        self._http = httpx.Client(
            base_url=base_url,
            transport=transport,
            timeout=timeout,
            headers={"X-Confrere-Client": CLIENT_NAME},
        )
        self.access_token: str | None = None
        self.refresh_token: str | None = None
        self.device_id: str | None = None

    def close(self) -> None:
        self._http.close()

    # -- plumbing ----------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {}
        if self.access_token:
            headers["Authorization"] = f"Bearer {self.access_token}"
        if self.device_id:
            headers["X-Confrere-Device"] = self.device_id
        return headers

    def request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        response = self._http.request(method, path, headers=self._headers() | (headers or {}), **kwargs)
        if response.status_code == 401 and self.refresh_token and not path.startswith("/v1/auth/"):
            self.refresh()
            response = self._http.request(method, path, headers=self._headers() | (headers or {}), **kwargs)
        if response.status_code >= 400:
            raise _error(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return response.json() if response.content else None

    # -- auth --------------------------------------------------------------------------------------

    def register(self, **body: Any) -> dict:
        return self.json("POST", "/v1/auth/register", json=body)

    def login(self, email: str, password: str, totp_code: str | None = None) -> dict:
        body = {"email": email, "password": password} | ({"totp_code": totp_code} if totp_code else {})
        tokens = self.json("POST", "/v1/auth/token", json=body)
        self.access_token, self.refresh_token = tokens["access_token"], tokens["refresh_token"]
        return tokens

    def refresh(self) -> None:
        response = self._http.post("/v1/auth/refresh", json={"refresh_token": self.refresh_token})
        if response.status_code != 200:
            self.access_token = self.refresh_token = None
            raise _error(response)
        tokens = response.json()
        self.access_token, self.refresh_token = tokens["access_token"], tokens["refresh_token"]

    def logout(self) -> None:
        self.json("POST", "/v1/auth/logout")
        self.access_token = self.refresh_token = None

    def me(self) -> dict:
        return self.json("GET", "/v1/me")

    # -- devices and directory ---------------------------------------------------------------------

    def device_challenge(self, **body: Any) -> dict:
        return self.json("POST", "/v1/devices/challenge", json=body)

    def register_device(self, **body: Any) -> dict:
        return self.json("POST", "/v1/devices", json=body)

    def devices(self) -> list[dict]:
        return self.json("GET", "/v1/devices")

    def proved_devices(self) -> tuple[list[dict], str]:
        """The caller's devices and the directory checkpoint their proofs lead to."""
        response = self.request("GET", "/v1/devices")
        return response.json(), base64.b64decode(response.headers[DIRECTORY_CHECKPOINT_HEADER]).decode()

    def specialty_recipients(self, code: str) -> dict:
        """{specialty, checkpoint, devices}: each device with its directory proof."""
        return self.json("GET", f"/v1/specialties/{code}/recipients")

    def user_devices(self, user_id: str) -> dict:
        """{user_id, checkpoint, devices}: each device with its directory proof."""
        return self.json("GET", f"/v1/users/{user_id}/devices")

    # -- the device directory log (public) ---------------------------------------------------------

    def directory_key(self) -> str:
        return self.request("GET", "/v1/directory/checkpoint").headers[LOG_KEY_HEADER]

    def directory_checkpoint(self) -> bytes:
        return self.request("GET", "/v1/directory/checkpoint").content

    def directory_consistency(self, first: int, second: int) -> dict:
        return self.json("GET", "/v1/directory/proof/consistency", params={"first": first, "second": second})

    def directory_tile(self, path: str) -> bytes:
        return self.request("GET", f"/v1/directory/log/{path}").content

    def put_key_backup(self, blob: bytes) -> None:
        self.json("PUT", "/v1/me/key-backup", json={"blob": b64(blob)})

    def key_backup(self) -> bytes:
        return unb64(self.json("GET", "/v1/me/key-backup")["blob"])

    # -- cases -------------------------------------------------------------------------------------

    def create_case(self, **body: Any) -> dict:
        return self.json("POST", "/v1/cases", json=body)

    def case(self, case_id: str) -> dict:
        return self.json("GET", f"/v1/cases/{case_id}")

    def cases(self, **params: Any) -> Iterator[dict]:
        yield from self._pages("/v1/cases", params)

    def queue(self, **params: Any) -> Iterator[dict]:
        yield from self._pages("/v1/cases/queue", params)

    def transition(self, case_id: str, action: str, **extra: Any) -> dict:
        return self.json("POST", f"/v1/cases/{case_id}/transitions", json={"action": action, **extra})

    def messages(self, case_id: str) -> Iterator[dict]:
        yield from self._pages(f"/v1/cases/{case_id}/messages", {})

    def post_message(self, case_id: str, **body: Any) -> dict:
        return self.json("POST", f"/v1/cases/{case_id}/messages", json=body)

    def share(self, case_id: str, **body: Any) -> dict:
        return self.json("POST", f"/v1/cases/{case_id}/envelopes", json=body)

    def upload_attachment(self, case_id: str, meta: dict, ciphertext: BinaryIO | bytes) -> dict:
        files = {"ciphertext": ("ciphertext.bin", ciphertext, "application/octet-stream")}
        return self.json(
            "POST", f"/v1/cases/{case_id}/attachments", data={"meta": json.dumps(meta)}, files=files
        )

    def download_attachment(self, case_id: str, attachment_id: str) -> bytes:
        return self.request("GET", f"/v1/cases/{case_id}/attachments/{attachment_id}").content

    # -- circles (docs/circles.md) ------------------------------------------------------------------

    def create_circle(self, **body: Any) -> dict:
        return self.json("POST", "/v1/circles", json=body)

    def circles(self, **params: Any) -> Iterator[dict]:
        yield from self._pages("/v1/circles", params)

    def circle(self, circle_id: str) -> dict:
        return self.json("GET", f"/v1/circles/{circle_id}")

    def circle_members(self, circle_id: str) -> list[dict]:
        return self.json("GET", f"/v1/circles/{circle_id}/members")["members"]

    def circle_recipients(self, circle_id: str) -> dict:
        """{checkpoint, devices}: every active device of every member, each with its directory proof."""
        return self.json("GET", f"/v1/circles/{circle_id}/recipients")

    def circle_action(self, circle_id: str, action: str, **body: Any) -> dict:
        """POST /v1/circles/{id}/{action}: join, leave, invitations, epochs, pseudonym, posts, sessions."""
        return self.json("POST", f"/v1/circles/{circle_id}/{action}", json=body)

    def remove_circle_member(self, circle_id: str, user_id: str) -> None:
        self.json("DELETE", f"/v1/circles/{circle_id}/members/{user_id}")

    def set_circle_role(self, circle_id: str, user_id: str, role: str) -> dict:
        return self.json("PUT", f"/v1/circles/{circle_id}/members/{user_id}/role", json={"role": role})

    def circle_epochs(self, circle_id: str) -> dict:
        """{device_id, current_epoch, rotation_required, epochs}: the epochs this device holds a wrap for."""
        return self.json("GET", f"/v1/circles/{circle_id}/epochs")

    def circle_pseudonyms(self, circle_id: str) -> list[dict]:
        return self.json("GET", f"/v1/circles/{circle_id}/pseudonyms")["pseudonyms"]

    def circle_posts(self, circle_id: str, **params: Any) -> dict:
        """One page of top-level posts, newest first: {items, next_cursor}."""
        query = {key: value for key, value in params.items() if value is not None}
        return self.json("GET", f"/v1/circles/{circle_id}/posts", params=query)

    def circle_thread(self, circle_id: str, post_id: str) -> dict:
        return self.json("GET", f"/v1/circles/{circle_id}/posts/{post_id}")

    def circle_post_action(self, circle_id: str, post_id: str, action: str, **body: Any) -> dict:
        """POST /v1/circles/{id}/posts/{post_id}/{action}: hide, reports."""
        return self.json("POST", f"/v1/circles/{circle_id}/posts/{post_id}/{action}", json=body)

    def circle_reaction(self, circle_id: str, post_id: str, kind: str, *, on: bool) -> None:
        self.json("PUT" if on else "DELETE", f"/v1/circles/{circle_id}/posts/{post_id}/reactions/{kind}")

    def circle_reports(self, circle_id: str) -> list[dict]:
        return self.json("GET", f"/v1/circles/{circle_id}/reports")["reports"]

    def circle_session(self, circle_id: str, session_id: str) -> dict:
        return self.json("GET", f"/v1/circles/{circle_id}/sessions/{session_id}")

    def move_circle_session(self, circle_id: str, session_id: str, round_name: str) -> dict:
        return self.json(
            "POST", f"/v1/circles/{circle_id}/sessions/{session_id}/rounds", json={"round": round_name}
        )

    def events(self, last_event_id: int | None = None, *, reconnect: bool = True) -> Iterator[dict]:
        """Follows GET /v1/events (Server-Sent Events) and yields each event's JSON, `stream.gap` included
        (events were purged or the id is unknown: reload your lists). The server ends a stream after a few
        minutes; this reconnects with Last-Event-ID (refreshing the token if needed) unless `reconnect` is
        false, in which case it returns when the stream ends."""
        while True:
            headers = self._headers() | {"Accept": "text/event-stream"}
            if last_event_id is not None:
                headers["Last-Event-ID"] = str(last_event_id)
            try:
                with self._http.stream(
                    "GET", "/v1/events", headers=headers, timeout=EVENT_STREAM_TIMEOUT
                ) as response:
                    if response.status_code == 401 and self.refresh_token:
                        self.refresh()
                        continue
                    if response.status_code >= 400:
                        response.read()
                        raise _error(response)
                    for fields in sse_blocks(response.iter_lines()):
                        if "id" in fields:
                            last_event_id = int(fields["id"])
                        if "data" in fields:
                            yield json.loads(fields["data"])
            except httpx.TransportError:
                if not reconnect:
                    raise
                time.sleep(RECONNECT_SECONDS)
            if not reconnect:
                return

    def event_page(self, last_event_id: int | None, limit: int = 100) -> dict:
        """One JSON page of the events after `last_event_id` (None: from now), without streaming."""
        headers = {} if last_event_id is None else {"Last-Event-ID": str(last_event_id)}
        return self.json("GET", "/v1/events", params={"limit": limit}, headers=headers)

    def create_audit_export(self, **body: Any) -> dict:
        return self.json("POST", "/v1/audit/exports", json=body)

    def download(self, path: str, target: BinaryIO) -> None:
        """Streams a download (an export bundle) into `target`."""
        with self._http.stream("GET", path, headers=self._headers()) as response:
            if response.status_code >= 400:
                response.read()
                raise _error(response)
            for chunk in response.iter_bytes():
                target.write(chunk)

    def audit_events(self, **params: Any) -> Iterator[dict]:
        yield from self._pages("/v1/audit/events", params)

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[dict]:
        cursor = None
        while True:
            query = {key: value for key, value in params.items() if value is not None}
            page = self.json("GET", path, params=query | ({"cursor": cursor} if cursor else {}))
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return


def sse_blocks(lines: Iterable[str]) -> Iterator[dict[str, str]]:
    """Server-Sent Events blocks as {field: value}, comments dropped (the WHATWG parsing rules, simplified
    to what Confrere sends: one `data:` line per event)."""
    fields: dict[str, str] = {}
    for line in lines:
        if not line:
            if fields:
                yield fields
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


def _error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        return ApiError(response.status_code, "http_error", response.text[:200])
    return ApiError(response.status_code, body.get("code", "http_error"), body.get("detail"))
