"""Datasets as Dify's Knowledge API has them: created with a name and settings (id a UUID), or
made implicitly by the first document written to an id nobody created (the native API's way, the
id is the name). Kept in the state Redis: a dataset's settings are not a cache."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, Literal

import orjson
import redis
from pydantic import BaseModel, Field, ValidationError, field_validator

from schemas import OcrSpec
from services.gateway.errors import ApiError
from services.gateway.retrieval_model import RetrievalSettings
from services.projector import listing
from services.projector.listing import CHANGES_KEPT, LISTED
from services.runtime.keys import RedisKeys

log = logging.getLogger(__name__)

# A document's position in its dataset: the one it has, or the next one. Atomic, so two writers of
# the same dataset never hand out one position twice. A document's position, and when it was first
# written, are both given at its first write; if its state is already in the dataset's sorted sets
# (the projector may fold its first report before), it moves to its position there (KEYS from 4),
# a move its dataset's journal of listing changes (KEYS[3]) tells.
_POSITION = listing.LUA + """
local position = redis.call('HGET', KEYS[1], ARGV[1])
if position then return tonumber(position) end
position = redis.call('HINCRBY', KEYS[1], 'next', 1)
redis.call('HSET', KEYS[1], ARGV[1], position)
redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2])
local moved = 0
for i = 4, #KEYS do moved = moved + redis.call('ZADD', KEYS[i], 'XX', 'CH', position, ARGV[1]) end
if moved > 0 then journal(KEYS[3], ARGV[1], 'p', position) end
return position
"""


class MetadataField(BaseModel):
    """A metadata field of a dataset, as Dify declares them (documents' values live with each document)."""

    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    name: str = Field(min_length=1, max_length=128)
    type: Literal["string", "number", "time"]


# Dify's built-in fields, in its order.
BUILT_IN_FIELDS = (
    {"name": "document_name", "type": "string"}, {"name": "uploader", "type": "string"},
    {"name": "upload_date", "type": "time"}, {"name": "last_update_date", "type": "time"},
    {"name": "source", "type": "string"},
)


class DatasetRecord(BaseModel):
    id: str
    name: str
    description: str = ""
    indexing_technique: Literal["high_quality", "economy"] | None = None
    permission: Literal["only_me", "all_team_members", "partial_members"] = "only_me"
    embedding_model: str | None = None
    embedding_model_provider: str | None = None
    # Dify's fields as given (services/gateway/retrieval_model.py RetrievalSettings).
    retrieval_model: dict[str, Any] | None = None
    ocr: OcrSpec | None = None  # its documents' default; None: the deployment's
    created_at: int = Field(default_factory=lambda: int(time.time()))
    updated_at: int = Field(default_factory=lambda: int(time.time()))
    # Dify's chunk structure: the doc_form of its documents, as the first one's process rule made it.
    chunk_structure: Literal["text_model", "hierarchical_model"] | None = None
    metadata_fields: list[MetadataField] = Field(default_factory=list)
    built_in_field_enabled: bool = False
    implicit: bool = Field(default=False, description="made by a document written to it, not created")
    # Kept after a delete, so the dataset stays gone while its documents' deletes are under way.
    deleted_at: int | None = None


    @field_validator("retrieval_model", mode="before")
    @classmethod
    def _valid_settings(cls, given: Any) -> dict[str, Any] | None:
        """Settings stored unchecked by gateways of before are read as Dify's defaults (logged),
        so a bad one fails no route; those written now are valid already."""
        if given is None:
            return None
        try:
            return RetrievalSettings.model_validate(given).model_dump(mode="json")
        except ValidationError as exc:
            log.warning("a dataset's stored retrieval model is invalid, Dify's defaults apply: %s",
                        exc.errors(include_input=False)[:3])
            return None


class NameTaken(Exception):
    """Another dataset of the tenant has this name."""


class DatasetLimitReached(ApiError):
    """A new dataset past the tenant's limit: refused as Dify refuses what a plan's quota does not allow."""

    def __init__(self, limit: int):
        super().__init__(403, f"The workspace has {limit} datasets, the most it may have (its datasets limit: "
                              "`indexflow tenants set-limits --datasets`, by default "
                              "INDEXFLOW_GATEWAY_MAX_DATASETS_PER_TENANT); delete one to make another.",
                         limit="datasets")


class DatasetCatalog:
    def __init__(self, client: redis.Redis, keys: RedisKeys, max_datasets: Callable[[str], int] | None = None):
        self._redis = client
        self._keys = keys
        self._max_datasets = max_datasets  # tenant -> the most datasets it may have
        self._position = client.register_script(_POSITION)

    def create(self, tenant_id: str, **settings: Any) -> DatasetRecord:
        record = DatasetRecord(id=str(uuid.uuid4()), **settings)
        self._check_room(tenant_id)
        if not self._redis.hsetnx(self._keys.dataset_names(tenant_id), record.name, record.id):
            raise NameTaken(record.name)
        self._redis.hset(self._keys.datasets(tenant_id), record.id, record.model_dump_json())
        return record

    def ensure(self, tenant_id: str, dataset_id: str) -> None:
        """A document is written to ``dataset_id``: the dataset exists from now on (named as its id
        if nobody created it)."""
        if self.get(tenant_id, dataset_id) is None:
            self._check_room(tenant_id)
            implicit = DatasetRecord(id=dataset_id, name=dataset_id, implicit=True)
            self._redis.hset(self._keys.datasets(tenant_id), dataset_id, implicit.model_dump_json())

    def _check_room(self, tenant_id: str) -> None:
        """Counted as a dataset is made: concurrent ones may pass the bound by their number, not more."""
        limit = self._max_datasets(tenant_id) if self._max_datasets is not None else None
        if limit is not None and len(self.all(tenant_id)) >= limit:
            raise DatasetLimitReached(limit)

    def get(self, tenant_id: str, dataset_id: str) -> DatasetRecord | None:
        record = self.stored(tenant_id, dataset_id)
        return record if record is not None and record.deleted_at is None else None

    def stored(self, tenant_id: str, dataset_id: str) -> DatasetRecord | None:
        """The record, deleted ones included: None only for an id the tenant never used."""
        raw = self._redis.hget(self._keys.datasets(tenant_id), dataset_id)
        return _record(raw) if raw is not None else None

    def all(self, tenant_id: str) -> list[DatasetRecord]:
        """The tenant's datasets, newest first."""
        records = [_record(raw) for raw in self._redis.hvals(self._keys.datasets(tenant_id))]
        return sorted((r for r in records if r.deleted_at is None), key=lambda r: (r.created_at, r.id), reverse=True)

    def change(self, tenant_id: str, dataset_id: str, edit: Callable[[DatasetRecord], dict[str, Any]]) -> DatasetRecord:
        """Apply ``edit`` (the record -> the fields it changes) atomically: redone on the record as
        it is if another writer changed it meanwhile, so concurrent edits are never lost."""
        key = self._keys.datasets(tenant_id)
        with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.hget(key, dataset_id)
                    if raw is None:
                        raise KeyError(dataset_id)
                    record = _record(raw)
                    updated = record.model_copy(update={**edit(record), "updated_at": int(time.time())})
                    pipe.multi()
                    pipe.hset(key, dataset_id, updated.model_dump_json())
                    pipe.execute()
                    return updated
                except redis.WatchError:
                    continue

    def update(self, tenant_id: str, record: DatasetRecord, **changes: Any) -> DatasetRecord:
        updated = record.model_copy(update={**changes, "updated_at": int(time.time())})
        names = self._keys.dataset_names(tenant_id)
        if updated.name != record.name:
            if not self._redis.hsetnx(names, updated.name, record.id):
                raise NameTaken(updated.name)
            self._redis.hdel(names, record.name)
        self._redis.hset(self._keys.datasets(tenant_id), record.id, updated.model_dump_json())
        return updated

    def delete(self, tenant_id: str, record: DatasetRecord) -> None:
        gone = record.model_copy(update={"deleted_at": int(time.time())})
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._keys.datasets(tenant_id), record.id, gone.model_dump_json())
            if not record.implicit:
                pipe.hdel(self._keys.dataset_names(tenant_id), record.name)
            pipe.delete(self._keys.document_positions(tenant_id, record.id))
            pipe.delete(self._keys.document_created(tenant_id, record.id))
            pipe.execute()
        # Its documents have no positions now: in its sorted sets too (the same id may be used
        # again, its old documents then listed with its new ones as they are without positions).
        for ordered in self._ordered_keys(tenant_id, record.id):
            self._redis.zunionstore(ordered, {ordered: 0})  # every score times 0, in one command
        # Every position moved: a reader holding the listing reads it all again.
        self._redis.xadd(self._keys.dataset_listing_changes(tenant_id, record.id), {"r": 1},
                         maxlen=CHANGES_KEPT, approximate=True)

    def position(self, tenant_id: str, dataset_id: str, document_id: str) -> int:
        """The document's 1-based position in its dataset, given at its first write."""
        keys = [self._keys.document_positions(tenant_id, dataset_id),
                self._keys.document_created(tenant_id, dataset_id),
                self._keys.dataset_listing_changes(tenant_id, dataset_id), *self._ordered_keys(tenant_id, dataset_id)]
        return int(self._position(keys=keys, args=[document_id, int(time.time())]))

    def _ordered_keys(self, tenant_id: str, dataset_id: str) -> list[str]:
        """The dataset's sorted sets of documents, scored by their positions."""
        return [self._keys.dataset_live_documents(tenant_id, dataset_id),
                *(self._keys.dataset_listed_documents(tenant_id, dataset_id, listed) for listed in LISTED)]

    def positions_of(self, tenant_id: str, dataset_id: str, document_ids: list[str]) -> dict[str, int]:
        """The positions of these documents (0: none given)."""
        found = self._redis.hmget(self._keys.document_positions(tenant_id, dataset_id), document_ids) \
            if document_ids else []
        return {doc: int(position or 0) for doc, position in zip(document_ids, found)}

    def created(self, tenant_id: str, dataset_id: str, document_ids: list[str]) -> dict[str, int]:
        """When each document was first written (those given a position so far)."""
        if not document_ids:
            return {}
        found = self._redis.hmget(self._keys.document_created(tenant_id, dataset_id), document_ids)
        return {doc: int(when) for doc, when in zip(document_ids, found) if when is not None}

    def positions(self, tenant_id: str, dataset_id: str) -> dict[str, int]:
        stored = self._redis.hgetall(self._keys.document_positions(tenant_id, dataset_id))
        return {k.decode(): int(v) for k, v in stored.items() if k != b"next"}


def _record(raw: bytes) -> DatasetRecord:
    try:
        return DatasetRecord.model_validate_json(raw)
    except ValidationError:
        # Nested deeper than pydantic's JSON parser goes (a retrieval model of before, stored
        # unchecked): orjson reads deeper, and the record's own validators drop what is invalid.
        return DatasetRecord.model_validate(orjson.loads(raw))
