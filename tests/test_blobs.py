"""The blob store: file:// under its root only, and s3:// against a real S3-compatible server
(localbucket on loopback)."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from deploy.probes import http_ready
from services.runtime.blobs import BlobSettings, BlobStore
from services.runtime.errors import PermanentError
from services.runtime.settings import Settings
from tests.conftest import free_port


def test_local_blobs_round_trip_and_stay_under_their_root(tmp_path: Path):
    store = BlobStore(Settings(state_dir=tmp_path))
    uri = store.put("acme", "doc-1", 3, "../../etc/passwd", b"bytes")
    assert uri.startswith("file://") and "/acme/doc-1/3/" in uri
    assert store.get(uri, "acme") == b"bytes"
    with pytest.raises(PermanentError, match="outside the blob root"):
        store.get("file:///etc/hostname", "acme")
    with pytest.raises(PermanentError, match="not one of tenant mallory's"):
        store.get(uri, "mallory")  # another tenant's event naming acme's upload
    with pytest.raises(PermanentError, match="not one of tenant acm's"):
        store.get(uri, "acm")  # a tenant id that is a prefix of another's
    with pytest.raises(PermanentError, match="does not exist"):
        store.get(uri + "-missing", "acme")
    with pytest.raises(PermanentError, match="unsupported blob URI scheme"):
        store.get("http://example.invalid/x", "acme")


def test_the_same_blob_written_at_once_by_two_writers_is_whole_and_neither_fails(tmp_path: Path):
    # The gateway registers an upsert's inline text as a blob after Kafka acknowledged it, and the
    # extractor registers the same upsert as soon as it reads it: both write the same file.
    store = BlobStore(Settings(state_dir=tmp_path))
    data = bytes(range(256)) * 1024

    def write(_: int) -> str:
        return store.put("acme", "doc-1", 7, "inline.txt", data)

    with ThreadPoolExecutor(4) as pool:
        uris = set(pool.map(write, range(200)))
    [uri] = uris
    assert store.get(uri, "acme") == data
    assert [p.name for p in (tmp_path / "blobs" / "acme" / "doc-1" / "7").iterdir()] == ["inline.txt"]


def test_s3_blobs_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    port = free_port()
    (tmp_path / "uploads").mkdir()
    server = subprocess.Popen(
        [sys.executable, "-m", "localbucket", "--host", "127.0.0.1", "--port", str(port), str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while http_ready(f"http://127.0.0.1:{port}/") is not None:
            assert time.monotonic() < deadline, "localbucket did not start"
            time.sleep(0.1)
        for name, value in {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_DEFAULT_REGION": "us-east-1"}.items():
            monkeypatch.setenv(name, value)
        store = BlobStore(
            Settings(state_dir=tmp_path),
            BlobSettings(s3_bucket="uploads", s3_endpoint_url=f"http://127.0.0.1:{port}"),
        )
        uri = store.put("acme", "doc-1", 1, "report.pdf", b"%PDF-1.7 payload")
        assert uri == "s3://uploads/acme/doc-1/1/report.pdf"
        assert store.get(uri, "acme") == b"%PDF-1.7 payload"
        with pytest.raises(PermanentError, match="NoSuchKey"):
            store.get("s3://uploads/acme/none", "acme")
        with pytest.raises(PermanentError, match="not one of tenant mallory's"):
            store.get(uri, "mallory")
        with pytest.raises(PermanentError, match="outside the upload bucket"):
            store.get("s3://other-bucket/acme/doc-1/1/report.pdf", "acme")
    finally:
        server.terminate()
        server.wait()
