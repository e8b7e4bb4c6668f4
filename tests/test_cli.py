"""The command line against the running pipeline: ingest, status, search."""

from __future__ import annotations

from pathlib import Path

import orjson
from click.testing import CliRunner

from services.cli.main import SAMPLES, cli
from services.runtime.settings import Settings


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_ingest_status_and_search(pipeline: Settings, tmp_path: Path):
    summary = orjson.loads(run("ingest", str(SAMPLES), "--dataset", "cli", "--tenant", "cli", "--json"))
    assert summary["documents"] == len(list(SAMPLES.iterdir()))
    assert summary["completed"] == summary["documents"] and summary["error"] == 0 and summary["errors"] == {}
    assert summary["segments"] >= summary["documents"] and summary["seconds"] > 0

    overview = orjson.loads(run("status", "--json"))
    assert all(s["healthy"] for s in overview["stack"].values())
    assert set(overview["services"]) == {"extractor", "splitter", "embedder", "indexer", "projector", "watchdog", "gateway"}
    assert overview["documents"]["completed"] >= summary["completed"]

    hits = orjson.loads(run("search", "reciprocal rank fusion", "--dataset", "cli", "--tenant", "cli", "--json"))
    assert hits[0]["name"] == "hybrid-search.html"
    document = orjson.loads(run("status", hits[0]["document_id"], "--tenant", "cli", "--json"))
    assert document["status"] == "completed" and document["name"] == "hybrid-search.html"

    empty = tmp_path / "empty.txt"
    empty.write_text("")
    failed = orjson.loads(run("ingest", str(empty), "--dataset", "cli", "--tenant", "cli", "--json"))
    assert failed["error"] == 1 and failed["errors"] == {"empty document (0 bytes)": 1}
