"""How a handler tells the consumer loop what a failure means."""

from __future__ import annotations

import elastic_transport
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


# Exceptions of client libraries that mean "the server is unreachable", not "the record is bad".
OUTAGES: tuple[type[Exception], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    elastic_transport.ConnectionError,
    elastic_transport.ConnectionTimeout,
)
