"""Dify's document status: a disabled or archived document stays indexed and listed but is left
out of every search, until it is enabled or unarchived again. Kept in the state Redis."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Literal

import redis
from pydantic import BaseModel

from services.projector.store import StateStore
from services.runtime.keys import RedisKeys

Action = Literal["enable", "disable", "archive", "un_archive"]


class Visibility(BaseModel):
    enabled: bool = True
    archived: bool = False
    disabled_at: int | None = None
    archived_at: int | None = None

    @property
    def hidden(self) -> bool:
        return not self.enabled or self.archived

    def after(self, action: Action) -> Visibility:
        now = int(time.time())
        changes = {
            "enable": {"enabled": True, "disabled_at": None},
            "disable": {"enabled": False, "disabled_at": self.disabled_at or now},
            "archive": {"archived": True, "archived_at": self.archived_at or now},
            "un_archive": {"archived": False, "archived_at": None},
        }[action]
        return self.model_copy(update=changes)


class DocumentVisibility:
    def __init__(self, client: redis.Redis, keys: RedisKeys, states: StateStore):
        self._redis = client
        self._keys = keys
        self._states = states

    def of(self, tenant_id: str, document_ids: Iterable[str]) -> dict[str, Visibility]:
        """Every document's visibility (the default, visible, for those never changed)."""
        ids = list(document_ids)
        stored = self._redis.hmget(self._keys.document_visibility(tenant_id), ids) if ids else []
        return {i: Visibility.model_validate_json(raw) if raw else Visibility() for i, raw in zip(ids, stored)}

    def apply(self, tenant_id: str, dataset_id: str, document_id: str, action: Action) -> None:
        changed = self.of(tenant_id, [document_id])[document_id].after(action)
        key = self._keys.document_visibility(tenant_id)
        if changed == Visibility():
            self._redis.hdel(key, document_id)  # visible again: nothing to keep
        else:
            self._redis.hset(key, document_id, changed.model_dump_json())
        # Displayed as disabled, archived or available now. The projector lists a document by
        # the visibility it reads as it writes, so whichever of the two comes last lists it right.
        self._states.relist(tenant_id, dataset_id, document_id)

    def hidden(self, tenant_id: str) -> list[str]:
        """The tenant's documents search must leave out."""
        stored = self._redis.hgetall(self._keys.document_visibility(tenant_id))
        return sorted(k.decode() for k, raw in stored.items() if Visibility.model_validate_json(raw).hidden)
