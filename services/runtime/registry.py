"""The document registry: each document's newest upsert, the record to re-drive it from (retry,
watchdog, reconciler). Kept in the state Redis; an inline text longer than ``INLINE_KEPT_BYTES`` is
spilled to the blob store first, so Redis holds small records only."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import orjson
import redis
from redis.exceptions import LockError, LockNotOwnedError
from redis.lock import Lock

from schemas import (
    DOCUMENT_EVENTS, BlobSource, DocumentDeleted, DocumentStatus, DocumentUpserted, InlineSource, Priority,
)
from schemas.envelope import utc_now
from services.runtime.blobs import BlobStore
from services.runtime.errors import DependencyUnavailable
from services.runtime.packing import REGISTERED, STORED_REVISION_LUA
from services.runtime.producer import Producer
from services.runtime.revisions import Revisions
from services.runtime.keys import RedisKeys, by_tenant, tenant_of_key
from services.runtime.status import StatusEmitter
from services.runtime.tenants import Tenants, fields_of
from topics.catalog import DOCUMENTS


# Store each upsert (document key, revision, record in ARGV, after the time in ms in ARGV[1]) unless
# a newer revision is registered already (a late stage must not put an old text back over the
# gateway's newer one); it is unfinished until it is finished at that revision (``FINISHED_LUA``).
_REMEMBER = STORED_REVISION_LUA + """
for i = 2, #ARGV, 3 do
  local old = redis.call('HGET', KEYS[1], ARGV[i])
  if not (old and stored_revision(old) > tonumber(ARGV[i + 1])) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
    redis.call('ZADD', KEYS[2], ARGV[1], ARGV[i])
  end
end
return 1
"""
# Drop the entry only if the delete is newer than it (the document may be created again already).
_FORGET = STORED_REVISION_LUA + """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old and stored_revision(old) < tonumber(ARGV[2]) then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return 1
"""
# Each document (key, revision in ARGV) is finished at that revision: no longer unfinished, unless
# a newer revision was registered meanwhile.
FINISHED_LUA = STORED_REVISION_LUA + """
local function finished(documents, unfinished, key, revision)
  local registered = redis.call('HGET', documents, key)
  if registered and stored_revision(registered) <= tonumber(revision) then
    redis.call('ZREM', unfinished, key)
  end
end
"""
_FINISHED = FINISHED_LUA + """
for i = 1, #ARGV, 2 do finished(KEYS[1], KEYS[2], ARGV[i], ARGV[i + 1]) end
return 1
"""
# Drop a pending delete at or below this revision (not a newer one).
_SETTLE_DELETE = """
local pending = redis.call('HGET', KEYS[1], ARGV[1])
if pending and tonumber(cjson.decode(pending)['revision']) <= tonumber(ARGV[2]) then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return 1
"""

log = logging.getLogger(__name__)

T = TypeVar("T")

# An inline text up to this long stays in its registered upsert: a blob's URI would take a good
# part of its room, and a write to the blob store (a PUT, on S3) for every small document would
# cost more than the rest of its registration.
INLINE_KEPT_BYTES = 1024

# A writer that died frees the document this long after; a live one renews it while it works.
WRITER_LOCK_SECONDS = 60


class DocumentBusy(DependencyUnavailable):
    """Another writer held the document for longer than a caller waits."""


class WriterLockLost(DependencyUnavailable):
    """The writer's lock was lost while it worked (its key gone, as in a failover, or a renewal
    missed for a whole lease): another writer may have built on the same revision meanwhile."""


class DocumentRegistry:
    def __init__(self, client: redis.Redis, keys: RedisKeys, blobs: BlobStore):
        self._redis = client
        self._keys = keys
        self._blobs = blobs
        self._tenants = Tenants(client, keys)
        self._remember = client.register_script(_REMEMBER)
        self._forget = client.register_script(_FORGET)
        self._settle_delete = client.register_script(_SETTLE_DELETE)
        self._finished = client.register_script(_FINISHED)
        self._held = threading.local()  # document key -> the writer lock this thread holds

    def fence(self, key: str) -> None:
        """Refuse (WriterLockLost) when the writer lock this thread took for the document is no
        longer its own: called right before a revision built under it is published or registered."""
        lock = getattr(self._held, "locks", {}).get(key)
        if lock is not None and not lock.owned():
            raise WriterLockLost(f"{lock.name} was lost before the revision was published; try again")

    def remember(self, upsert: DocumentUpserted) -> None:
        self.remember_many([upsert])

    def remember_many(self, upserts: list[DocumentUpserted]) -> None:
        """Register each upsert, in one round trip per tenant."""
        now_ms = int(time.time() * 1000)
        for tenant_id, of_tenant in by_tenant(upserts, lambda upsert: upsert.key).items():
            args: list[str | int] = [now_ms]
            for upsert in of_tenant:
                self.fence(upsert.key)
                data = upsert.source.text.encode() if isinstance(upsert.source, InlineSource) else b""
                if len(data) > INLINE_KEPT_BYTES:
                    uri = self._blobs.put(upsert.tenant_id, upsert.document_id, upsert.revision, "inline.txt", data)
                    upsert = upsert.model_copy(update={"source": BlobSource(uri=uri, size=len(data))})
                args += [upsert.key, upsert.revision, REGISTERED.pack(upsert.key, upsert.revision,
                                                                      DOCUMENT_EVENTS.encode_compact(upsert))]
            self._tenants.enlist([tenant_id])
            self._remember(keys=[self._keys.documents(tenant_id), self._keys.unfinished(tenant_id)], args=args)

    def writing(self, key: str, wait_seconds: float = 30.0, lease_seconds: float = WRITER_LOCK_SECONDS) -> Lock:
        """Held while a revision is made from the document's current one (an edit, a re-drive, an
        update keeping the old rule), so two writers never both build on the same revision and
        one's change is silently lost."""
        if not hasattr(self._held, "locks"):
            self._held.locks = {}
        return _WriterLock(self._redis, self._keys.document_writer(key), self._held.locks, key,
                           timeout=lease_seconds, blocking_timeout=wait_seconds,
                           thread_local=False)  # its token read by the renewing thread too

    def newest_upsert(self, key: str) -> DocumentUpserted | None:
        raw = self._redis.hget(self._keys.documents(tenant_of_key(key)), key)
        if raw is None:
            return None
        return DOCUMENT_EVENTS.decode(REGISTERED.unpack(key, raw))  # type: ignore[return-value]

    def newest_upserts(self, keys: list[str]) -> dict[str, DocumentUpserted]:
        """``newest_upsert`` of many documents in one round trip per tenant; unknown ones left out."""
        return {key: DOCUMENT_EVENTS.decode(raw) for key, raw in self._registered(keys).items()}  # type: ignore[misc]

    def newest_upserts_json(self, keys: list[str]) -> dict[str, dict]:
        """``newest_upserts`` as the JSON objects registered, not built into models: for a caller that
        reads a field or two of every document of a dataset (a metadata filter) on every request."""
        return {key: orjson.loads(raw) for key, raw in self._registered(keys).items()}

    def _registered(self, keys: list[str]) -> dict[str, bytes]:
        """Document key -> its registered upsert's JSON, in one round trip; unknown ones left out."""
        found = fields_of(self._redis, self._keys.documents, keys)
        return {key: REGISTERED.unpack(key, raw) for key, raw in found.items()}

    def pages(self, size: int = 500) -> Iterator[list[DocumentUpserted]]:
        """Every registered document's newest upsert, a page at a time, tenant by tenant (a live
        scan: entries may come and go meanwhile)."""
        for tenant_id in self._tenants.all():
            entries = self._redis.hscan_iter(self._keys.documents(tenant_id), count=size)
            for page in _chunks(entries, size):
                yield [DOCUMENT_EVENTS.decode(REGISTERED.unpack(key.decode(), raw))  # type: ignore[misc]
                       for key, raw in page]

    def unfinished_pages(self, registered_before: float, size: int = 500) -> Iterator[list[DocumentUpserted]]:
        """The newest upsert of each document not seen finished yet and registered before
        ``registered_before`` (epoch seconds), a page at a time."""
        if not self._redis.exists(self._keys.unfinished_complete):
            self._index_unfinished(size)
        for tenant_id in self._tenants.all():
            keys: list[str] = []  # all of them first: the caller takes finished ones out as it goes
            while batch := self._redis.zrange(self._keys.unfinished(tenant_id), "-inf", int(registered_before * 1000),
                                              byscore=True, offset=len(keys), num=size * 10):
                keys += [member.decode() for member in batch]
            for start in range(0, len(keys), size):
                yield list(self.newest_upserts(keys[start:start + size]).values())

    def finished(self, documents: list[tuple[str, int]]) -> None:
        """Each (document key, revision) reached a final state at that revision: not unfinished any
        more, unless a newer revision was registered meanwhile."""
        for tenant_id, of_tenant in by_tenant(documents, lambda document: document[0]).items():
            self._finished(keys=[self._keys.documents(tenant_id), self._keys.unfinished(tenant_id)],
                           args=[value for document in of_tenant for value in document])

    def _index_unfinished(self, size: int) -> None:
        """Every registered document, unfinished until the sweep sees it finished (a registry from
        before the set was kept); the set is complete from then on."""
        for tenant_id in self._tenants.all():
            documents = self._keys.documents(tenant_id)
            for keys in _chunks((key for key, _ in self._redis.hscan_iter(documents, count=size)), size):
                self._redis.zadd(self._keys.unfinished(tenant_id), dict.fromkeys(keys, 0), nx=True)
        self._redis.set(self._keys.unfinished_complete, 1)

    def remember_delete(self, deleted: DocumentDeleted) -> None:
        """A delete acknowledged to its client: kept until its document's state says it is done (the
        watchdog looks), so a delete whose records a broker lost at any stage is published again
        rather than undone by a re-drive of the document's upsert."""
        self._tenants.enlist([deleted.tenant_id])
        self._redis.hset(self._keys.pending_deletes(deleted.tenant_id), deleted.key, DOCUMENT_EVENTS.encode(deleted))

    def settle_delete(self, deleted: DocumentDeleted) -> None:
        """The delete is carried out, or a newer revision overtook it: no longer pending."""
        self._settle_delete(keys=[self._keys.pending_deletes(deleted.tenant_id)], args=[deleted.key, deleted.revision])

    def pending_deletes(self) -> dict[str, DocumentDeleted]:
        """Every tenant's pending deletes."""
        return {key.decode(): DOCUMENT_EVENTS.decode(raw)  # type: ignore[misc]
                for tenant_id in self._tenants.all()
                for key, raw in self._redis.hgetall(self._keys.pending_deletes(tenant_id)).items()}

    def forget(self, deleted: DocumentDeleted) -> None:
        """The document is deleted: drop its record and the blobs of every older revision."""
        self._forget(keys=[self._keys.documents(deleted.tenant_id), self._keys.unfinished(deleted.tenant_id)],
                     args=[deleted.key, deleted.revision])
        self._blobs.delete_document(deleted.tenant_id, deleted.document_id, before_revision=deleted.revision)


def _chunks(items: Iterator[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _WriterLock(Lock):
    """Renewed every third of its lease while held, so a long upload keeps the document; listed in
    ``held`` (its thread's) so the registry can fence a writer that lost it all the same."""

    def __init__(self, client: redis.Redis, name: str, held: dict[str, Lock], document_key: str, **options: Any):
        super().__init__(client, name, **options)
        self._held_by_thread = held
        self._document_key = document_key
        self._released = threading.Event()
        self._renewal: threading.Thread | None = None
        self._outer: Lock | None = None  # the same thread's lock this one nests in, if any

    def __enter__(self) -> _WriterLock:
        try:
            super().__enter__()
        except LockError as exc:
            raise DocumentBusy(f"{self.name} is held by another writer; try again") from exc
        self._outer = self._held_by_thread.get(self._document_key)
        self._held_by_thread[self._document_key] = self
        self._renewal = threading.Thread(target=self._renew, name=f"renew {self.name}", daemon=True)
        self._renewal.start()
        return self

    def _renew(self) -> None:
        while not self._released.wait(self.timeout / 3):
            try:
                self.reacquire()
            except LockNotOwnedError:
                return  # lost: the fence in ``remember`` refuses what this writer would publish
            except redis.RedisError as exc:  # a blip: the lease still has two thirds to run
                log.warning("%s: renewing the writer lock failed: %s", self.name, exc)

    def __exit__(self, *exc_info) -> None:
        self._released.set()
        if self._renewal is not None:
            self._renewal.join()
        if self._outer is not None:
            self._held_by_thread[self._document_key] = self._outer
        else:
            self._held_by_thread.pop(self._document_key, None)
        try:
            super().__exit__(*exc_info)
        except LockNotOwnedError:  # lost meanwhile: the fence refused the publish; nothing to free
            log.warning("%s: the writer lock was lost before the write ended", self.name)


# The newest upsert -> the fields a re-drive changes (None: leave the document as it is).
Change = Callable[[DocumentUpserted], dict[str, Any] | None]


def redrive(
    registry: DocumentRegistry, revisions: Revisions, producer: Producer, status: StatusEmitter, key: str,
    change: Change | None = None, *, priority: Priority,
) -> DocumentUpserted | None:
    """Publish the document's newest upsert again as a new revision (one more attempt), so it runs
    through every stage afresh whatever became of the old one (errored, cancelled, stuck, lost).
    With ``change``, it runs with the fields the change makes of the newest upsert, as a fresh job
    (attempts start at 1); the change reads that upsert under the document's writer lock, so it
    never builds on a revision another writer has already replaced. None when nothing is known of
    the document, or the change leaves it as it is."""
    with registry.writing(key):
        upsert = registry.newest_upsert(key)
        changes = change(upsert) if change is not None and upsert is not None else {}
        if upsert is None or changes is None:
            return None
        again = upsert.model_copy(
            update={
                "event_id": uuid.uuid4(),
                "revision": revisions.next_revision(key),
                "attempt": 1 if change is not None else upsert.attempt + 1,
                "produced_at": utc_now(),
                "priority": priority,
                **changes,
            }
        )
        # Registered before it is published: if the record is lost on its way, the next re-drive
        # counts this attempt too, so attempts stay bounded.
        registry.remember(again)
        status.emit(again, DocumentStatus.WAITING, name=again.name, content_hash=again.content_hash, progress=0.0,
                    attempts=again.attempt)
        producer.publish_and_wait(DOCUMENTS, again)
        return again
