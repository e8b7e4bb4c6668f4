"""Every file of ../shared/corpus/documents through `indexflow ingest`: each ends completed or in
error with a reason, no service restarts, and each error's original record is in the DLQ."""

from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner

from deploy.supervisor import read_status
from schemas import DEAD_LETTERS, DOCUMENT_EVENTS
from services.cli.main import cli
from services.projector.store import StateStore
from services.runtime.redis_client import redis_client
from services.runtime.replay import TopicReader
from services.runtime.settings import Settings
from tests.conftest import SHARED
from topics.catalog import DLQ

CORPUS = SHARED / "corpus" / "documents"


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"{CORPUS} not found: the test corpus lives in ../shared")
def test_the_whole_corpus_ends_terminal_without_a_service_restart(pipeline: Settings):
    files = sorted(p for p in CORPUS.iterdir() if p.is_file())
    result = CliRunner().invoke(cli, ["ingest", str(CORPUS), "--dataset", "corpus", "--tenant", "qa", "--json"])
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.output)
    print(f"\ncorpus ingest: {summary}")

    assert summary["documents"] == len(files)
    assert summary["completed"] + summary["error"] == len(files), "every document must end terminal"
    assert summary["completed"] >= len(files) * 0.8
    assert summary["segments"] > 1000
    assert "unknown" not in summary["errors"], "every error needs a reason"
    assert "encrypted PDF: a password is required" in summary["errors"]
    assert "empty document (0 bytes)" in summary["errors"]

    store = StateStore(redis_client(pipeline), pipeline.keys)
    states = {s.name: s for s in store.dataset("qa", "corpus")}
    big = states["pdf_DA-619p.pdf"]
    assert big.status == "completed" and big.segment_count > 500, big
    assert states["pdf_password.pdf"].error_stage == "extractor"

    # Each failed document's original event is kept in the DLQ, byte for byte.
    failed = {s.document_id for s in states.values() if s.status == "error"}
    lettered = set()
    for message in TopicReader(pipeline, pipeline.topic(DLQ.name)).read():
        letter = DEAD_LETTERS.decode(message.value())
        if letter.tenant_id == "qa":
            assert DOCUMENT_EVENTS.decode(letter.inline_value).document_id == letter.document_id
            lettered.add(letter.document_id)
    assert failed <= lettered

    restarts = {name: info["restarts"] for name, info in read_status(pipeline.state_dir).items()}
    assert restarts and not any(restarts.values()), restarts

