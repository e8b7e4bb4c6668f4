"""Group texts into requests bounded by a token budget and a count."""

from __future__ import annotations

from collections.abc import Iterator


def token_budget_batches(tokens: list[int], max_tokens: int, max_items: int) -> Iterator[list[int]]:
    """Indices of the texts, in order, in batches of at most ``max_items`` whose token counts sum
    to at most ``max_tokens`` (a single text over the budget goes alone)."""
    batch: list[int] = []
    used = 0
    for index, count in enumerate(tokens):
        if batch and (used + count > max_tokens or len(batch) >= max_items):
            yield batch
            batch, used = [], 0
        batch.append(index)
        used += count
    if batch:
        yield batch
