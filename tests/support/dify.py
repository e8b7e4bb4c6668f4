"""Waiting on a Dify client, as Dify's own callers do."""

from __future__ import annotations

import time

from dify_dataset_sdk import DifyDatasetClient


def completed(client: DifyDatasetClient, dataset_id: str, batch: str, timeout: float = 120.0) -> list:
    """Poll the batch as a Dify client does until every document is completed."""
    deadline = time.monotonic() + timeout
    while True:
        items = client.documents.get_indexing_status(dataset_id, batch).data
        if items and all(item.indexing_status == "completed" for item in items):
            return items
        assert all(item.indexing_status != "error" for item in items), items
        assert time.monotonic() < deadline, f"batch {batch} not completed: {items}"
        time.sleep(0.3)
