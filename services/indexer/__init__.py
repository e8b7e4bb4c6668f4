"""The indexer service: writes segments into Elasticsearch (BM25 text + dense vectors)."""
