"""State keys written before the namespace became a hash tag (``indexflow.states`` before,
``{indexflow.}states`` now: services/runtime/keys.py) renamed to their tagged names, once, on the
standalone state Redis of an existing deployment, before its services are upgraded."""

from __future__ import annotations

import redis

from services.runtime.keys import RedisKeys


def tag_keys(client: redis.Redis, keys: RedisKeys) -> tuple[int, int]:
    """(renamed, left) for the untagged keys of the namespace; a key whose tagged name exists
    already (written by an upgraded service) is left as it is, for an operator to look at."""
    pattern = "".join(f"\\{c}" if c in "*?[]\\" else c for c in keys.namespace) + "*"
    renamed = left = 0
    for old in client.scan_iter(match=pattern, count=1000):
        name = old.decode()[len(keys.namespace):]
        if client.renamenx(old, keys.tag + name):
            renamed += 1
        else:
            left += 1
    return renamed, left
