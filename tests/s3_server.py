"""A real S3-compatible server for the tests: moto's standalone server (moto[server]) as a process of its own
on a free loopback port. Tests that need it skip, saying why, when it cannot start."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.live_server import free_port

# Credentials the SDK reads from the environment (moto accepts any); the region of every bucket here.
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "confrere-test",
    "AWS_SECRET_ACCESS_KEY": "confrere-test",
    "AWS_REGION": "us-east-1",
}


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str

    def settings_env(self, bucket: str) -> dict[str, str]:
        """The environment of a node whose blobs are in `bucket` on this server."""
        return {
            **S3_ENV,
            "CONFRERE_BLOB_BACKEND": "s3",
            "CONFRERE_S3_BUCKET": bucket,
            "CONFRERE_S3_ENDPOINT_URL": self.endpoint_url,
            "CONFRERE_S3_PART_BYTES": str(5 * 1024 * 1024),
        }

    def new_bucket(self) -> str:
        import boto3

        bucket = f"confrere-{uuid.uuid4().hex[:12]}"
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=S3_ENV["AWS_REGION"],
            aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
        )
        client.create_bucket(Bucket=bucket)
        return bucket


@contextmanager
def s3_server(log_path: Path) -> Iterator[S3Server]:
    """Raises RuntimeError, with the server's last words, when it does not answer within 30 s."""
    port = free_port()
    command = [sys.executable, "-m", "moto.server", "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"moto server exited: {log_path.read_text()[-1000:]}")
            try:
                httpx.get(f"{url}/moto-api/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError("moto server did not answer within 30 s") from None
                time.sleep(0.1)
        yield S3Server(url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
