"""Chaos run, a production day: the same workload (creates on the bulk lane, then updates and
deletes mixed in on the interactive lane, overtaking them) indexed twice on one embedded stack,
first undisturbed (control), then while a random service (replicas included) is SIGKILLed every
few seconds, Elasticsearch and the state Redis are each killed and restarted once, every consumer
stage is scaled to two replicas and back to one, and then the Kafka broker (in memory: it comes
back empty) is killed and restarted. Afterwards every document must be terminal, the chunk sets must be equal (0 missing, 0
extra, 0 stale), the reconciler must find the states agreeing with the index, and each dataset's
counts and order (kept by the projector as it writes) must equal what its states say.

    .venv/bin/python -m bench.chaos [--documents 300] [--kill-every 4] [--rounds 15] [--redis-cluster]

It starts its own stack (ports and state directory of its own) and stops it at the end.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from bench.stacks import own_environment
from schemas import TERMINAL_STATUSES

WORDS = ("tide estuary turbine harbour lattice quorum ledger orbit glacier canyon meadow quartz "
         "signal vector kernel beacon cipher delta ember fjord granite harvest island jetty").split()


def text_of(index: int, version: int) -> str:
    rng = random.Random(index * 1000 + version)
    paragraphs = []
    for p in range(rng.randint(2, 12)):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 160)))
        paragraphs.append(f"Document {index} version {version} paragraph {p}. {words}.")
    return "\n\n".join(paragraphs)


@dataclass
class Workload:
    documents: int
    updated: list[int] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)

    @classmethod
    def make(cls, documents: int) -> Workload:
        rng = random.Random(42)
        picked = rng.sample(range(documents), k=min(documents, 35))
        return cls(documents, updated=picked[:25], deleted=picked[25:])


class Client:
    """The gateway, retried across its own restarts (an upload repeated is a new revision of the
    same text: same chunks)."""

    def __init__(self, url: str, tenant: str):
        self.http = httpx.Client(base_url=url, headers={"X-Tenant-Id": tenant}, timeout=60)

    def call(self, method: str, path: str, **kwargs) -> httpx.Response:
        # Five minutes: killed every 14 s, the gateway soon comes back after the supervisor's
        # longest backoff (30 s) only, and answers for a few seconds each time.
        for _ in range(600):
            try:
                response = self.http.request(method, path, **kwargs)
                if response.status_code < 500:
                    return response
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{method} {path}: the gateway did not answer")


def run_workload(client: Client, workload: Workload) -> dict[str, int]:
    """Send the workload; answer each document's newest revision."""
    revisions: dict[str, int] = {}

    def send(method: str, path: str, document_id: str, **kwargs) -> None:
        response = client.call(method, path, **kwargs)
        response.raise_for_status()
        # A delete answers 204 without a body, its revision in a header.
        revisions[document_id] = int(response.headers.get("X-Revision") or response.json()["revision"])

    def update_and_delete(selected) -> None:
        for j in filter(selected, workload.updated):
            send("POST", f"/v1/datasets/bench/documents/doc-{j}/update-by-text", f"doc-{j}",
                 json={"text": text_of(j, 1)})
        for j in filter(selected, workload.deleted):
            send("DELETE", f"/v1/datasets/bench/documents/doc-{j}", f"doc-{j}")

    half = workload.documents // 2
    for i in range(workload.documents):
        # An import on the bulk lane; the edits above overtake it on the interactive one.
        send("POST", "/v1/datasets/bench/document/create-by-text", f"doc-{i}",
             json={"name": f"doc-{i}.txt", "text": text_of(i, 0), "document_id": f"doc-{i}"},
             headers={"X-Priority": "bulk"})
        if i == half:  # the second half uploads while the first half's updates and deletes run
            update_and_delete(lambda j: j <= half)
    update_and_delete(lambda j: j > half)
    return revisions


def dataset_states(client: Client) -> list[dict]:
    """Every document of the bench dataset, the deleted ones with their last state."""
    states: list[dict] = []
    for page in itertools.count(1):
        answer = client.call("GET", "/v1/datasets/bench/documents", params={"page": page, "limit": 1000,
                                                                             "deleted": "true"}).json()
        states += answer["data"]
        if not answer["has_more"]:
            return states


def wait_terminal(client: Client, revisions: dict[str, int], timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        states = {s["document_id"]: s for s in dataset_states(client)}
        done = all(
            (s := states.get(document_id)) is not None and s["revision"] >= revision
            and s["status"] in TERMINAL_STATUSES
            for document_id, revision in revisions.items()
        )
        if done:
            return time.monotonic() - started
        time.sleep(2)
    raise RuntimeError(f"not every document was terminal after {timeout:.0f}s")


def chunk_set(es, prefix: str, tenant: str, searchable: dict[str, int]) -> tuple[set, int]:
    """(document, part, position, content hash) of every chunk of the tenant, and how many chunks
    belong to a revision their document does not serve (stale)."""
    from elasticsearch import helpers

    from services.indexer.mapping import all_chunk_indices

    es.indices.refresh(index=all_chunk_indices(prefix), allow_no_indices=True)
    chunks, stale = set(), 0
    hits = helpers.scan(es, index=all_chunk_indices(prefix), query={"query": {"term": {"tenant_id": tenant}}},
                        _source=["document_id", "document_key", "part", "position", "content_hash", "revision"])
    for hit in hits:
        source = hit["_source"]
        if searchable.get(source["document_key"]) != source["revision"]:
            stale += 1
        chunks.add((source["document_id"], source["part"], source["position"], source["content_hash"]))
    return chunks, stale


# Which round does what besides a SIGKILL of a service: the servers killed and started again,
# and every consumer stage scaled to two replicas, then back to one.
SERVER_RESTARTS = {5: "elasticsearch", 11: "redis"}
SCALE_UP, SCALE_DOWN = 3, 13
# The broker is restarted once the kill rounds are over and the groups have settled: tansu's group
# coordinator can keep a member SIGKILLed within a minute of its restart as a group's leader for
# good, and the group never gets an assignment again (SyncGroup answers "rebalance in progress");
# a real broker expires such a member after the session timeout. A restart in the middle of an
# ingest, without kills, is tests/test_broker_restart_e2e.py.
SETTLE_SECONDS = 15.0


def repeated_reports(settings, tenant: str) -> Counter[str]:
    """Per stage, the status reports it made again for a document revision (the same status and
    progress): the records it redid after a kill, a restart or a rebalance. A calm run makes none
    but the gateway's own retries."""
    from confluent_kafka import Consumer, TopicPartition

    from topics.catalog import STATUS

    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers,
                         "group.id": f"chaos-count-{tenant}-{time.time_ns()}", "enable.auto.commit": False})
    consumer.assign([TopicPartition(settings.topic(STATUS.name), p, 0) for p in range(settings.partitions)])
    reports: Counter[tuple] = Counter()
    last = time.monotonic()
    while time.monotonic() - last < 3:
        records = consumer.consume(500, timeout=0.5)
        last = time.monotonic() if records else last
        for record in records:
            if record.error() or not record.key().startswith(f"{tenant}/".encode()):
                continue
            event = STATUS.codec.decode(record.value())
            reports[(event.key, event.revision, event.stage.value, event.status.value, event.progress)] += 1
    consumer.close()
    repeated: Counter[str] = Counter()
    for (_key, _revision, stage, _status, _progress), count in reports.items():
        repeated[stage] += count - 1
    repeated["all reports"] = sum(reports.values())
    return repeated


class Chaos(threading.Thread):
    def __init__(self, settings, stack, kill_every: float, rounds: int):
        super().__init__(daemon=True)
        self.settings, self.stack, self.kill_every, self.rounds = settings, stack, kill_every, rounds
        self.kills: Counter[str] = Counter()
        self.scale_steps: list[str] = []
        self.stop_event = threading.Event()
        self.counted = threading.Event()  # the run's status reports are counted: the broker may go
        self.enough = threading.Event()  # set once the rounds asked for are done (every server restarted by then)

    def run(self) -> None:
        from deploy.supervisor import SCALABLE, read_status, write_replicas

        rng = random.Random(7)
        rounds = 0
        turns: list[str] = []
        while not self.stop_event.wait(self.kill_every):
            rounds += 1
            if rounds > self.rounds:
                # Then the run drains: killed on and on, every service would spend ever longer in the
                # supervisor's restart backoff (up to 30 s) and come up only to be killed again.
                self.counted.wait()
                if not self.stop_event.wait(SETTLE_SECONDS):
                    self.restart_server("kafka")
                self.enough.set()
                return
            if rounds in (SCALE_UP, SCALE_DOWN):
                replicas = 2 if rounds == SCALE_UP else 1
                for stage in SCALABLE:
                    write_replicas(self.settings.state_dir, stage, replicas)
                    self.scale_steps.append(f"{stage}->{replicas}")
            if name := SERVER_RESTARTS.get(rounds):
                self.restart_server(name)
                continue
            services = {n: s["pid"] for n, s in read_status(self.settings.state_dir).items() if s.get("pid")}
            if services:
                # In turns, in a shuffled order: every service is killed once before any twice.
                if not turns:
                    turns = rng.sample(sorted(services), k=len(services))
                name = turns.pop()
                if name not in services:
                    continue
                try:
                    os.kill(services[name], signal.SIGKILL)
                    self.kills[name] += 1
                except ProcessLookupError:
                    pass

    def restart_server(self, name: str) -> None:
        """SIGKILL the server and start it again as `indexflow up` does (the broker's topics too)."""
        from services.runtime.kafka import admin_client
        from topics import TOPICS, apply_topics

        component = next(c for c in self.stack.components if c.name == name)
        pid = self.stack._process(component).pid()
        if pid:
            os.kill(pid, signal.SIGKILL)
            time.sleep(1)
            self.stack.up()
            if name == "kafka":
                apply_topics(admin_client(self.settings), TOPICS, self.settings)
            self.kills[name] += 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=300)
    parser.add_argument("--kill-every", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=15,
                        help="kill rounds, then the run drains (15 and up: every server restarted, stages scaled up and down)")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--redis-cluster", action="store_true",
                        help="the state Redis as a three-master cluster (the one killed: a master)")
    args = parser.parse_args()

    own_environment(
        "chaos",
        INDEXFLOW_REDIS_CLUSTER="true" if args.redis_cluster else "false",
        # Heal quickly: chunks a killed Elasticsearch lost are found within a minute.
        INDEXFLOW_WATCHDOG_STALL_SECONDS="600",
        INDEXFLOW_WATCHDOG_RECONCILE_INTERVAL_SECONDS="60",
        INDEXFLOW_WATCHDOG_SWEEP_INTERVAL_SECONDS="10",
    )
    from deploy.stack import Stack
    from services.cli.pipeline import start_services, stop_services
    from services.gateway.keyword_listing import KeywordListing
    from services.projector.store import DatasetFigures, StateStore
    from services.runtime.elasticsearch_client import elasticsearch_client
    from services.runtime.kafka import admin_client
    from services.runtime.redis_client import redis_client
    from services.runtime.settings import Settings
    from services.watchdog.service import build
    from topics import TOPICS, apply_topics

    settings = Settings()
    stack = Stack(settings)
    stack.up()
    apply_topics(admin_client(settings), TOPICS, settings)
    start_services(settings, timeout=180)
    workload = Workload.make(args.documents)
    es = elasticsearch_client(settings)
    try:
        results = {}
        redone: dict[str, Counter[str]] = {}
        indexes_exact: dict[str, bool] = {}
        scale_steps: list[str] = []
        for tenant in ("control", "chaos"):
            client = Client(settings.gateway_url, tenant)
            # Names held from the start, kept from the dataset's journal of listing changes through it all.
            held = KeywordListing(redis_client(settings), settings.keys,
                                  StateStore(redis_client(settings), settings.keys), budget=10**6)
            held.page(tenant, "bench", "doc", None, True, 0, 1)
            chaos = Chaos(settings, stack, args.kill_every, max(args.rounds, SCALE_DOWN + 2)) if tenant == "chaos" else None
            started = time.monotonic()
            if chaos:
                chaos.start()  # every service killed in turn, both servers restarted
            revisions = run_workload(client, workload)
            drain = wait_terminal(client, revisions, args.timeout)  # the kills go on meanwhile
            redone[tenant] = repeated_reports(settings, tenant)  # before the broker's restart loses them
            if chaos:
                chaos.counted.set()
                chaos.enough.wait()
                chaos.stop_event.set()
                chaos.join()
                start_services(settings, timeout=180)  # the supervisor restarts what was killed
                wait_terminal(client, revisions, args.timeout)
            time.sleep(5)
            keys = [f"{tenant}/doc-{i}" for i in range(workload.documents)]
            store = StateStore(redis_client(settings), settings.keys)
            chunks, stale = chunk_set(es, settings.topic_prefix, tenant, store.searchable_revisions(keys))
            states = Counter(s.status.value for s in store.get_many(keys))
            # What the projector counted and ordered as it went equals what its states say
            every = store.dataset(tenant, "bench")
            ordered, listed = store.newest_first(tenant, "bench", 0, len(every) + 1, deleted=True)
            named = {keyword: held.page(tenant, "bench", keyword, None, True, 0, len(every) + 1)
                     for keyword in ("doc", "1")}
            indexes_exact[tenant] = (store.dataset_figures(tenant, ["bench"])["bench"] == DatasetFigures.of(every)
                                     and listed == len(every) and {s.key for s in ordered} == {s.key for s in every}
                                     and all(sorted(ids) == sorted(s.document_id for s in every
                                                                   if keyword in (s.name or "").lower())
                                             and total == len(ids) for keyword, (ids, total) in named.items()))
            results[tenant] = (chunks, stale, states, time.monotonic() - started, drain, chaos.kills if chaos else {})
            if chaos:
                scale_steps = chaos.scale_steps
        audit = build(settings).reconciler.run(repair=False)
        control, chaos_run = results["control"], results["chaos"]
        print(f"documents per run: {workload.documents} ({len(workload.updated)} updated, "
              f"{len(workload.deleted)} deleted while ingesting)")
        for tenant, (chunks, stale, states, seconds, drain, kills) in results.items():
            print(f"{tenant:8} {len(chunks)} chunks, {stale} stale, states {dict(states)}, "
                  f"{seconds:.0f}s total, drained {drain:.0f}s after the last request")
            if kills:
                print(f"         kills: {dict(sorted(kills.items()))} ({sum(kills.values())} in all)")
                print(f"         scale steps: {', '.join(scale_steps)}")
        for tenant, repeated in redone.items():
            reports = repeated.pop("all reports")
            print(f"{tenant:8} stage reports made again (records redone): {dict(sorted(repeated.items()))} "
                  f"({sum(repeated.values())} of {reports} reports)")
        print(f"missing in chaos run: {len(control[0] - chaos_run[0])}, extra: {len(chaos_run[0] - control[0])}, "
              f"stale: {chaos_run[1]}")
        print(f"reconciler: {audit.audited} audited, {len(audit.missing)} missing, {audit.stale_chunks} stale chunks")
        print(f"dataset counts, order and names by keyword equal to the states: {indexes_exact}")
        identical = (control[0] == chaos_run[0] and chaos_run[1] == 0 and audit.consistent
                     and all(indexes_exact.values()))
        print("IDENTICAL" if identical else "DIFFERENT")
        raise SystemExit(0 if identical else 1)
    finally:
        stop_services(settings)
        stack.down()


if __name__ == "__main__":
    main()
