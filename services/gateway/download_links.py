"""Signed, expiring links to a document's original upload (Dify's download URL): anyone holding one
may fetch that file without an API key until it expires, and nothing else. The link carries the
tenant, the document and the hash of the content it was made for, with an HMAC over them; a link
outlives no change of the document's content."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
import time
from dataclasses import dataclass

import orjson
import redis
from pydantic import SecretStr

from services.runtime.keys import RedisKeys


class InvalidLink(Exception):
    """Not a link this deployment signed, or expired."""


@dataclass(frozen=True)
class Grant:
    tenant_id: str
    document_id: str
    content_hash: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signing_key(configured: SecretStr | None, client: redis.Redis, keys: RedisKeys) -> bytes:
    """The configured key, else the deployment's own (made once, shared by its gateways)."""
    if configured is not None:
        return configured.get_secret_value().encode()
    client.set(keys.download_signing_key, secrets.token_hex(32), nx=True)
    return client.get(keys.download_signing_key)


class DownloadLinks:
    def __init__(self, key: bytes, seconds: int):
        self._key = key
        self._seconds = seconds

    def token(self, grant: Grant) -> str:
        payload = _b64(orjson.dumps({"t": grant.tenant_id, "d": grant.document_id, "h": grant.content_hash,
                                     "e": math.ceil(time.time() + self._seconds)}))  # valid at least that long
        return f"{payload}.{self._signature(payload)}"

    def verify(self, token: str) -> Grant:
        payload, _, signature = token.partition(".")
        if not hmac.compare_digest(signature, self._signature(payload)):
            raise InvalidLink("the link's signature does not match")
        fields = orjson.loads(_unb64(payload))
        if fields["e"] < time.time():
            raise InvalidLink("the link has expired")
        return Grant(fields["t"], fields["d"], fields["h"])

    def _signature(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())
