"""Hybrid retrieval over the chunk indices."""
