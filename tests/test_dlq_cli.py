"""`indexflow dlq list` and `indexflow dlq replay`: every dead letter can be seen and sent back, one
letter, one document or all of them, and a letter is replayed once."""

from __future__ import annotations

import time

import orjson
from click.testing import CliRunner

from services.cli.main import cli
from services.runtime.blobs import BlobStore
from services.runtime.producer import Producer
from services.runtime.settings import Settings
from tests.support.gateway import Gateway
from tests.support.waiting import wait_for
from topics.catalog import DOCUMENTS, STATUS


def run(*args: str) -> dict | list:
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return orjson.loads(result.output)


def letters(**filters: str) -> list[dict]:
    return run("dlq", "list", *(f"--{k}={v}" for k, v in filters.items()))


def test_a_failed_document_is_listed_and_replayed_once(pipeline: Settings):
    gateway = Gateway(pipeline, tenant="dlq", dataset="dlq-docs")
    response = gateway.http.post(
        f"/v1/datasets/{gateway.dataset}/document/create-by-file",
        files={"file": ("broken.pdf", b"%PDF-1.7\n not a PDF at all")},
    )
    document_id, revision = response.json()["document_id"], response.json()["revision"]
    assert gateway.wait(document_id, revision)["status"] == "error"

    [letter] = wait_for(lambda: letters(tenant="dlq", document=document_id), "the dead letter is listed")
    assert letter["stage"] == "extractor" and letter["revision"] == revision
    assert letter["error"].startswith("corrupt or unreadable PDF") and letter["replayed"] is None

    [outcome] = run("dlq", "replay", "--tenant", "dlq", "--document", document_id)
    assert outcome["action"] == "redriven", outcome
    state = wait_for(lambda: (s := gateway.state(document_id)) and s["attempts"] == 2 and s["status"] == "error" and s,
                     "the replayed document runs again")
    assert state["revision"] > revision

    # Replayed once: the same letter is not sent again by a later "all".
    outcomes = {o["letter"]: o for o in run("dlq", "replay", "--all", "--tenant", "dlq")}
    assert outcomes[letter["letter"]]["action"] == "skipped"
    assert "replayed" in outcomes[letter["letter"]]["detail"]
    assert [entry["replayed"] is not None for entry in letters(tenant="dlq", document=document_id)][0]


def test_an_unreadable_record_is_sent_back_to_its_topic_as_it_was(pipeline: Settings):
    producer = Producer(pipeline)
    garbage = b"{not json at all " + str(time.time()).encode()
    producer.send(pipeline.topic(DOCUMENTS.name), b"dlq-raw-key", garbage)
    producer.flush()

    def lettered() -> list[dict]:
        return [entry for entry in letters() if entry["source_key"] == "dlq-raw-key" and entry["source_value_b64"]]

    [first] = wait_for(lettered, "the unreadable record is dead-lettered")
    assert first["document"] is None

    [outcome] = run("dlq", "replay", "--letter", first["letter"])
    assert outcome["action"] == "republished" and outcome["detail"] == pipeline.topic(DOCUMENTS.name)
    # Still unreadable, so the extractor dead-letters it again: the same bytes, a second letter.
    second = wait_for(lambda: [e for e in lettered() if e["letter"] != first["letter"]], "dead-lettered again")
    assert [e["source_value_b64"] for e in second] == [first["source_value_b64"]]


def test_a_large_unreadable_status_record_is_kept_by_claim_check(pipeline: Settings):
    producer = Producer(pipeline)
    garbage = b"not a status " + b"x" * 400_000  # base64 of it inline would pass Kafka's 1 MB
    producer.send(pipeline.topic(STATUS.name), b"dlq-big-status", garbage)
    producer.flush()

    def lettered() -> list[dict]:
        return [e for e in letters() if e["source_key"] == "dlq-big-status" and e["stage"] == "projector"]

    [letter] = wait_for(lettered, "the projector dead-letters it")
    assert letter["source_value_b64"] is None and letter["source_value_uri"]
    assert BlobStore(pipeline).get_dead_letter(letter["source_value_uri"]) == garbage
