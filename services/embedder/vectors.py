"""Vectors as lists of floats that serialise short: each float32 as the shortest decimal that
reads back as the same float32 (``-0.030274253``), not as the float64 it widens to
(``-0.030274253422021866``). The same vectors, 41% fewer bytes in every record, cache entry and
bulk request that carries them (MiniLM: 4.7 KB a vector instead of 8.1 KB)."""

from __future__ import annotations

import numpy as np
import orjson


def short_floats(vectors: np.ndarray) -> list:
    """A float32 array (any shape) as nested lists of floats with float32's shortest decimals."""
    return orjson.loads(orjson.dumps(np.ascontiguousarray(vectors, dtype=np.float32), option=orjson.OPT_SERIALIZE_NUMPY))
