"""How a handler tells the consumer loop what a failure means."""

from __future__ import annotations

import re

import elastic_transport
import elasticsearch
import redis


class PermanentError(Exception):
    """The record itself is bad (unsupported, corrupt, empty...): retrying cannot help.

    The loop dead-letters the record at once and the document ends in ``error`` with this message.
    """


class DependencyUnavailable(Exception):
    """A server the stage needs is down or overloaded. Not the record's fault: the loop backs off
    and retries the whole uncommitted batch for as long as it takes, never dead-lettering it."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


# Exceptions of client libraries that mean "the server is unreachable, overloaded, or not ready",
# not "the record is bad".
OUTAGE_ERRORS: tuple[type[Exception], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.BusyLoadingError,  # restarting, still loading its data
    redis.exceptions.ReadOnlyError,  # a replica, or a primary that lost its disk
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    elastic_transport.ConnectionError,
    elastic_transport.ConnectionTimeout,
)
# 401/403 too: a refused credential or privilege, or a write block (cluster_block_exception),
# refuses every record alike until an operator acts.
_OUTAGE_HTTP_STATUSES = frozenset({401, 403, 408, 429, 502, 503, 504})
# A new index refused for want of shards (cluster.max_shards_per_node): the cluster's state too.
_NO_SHARDS_LEFT = re.compile(r"maximum (\w+ )?shards open")


def elasticsearch_outage(status: object, error: object) -> bool:
    """Whether Elasticsearch refusing a request, or one item of a bulk request, with ``status`` and
    ``error`` (its answer) is an outage rather than the record's fault."""
    return status in _OUTAGE_HTTP_STATUSES or (status == 400 and bool(_NO_SHARDS_LEFT.search(str(error))))


def as_outage(error: BaseException) -> DependencyUnavailable | None:
    """The outage ``error`` stands for, or None when it is something else."""
    if isinstance(error, DependencyUnavailable):
        return error
    if isinstance(error, elasticsearch.ApiError) and elasticsearch_outage(error.meta.status, error.body):
        return DependencyUnavailable(f"Elasticsearch answered {error.meta.status}: {error.message}")
    if isinstance(error, OUTAGE_ERRORS):
        return DependencyUnavailable(f"{type(error).__name__}: {error}")
    return None
