"""`indexflow republish`: a tenant's datasets published again on another deployment. The target
here is the same gateway under another tenant (open mode): every document arrives with its id,
name, metadata and rule, is indexed there on its own, and a document that only exists as edited
segments is reported instead of left behind in silence."""

from __future__ import annotations

import time
import uuid

import httpx
import orjson
from click.testing import CliRunner

from services.cli.main import cli
from services.runtime.settings import Settings


def wait_terminal(client: httpx.Client, dataset: str, document: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/v1/datasets/{dataset}/documents/{document}")
        if response.status_code == 200 and response.json()["status"] in ("completed", "error"):
            return response.json()
        assert time.monotonic() < deadline, response.text
        time.sleep(0.3)


def test_republish_moves_every_document_and_reports_what_it_cannot(pipeline: Settings):
    source_tenant, target_tenant = f"old{uuid.uuid4().hex[:6]}", f"new{uuid.uuid4().hex[:6]}"
    source = httpx.Client(base_url=pipeline.gateway_url, headers={"X-Tenant-Id": source_tenant}, timeout=60)
    target = httpx.Client(base_url=pipeline.gateway_url, headers={"X-Tenant-Id": target_tenant}, timeout=60)
    dataset = source.post("/v1/datasets", json={"name": "Handbook", "description": "staff rules"}).json()["id"]
    assert source.post(f"/v1/datasets/{dataset}/metadata", json={"type": "string", "name": "team"}).status_code == 201

    rule = {"mode": "custom", "rules": {"pre_processing_rules": [], "segmentation": {"separator": "###",
                                                                                  "max_tokens": 200}}}
    text = source.post(f"/v1/datasets/{dataset}/document/create-by-text", json={
        "name": "leave.txt", "text": "Leave is 25 days.###Sick leave needs a note.###Carry over 5 days.",
        "process_rule": rule, "metadata": {"team": "people"}}).json()
    upload = source.post(f"/v1/datasets/{dataset}/document/create-by-file",
                         files={"file": ("travel.md", b"# Travel\n\nBook trains, not planes, under 500 km.")},
                         data={"data": orjson.dumps({"metadata": {"team": "finance"}}).decode()}).json()
    edited = source.post(f"/v1/datasets/{dataset}/document/create-by-text",
                         json={"name": "edited.txt", "text": "A segment that will be edited."}).json()
    for accepted in (text, upload, edited):
        assert wait_terminal(source, dataset, accepted["document_id"])["status"] == "completed"
    segments = source.post(f"/v1/datasets/{dataset}/documents/{edited['document_id']}/segments",
                           json={"segments": [{"content": "A segment added by hand."}]})
    assert segments.status_code == 200, segments.text

    # The command, pointed at the source itself: every document is there already, unchanged.
    result = CliRunner().invoke(cli, ["republish", "--tenant", source_tenant, "--to", pipeline.gateway_url, "--json"])
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.output)
    assert (report["datasets"], report["published"], report["unchanged"]) == ([dataset], 0, 2), report

    moved = _republish_to(pipeline, source_tenant, target_tenant)
    assert moved["published"] == 2 and moved["datasets"] == [dataset], moved
    assert moved["skipped"] == {edited["document_id"]: "given as edited segments: no source file or text to publish"}

    for accepted, team, segment_count in ((text, "people", 3), (upload, "finance", 1)):
        state = wait_terminal(target, dataset, accepted["document_id"])
        assert state["status"] == "completed" and state["segment_count"] == segment_count, state
        assert state["doc_metadata"] and {m["name"]: m["value"] for m in state["doc_metadata"]}["team"] == team
    record = target.get(f"/v1/datasets/{dataset}").json()
    assert (record["name"], record["description"]) == ("Handbook", "staff rules")
    fields = target.get(f"/v1/datasets/{dataset}/metadata").json()["doc_metadata"]
    assert [f["name"] for f in fields] == ["team"]
    hits = target.post(f"/v1/datasets/{dataset}/retrieve", json={"query": "trains under 500 km"}).json()["records"]
    assert hits[0]["document_id"] == upload["document_id"]

    again = _republish_to(pipeline, source_tenant, target_tenant)
    assert (again["published"], again["unchanged"]) == (0, 2), again  # a re-run changes nothing


def _republish_to(settings: Settings, source_tenant: str, target_tenant: str) -> dict:
    """Republish through a target client of another tenant (the CLI's --key path, in open mode)."""
    from services.cli.republish import republish

    with httpx.Client(base_url=settings.gateway_url, headers={"X-Tenant-Id": target_tenant}, timeout=120) as target:
        report = republish(settings, source_tenant, target)
    return {"datasets": report.datasets, "published": report.published, "unchanged": report.unchanged,
            "skipped": report.skipped}
