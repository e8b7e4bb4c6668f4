"""Where file bytes live: never in Kafka. Events carry a URI; ``file://`` under a local root for
the embedded default, ``s3://bucket/key`` on S3-compatible storage in production."""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlparse

from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas import DocumentUpserted, InlineSource
from services.runtime.errors import DependencyUnavailable, PermanentError
from services.runtime.settings import Settings

MAX_BLOB_BYTES = 512 * 1024 * 1024
COPY_CHUNK_BYTES = 2**20


class BlobSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INDEXFLOW_BLOB_", extra="ignore")

    #: file:// blobs are written and read only under this root (default: <state dir>/blobs).
    root: Path | None = None
    #: Set to store uploads on S3 instead (credentials: the usual AWS_* variables).
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:120] or "blob"


def _revision_of(relative: str) -> int:
    head = relative.split("/", 1)[0]
    return int(head) if head.isdigit() else -1


class BlobStore:
    def __init__(self, settings: Settings, blob_settings: BlobSettings | None = None):
        self.config = blob_settings or BlobSettings()
        self.root = (self.config.root or settings.state_dir / "blobs").resolve()
        self._s3_client = None

    def _s3(self):
        """One S3 client per store (thread-safe): building one costs far more than a small PUT."""
        if self._s3_client is None:
            import boto3

            self._s3_client = boto3.client("s3", endpoint_url=self.config.s3_endpoint_url)
        return self._s3_client

    def put(self, tenant: str, document: str, revision: int, filename: str, data: bytes | BinaryIO) -> str:
        """Store a document's file; a stream is copied a chunk at a time (never whole in memory)."""
        # Tenant and document are validated ids (no "/", no leading dot): used verbatim, so two
        # documents never share a folder.
        return self._put(f"{tenant}/{document}/{revision}/{_safe_name(filename)}", data)

    def delete_document(self, tenant: str, document: str, before_revision: int) -> None:
        """Remove a deleted document's blobs: every revision older than its delete. A newer
        revision (the document created again meanwhile) keeps its upload."""
        prefix = f"{tenant}/{document}/"
        if self.config.s3_bucket:
            s3 = self._s3()
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.config.s3_bucket, Prefix=prefix):
                keys = [
                    {"Key": item["Key"]} for item in page.get("Contents", [])
                    if _revision_of(item["Key"][len(prefix):]) < before_revision
                ]
                if keys:
                    s3.delete_objects(Bucket=self.config.s3_bucket, Delete={"Objects": keys})
            return
        folder = self.root / prefix
        for revision in folder.iterdir() if folder.is_dir() else ():
            if _revision_of(revision.name) < before_revision:
                shutil.rmtree(revision, ignore_errors=True)

    def put_dead_letter(self, topic: str, partition: int, offset: int, data: bytes) -> str:
        """Where a dead letter too large to travel inline keeps its original record."""
        return self._put(f"_dlq/{_safe_name(topic)}/{partition}/{offset}", data)

    def get_dead_letter(self, uri: str) -> bytes:
        """The original record a dead letter stored (only ever from the dead-letter folder)."""
        parsed = urlparse(uri)
        if parsed.scheme == "s3" and parsed.netloc == self.config.s3_bucket and parsed.path.startswith("/_dlq/"):
            return self._s3().get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"].read()
        if parsed.scheme == "file":
            path = Path(unquote(parsed.path)).resolve()
            if path.is_relative_to(self.root / "_dlq"):
                return path.read_bytes()
        raise PermanentError(f"{uri} is not a dead letter's stored record")

    def _put(self, relative: str, data: bytes | BinaryIO) -> str:
        data = io.BytesIO(data) if isinstance(data, bytes) else data
        if self.config.s3_bucket:
            self._s3().upload_fileobj(data, self.config.s3_bucket, relative)  # multipart for big files
            return f"s3://{self.config.s3_bucket}/{relative}"
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        # A partial file of this writer's own: two processes may write the same blob at once (the
        # gateway and the extractor both register an upsert), and the file's name is the blob's,
        # so a rename is atomic and the last writer's whole file is what stays.
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".partial",
                                         delete=False) as out:
            try:
                shutil.copyfileobj(data, out, COPY_CHUNK_BYTES)
            except BaseException:
                Path(out.name).unlink(missing_ok=True)
                raise
        os.replace(out.name, path)
        return path.as_uri()

    def get(self, uri: str, tenant: str) -> bytes:
        """The blob's bytes, if it is one of ``tenant``'s: a URI in an event is the producer's
        word, and must not reach the host's files or another tenant's uploads."""
        parsed = urlparse(uri)
        if parsed.scheme == "file":
            return self._checked_path(Path(unquote(parsed.path)), tenant).read_bytes()
        if parsed.scheme == "s3":
            return self._get_s3(parsed.netloc, parsed.path.lstrip("/"), tenant)
        raise PermanentError(f"unsupported blob URI scheme {parsed.scheme!r} (file:// or s3://)")

    def local_path(self, uri: str, tenant: str) -> Path | None:
        """The blob's own file, if it is one of ``tenant``'s on local storage (None on S3)."""
        parsed = urlparse(uri)
        return self._checked_path(Path(unquote(parsed.path)), tenant) if parsed.scheme == "file" else None

    def source_of(self, upsert: DocumentUpserted) -> bytes:
        """The bytes of an upsert's source: its inline text, or its blob."""
        source = upsert.source
        return source.text.encode() if isinstance(source, InlineSource) else self.get(source.uri, upsert.tenant_id)

    @contextmanager
    def local_file(self, uri: str, tenant: str, suffix: str = "") -> Iterator[Path]:
        """A local path holding the blob: the file itself for file://, a temporary copy otherwise."""
        parsed = urlparse(uri)
        if parsed.scheme == "file":
            yield self._checked_path(Path(unquote(parsed.path)), tenant)
            return
        with tempfile.NamedTemporaryFile(prefix="indexflow-", suffix=suffix) as file:
            file.write(self.get(uri, tenant))
            file.flush()
            yield Path(file.name)

    def _checked_path(self, path: Path, tenant: str) -> Path:
        resolved = path.resolve()
        if not resolved.is_relative_to(self.root):
            raise PermanentError(f"blob {path} is outside the blob root {self.root}")
        if not resolved.is_relative_to(self.root / tenant):
            raise PermanentError(f"blob {path} is not one of tenant {tenant}'s")
        try:
            size = resolved.stat().st_size
        except FileNotFoundError:
            raise PermanentError(f"blob {path} does not exist") from None
        if size > MAX_BLOB_BYTES:
            raise PermanentError(f"blob is {size} bytes, over the {MAX_BLOB_BYTES} limit")
        return resolved

    def _get_s3(self, bucket: str, key: str, tenant: str) -> bytes:
        import botocore.exceptions

        if bucket != self.config.s3_bucket:
            raise PermanentError(f"blob s3://{bucket}/{key} is outside the upload bucket {self.config.s3_bucket}")
        if not key.startswith(f"{tenant}/") or ".." in key.split("/"):
            raise PermanentError(f"blob s3://{bucket}/{key} is not one of tenant {tenant}'s")

        try:
            response = self._s3().get_object(Bucket=bucket, Key=key)
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "NoSuchBucket", "404", "AccessDenied", "403"):
                raise PermanentError(f"blob s3://{bucket}/{key}: {code}") from exc
            raise DependencyUnavailable(f"S3 error {code}") from exc
        except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionError) as exc:
            raise DependencyUnavailable(f"S3 unreachable: {exc}") from exc
        if response["ContentLength"] > MAX_BLOB_BYTES:
            raise PermanentError(f"blob is {response['ContentLength']} bytes, over the {MAX_BLOB_BYTES} limit")
        return response["Body"].read()
