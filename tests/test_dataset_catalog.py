"""Dataset records in the real Redis: edits from concurrent requests are never lost."""

from __future__ import annotations

import threading
import uuid

from services.gateway.datasets import DatasetCatalog, MetadataField
from services.runtime.keys import RedisKeys
from services.runtime.redis_client import redis_client
from services.runtime.settings import Settings


def test_concurrent_edits_of_one_dataset_all_land(stack_settings: Settings):
    keys = RedisKeys(f"{uuid.uuid4().hex}.")
    catalog = DatasetCatalog(redis_client(stack_settings), keys)
    dataset = catalog.create("t", name="Shared")

    def add_fields(prefix: str) -> None:
        own = DatasetCatalog(redis_client(stack_settings), keys)  # another gateway's client
        for n in range(25):
            field = MetadataField(name=f"{prefix}{n}", type="string")
            own.change("t", dataset.id, lambda now, field=field: {"metadata_fields": [*now.metadata_fields, field]})

    writers = [threading.Thread(target=add_fields, args=(p,)) for p in ("a", "b")]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert len(catalog.get("t", dataset.id).metadata_fields) == 50
