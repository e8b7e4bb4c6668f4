"""The embedded stack (Kafka, Elasticsearch API, Redis, S3) for one machine, tests and CI."""
