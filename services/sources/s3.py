"""A bucket (and prefix) on any S3-compatible store: the listing pages through ListObjectsV2, an
object's ETag is its fingerprint, a key gone is a delete. Folder markers (keys ending in "/") are
no items."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from services.sources.definitions import S3Config
from services.sources.kinds import Content, ItemUnavailable, Known, Listed, SourceUnavailable


class S3Source:
    def __init__(self, config: S3Config, max_bytes: int, timeout: float):
        self.config = config
        self.max_bytes = max_bytes
        secret = config.secret_access_key.get_secret_value() if config.secret_access_key else None
        # Without credentials in the configuration, boto3's own chain (environment, instance role).
        self.client = boto3.client(
            "s3", endpoint_url=config.endpoint_url, region_name=config.region,
            aws_access_key_id=config.access_key_id, aws_secret_access_key=secret,
            config=Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 3}),
        )
        self._sizes: dict[str, int] = {}

    def listing(self, known: Mapping[str, Known]) -> Iterator[Listed]:
        bucket = self.config.bucket
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=self.config.prefix, PaginationConfig={"PageSize": self.config.page_size})
        try:
            for page in pages:
                for entry in page.get("Contents", []):
                    key = entry["Key"]
                    if key.endswith("/"):
                        continue
                    self._sizes[key] = entry["Size"]
                    yield Listed(key, f"s3://{bucket}/{key}", key.rsplit("/", 1)[-1] or key, f"etag:{entry['ETag']}")
        except (BotoCoreError, ClientError) as exc:
            raise SourceUnavailable(f"listing s3://{bucket}/{self.config.prefix}: {exc}") from None

    def fetch(self, item: Listed) -> Content:
        size = self._sizes.get(item.item_id, 0)
        if size > self.max_bytes:
            raise ItemUnavailable(f"{size:,} bytes, over the {self.max_bytes:,} byte item limit")
        try:
            answer = self.client.get_object(Bucket=self.config.bucket, Key=item.item_id)
            data = answer["Body"].read()
        except (BotoCoreError, ClientError) as exc:
            raise ItemUnavailable(str(exc)) from None
        mime = answer.get("ContentType")
        return Content(name=item.name, data=data, mime_type=None if mime == "binary/octet-stream" else mime)
