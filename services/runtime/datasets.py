"""Which embedding model each dataset uses. A dataset takes the model of its first document (or
the deployment's default) and keeps it: later documents inherit it, and search embeds queries with
it. Separately, the indexer records every model a dataset actually has chunks of (documents from
producers other than the gateway may name another), so search covers them all."""

from __future__ import annotations

from collections import defaultdict

import redis

from services.runtime.keys import RedisKeys


class DatasetModels:
    def __init__(self, client: redis.Redis, keys: RedisKeys):
        self._redis = client
        self._keys = keys
        self._recorded: set[tuple[str, str, str]] = set()  # what this process wrote already

    def claim(self, tenant_id: str, dataset_id: str, model: str) -> str:
        """The dataset's model: the one it has, or ``model`` if it had none yet."""
        key = self._keys.dataset_models(tenant_id)
        with self._redis.pipeline(transaction=True) as pipe:  # MULTI: set-if-absent and read back as one
            pipe.hsetnx(key, dataset_id, model)
            pipe.hget(key, dataset_id)
            _, stored = pipe.execute()
        return stored.decode()

    def switch(self, tenant_id: str, dataset_id: str, model: str) -> None:
        """Documents of the dataset are embedded with ``model`` from now on."""
        self._redis.hset(self._keys.dataset_models(tenant_id), dataset_id, model)

    def configured(self, tenant_id: str, dataset_id: str) -> str | None:
        stored = self._redis.hget(self._keys.dataset_models(tenant_id), dataset_id)
        return stored.decode() if stored is not None else None

    def configured_many(self, tenant_id: str, dataset_ids: list[str]) -> dict[str, str | None]:
        """``configured`` of several datasets, in one round trip."""
        stored = self._redis.hmget(self._keys.dataset_models(tenant_id), dataset_ids) if dataset_ids else []
        return {dataset_id: model.decode() if model is not None else None
                for dataset_id, model in zip(dataset_ids, stored)}

    def record_indexed(self, tenant_id: str, dataset_id: str, model: str) -> None:
        if (tenant_id, dataset_id, model) not in self._recorded:
            self._redis.hsetnx(self._keys.dataset_indexed_models(tenant_id), f"{dataset_id}/{model}", 1)
            self._recorded.add((tenant_id, dataset_id, model))

    def indexed(self, tenant_id: str, dataset_id: str | None = None) -> dict[str, list[str]]:
        """Model -> the datasets (of ``dataset_id`` only, or all the tenant's) with chunks of it."""
        by_model: dict[str, list[str]] = defaultdict(list)
        for field in self._redis.hkeys(self._keys.dataset_indexed_models(tenant_id)):
            dataset, model = field.decode().split("/", 1)
            if dataset_id is None or dataset == dataset_id:
                by_model[model].append(dataset)
        return {model: sorted(datasets) for model, datasets in by_model.items()}
