"""Priority lanes: which lane a record takes, that an interactive document overtakes a bulk
backlog, and that a document's revisions on two lanes still end with the newest one alone
(the revision gate orders them; Kafka orders only one lane)."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from schemas import DOCUMENT_EVENTS, DocumentUpserted, InlineSource, Priority
from services.cli.ingest import collect_files, ingest
from services.cli.main import cli
from services.runtime.producer import Producer
from services.runtime.settings import Settings
from tests.support.gateway import Gateway
from tests.support.kafka import read_topic
from tests.test_pipeline_e2e import ALPHA, BETA, chunks
from topics.catalog import DOCUMENTS, EXTRACTED


@pytest.fixture
def gateway(pipeline: Settings, request: pytest.FixtureRequest) -> Gateway:
    return Gateway(pipeline, tenant="default", dataset=request.node.name.replace("_", "-")[:60])


def long_text(tag: str, paragraphs: int = 120) -> str:
    """A document of a few hundred chunks whose texts no other test embedded (no cache hits)."""
    return "\n\n".join(
        f"Paragraph {i} of {tag}: tidal turbines in the {tag} estuary, survey {i}, notes {i * 7}. " * 8
        for i in range(paragraphs)
    )


def bulk_backlog(gateway: Gateway, count: int) -> list[dict]:
    return [gateway.create_text(f"import-{i}.txt", long_text(f"{gateway.dataset}-{i}"), priority="bulk")
            for i in range(count)]


def test_an_event_that_names_no_priority_is_interactive():
    record = orjson.dumps({"type": "document.deleted", "tenant_id": "t", "dataset_id": "d", "document_id": "x",
                           "revision": 1})
    assert DOCUMENT_EVENTS.decode(record).priority is Priority.INTERACTIVE


def test_records_take_their_lanes_topic_and_one_topic_with_lanes_off(pipeline_topics: Settings):
    settings = pipeline_topics
    event = DocumentUpserted(tenant_id="t", dataset_id="d", document_id="x", revision=1, name="x.txt",
                             source=InlineSource(text="x"), priority=Priority.BULK)
    Producer(settings).publish(DOCUMENTS, event)
    Producer(settings.model_copy(update={"lanes": False})).publish(DOCUMENTS, event.model_copy(update={"revision": 2}))
    Producer(settings).publish(DOCUMENTS, event.model_copy(update={"revision": 3, "priority": Priority.INTERACTIVE}))

    def revisions(topic: str, expected: int) -> list[int]:
        messages = read_topic(settings, topic, until=lambda ms: len(ms) >= expected, timeout=15)
        return sorted(DOCUMENT_EVENTS.decode(m.value()).revision for m in messages)

    assert revisions(settings.topic("documents.bulk"), 1) == [1]
    assert revisions(settings.topic("documents"), 2) == [2, 3]
    assert EXTRACTED.lane(Priority.BULK).name == "extracted.bulk"


def test_gateway_writes_are_interactive_unless_marked_bulk_and_imports_are_bulk(
    pipeline: Settings, gateway: Gateway, tmp_path: Path
):
    single = gateway.create_text("single.txt", ALPHA)
    marked = gateway.create_text("marked.txt", BETA, priority="bulk")
    refused = gateway.http.post(f"/v1/datasets/{gateway.dataset}/document/create-by-text",
                                json={"name": "x.txt", "text": "x"}, headers={"X-Priority": "urgent"})
    assert refused.status_code == 400
    (tmp_path / "imported.txt").write_text(ALPHA + "\n\nimported")
    summary = ingest(pipeline, collect_files([tmp_path]), dataset=gateway.dataset, tenant="default", timeout=120)
    assert summary.completed == 1

    lanes = {name: gateway.wait(doc, rev)["priority"] for name, doc, rev in (
        ("single", single["document_id"], single["revision"]),
        ("marked", marked["document_id"], marked["revision"]),
    )}
    [imported] = summary.states
    assert lanes == {"single": "interactive", "marked": "bulk"}
    assert imported["priority"] == "bulk"

    retried = gateway.http.post(f"/v1/datasets/{gateway.dataset}/documents/{single['document_id']}/retry",
                                headers={"X-Priority": "bulk"})
    assert gateway.wait(single["document_id"], retried.json()["revision"])["priority"] == "bulk"


def test_an_interactive_update_overtakes_its_own_bulk_revision_and_the_backlog(pipeline: Settings, gateway: Gateway):
    backlog = bulk_backlog(gateway, 3)
    mine = gateway.create_text("mine.txt", long_text(f"{gateway.dataset}-mine"), priority="bulk")
    update = gateway.update_text(mine["document_id"], BETA)  # interactive, while the bulk revision waits

    state = gateway.wait(mine["document_id"], update["revision"])
    assert (state["status"], state["revision"], state["priority"]) == ("completed", update["revision"], "interactive")
    # It went past the import: the bulk documents are not all done when it is.
    assert any(gateway.state(b["document_id"])["status"] != "completed" for b in backlog)

    for accepted in backlog:
        gateway.wait(accepted["document_id"], accepted["revision"], timeout=240)
    time.sleep(2)  # the stale bulk revision has passed every stage by now; anything it wrote is refreshed
    final = gateway.state(mine["document_id"])
    assert (final["status"], final["revision"], final["searchable_revision"]) == (
        "completed", update["revision"], update["revision"])
    found = chunks(pipeline, mine["document_id"])
    assert found and {c["revision"] for c in found} == {update["revision"]}
    assert len(found) == final["segment_count"]


def test_an_interactive_delete_overtakes_its_bulk_revision(pipeline: Settings, gateway: Gateway):
    backlog = bulk_backlog(gateway, 2)
    mine = gateway.create_text("mine.txt", long_text(f"{gateway.dataset}-mine"), priority="bulk")
    deleted = gateway.delete(mine["document_id"])

    state = gateway.wait(mine["document_id"], deleted["revision"])
    assert (state["status"], state["revision"]) == ("deleted", deleted["revision"])
    for accepted in backlog:
        gateway.wait(accepted["document_id"], accepted["revision"], timeout=240)
    time.sleep(2)
    assert gateway.state(mine["document_id"])["status"] == "deleted"
    assert chunks(pipeline, mine["document_id"]) == []


def test_a_small_import_is_not_held_behind_another_tenants_large_one(pipeline: Settings, request):
    dataset = request.node.name.replace("_", "-")[:60]
    large, small = Gateway(pipeline, "tenant-large", dataset), Gateway(pipeline, "tenant-small", dataset)
    # More records than a batch at every stage, so arrival order alone would serve the small
    # import after nearly all of the large one.
    backlog = [large.create_text(f"import-{i}.txt", long_text(f"{dataset}-{i}", paragraphs=15), priority="bulk")
               for i in range(40)]
    mine = small.create_text("small.txt", BETA + f" {dataset}", priority="bulk")
    status = CliRunner().invoke(cli, ["status", "--json"])
    waiting = orjson.loads(status.output)["backlog"]["bulk"]  # what waits, and for whom
    assert sum(waiting["tenant-large"].values()) > 0 and "tenant-large" not in orjson.loads(
        status.output)["backlog"].get("interactive", {})

    state = small.wait(mine["document_id"], mine["revision"], timeout=240)
    assert state["status"] == "completed"
    # Served in turn with the large import's records, not after all of them.
    pending = [b for b in backlog if large.state(b["document_id"])["status"] != "completed"]
    assert len(pending) >= len(backlog) // 2, f"only {len(pending)} of the large import's documents still to do"
    for accepted in backlog:
        assert large.wait(accepted["document_id"], accepted["revision"], timeout=240)["status"] == "completed"
