"""State keys of a deployment's earlier layouts moved to today's (services/runtime/keys.py), once,
before its services are upgraded (they are stopped meanwhile):

1. untagged (``indexflow.state``) -> the namespace's tag (``{indexflow.}state``);
2. the namespace's tag -> each tenant's (``{indexflow.@acme}state``): deployment-wide hashes keyed
   by document split into one per tenant, and keys naming a tenant moved under its tag;
3. keys no version reads any more deleted (each dataset's sorted set of every document, deleted
   ones too: its live documents' and its deleted ones' say as much).

Each step leaves a key whose new name exists already (written by an upgraded service) as it is,
for an operator to look at. Moves are DUMP/RESTORE, so they work across a cluster's slots too."""

from __future__ import annotations

import re
from dataclasses import dataclass

import redis

from services.runtime.keys import RedisKeys, glob_escaped, tenant_of_key

# Hashes whose fields start with a tenant ("tenant/document", or "tenant/dataset|..." for counts).
_SPLIT_HASHES = ("revision:issued", "revision:latest", "revision:closed", "revision:paused", "documents",
                 "pending-deletes", "serving", "state", "state-position", "state-counted", "dataset-counts")
_SPLIT_SORTED_SETS = ("unfinished",)
# Keys whose name after the tag starts with one of these, then the tenant.
_TENANT_NAMED = re.compile(
    r"^(?:parked|writing|batch|tenant-usage|datasets|dataset-names|document-visibility|document-positions|"
    r"document-created|dataset-tags|dataset-tag-bindings|dataset-model|dataset-indexed|index-placement|"
    r"dataset-removal|chunks|dataset-live-documents|dataset-listed):([^/|]+)"
)
_RETIRED = re.compile(r"^dataset-documents:")


@dataclass
class Migrated:
    moved: int = 0  # keys renamed or moved, and fields or members split out of a shared key
    left: int = 0  # keys or fields whose new name or field existed already


def migrate_keys(client: redis.Redis, keys: RedisKeys) -> Migrated:
    """Every step, in order."""
    tagged = tag_keys(client, keys)
    split = split_by_tenant(client, keys)
    retired = drop_retired(client, keys)
    return Migrated(tagged.moved + split.moved + retired.moved, tagged.left + split.left)


def tag_keys(client: redis.Redis, keys: RedisKeys) -> Migrated:
    """Step 1: the untagged keys of the namespace renamed under its tag. A name whose head (up to its
    first ":") holds a dot is another deployment's, whose namespace begins with ours ("indexflow.x."
    beside "indexflow."): none of ours has one."""
    migrated = Migrated()
    for old in client.scan_iter(match=glob_escaped(keys.namespace) + "*", count=1000):
        name = old.decode()[len(keys.namespace):]
        if "." in name.partition(":")[0]:
            continue
        if _move(client, old, keys.tag + name):
            migrated.moved += 1
        else:
            migrated.left += 1
    return migrated


def split_by_tenant(client: redis.Redis, keys: RedisKeys) -> Migrated:
    """Step 2: the tenants' state out of the namespace's slot into each tenant's."""
    migrated, tenants = Migrated(), set()
    for name in _SPLIT_HASHES:
        old = keys.tag + name
        for field, value in client.hscan_iter(old, count=1000):
            tenant = tenant_of_key(field.decode())
            tenants.add(tenant)
            if client.hsetnx(keys.tenant_tag(tenant) + name, field, value):
                migrated.moved += 1
            else:
                migrated.left += 1
        client.delete(old)
    for name in _SPLIT_SORTED_SETS:
        old = keys.tag + name
        for member, score in client.zscan_iter(old, count=1000):
            tenant = tenant_of_key(member.decode())
            tenants.add(tenant)
            if client.zadd(keys.tenant_tag(tenant) + name, {member: score}, nx=True):
                migrated.moved += 1
            else:
                migrated.left += 1
        client.delete(old)
    for old in client.scan_iter(match=keys.patterns[0], count=1000):
        name = old.decode()[len(keys.tag):]
        if named := _TENANT_NAMED.match(name):
            tenants.add(named.group(1))
            if _move(client, old, keys.tenant_tag(named.group(1)) + name):
                migrated.moved += 1
            else:
                migrated.left += 1
    if tenants:
        client.sadd(keys.tenants, *tenants)
    return migrated


def drop_retired(client: redis.Redis, keys: RedisKeys) -> Migrated:
    """Step 3: keys no version reads any more, under the namespace's tag or a tenant's, deleted."""
    migrated = Migrated()
    for old in (key for pattern in keys.patterns for key in client.scan_iter(match=pattern, count=1000)):
        if _RETIRED.match(old.decode().partition("}")[2]):
            migrated.moved += client.delete(old)
    return migrated


def _move(client: redis.Redis, old: bytes, new: str) -> bool:
    """``old`` renamed ``new`` with its time to live, unless ``new`` exists (then left as it is)."""
    if client.exists(new):
        return False
    dumped, ttl = client.dump(old), client.pttl(old)
    if dumped is None:
        return True  # gone meanwhile (a lock that expired)
    client.restore(new, max(ttl, 0), dumped)
    client.delete(old)
    return True
