"""``indexflow sources``: define, list, sync and remove a dataset's sources through the gateway;
a sync is followed, its counts shown as they move, until its run has finished."""

from __future__ import annotations

import sys
import time

import click
import httpx
import orjson
from rich.console import Console
from rich.table import Table

from services.runtime.settings import Settings

_POLL_SECONDS = 0.5
console = Console()


def _client(tenant: str, key: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {"X-Tenant-Id": tenant}
    return httpx.Client(base_url=Settings().gateway_url, headers=headers, timeout=60)


def _answer(response: httpx.Response) -> dict:
    if response.status_code >= 400:
        try:
            message = response.json().get("message") or response.text
        except ValueError:
            message = response.text
        console.print(f"[bold red]error:[/] {response.status_code} {message}", highlight=False)
        sys.exit(1)
    return response.json()


def _counts(run: dict) -> str:
    return (f"{run['listed']} listed: {run['created']} new, {run['updated']} updated, {run['unchanged']} unchanged, "
            f"{run['deleted']} deleted, {run['failed']} failed")


def _target(function):
    for option in (click.option("--key", default=None, help="an API key (else the tenant, as open mode takes it)"),
                   click.option("--tenant", default="default", show_default=True),
                   click.option("--dataset", required=True, help="the dataset's id")):
        function = option(function)
    return function


@click.group()
def sources() -> None:
    """A dataset's sources: folders, websites, S3 buckets and Notion kept in sync."""


@sources.command("add")
@_target
@click.option("--kind", type=click.Choice(["folder", "web", "s3", "notion"]), required=True)
@click.option("--name", required=True)
@click.option("--config", "config", required=True, help='the kind\'s settings as JSON, e.g. \'{"path": "/srv/docs"}\'')
@click.option("--every", type=int, default=None, help="seconds between syncs (default: only when asked)")
@click.option("--json", "as_json", is_flag=True)
def add(dataset: str, tenant: str, key: str | None, kind: str, name: str, config: str, every: int | None,
        as_json: bool) -> None:
    """Add a source to a dataset."""
    try:
        parsed = orjson.loads(config)
    except orjson.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--config") from None
    with _client(tenant, key) as client:
        source = _answer(client.post(f"/v1/datasets/{dataset}/sources",
                                     json={"kind": kind, "name": name, "config": parsed, "every": every}))
    if as_json:
        click.echo(orjson.dumps(source).decode())
    else:
        console.print(f"source {source['id']} ({kind}) added to dataset {dataset}", highlight=False)


@sources.command("list")
@_target
@click.option("--json", "as_json", is_flag=True)
def list_sources(dataset: str, tenant: str, key: str | None, as_json: bool) -> None:
    """The dataset's sources and their last runs."""
    with _client(tenant, key) as client:
        listed = _answer(client.get(f"/v1/datasets/{dataset}/sources"))["data"]
    if as_json:
        click.echo(orjson.dumps(listed).decode())
        return
    table = Table("id", "kind", "name", "every", "last run", "counts")
    for source in listed:
        run = source["last_run"]
        table.add_row(source["id"], source["kind"], source["name"], str(source["every"] or "manual"),
                      f"{run['status']} {run['started_at']}" if run else "never", _counts(run) if run else "")
    console.print(table)


@sources.command("sync")
@click.argument("source_id")
@_target
@click.option("--no-wait", is_flag=True, help="answer the run as started, without following it")
@click.option("--timeout", type=float, default=3600.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print the finished run as one JSON object")
def sync(source_id: str, dataset: str, tenant: str, key: str | None, no_wait: bool, timeout: float,
         as_json: bool) -> None:
    """Sync a source now, and follow the run until it has finished."""
    base = f"/v1/datasets/{dataset}/sources/{source_id}"
    with _client(tenant, key) as client:
        run = _answer(client.post(f"{base}/sync"))
        deadline = time.monotonic() + timeout
        # Progress on stderr, as ingest shows it, so --json keeps stdout to the answer.
        with Console(stderr=True).status("syncing") as status:
            while not no_wait and run["status"] == "running" and time.monotonic() < deadline:
                status.update(f"syncing: {_counts(run)}")
                time.sleep(_POLL_SECONDS)
                run = _answer(client.get(base))["last_run"]
    if as_json:
        click.echo(orjson.dumps(run).decode())
        return
    console.print(f"run {run['id']} {run['status']}: {_counts(run)}", highlight=False, soft_wrap=True)
    for error in run["errors"]:
        console.print(f"  {error['item'] or 'listing'}: {error['reason']}", highlight=False)
    if run["status"] == "error":
        sys.exit(1)


@sources.command("remove")
@click.argument("source_id")
@_target
@click.option("--delete-documents/--keep-documents", required=True,
              help="whether the source's documents go too, or stay in the dataset")
def remove(source_id: str, dataset: str, tenant: str, key: str | None, delete_documents: bool) -> None:
    """Remove a source from its dataset."""
    with _client(tenant, key) as client:
        answer = _answer(client.delete(f"/v1/datasets/{dataset}/sources/{source_id}",
                                       params={"delete_documents": str(delete_documents).lower()}))
    console.print(f"source {source_id} removed; {answer['documents_deleted']} documents deleted", highlight=False)
