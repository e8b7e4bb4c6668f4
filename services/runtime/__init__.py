"""The small runtime every consumer service shares: settings, producer, consumer loop, status, DLQ."""
