"""The knowledge tags of Dify's Knowledge API: each tenant's own (no tenant sees another's), bound to
its datasets. Kept in the state Redis, in two hashes per tenant: the tags, and the bindings
("dataset/tag"), so a dataset list reads every binding of the tenant in one call."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable

import redis
from pydantic import BaseModel, Field

from services.runtime.keys import RedisKeys

MAX_TAG_NAME_CHARS = 50  # Dify's

# A tag made only while the tenant has room for it and no tag of that name: atomic, so two makers
# never both pass the bound or take one name.
_CREATE = """
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return -1 end
for _, raw in ipairs(redis.call('HVALS', KEYS[1])) do
  if cjson.decode(raw)['name'] == ARGV[4] then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""
# A tag goes with its bindings.
_DELETE = """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
local suffix = '/' .. ARGV[1]
for _, field in ipairs(redis.call('HKEYS', KEYS[2])) do
  if string.sub(field, -string.len(suffix)) == suffix then redis.call('HDEL', KEYS[2], field) end
end
return 1
"""
# Bindings of tags that exist (checked in the same step, so none outlives its tag).
_BIND = """
for i = 2, #ARGV do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 0 then return ARGV[i] end
end
for i = 2, #ARGV do redis.call('HSET', KEYS[2], ARGV[1] .. '/' .. ARGV[i], 1) end
return ''
"""


class Tag(BaseModel):
    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    name: str = Field(min_length=1, max_length=MAX_TAG_NAME_CHARS)
    created_at: float = Field(default_factory=time.time)


class TagNameTaken(Exception):
    """The tenant has a tag of that name."""


class TagsFull(Exception):
    """The tenant has as many tags as it may."""


class UnknownTag(Exception):
    def __init__(self, tag_id: str):
        super().__init__(tag_id)
        self.tag_id = tag_id


class DatasetTags:
    def __init__(self, client: redis.Redis, keys: RedisKeys):
        self._redis = client
        self._keys = keys
        self._create = client.register_script(_CREATE)
        self._delete = client.register_script(_DELETE)
        self._bind = client.register_script(_BIND)

    def create(self, tenant_id: str, name: str, limit: int) -> Tag:
        tag = Tag(name=name)
        made = self._create(keys=[self._keys.dataset_tags(tenant_id)],
                            args=[tag.id, tag.model_dump_json(), limit, name])
        if made == -1:
            raise TagsFull()
        if made == 0:
            raise TagNameTaken(name)
        return tag

    def all(self, tenant_id: str) -> list[Tag]:
        """The tenant's tags, newest first (as Dify lists them)."""
        tags = [Tag.model_validate_json(raw) for raw in self._redis.hvals(self._keys.dataset_tags(tenant_id))]
        return sorted(tags, key=lambda t: (t.created_at, t.id), reverse=True)

    def count(self, tenant_id: str) -> int:
        return int(self._redis.hlen(self._keys.dataset_tags(tenant_id)))

    def rename(self, tenant_id: str, tag_id: str, name: str) -> Tag:
        """Redone on the tags as they are if another writer changed them meanwhile (WATCH)."""
        key = self._keys.dataset_tags(tenant_id)

        def renamed(pipe: redis.client.Pipeline) -> Tag:
            tags = {t.id: t for t in (Tag.model_validate_json(raw) for raw in pipe.hvals(key))}
            if tag_id not in tags:
                raise UnknownTag(tag_id)
            if any(t.name == name and t.id != tag_id for t in tags.values()):
                raise TagNameTaken(name)
            tag = tags[tag_id].model_copy(update={"name": name})
            pipe.multi()
            pipe.hset(key, tag_id, tag.model_dump_json())
            return tag

        return self._redis.transaction(renamed, key, value_from_callable=True)

    def delete(self, tenant_id: str, tag_id: str) -> None:
        keys = [self._keys.dataset_tags(tenant_id), self._keys.dataset_tag_bindings(tenant_id)]
        if not self._delete(keys=keys, args=[tag_id]):
            raise UnknownTag(tag_id)

    def bind(self, tenant_id: str, dataset_id: str, tag_ids: Iterable[str]) -> None:
        keys = [self._keys.dataset_tags(tenant_id), self._keys.dataset_tag_bindings(tenant_id)]
        missing = self._bind(keys=keys, args=[dataset_id, *dict.fromkeys(tag_ids)])
        if missing:
            raise UnknownTag(missing.decode() if isinstance(missing, bytes) else missing)

    def unbind(self, tenant_id: str, dataset_id: str, tag_ids: Iterable[str]) -> None:
        fields = [f"{dataset_id}/{tag_id}" for tag_id in tag_ids]
        if fields:
            self._redis.hdel(self._keys.dataset_tag_bindings(tenant_id), *fields)

    def forget_dataset(self, tenant_id: str, dataset_id: str) -> None:
        """A deleted dataset's bindings go with it."""
        self.unbind(tenant_id, dataset_id, self.bound(tenant_id).get(dataset_id, []))

    def bound(self, tenant_id: str) -> dict[str, list[str]]:
        """Dataset id -> the ids of the tags bound to it."""
        bound: dict[str, list[str]] = {}
        for field in self._redis.hkeys(self._keys.dataset_tag_bindings(tenant_id)):
            dataset_id, _, tag_id = field.decode().rpartition("/")
            bound.setdefault(dataset_id, []).append(tag_id)
        return bound
