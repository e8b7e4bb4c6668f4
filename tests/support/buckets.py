"""An S3-compatible server of a test's own: ``localbucket`` on a loopback port over a directory."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3

from deploy.probes import http_ready
from tests.conftest import free_port

ACCESS_KEY_ID = "sources-test"
SECRET_ACCESS_KEY = "sources-test-secret-5f1c"


@contextmanager
def local_bucket(directory: Path, bucket: str) -> Iterator[tuple[str, object]]:
    """The server's endpoint URL and a boto3 client of it, with ``bucket`` made."""
    port = free_port()
    (directory / bucket).mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen(
        [sys.executable, "-m", "localbucket", "--host", "127.0.0.1", "--port", str(port), str(directory)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while http_ready(f"{endpoint}/") is not None:
            assert time.monotonic() < deadline, "localbucket did not start"
            time.sleep(0.1)
        yield endpoint, boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                                     aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY)
    finally:
        server.terminate()
        server.wait()
