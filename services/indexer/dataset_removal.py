"""A deleted dataset leaves no index: its indices go once the last of its documents' deletes has
removed that document's chunks. (Chunks of a dataset in its tenant's shared index go by id with
each document's delete; the index stays for the tenant's other datasets.)

The gateway names the documents it deletes before it publishes their deletes (a set in the state
Redis, with "" in it until the indices are gone); the indexer takes each out as it removes that
document's chunks, and the one that leaves only "" deletes the indices and frees the dataset's
share of the index budget. Redelivered deletes find "" alone again and delete nothing more, so a
crash between the last delete and the index's removal is made good by the replay."""

from __future__ import annotations

from collections.abc import Iterable

import redis
from elasticsearch import Elasticsearch

from services.indexer.mapping import index_name
from services.indexer.placement import IndexPlacements
from services.runtime.datasets import DatasetModels
from services.runtime.keys import RedisKeys

_UNTIL_REMOVED = ""  # document ids are never empty


class DatasetRemoval:
    def __init__(self, es: Elasticsearch, client: redis.Redis, keys: RedisKeys, prefix: str,
                 placements: IndexPlacements, models: DatasetModels):
        self._es = es
        self._redis = client
        self._keys = keys
        self._prefix = prefix
        self._placements = placements
        self._models = models

    def expect(self, tenant_id: str, dataset_id: str, document_ids: Iterable[str]) -> None:
        """The dataset is deleted and these documents' deletes are about to be published."""
        documents = list(document_ids)
        if not documents:
            self._remove(tenant_id, dataset_id)
            return
        self._redis.sadd(self._keys.dataset_removal(tenant_id, dataset_id), _UNTIL_REMOVED, *documents)

    def document_deleted(self, tenant_id: str, dataset_id: str, document_id: str) -> None:
        """The indexer removed the chunks of a deleted document."""
        key = self._keys.dataset_removal(tenant_id, dataset_id)
        with self._redis.pipeline(transaction=True) as pipe:  # MULTI: one indexer alone sees the last one go
            pipe.srem(key, document_id)
            pipe.smembers(key)
            _, waiting = pipe.execute()
        if waiting == {_UNTIL_REMOVED.encode()}:
            self._remove(tenant_id, dataset_id)
            self._redis.delete(key)

    def _remove(self, tenant_id: str, dataset_id: str) -> None:
        if self._placements.of(tenant_id, dataset_id).own:
            models = [*self._models.indexed(tenant_id, dataset_id), None]
            names = ",".join(index_name(self._prefix, model, (tenant_id, dataset_id)) for model in models)
            # By name: Elasticsearch 8 refuses to delete indices by wildcard (action.destructive_requires_name).
            self._es.indices.delete(index=names, ignore_unavailable=True, allow_no_indices=True)
        self._placements.release(tenant_id, dataset_id)
