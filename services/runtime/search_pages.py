"""Every hit of a query, however many. One Elasticsearch search returns at most
``index.max_result_window`` hits (10,000), silently fewer than there are: past that, results are
read in pages of one point in time, each page after the last hit of the one before (PIT +
``search_after``). The sort must order the hits totally; Elasticsearch breaks ties within a point
in time by ``_shard_doc`` on its own."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from elasticsearch import Elasticsearch, NotFoundError

PAGE_SIZE = 10_000  # the most one search may return
_KEEP_ALIVE = "1m"  # between two pages


def all_hits(
    es: Elasticsearch, index: str, query: dict[str, Any], sort: Sequence[Any], source: Sequence[str] | bool,
    page_size: int = PAGE_SIZE,
) -> list[dict[str, Any]]:
    """Every hit of ``query`` on ``index`` (a name, list or pattern; none matching: no hits), in ``sort`` order."""
    try:
        pit = es.open_point_in_time(index=index, keep_alive=_KEEP_ALIVE, ignore_unavailable=True)["id"]
    except NotFoundError:
        return []
    hits: list[dict[str, Any]] = []
    after: dict[str, Any] = {}
    try:
        while True:
            response = es.search(pit={"id": pit, "keep_alive": _KEEP_ALIVE}, query=query, sort=list(sort),
                                 size=page_size, source=source, track_total_hits=False, **after)
            pit = response.get("pit_id", pit)  # Elasticsearch may hand back a new id for the next page
            page = response["hits"]["hits"]
            hits += page
            if len(page) < page_size:
                return hits
            after = {"search_after": page[-1]["sort"]}
    finally:
        es.options(ignore_status=404).close_point_in_time(id=pit)
