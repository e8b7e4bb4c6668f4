"""A tenant's usage counts on the state Redis: taking room and giving it back, empty documents too."""

from __future__ import annotations

from services.gateway.tenant_usage import TenantUsage, Usage
from services.runtime.redis_client import redis_client
from services.runtime.settings import Settings


def test_an_empty_document_gives_its_room_back(settings: Settings):
    usage = TenantUsage(redis_client(settings), settings.keys)
    usage.take("acme", "empty", 0, max_documents=10, max_bytes=100)
    usage.take("acme", "full", 60, max_documents=10, max_bytes=100)
    usage.give_back("acme", "empty")  # Lua's -0 was refused by HINCRBY: a 500 on deleting it
    assert usage.of("acme") == Usage(documents=1, bytes=60)
    usage.give_back("acme", "full")
    assert usage.of("acme") == Usage(documents=0, bytes=0)
