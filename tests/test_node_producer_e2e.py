"""Upstream and downstream in another language, the runnable examples of docs/examples/node: Node
with kafkajs (from npm) publishes document events straight onto the documents topic, validated
against the exported JSON Schema with ajv, and a dashboard feed follows the state topic. The contract's
extremes hold in every store: the largest revision the schema allows (2^53 - 1, a producer using
its own version numbers) is indexed, served and kept exactly; one past it is refused by the schema,
and a producer that skips validation has its record kept in the DLQ with the reason."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import orjson
import pytest

from schemas import DEAD_LETTERS
from schemas.envelope import MAX_REVISION
from services.cli.schemas_export import export_json_schemas
from services.indexer.mapping import all_chunk_indices
from services.runtime.elasticsearch_client import elasticsearch_client
from services.runtime.settings import Settings
from tests.support.gateway import Gateway
from tests.support.kafka import read_topic
from topics.catalog import DLQ, DOCUMENTS

NODE_PROJECT = Path(__file__).resolve().parents[1] / "docs" / "examples" / "node"


@pytest.fixture(scope="module")
def node() -> Path:
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("node and npm are not installed (./dev test installs them)")
    wanted = orjson.loads((NODE_PROJECT / "package.json").read_bytes())["dependencies"]
    if not all((NODE_PROJECT / "node_modules" / name).is_dir() for name in wanted):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=NODE_PROJECT, check=True, timeout=300)
    return NODE_PROJECT / "produce.mjs"


def test_a_node_dashboard_feed_follows_a_document_through_the_state_topic(node, pipeline: Settings, tmp_path):
    from topics.catalog import STATE

    tenant = f"feed{uuid.uuid4().hex[:6]}"
    event = {**upsert("followed", 1, "A dashboard in Node follows this document. " * 30), "tenant_id": tenant}
    assert publish(node, pipeline, tmp_path, event).returncode == 0
    followed = subprocess.run(
        ["node", str(node.parent / "follow-states.mjs"), pipeline.kafka_bootstrap_servers,
         pipeline.topic(STATE.name), "--tenant", tenant, "--exit-after-terminal", "1"],
        capture_output=True, text=True, timeout=120,
    )
    assert followed.returncode == 0, followed.stderr
    states = [orjson.loads(line) for line in followed.stdout.splitlines()]
    assert {s["document_id"] for s in states} == {"followed"}, followed.stderr[-2000:]
    assert len({s["status"] for s in states}) >= 3, states  # it moved on screen: parsing ... completed
    assert states[-1]["status"] == "completed" and states[-1]["segment_count"] >= 1
    assert orjson.loads(followed.stderr.splitlines()[-1]) == {"completed": 1}


def publish(node: Path, settings: Settings, tmp_path: Path, event: dict, *flags: str) -> subprocess.CompletedProcess:
    schema = next(p for p in export_json_schemas(tmp_path / "schemas") if p.name.startswith(f"{DOCUMENTS.name}.v"))
    event_file = tmp_path / f"{uuid.uuid4().hex}.json"
    event_file.write_bytes(orjson.dumps(event))
    return subprocess.run(
        ["node", str(node), settings.kafka_bootstrap_servers, settings.topic(DOCUMENTS.name), str(schema),
         str(event_file), *flags],
        capture_output=True, text=True, timeout=60,
    )


def upsert(document_id: str, revision: int, text: str) -> dict:
    return {
        "type": "document.upserted", "tenant_id": "node", "dataset_id": "node-producer", "document_id": document_id,
        "revision": revision, "name": f"{document_id}.txt", "source": {"kind": "inline", "text": text},
    }


def test_a_node_producer_using_the_largest_revision_gets_it_indexed_exactly(node, pipeline: Settings, tmp_path):
    word = f"quokka{uuid.uuid4().hex[:8]}"
    published = publish(node, pipeline, tmp_path, upsert("max-revision", MAX_REVISION, f"The {word} hops at dawn."))
    assert published.returncode == 0, published.stderr

    gateway = Gateway(pipeline, tenant="node", dataset="node-producer")
    state = gateway.wait("max-revision", MAX_REVISION)
    assert state["status"] == "completed", state
    assert state["revision"] == MAX_REVISION and state["searchable_revision"] == MAX_REVISION
    [hit] = [r for r in gateway.search(word, mode="full_text") if r["document_id"] == "max-revision"]
    chunks = elasticsearch_client(pipeline).search(
        index=all_chunk_indices(pipeline.topic_prefix), query={"term": {"document_id": "max-revision"}},
    )["hits"]["hits"]
    assert chunks and {c["_source"]["revision"] for c in chunks} == {MAX_REVISION}
    assert hit["segment_id"] in {c["_id"] for c in chunks}

    # Nothing comes after the largest revision: the gateway says so instead of failing.
    refused = gateway.http.post("/v1/datasets/node-producer/documents/max-revision/update-by-text",
                                json={"text": "newer"})
    assert refused.status_code == 409 and "largest" in refused.json()["detail"]


def test_one_past_the_largest_revision_is_refused_by_the_schema_and_kept_by_the_pipeline(node, pipeline, tmp_path):
    too_far = upsert("past-max", MAX_REVISION + 1, "one past the largest revision")
    refused = publish(node, pipeline, tmp_path, too_far)
    assert refused.returncode == 2 and "maximum" in refused.stderr

    skipped_validation = publish(node, pipeline, tmp_path, too_far, "--no-validate")
    assert skipped_validation.returncode == 0, skipped_validation.stderr
    letters = read_topic(
        pipeline, pipeline.topic(DLQ.name),
        until=lambda ms: any(m.key() == b"node/past-max" for m in ms), timeout=60,
    )
    [letter] = [DEAD_LETTERS.decode(m.value()) for m in letters if m.key() == b"node/past-max"]
    assert letter.stage == "extractor" and "less than or equal to 9007199254740991" in letter.error
