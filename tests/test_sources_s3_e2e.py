"""An s3 source syncs a bucket's prefix on a local S3-compatible server (localbucket): listed by
pages, changes found by ETag, keys gone deleted, nothing deleted when the bucket cannot be listed;
its secret key is never answered."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from services.runtime.settings import Settings
from tests.support.buckets import ACCESS_KEY_ID, SECRET_ACCESS_KEY, local_bucket
from tests.support.sources import (
    add_source, create_dataset, eventually, found, killed_and_resumed, settled_documents, sync,
)
from tests.test_pipeline_e2e import embedding_calls

OBJECTS = {
    "docs/anchors.txt": "Anchors hold best in sand and mud, and drag across smooth rock.",
    "docs/sails.txt": "A reefed mainsail spills wind when the squall arrives.",
    "docs/knots/bowline.txt": "The bowline makes a fixed loop that will not slip under load.",
    "docs/knots/cleat.txt": "A cleat hitch secures the line with a figure of eight and a locking turn.",
    "docs/charts.txt": "Nautical charts give depths in metres at the lowest astronomical tide.",
    "other/outside.txt": "Outside the prefix: never synced.",
}


@pytest.fixture
def http(pipeline: Settings) -> httpx.Client:
    with httpx.Client(base_url=pipeline.gateway_url, headers={"X-Tenant-Id": f"s3-{uuid.uuid4().hex[:8]}"},
                      timeout=60) as client:
        yield client


def test_an_s3_source_syncs_a_prefix_by_etag(pipeline: Settings, http: httpx.Client, tmp_path: Path):
    with local_bucket(tmp_path, "harbour") as (endpoint, s3):
        for key, text in OBJECTS.items():
            s3.put_object(Bucket="harbour", Key=key, Body=text.encode(), ContentType="text/plain")
        dataset = create_dataset(http, "bucket sync")
        config = {"bucket": "harbour", "prefix": "docs/", "endpoint_url": endpoint, "page_size": 2,
                  "access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET_ACCESS_KEY}
        source = add_source(http, dataset, "s3", config)
        assert source["config"]["secret_access_key"] == "set"

        first = sync(http, dataset, source["id"])
        assert (first["status"], first["listed"], first["created"], first["failed"]) == ("completed", 5, 5, 0), first
        states = settled_documents(http, dataset, 5)
        assert {s["status"] for s in states.values()} == {"completed"}
        ids = {s["name"]: i for i, s in states.items()}

        calls = embedding_calls(pipeline)
        again = sync(http, dataset, source["id"])
        assert (again["created"], again["updated"], again["unchanged"], again["deleted"]) == (0, 0, 5, 0)
        assert embedding_calls(pipeline) == calls

        s3.put_object(Bucket="harbour", Key="docs/sails.txt", Body=b"A storm jib replaces the genoa in a gale.")
        s3.delete_object(Bucket="harbour", Key="docs/charts.txt")
        s3.put_object(Bucket="harbour", Key="docs/tides/neap.txt", Body=b"Neap tides bring the smallest range.")
        synced = sync(http, dataset, source["id"])
        assert (synced["created"], synced["updated"], synced["unchanged"], synced["deleted"]) == (1, 1, 3, 1), synced
        states = eventually(lambda: (s := settled_documents(http, dataset, 6))[ids["charts.txt"]]["status"]
                            == "deleted" and s)
        neap = next(i for i, s in states.items() if s["name"] == "neap.txt")
        assert eventually(lambda: found(http, dataset, "storm jib genoa gale") == {ids["sails.txt"]})
        assert eventually(lambda: found(http, dataset, "neap smallest range") == {neap})
        assert not found(http, dataset, "nautical charts astronomical")
        detail = http.get(f"/v1/datasets/{dataset}/documents/{neap}").json()
        assert {m["name"]: m["value"] for m in detail["doc_metadata"]} == {
            "source_id": source["id"], "source_url": "s3://harbour/docs/tides/neap.txt"}

        # A bucket that cannot be listed deletes nothing.
        patched = http.patch(f"/v1/datasets/{dataset}/sources/{source['id']}", json={"config": {"bucket": "gone"}})
        assert patched.status_code == 200 and patched.json()["config"]["secret_access_key"] == "set"
        failed = sync(http, dataset, source["id"])
        assert (failed["status"], failed["deleted"], failed["pruned"]) == ("error", 0, False)
        assert "NoSuchBucket" in failed["errors"][0]["reason"]
        for answer in (patched.text, http.get(f"/v1/datasets/{dataset}/sources").text,
                       http.get(f"/v1/datasets/{dataset}/sources/{source['id']}/runs").text):
            assert SECRET_ACCESS_KEY not in answer


def test_a_bucket_sync_killed_midway_resumes_and_ends_with_the_same_documents(
        pipeline: Settings, http: httpx.Client, tmp_path: Path):
    with local_bucket(tmp_path, "marsh") as (endpoint, s3):
        keys = [f"herons/{i:03}.txt" for i in range(150)]
        for i, key in enumerate(keys):
            s3.put_object(Bucket="marsh", Key=key, Body=f"The {i}th heron of the marsh waded at dawn.".encode())
        dataset = create_dataset(http, "killed bucket sync", indexing_technique="economy")
        source = add_source(http, dataset, "s3", {"bucket": "marsh", "endpoint_url": endpoint, "access_key_id":
                                                  ACCESS_KEY_ID, "secret_access_key": SECRET_ACCESS_KEY})
        killed_and_resumed(http, dataset, source["id"], pipeline.state_dir,
                           {key: key.rsplit("/", 1)[-1] for key in keys})
