"""The embedder service: vectors for segments, by token-budget batches, cached in Redis."""
