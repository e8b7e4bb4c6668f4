"""``indexflow``: run the embedded stack, manage topics and contracts."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from deploy.stack import ComponentStatus, Stack, StackError
from services.cli.schemas_export import export_json_schemas
from services.runtime.kafka import admin_client
from services.runtime.settings import Settings
from topics import CATALOG, ApplyReport, apply_topics

console = Console()


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    sys.exit(1)


def _stack_table(statuses: list[ComponentStatus]) -> Table:
    table = Table("server", "port", "pid", "state")
    for s in statuses:
        state = "[green]ready[/]" if s.healthy else f"[red]{s.problem}[/]"
        table.add_row(s.name, str(s.port), str(s.pid or "-"), state)
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
    report = apply_topics(admin_client(settings), CATALOG, settings)
    console.print("topics:")
    _print_topic_report(report)
    if not report.ok:
        _fail("topics differ from their declarations (see above)")


@click.group()
def cli() -> None:
    """indexflow: streaming document indexing for retrieval-augmented generation."""


@cli.command()
def up() -> None:
    """Start the embedded Kafka, Elasticsearch and Redis, and create the topics."""
    _bring_up(Settings())


@cli.command()
def down() -> None:
    """Stop everything `up` started."""
    stopped = Stack(Settings()).down()
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@cli.command()
def status() -> None:
    """Show whether each embedded server is running and answering."""
    statuses = Stack(Settings()).status()
    console.print(_stack_table(statuses))
    if not all(s.healthy for s in statuses):
        sys.exit(1)


@cli.command()
def demo() -> None:
    """The main job on the embedded default: bring the stack up and report its health."""
    settings = Settings()
    _bring_up(settings)
    console.print("[green]healthy[/]: stop it with `.venv/bin/indexflow down`")


@cli.group()
def topics() -> None:
    """Kafka topics."""


@topics.command("apply")
def topics_apply() -> None:
    """Create missing topics; report any that differ from their declaration."""
    settings = Settings()
    try:
        report = apply_topics(admin_client(settings), CATALOG, settings)
    except Exception as exc:  # noqa: BLE001 - any broker failure is reported, not a traceback
        _fail(f"cannot reach Kafka at {settings.kafka_bootstrap_servers}: {exc}")
    _print_topic_report(report)
    if not report.ok:
        sys.exit(1)


@cli.group()
def schemas() -> None:
    """Event contracts."""


@schemas.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=Path("schemas/json"))
def schemas_export(directory: Path) -> None:
    """Write one JSON Schema file per topic into DIRECTORY."""
    for path in export_json_schemas(directory):
        console.print(f"  wrote {path}")
