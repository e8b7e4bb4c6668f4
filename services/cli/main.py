"""``indexflow``: run the embedded stack and the pipeline, ingest, follow, search."""

from __future__ import annotations

import dataclasses
import sys
import time
from collections import Counter
from pathlib import Path
from collections.abc import Callable
from typing import TypeVar, get_args

import click
import httpx
import orjson
from pydantic import TypeAdapter, ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from deploy.stack import ComponentStatus, Stack, StackError
from deploy.supervisor import SCALABLE, write_replicas
from schemas import Priority, document_key
from schemas.envelope import Id
from services.cli.ingest import IngestSummary, collect_files, ingest
from services.cli.pipeline import services_status, start_services, stop_services
from services.cli.republish import RepublishError
from services.cli.republish import republish as run_republish
from services.cli.schemas_export import export_json_schemas
from services.cli.sources import sources as sources_commands
from services.gateway.api_keys import ApiKeys
from services.gateway.datasets import DatasetCatalog
from services.gateway.settings import GatewaySettings
from services.gateway.tenant_limits import DESCRIPTIONS, TenantLimits, shown
from services.gateway.tenant_usage import TenantUsage
from services.projector.store import Census, StateStore
from services.runtime.durability import state_durability
from services.runtime.heartbeat import alive_here
from services.runtime.kafka import admin_client
from services.runtime.key_migration import migrate_keys
from services.runtime.redis_client import redis_client
from services.runtime.replay import TopicReader
from services.runtime.settings import Settings
from services.search.hybrid import Mode
from services.watchdog.dead_letter_replay import Letter, read_letters
from services.watchdog.dead_letter_replay import replayed as replayed_letters
from services.watchdog.service import build as build_watchdog
from topics import TOPICS, ApplyReport, apply_topics, missing_topics
from topics.catalog import DLQ

console = Console()
SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "samples"


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    sys.exit(1)


def _print_json(value: object) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def _stack_table(statuses: list[ComponentStatus]) -> Table:
    table = Table("server", "where", "pid", "state")
    for s in statuses:
        state = "[green]ready[/]" if s.healthy else f"[red]{s.problem}[/]"
        where = f"{s.address} (external)" if s.external else f"port {s.port}"
        table.add_row(s.name, where, str(s.pid or "-"), state)
    return table


def _print_topic_report(report: ApplyReport) -> None:
    for name in report.created:
        console.print(f"  created   {name}")
    for name in report.unchanged:
        console.print(f"  ok        {name}")
    for line in report.mismatches:
        console.print(f"  [red]mismatch[/]  {line}", highlight=False)


def _bring_up(settings: Settings) -> None:
    started = time.monotonic()
    stack = Stack(settings)
    try:
        with console.status("starting the embedded stack..."):
            statuses = stack.up()
    except StackError as exc:
        _fail(str(exc))
    console.print(_stack_table(statuses))
    console.print(f"stack ready in {time.monotonic() - started:.1f}s (state in {stack.state_dir})")
    report = apply_topics(admin_client(settings), TOPICS, settings)
    console.print("topics:")
    _print_topic_report(report)
    if not report.ok:
        _fail("topics differ from their declarations (see above)")
    try:
        with console.status("starting the services..."):
            start_services(settings)
    except RuntimeError as exc:
        _fail(str(exc))
    console.print(f"services up: {', '.join(services_status(settings))}; gateway on {settings.gateway_url}")


T = TypeVar("T")


@click.group()
def cli() -> None:
    """indexflow: streaming document indexing for retrieval-augmented generation."""


@cli.command()
def up() -> None:
    """Start the embedded Kafka, Elasticsearch and Redis (those the settings do not name by URL:
    external servers are checked, never started), create the topics, run every service."""
    _bring_up(Settings())


@cli.command()
@click.argument("stage", type=click.Choice(SCALABLE))
@click.argument("replicas", type=click.IntRange(1, 64))
def scale(stage: str, replicas: int) -> None:
    """Run REPLICAS processes of STAGE on the embedded stack (each a member of the stage's consumer
    groups: more than the topics' partitions leaves the extra ones idle)."""
    settings = Settings()
    if replicas > settings.partitions:
        console.print(f"[yellow]{replicas} replicas for {settings.partitions} partitions: "
                      f"{replicas - settings.partitions} will have nothing to consume[/yellow]")
    write_replicas(settings.state_dir, stage, replicas)
    if not services_status(settings):
        console.print(f"{stage}: {replicas} replica(s) when the services start (indexflow up)")
        return
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        running = [n for n, s in services_status(settings).items()
                   if (n == stage or n.startswith(f"{stage}-")) and s.get("pid")]
        if len(running) == replicas:
            console.print(f"{stage}: {replicas} replica(s) running ({', '.join(sorted(running))})")
            return
        time.sleep(0.5)
    _fail(f"{stage}: the supervisor did not reach {replicas} replica(s) within 30s; see indexflow status")


@cli.command()
def down() -> None:
    """Stop the services and the embedded stack."""
    settings = Settings()
    services = stop_services(settings)
    stopped = (["services"] if services else []) + Stack(settings).down()
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@cli.command()
@click.argument("document", required=False)
@click.option("--tenant", default="default", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def status(document: str | None, tenant: str, as_json: bool) -> None:
    """The stack, the services and document counts; or one DOCUMENT's state."""
    settings = Settings()
    if document:
        state = StateStore(redis_client(settings), settings.keys).get(document_key(tenant, document))
        if state is None:
            _fail(f"no state for document {document} (tenant {tenant})")
        if as_json:
            _print_json(state.model_dump(mode="json"))
        else:
            _print_state(state.model_dump(mode="json"))
        return
    stack = Stack(settings).status()
    services = services_status(settings)
    healthy = all(s.healthy for s in stack)
    census = StateStore(redis_client(settings), settings.keys).census() if healthy else Census()
    counts = dict(census.statuses)
    if as_json:
        _print_json(
            {
                "stack": {s.name: {"port": s.port, "address": s.address, "pid": s.pid, "healthy": s.healthy}
                          for s in stack},
                "services": services,
                "documents": counts,
                "backlog": census.backlog,
            }
        )
    else:
        console.print(_stack_table(stack))
        table = Table("service", "pid", "restarts", "metrics")
        for name, info in services.items():
            port = info.get("metrics_port")
            table.add_row(name, str(info["pid"] or "-"), str(info["restarts"]),
                          f"http://{settings.metrics_host}:{port}/metrics" if port else "-")
        console.print(table if services else "services: not running")
        console.print("documents: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"))
        if census.backlog:
            console.print(_backlog_table(census.backlog))
    if not healthy:
        sys.exit(1)


def _backlog_table(backlog: dict[str, dict[str, Counter]]) -> Table:
    """What waits, and for whom: documents not yet terminal per lane and tenant."""
    table = Table("lane", "tenant", "documents", "by status", title="backlog")
    for lane in sorted(backlog, key=lambda name: name != Priority.INTERACTIVE):
        for tenant, statuses in sorted(backlog[lane].items(), key=lambda item: -item[1].total()):
            table.add_row(lane, tenant, str(statuses.total()),
                          ", ".join(f"{status} {n}" for status, n in statuses.most_common()))
    return table


def _print_state(state: dict) -> None:
    table = Table("field", "value", show_header=False)
    for key in ("document_id", "name", "dataset_id", "revision", "status", "stage", "progress", "segment_count",
                "token_count", "attempts", "indexing_latency", "error", "error_stage"):
        table.add_row(key, str(state.get(key)))
    for status, at in state.get("transitions", {}).items():
        table.add_row(f"at {status}", at)
    console.print(table)


def _run_ingest(
    settings: Settings, paths: list[Path], dataset: str, tenant: str, as_json: bool, prune: bool = False,
    options: dict | None = None,
) -> IngestSummary:
    files = collect_files(paths)
    if not files and not prune:
        _fail("no files to ingest")
    with Progress(
        TextColumn("[bold]ingesting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=Console(stderr=True), disable=as_json,
    ) as progress:
        task = progress.add_task("ingest", total=len(files))
        summary = ingest(settings, files, dataset, tenant, prune,
                         lambda done, total: progress.update(task, completed=done, total=total), options=options)
    return summary


def _print_summary(summary: IngestSummary) -> None:
    console.print(
        f"{summary.documents} files: {summary.created} new, {summary.updated} updated, "
        f"{summary.unchanged} unchanged, {summary.deleted} deleted; "
        f"[green]{summary.completed} completed[/], [red]{summary.error} error[/], "
        f"{summary.segments} segments, {summary.seconds:.1f}s"
    )
    table = Table("document", "status", "segments", "reason")
    for state in sorted(summary.states, key=lambda s: (s["status"], s.get("name") or "")):
        table.add_row(state.get("name") or state["document_id"], state["status"], str(state.get("segment_count") or ""),
                      state.get("error") or "")
    console.print(table)
    if summary.errors:
        reasons = Table("errors by reason", "documents")
        for reason, count in summary.errors.items():
            reasons.add_row(reason, str(count))
        console.print(reasons)


@cli.command("ingest")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--dataset", default="default", show_default=True)
@click.option("--tenant", default="default", show_default=True)
@click.option("--prune", is_flag=True, help="delete the dataset's documents that no file stands for any more")
@click.option("--indexing-technique", type=click.Choice(["high_quality", "economy"]), default=None,
              help="economy: BM25 only, no embedding (default: the dataset's)")
@click.option("--json", "as_json", is_flag=True, help="print the summary as one JSON object")
def ingest_command(paths: tuple[Path, ...], dataset: str, tenant: str, prune: bool, indexing_technique: str | None,
                   as_json: bool) -> None:
    """Sync files and folders into a dataset: each file is one document (its id from the dataset and
    the file's path), unchanged files are skipped, changed ones updated; follow them until every
    document is completed or in error."""
    settings = Settings()
    options = {"indexing_technique": indexing_technique} if indexing_technique else None
    try:
        summary = _run_ingest(settings, list(paths), dataset, tenant, as_json, prune, options)
    except httpx.HTTPError as exc:
        _fail(f"gateway {settings.gateway_url}: {exc} (is `indexflow up` running?)")
    if as_json:
        _print_json(summary.as_json())
    else:
        _print_summary(summary)


@cli.command()
@click.argument("query")
@click.option("--dataset", default=None, help="search one dataset (default: all of the tenant's)")
@click.option("--tenant", default="default", show_default=True)
@click.option("--top-k", default=5, show_default=True, type=click.IntRange(1, 100))
@click.option("--mode", type=click.Choice(get_args(Mode)), default="hybrid", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def search(query: str, dataset: str | None, tenant: str, top_k: int, mode: str, as_json: bool) -> None:
    """Hybrid (BM25 + kNN) search over the indexed chunks."""
    settings = Settings()
    response = httpx.post(
        f"{settings.gateway_url}/v1/retrieve",
        json={"query": query, "top_k": top_k, "mode": mode, "dataset_id": dataset},
        headers={"X-Tenant-Id": tenant},
        timeout=60,
    )
    if response.status_code != 200:
        _fail(f"search failed: {response.status_code} {response.text[:300]}")
    records = response.json()["records"]
    if as_json:
        _print_json(records)
        return
    table = Table("#", "score", "document", "page", "text")
    for rank, hit in enumerate(records, 1):
        text = " ".join(hit["content"].split())
        table.add_row(str(rank), f"{hit['score']:.4f}", hit["name"], str(hit["page"] or ""), text[:160])
    console.print(table if records else "no results")


@cli.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--mode", type=click.Choice(["automatic", "hierarchical"]), default="automatic", show_default=True)
@click.option("--model", default=None, help="embedding model (default: the deployment's)")
@click.option("--economy", is_flag=True, help="BM25 only: nothing embedded")
@click.option("--json", "as_json", is_flag=True)
def estimate(path: Path, mode: str, model: str | None, economy: bool, as_json: bool) -> None:
    """What indexing PATH would make, here, without the stack: segments, tokens, the price of
    embedding them, and the first segments."""
    from services.embedder.models import EmbeddingSettings, check_model
    from services.estimate.estimator import Estimator
    from services.extractor.parsers import UnextractableDocument
    from services.extractor.settings import ExtractorSettings
    from schemas import IndexingSpec, ProcessRule

    embedding = EmbeddingSettings()
    try:
        check_model(model or embedding.default_model)
    except ValueError as exc:
        _fail(str(exc))
    indexing = IndexingSpec(
        process_rule=ProcessRule(mode=mode), doc_form="hierarchical_model" if mode == "hierarchical" else "text_model",
        indexing_technique="economy" if economy else "high_quality",
        embedding_model=None if economy else model or embedding.default_model,
    )
    sandbox = ExtractorSettings().sandbox()
    try:
        answer = Estimator(sandbox, embedding).from_file(path.name, path, indexing)
    except UnextractableDocument as exc:
        _fail(f"cannot estimate {path}: {exc}")
    finally:
        sandbox.close()
    if as_json:
        _print_json(answer.as_dict())
        return
    console.print(f"{path.name}: {answer.total_segments} segments, {answer.tokens} tokens; embedding "
                  f"{answer.embedding_tokens} tokens with {answer.model or 'nothing (economy)'} costs "
                  f"{answer.total_price:.6f} {answer.currency}", highlight=False)
    for number, item in enumerate(answer.preview, 1):
        console.print(f"  {number:>2}. {' '.join(item['content'].split())[:150]}", highlight=False)
        for child in item["child_chunks"][:3]:
            console.print(f"        - {' '.join(child.split())[:140]}", highlight=False)


@cli.command()
def demo() -> None:
    """The main job on the embedded default: stack + services up, ingest the samples, show
    their states and run a search."""
    settings = Settings()
    _bring_up(settings)
    summary = _run_ingest(settings, [SAMPLES], "samples", "default", as_json=False)
    _print_summary(summary)
    query = "how are documents kept in order in Kafka"
    console.print(f"\nsearch: {query!r}")
    search.callback(query, "samples", "default", 3, "hybrid", False)
    console.print(f"\n[green]running[/]: dashboard on {settings.gateway_url}/dashboard; try "
                  "`.venv/bin/indexflow search \"...\"`; stop with `.venv/bin/indexflow down`")


@cli.command()
@click.option("--dry-run", is_flag=True, help="report only; repair nothing")
@click.option("--json", "as_json", is_flag=True)
def reconcile(dry_run: bool, as_json: bool) -> None:
    """Audit the index against the document states; re-drive documents with chunks missing and
    delete chunks of revisions no document serves. Exit 1 when anything differed."""
    watchdog = build_watchdog(Settings())
    report = watchdog.reconciler.run(repair=not dry_run)
    watchdog.producer.flush()
    if as_json:
        _print_json(dataclasses.asdict(report) | {"consistent": report.consistent})
    else:
        console.print(f"{report.audited} documents audited: {len(report.missing)} with chunks missing, "
                      f"{report.stale_chunks} stale chunks in {len(report.stale_documents)} documents"
                      + ("" if dry_run else f"; re-driven {len(report.redriven)}"))
        for missing in report.missing:
            console.print(f"  missing  {missing.document_key} revision {missing.revision}: "
                          f"{missing.found} of {missing.expected} chunks", highlight=False)
    if not report.consistent:
        sys.exit(1)


@cli.group()
def dlq() -> None:
    """Dead letters: records a stage gave up on, kept with the reason."""


def _letters(settings: Settings, tenant: str | None, document: str | None) -> list[Letter]:
    letters = read_letters(TopicReader(settings, settings.topic(DLQ.name)))
    return [
        letter for letter in letters
        if (tenant is None or letter.letter.tenant_id == tenant)
        and (document is None or letter.letter.document_id == document)
    ]


@dlq.command("list")
@click.option("--tenant", default=None)
@click.option("--document", default=None, help="a document id (with --tenant)")
@click.option("--json", "as_json", is_flag=True, help="every field of every letter")
def dlq_list(tenant: str | None, document: str | None, as_json: bool) -> None:
    """Every dead letter, oldest first per partition, and whether it was replayed."""
    settings = Settings()
    letters = _letters(settings, tenant, document)
    replayed = replayed_letters(redis_client(settings), settings.keys, letters)
    if as_json:
        _print_json([
            {"letter": letter.position, "document": letter.document, "replayed": replayed.get(letter.position),
             **letter.letter.model_dump(mode="json")}
            for letter in letters
        ])
        return
    table = Table("letter", "failed at", "stage", "document", "rev", "error", "replayed")
    for letter in letters:
        dead = letter.letter
        table.add_row(letter.position, dead.failed_at.strftime("%Y-%m-%d %H:%M:%S"), dead.stage,
                      letter.document or f"(unreadable {dead.source_topic} record)", str(dead.revision or "-"),
                      dead.error[:80], (replayed.get(letter.position) or {}).get("at", "")[:19])
    console.print(table)
    console.print(f"{len(letters)} dead letters")


@dlq.command("replay")
@click.option("--letter", "positions", multiple=True, help="PARTITION:OFFSET of a letter (repeatable)")
@click.option("--document", default=None, help="every letter of a document id (with --tenant)")
@click.option("--tenant", default=None)
@click.option("--all", "everything", is_flag=True, help="every letter not replayed yet")
@click.option("--json", "as_json", is_flag=True)
def dlq_replay(positions: tuple[str, ...], document: str | None, tenant: str | None, everything: bool,
               as_json: bool) -> None:
    """Send dead letters back: a letter naming its document re-drives the document (a new
    revision, as a retry); an unreadable record goes back to its topic as it was. A letter is
    replayed once."""
    if sum((bool(positions), document is not None, everything)) != 1:
        _fail("name what to replay: --letter P:O, --document ID (with --tenant) or --all")
    if document is not None and tenant is None:
        _fail("--document needs --tenant")
    settings = Settings()
    letters = _letters(settings, tenant, document)
    if positions:
        unknown = set(positions) - {letter.position for letter in letters}
        if unknown:
            _fail(f"no dead letter at {', '.join(sorted(unknown))}")
        letters = [letter for letter in letters if letter.position in positions]
    outcomes = build_watchdog(settings).dead_letters.replay(letters)
    if as_json:
        _print_json([dataclasses.asdict(o) for o in outcomes])
        return
    for outcome in outcomes:
        console.print(f"  {outcome.letter:>10}  {outcome.action:<11} {outcome.detail}", highlight=False)
    console.print(f"{sum(o.action != 'skipped' for o in outcomes)} of {len(outcomes)} letters replayed")


@cli.command()
@click.argument("service")
@click.option("--within", default=60.0, show_default=True, help="seconds")
def alive(service: str, within: float) -> None:
    """Liveness probe: exit 0 if a SERVICE process on this host showed life within the time."""
    settings = Settings()
    if not alive_here(redis_client(settings), settings.keys, service, within):
        _fail(f"no sign of life from {service} on this host in the last {within:.0f}s")


@cli.command()
@click.option("--tenant", required=True, help="whose datasets")
@click.option("--dataset", "datasets", multiple=True, help="only these (repeat); default: all of the tenant's")
@click.option("--to", "target_url", required=True, help="the target deployment's gateway, e.g. http://gateway:18080")
@click.option("--key", default=None, help="an API key of the target for the tenant (`indexflow keys create` there)")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def republish(tenant: str, datasets: tuple[str, ...], target_url: str, key: str | None, as_json: bool) -> None:
    """Publish a tenant's datasets again on another deployment (embedded stack -> production): every
    live document from its newest upsert and the blob store, same ids, names, metadata and options."""
    headers = {"Authorization": f"Bearer {key}"} if key else {"X-Tenant-Id": tenant}
    with httpx.Client(base_url=target_url, headers=headers, timeout=120) as target:
        try:
            report = run_republish(Settings(), tenant, target, list(datasets) or None)
        except (RepublishError, httpx.HTTPError) as exc:
            _fail(str(exc))
    if as_json:
        _print_json(dataclasses.asdict(report))
        return
    console.print(f"{len(report.datasets)} datasets: {report.published} documents published, "
                  f"{report.unchanged} already there, {len(report.skipped)} skipped")
    for document, why in report.skipped.items():
        console.print(f"  skipped {document}: {why}", highlight=False)


@cli.group()
def keys() -> None:
    """Gateway API keys (each bound to one tenant; stored hashed)."""


def _api_keys() -> ApiKeys:
    settings = Settings()
    return ApiKeys(redis_client(settings), settings.keys)


@keys.command("create")
@click.option("--tenant", required=True)
@click.option("--name", default="", help="what the key is for")
def keys_create(tenant: str, name: str) -> None:
    """Create a key; it is printed once and cannot be shown again."""
    try:
        TypeAdapter(Id).validate_python(tenant)
    except ValidationError:
        _fail(f"invalid tenant id {tenant!r}")
    key, record = _api_keys().create(tenant, name)
    state_durability(Settings()).wait()  # a key handed out must survive a Redis host failure
    console.print(f"key {record.key_id} for tenant {tenant} (shown once, store it now):", highlight=False)
    sys.stdout.write(key + "\n")


@keys.command("list")
def keys_list() -> None:
    table = Table("key id", "tenant", "name", "created")
    for record in _api_keys().list():
        table.add_row(record.key_id, record.tenant_id, record.name, record.created_at)
    console.print(table)


@keys.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke the key with this id (as `keys list` shows it)."""
    if not _api_keys().revoke(key_id):
        _fail(f"no single key with id {key_id}")
    console.print(f"revoked {key_id}")


@cli.command("migrate-redis-keys")
def migrate_redis_keys() -> None:
    """Move the state Redis's keys of a deployment's earlier layouts to today's (once, when upgrading
    it, with its services stopped): untagged keys under the namespace's hash tag, then each tenant's
    state under the tenant's."""
    settings = Settings()
    migrated = migrate_keys(redis_client(settings), settings.keys)
    console.print(f"moved {migrated.moved} keys and fields; {migrated.left} left (their new names exist already)")
    if migrated.left:
        sys.exit(1)


@cli.group()
def tenants() -> None:
    """Each tenant's limits (the gateway's defaults, INDEXFLOW_GATEWAY_MAX_*, unless set here) and use."""


def _tenant_limits() -> tuple[Settings, TenantLimits]:
    settings = Settings()
    return settings, TenantLimits(redis_client(settings), None, settings.keys, GatewaySettings())


@tenants.command("set-limits")
@click.argument("tenant")
@click.option("--datasets", type=click.IntRange(min=1), help="datasets at most")
@click.option("--documents", type=click.IntRange(min=1), help="documents at most")
@click.option("--bytes", "stored_bytes", type=click.IntRange(min=1), help="bytes stored at most (texts and uploads)")
@click.option("--rps", type=click.FloatRange(min=0, min_open=True), help="requests per second (per gateway replica)")
@click.option("--streams", type=click.IntRange(min=1), help="live event streams open at once (per replica)")
@click.option("--estimates", type=click.IntRange(min=1), help="estimates queued or running at once (per replica)")
@click.option("--searches", type=click.IntRange(min=1), help="searches being answered at once (per replica)")
@click.option("--tags", type=click.IntRange(min=1), help="knowledge tags at most")
def tenants_set_limits(tenant: str, stored_bytes: int | None, **limits: float | None) -> None:
    """Set the tenant's own limits (those not named keep theirs); gateways apply them within
    INDEXFLOW_GATEWAY_LIMITS_CACHE_SECONDS."""
    changes = {name: value for name, value in {**limits, "bytes": stored_bytes}.items() if value is not None}
    if not changes:
        _fail("name a limit to set, e.g. --documents 100000")
    _tenant_limits()[1].set(tenant, **changes)
    _print_limits(tenant)


@tenants.command("show")
@click.argument("tenant")
@click.option("--json", "as_json", is_flag=True)
def tenants_show(tenant: str, as_json: bool) -> None:
    """The tenant's limits, which of them the operator set, and what it holds."""
    _print_limits(tenant, as_json)


def _print_limits(tenant: str, as_json: bool = False) -> None:
    settings, registry = _tenant_limits()
    own = registry.own(tenant)
    usage = TenantUsage(redis_client(settings), settings.keys).of(tenant)
    datasets = len(DatasetCatalog(redis_client(settings), settings.keys).all(tenant))
    used = {"datasets": datasets, "documents": usage.documents, "bytes": usage.bytes}
    rows = {name: {"limit": limit, "set": name in own, "used": used.get(name)}
            for name, limit in registry.of(tenant).model_dump().items()}
    if as_json:
        _print_json({"tenant": tenant, "limits": rows})
        return
    table = Table("limit", "value", "set for the tenant", "held", title=f"tenant {tenant}")
    for name, row in rows.items():
        table.add_row(f"{name} ({DESCRIPTIONS[name]})", shown(row["limit"]), "yes" if row["set"] else "default",
                      "-" if row["used"] is None else f"{row['used']:,}")
    console.print(table)


@cli.group()
def topics() -> None:
    """Kafka topics."""


def _on_kafka(work: Callable[..., T]) -> T:
    """``work(admin, TOPICS, settings)``; a broker that cannot be reached is reported, not a traceback."""
    settings = Settings()
    try:
        return work(admin_client(settings), TOPICS, settings)
    except Exception as exc:  # noqa: BLE001 - any broker failure is reported, not a traceback
        _fail(f"cannot reach Kafka at {settings.kafka_bootstrap_servers}: {exc}")


@topics.command("apply")
def topics_apply() -> None:
    """Create missing topics; report any that differ from their declaration."""
    report = _on_kafka(apply_topics)
    _print_topic_report(report)
    if not report.ok:
        sys.exit(1)


@topics.command("check")
def topics_check() -> None:
    """Exit 1 while any declared topic is missing (creates nothing): what services wait on."""
    missing = _on_kafka(missing_topics)
    if missing:
        _fail(f"missing topics (run `indexflow topics apply`): {', '.join(missing)}")
    console.print(f"all {len(TOPICS)} topics exist")


@cli.group()
def schemas() -> None:
    """Event contracts."""


@schemas.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=Path("schemas/json"))
def schemas_export(directory: Path) -> None:
    """Write one JSON Schema file per topic into DIRECTORY."""
    for path in export_json_schemas(directory):
        console.print(f"  wrote {path}")


@cli.group()
def projector() -> None:
    """The status projector."""


@projector.command("rebuild")
def projector_rebuild() -> None:
    """Rebuild every document's state in Redis from the status topic alone (safe while the
    projector runs: a state it folded from a later event is kept)."""
    from services.projector.rebuild import rebuild

    report = rebuild(Settings())
    console.print(f"rebuilt the state of {report.written} documents from the status topic")
    if report.kept:
        console.print(f"{len(report.kept)} kept as the live projector folded them (it was ahead of this rebuild)")


cli.add_command(sources_commands)
