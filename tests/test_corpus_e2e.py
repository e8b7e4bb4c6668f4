"""Every file of ../shared/corpus/documents through `indexflow ingest`: each ends completed or in
error with a reason, no service restarts, and each error's original record is in the DLQ. As an
economy (BM25-only) dataset: what is under test is what each file's extraction and splitting end
in, and its ~6,000 segments would otherwise cost ~4 minutes of the model on 2 cores."""

from __future__ import annotations

import re

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
# What a file with nothing to read fails with: empty, no text (after OCR), a password, sound.
NO_TEXT = re.compile(r"^(empty document|no text|encrypted (PDF|document)|unsupported type (audio|video)/)")


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"{CORPUS} not found: the test corpus lives in ../shared")
def test_the_whole_corpus_ends_terminal_without_a_service_restart(pipeline: Settings):
    files = sorted(p for p in CORPUS.iterdir() if p.is_file())
    result = CliRunner().invoke(cli, ["ingest", str(CORPUS), "--dataset", "corpus", "--tenant", "qa",
                                      "--indexing-technique", "economy", "--json"])
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.output)
    print(f"\ncorpus ingest: { {k: v for k, v in summary.items() if k != 'states'} }")

    assert summary["documents"] == len(files)
    assert summary["completed"] + summary["error"] == len(files), "every document must end terminal"
    assert summary["segments"] > 1000
    assert "unknown" not in summary["errors"], "every error needs a reason"
    assert "encrypted PDF: a password is required" in summary["errors"]
    assert "empty document (0 bytes)" in summary["errors"]

    store = StateStore(redis_client(pipeline), pipeline.keys)
    states = {s.name: s for s in store.dataset("qa", "corpus")}
    big = states["pdf_DA-619p.pdf"]
    assert big.status == "completed" and big.segment_count > 500, big
    assert states["pdf_password.pdf"].error_stage == "extractor"

    # Only a file with no text to read ends in error: images and scans are OCR'd, mail in UTF-16 read.
    failed_for = {s.name: s.error for s in states.values() if s.status == "error"}
    assert all(NO_TEXT.search(reason or "") for reason in failed_for.values()), failed_for
    assert len(failed_for) <= 7, failed_for
    for scan in ("img_DA-1p.jpg", "img_layout-parser-paper-combined.tiff", "img_table-multi-row-column-cells.png"):
        assert states[scan].status == "completed" and states[scan].ocr_pages >= 1, states[scan]
        assert states[scan].ocr_seconds > 0
    assert states["eml_fake-email-utf-16.eml"].status == "completed"

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

