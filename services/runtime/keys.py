"""Every Redis key indexflow uses, in one place, under the deployment's namespace (the topic prefix,
so deployments sharing a Redis stay apart).

Every state key starts with a hash tag, so a script or MULTI naming several keys finds them in one
Redis Cluster slot: a tenant's keys with the tenant's tag (its documents' revisions, registry, states,
chunks, datasets), so tenants spread over a cluster's masters; the few deployment-wide keys (API keys,
limits, heartbeats, sources) with the namespace's. A hash keyed by document is one hash per tenant;
what reads every tenant's (a sweep, a census) goes through ``tenants``.

Two homes: the *state* Redis holds what correctness depends on (revisions, the document registry,
indexing progress, projected states) and must never evict; the *cache* Redis holds what can be
recomputed (embedding vectors) and may run an eviction policy."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def tenant_of_key(document_key: str) -> str:
    """The tenant of a document key ("tenant/document": schemas.envelope.document_key)."""
    return document_key.partition("/")[0]


def by_tenant(items: Iterable[T], document_key: Callable[[T], str]) -> dict[str, list[T]]:
    """``items`` grouped by their documents' tenants, in order: one script per tenant's keys."""
    grouped: dict[str, list[T]] = {}
    for item in items:
        grouped.setdefault(tenant_of_key(document_key(item)), []).append(item)
    return grouped


def per_tenant(items: list[T], document_key: Callable[[T], str],
               run: Callable[[str, list[T]], Iterable[R]]) -> list[R]:
    """``run`` (a tenant, its items -> an answer each) for each tenant's items, the answers in the
    order of ``items``."""
    answers: dict[int, R] = {}
    for tenant_id, numbered in by_tenant(enumerate(items), lambda n: document_key(n[1])).items():
        answers.update(zip((n for n, _ in numbered), run(tenant_id, [item for _, item in numbered])))
    return [answers[n] for n in range(len(items))]


def glob_escaped(prefix: str) -> str:
    """``prefix`` matched literally by a SCAN or PSUBSCRIBE pattern."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", prefix)


@dataclass(frozen=True)
class RedisKeys:
    namespace: str

    @property
    def tag(self) -> str:
        """The namespace as a hash tag: the deployment-wide keys' slot."""
        return f"{{{self.namespace or 'indexflow'}}}"

    def tenant_tag(self, tenant_id: str) -> str:
        """The tenant's hash tag: its keys' slot (a tenant id holds no brace: schemas.envelope.Id)."""
        return f"{{{self.namespace or 'indexflow'}@{tenant_id}}}"

    @property
    def patterns(self) -> tuple[str, str]:
        """SCAN patterns of every state key of the deployment: under its tag, and under each tenant's
        (not "{namespace*": another deployment's namespace may begin with this one's)."""
        return glob_escaped(self.tag) + "*", glob_escaped(self.tenant_tag("")[:-1]) + "*"

    def _k(self, name: str) -> str:
        return f"{self.tag}{name}"

    def _t(self, tenant_id: str, name: str) -> str:
        return f"{self.tenant_tag(tenant_id)}{name}"

    def _d(self, document_key: str, name: str) -> str:
        return self._t(tenant_of_key(document_key), name)

    @property
    def tenants(self) -> str:
        """Set: every tenant with documents in the registry or the states (added before its keys are
        written): what a sweep or census over every tenant reads."""
        return self._k("tenants")

    # -- state: revision gate (per tenant, hashes: document key -> revision) ------------------
    def revisions_issued(self, tenant_id: str) -> str:
        return self._t(tenant_id, "revision:issued")

    def revisions_latest(self, tenant_id: str) -> str:
        return self._t(tenant_id, "revision:latest")

    def revisions_closed(self, tenant_id: str) -> str:
        return self._t(tenant_id, "revision:closed")

    def revisions_paused(self, tenant_id: str) -> str:
        return self._t(tenant_id, "revision:paused")

    def parked(self, document_key: str) -> str:
        """List of a paused document's records, waiting for its resume."""
        return self._d(document_key, f"parked:{document_key}")

    # -- state: document registry (per tenant) -----------------------------------------------
    def documents(self, tenant_id: str) -> str:
        """Hash: document key -> its newest upsert (the record to re-drive it from)."""
        return self._t(tenant_id, "documents")

    def unfinished(self, tenant_id: str) -> str:
        """Sorted set: the registered documents the stall sweep has not seen finished at their
        registered revision yet, scored by when registered (ms): what it judges, however many
        documents have finished."""
        return self._t(tenant_id, "unfinished")

    @property
    def unfinished_complete(self) -> str:
        """Set once ``unfinished`` holds every registered document (a deployment's registry from
        before it is read into it once, by the watchdog at its start)."""
        return self._k("unfinished-complete")

    def pending_deletes(self, tenant_id: str) -> str:
        """Hash: document key -> the delete acknowledged to its client and not yet carried out (the
        record to re-drive it from, should the record be lost)."""
        return self._t(tenant_id, "pending-deletes")

    def document_writer(self, document_key: str) -> str:
        """Lock held by whoever is writing the document's next revision from its current one."""
        return self._d(document_key, f"writing:{document_key}")

    def batch(self, tenant_id: str, batch: str) -> str:
        """Set of "document key|revision" for each revision one upload batch of one tenant wrote."""
        return self._t(tenant_id, f"batch:{tenant_id}/{batch}")

    @property
    def dlq_replayed(self) -> str:
        """Hash: a dead letter's event id -> when and how it was replayed."""
        return self._k("dlq-replayed")

    @property
    def api_keys(self) -> str:
        """Hash: SHA-256 of an API key -> its tenant, name and creation time."""
        return self._k("api-keys")

    # -- state: tenants' limits (services/gateway/tenant_limits.py, tenant_usage.py) ---------
    @property
    def tenant_limits(self) -> str:
        """Hash: tenant -> the limits the operator set for it (those it leaves out: the defaults)."""
        return self._k("tenant-limits")

    def tenant_usage(self, tenant_id: str) -> str:
        """Hash: "documents" and "bytes" the tenant holds, and "doc:<id>" -> each document's bytes."""
        return self._t(tenant_id, f"tenant-usage:{tenant_id}")

    # -- state: datasets (services/gateway/datasets.py) -------------------------------------
    def datasets(self, tenant_id: str) -> str:
        """Hash: dataset id -> its settings (name, description, indexing, retrieval model, times)."""
        return self._t(tenant_id, f"datasets:{tenant_id}")

    def dataset_names(self, tenant_id: str) -> str:
        """Hash: dataset name -> its id: a name names one dataset of a tenant."""
        return self._t(tenant_id, f"dataset-names:{tenant_id}")

    def document_visibility(self, tenant_id: str) -> str:
        """Hash: document id -> whether it is enabled and archived (Dify's document status)."""
        return self._t(tenant_id, f"document-visibility:{tenant_id}")

    def document_positions(self, tenant_id: str, dataset_id: str) -> str:
        """Hash: document id -> its 1-based position in the dataset ("next" holds the counter)."""
        return self._t(tenant_id, f"document-positions:{tenant_id}/{dataset_id}")

    def document_created(self, tenant_id: str, dataset_id: str) -> str:
        """Hash: document id -> when it was first written to the dataset (epoch seconds)."""
        return self._t(tenant_id, f"document-created:{tenant_id}/{dataset_id}")

    def dataset_tags(self, tenant_id: str) -> str:
        """Hash: tag id -> the tenant's knowledge tag (its name, when made)."""
        return self._t(tenant_id, f"dataset-tags:{tenant_id}")

    def dataset_tag_bindings(self, tenant_id: str) -> str:
        """Hash: "dataset id/tag id" -> 1 for each tag bound to each of the tenant's datasets."""
        return self._t(tenant_id, f"dataset-tag-bindings:{tenant_id}")

    @property
    def download_signing_key(self) -> str:
        """String: the secret download links are signed with, when the deployment sets none."""
        return self._k("download-signing-key")

    # -- state: datasets' embedding models --------------------------------------------------
    def dataset_models(self, tenant_id: str) -> str:
        """Hash: dataset -> the embedding model its documents are embedded with."""
        return self._t(tenant_id, f"dataset-model:{tenant_id}")

    def dataset_indexed_models(self, tenant_id: str) -> str:
        """Hash: "dataset/model" -> 1, for every model a dataset has chunks embedded with."""
        return self._t(tenant_id, f"dataset-indexed:{tenant_id}")

    # -- state: which index each dataset's chunks live in (services/indexer/placement.py)
    def index_placements(self, tenant_id: str) -> str:
        """Hash: dataset -> "own/<token>" (indices of its own) or "tenant/<token>" (its tenant's)."""
        return self._t(tenant_id, f"index-placement:{tenant_id}")

    @property
    def dataset_indices_held(self) -> str:
        """Counter: the datasets of the deployment with indices of their own (the index budget's use)."""
        return self._k("dataset-indices-held")

    def dataset_removal(self, tenant_id: str, dataset_id: str) -> str:
        """Set: the documents of a deleted dataset whose delete has yet to reach the indexer, and ""
        until its indices are gone."""
        return self._t(tenant_id, f"dataset-removal:{tenant_id}/{dataset_id}")

    # -- state: the indexer's chunk registry -----------------------------------------------
    def chunks(self, document_key: str) -> str:
        """Hash: "revision/part/piece" -> where that record's chunks are and how many (see the indexer)."""
        return self._d(document_key, f"chunks:{document_key}")

    # -- state: what search serves ---------------------------------------------------------
    def serving_revisions(self, tenant_id: str) -> str:
        """Hash: document key -> the revision search serves (kept by the indexer)."""
        return self._t(tenant_id, "serving")

    # -- state: projected states -----------------------------------------------------------
    def states(self, tenant_id: str) -> str:
        """Hash: document key -> its state."""
        return self._t(tenant_id, "state")

    def state_positions(self, tenant_id: str) -> str:
        """Hash: document key -> "<offset>|<counted>": the offset in the status topic of the last event
        its state folds in, and what ``dataset_counts`` counts of its state ("dataset|status|words";
        "tenant/dataset|..." as kept before), the side a write takes away before it adds the new
        state's."""
        return self._t(tenant_id, "state-position")

    def dataset_keys_before(self, tenant_id: str, dataset_id: str) -> str:
        """Set: the dataset's document keys, as versions before its sorted sets kept them; deleted
        once ``dataset_indexes_complete``."""
        return self._k(f"dataset:{tenant_id}/{dataset_id}")

    def dataset_counts(self, tenant_id: str) -> str:
        """Hash: "tenant/dataset|status" -> its documents in that status, "tenant/dataset|words" ->
        the words of its documents not deleted, "tenant/dataset|renamed" -> how many times one was
        renamed. Kept with every state written, so reading a dataset's figures never reads its
        documents."""
        return self._t(tenant_id, "dataset-counts")

    def state_counted(self, tenant_id: str) -> str:
        """Hash: document key -> what ``dataset_counts`` counts of its state, as kept before it shared
        its field in ``state_positions``; read, and dropped, as the state is next written."""
        return self._t(tenant_id, "state-counted")

    def dataset_live_documents(self, tenant_id: str, dataset_id: str) -> str:
        """Sorted set: the dataset's document ids but the deleted ones, scored by their positions
        (``document_positions``, 0 while a document has none): its documents newest first. With
        its deleted ones (``dataset_listed_documents`` "deleted"), all of them."""
        return self._t(tenant_id, f"dataset-live-documents:{tenant_id}/{dataset_id}")

    def dataset_listed_documents(self, tenant_id: str, dataset_id: str, listed: str) -> str:
        """Sorted set: the dataset's documents displayed as ``listed`` (services/projector/listing.py),
        scored as ``dataset_live_documents``."""
        return self._t(tenant_id, f"dataset-listed:{tenant_id}/{dataset_id}|{listed}")

    def dataset_listing_changes(self, tenant_id: str, dataset_id: str) -> str:
        """Stream, the last ``listing.CHANGES_KEPT`` or so kept: each move of one of the dataset's
        documents in its sorted sets (its display status, position, name when new or renamed, or
        gone), so a reader holding the dataset's listing reads what changed since, not it all."""
        return self._t(tenant_id, f"dataset-listing-changes:{tenant_id}/{dataset_id}")

    @property
    def dataset_indexes_complete(self) -> str:
        """Set once every state is counted and placed in its dataset's sorted sets (a deployment's
        states from before them are, by the projector at its start); until then readers read the
        states. Versioned: sets added later are filled by placing every state again."""
        return self._k("dataset-indexes-complete:2")

    def state_changes(self, tenant_id: str) -> str:
        """Pub/sub channel: every state the projector writes of the tenant's documents, as it is
        written (the dashboard's live feed; Redis keeps none of it)."""
        return self._k(f"state-changes:{tenant_id}")

    @property
    def state_changes_of_every_tenant(self) -> str:
        """Pub/sub pattern: ``state_changes`` of every tenant (the dashboard's latency chart)."""
        return glob_escaped(self._k("state-changes:")) + "*"

    @property
    def heartbeats(self) -> str:
        """Hash: "service/host:pid" -> unix time of its last sign of life."""
        return self._k("heartbeats")

    @property
    def server_losses(self) -> str:
        """Hash: server (kafka, elasticsearch, redis) -> unix time it may last have lost what it had
        acknowledged: ``indexflow up`` restarted the embedded one, or a consumer saw its log rewound."""
        return self._k("server-losses")

    @property
    def server_losses_handled(self) -> str:
        """Hash: server -> the loss (as in ``server_losses``) the watchdog has recovered from."""
        return self._k("server-losses-handled")

    def durability_mark(self, hint: int) -> str:
        """Counter the durability barrier writes before it waits (services/runtime/durability.py); on a
        cluster one on each master, each ``hint`` a tag of its own until one lands on every master."""
        return f"{{{self.namespace or 'indexflow'}#{hint}}}durability-mark"

    @property
    def embedding_calls(self) -> str:
        """Hash: model -> texts embedded (a counter the benchmarks and tests read)."""
        return self._k("embedding:calls")

    # -- state: sources (services/sources/store.py) -------------------------------------------
    @property
    def sources(self) -> str:
        """Hash: "tenant/source" -> the source's definition (kind, configuration without its
        credentials, schedule)."""
        return self._k("sources")

    @property
    def source_secrets(self) -> str:
        """Hash: "tenant/source" -> the credentials of its configuration, never answered or logged."""
        return self._k("source-secrets")

    def source_items(self, source_key: str) -> str:
        """Hash: item id -> its fingerprint, document and memo as the source's last sync left them."""
        return self._k(f"source-items:{source_key}")

    def source_runs(self, source_key: str) -> str:
        """List: the source's runs, newest first (the running one, its checkpoint, at the head)."""
        return self._k(f"source-runs:{source_key}")

    def source_run_done(self, source_key: str) -> str:
        """Set: the items the running sync has done, so a resumed one skips them."""
        return self._k(f"source-run-done:{source_key}")

    def source_lease(self, source_key: str) -> str:
        """String with a time to live: the sources replica syncing the source now."""
        return self._k(f"source-lease:{source_key}")

    # -- cache ------------------------------------------------------------------------------
    def embedding(self, model: str, content_hash: str) -> str:
        # Untagged: single-key reads and writes, spread over a cluster's slots.
        return f"{self.namespace}embedding:{model}:{content_hash}"
