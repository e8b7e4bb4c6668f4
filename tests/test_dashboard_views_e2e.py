"""The dashboard's views in a real headless Chromium (Debian's), against the running pipeline:
charts of the pipeline's last hour drawn from samples the gateway took; a dataset of 20,000
documents paged by the server, filtered by status and searched by name; a document's chunks; a
retrieval test whose highlights are marked and whose hostile chunk is shown as text, never run.
Screenshots are saved under the test's tmp dir and their paths printed.

The 20,000 documents: 60 real ones written through the gateway and the whole pipeline, and the
rest reported on the status topic (as stages report a document) and folded by the real
projector into the states the listing reads. Real documents all the way go at ~65-85 a second on
this machine's two cores (~5 minutes for 20,000); reports take well under a minute."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx

from schemas import DocumentStatus, Stage, StatusEvent
from services.runtime.producer import Producer
from services.runtime.settings import Settings
from tests.support.browser import chromium_page
from tests.support.gateway import Gateway, extra_gateway
from tests.support.sources import create_dataset
from tests.support.waiting import wait_for
from topics.catalog import STATUS

DOCUMENTS = 20_000
REAL = 60
PAGE_SIZE = 50  # the page's
EVERY_NTH_IN_ERROR = 10
HOSTILE = 'Herons <img src=x onerror="window.__pwned = true"> nest in the marsh reeds.'


def reported(tenant: str, dataset: str, n: int) -> StatusEvent:
    """Document n's report: completed, or every tenth in error."""
    failed = n % EVERY_NTH_IN_ERROR == 0
    return StatusEvent(
        tenant_id=tenant, dataset_id=dataset, document_id=f"ledger-{n:05d}", revision=1, attempt=1,
        status=DocumentStatus.ERROR if failed else DocumentStatus.COMPLETED,
        stage=Stage.EXTRACTOR if failed else Stage.INDEXER, name=f"ledger-{n:05d}.txt",
        error="the file could not be read" if failed else None, segment_count=0 if failed else 1,
    )


def write_archive(pipeline: Settings, http: httpx.Client, tenant: str) -> tuple[str, list[dict]]:
    """A dataset of DOCUMENTS documents, REAL of them written through the gateway (the newest);
    its id and the real ones as accepted."""
    dataset = create_dataset(http, "archive", indexing_technique="economy")
    producer = Producer(pipeline)
    for n in range(DOCUMENTS - REAL):
        producer.publish(STATUS, reported(tenant, dataset, n))
    producer.flush()
    listed = f"/v1/datasets/{dataset}/documents"
    wait_for(lambda: http.get(listed, params={"limit": 1}).json()["total"] == DOCUMENTS - REAL,
             what="the reported documents projected", timeout=120, every=2)
    gateway = Gateway(pipeline, tenant=tenant, dataset=dataset)
    with ThreadPoolExecutor(8) as pool:  # the gateway takes 10 requests of one tenant at once
        accepted = list(pool.map(lambda n: gateway.create_text(
            f"shelf-{n:02d}.txt", f"Shelf {n} holds maps.\n\nShelf {n} holds charts of the harbour.",
            process_rule={"mode": "custom", "rules": {"pre_processing_rules": [],
                                                      "segmentation": {"separator": "\n\n", "max_tokens": 50}}},
        ), range(REAL)))
    wait_for(lambda: http.get(listed, params={"limit": 1}).json()["total"] == DOCUMENTS
             and not http.get(listed, params={"limit": 1, "status": "queuing"}).json()["total"]
             and not http.get(listed, params={"limit": 1, "status": "indexing"}).json()["total"],
             what=f"{DOCUMENTS} documents listed, none waiting or indexing", timeout=180, every=2)
    return dataset, accepted


def names(page) -> list[str]:
    return page.eval_on_selector_all("#documents tbody tr td.name", "cells => cells.map(c => c.textContent)")


def test_the_dashboard_charts_pages_filters_searches_shows_chunks_and_tests_retrieval(pipeline: Settings, tmp_path):
    tenant = f"views-{uuid.uuid4().hex[:6]}"
    http = httpx.Client(base_url=pipeline.gateway_url, headers={"X-Tenant-Id": tenant}, timeout=60)
    # A gateway of the test's own, sampling every 2 s: the charts fill while the test writes.
    with extra_gateway(INDEXFLOW_GATEWAY_DASHBOARD_SAMPLE_SECONDS="2") as url, chromium_page() as page:
        archive, real = write_archive(pipeline, http, tenant)
        room = create_dataset(http, "reading room")
        reading = Gateway(pipeline, tenant=tenant, dataset=room)
        written = [
            reading.create_text("north.txt", "Grey herons wade the marsh at dawn.", metadata={"shelf": "north"}),
            reading.create_text("south.txt", "Herons fish where the marsh meets the river.", metadata={"shelf": "south"}),
            reading.create_text("hostile.txt", HOSTILE, metadata={"shelf": "north"}),
            reading.create_text("otters.txt", "Otters slide down the muddy bank.", metadata={"shelf": "south"}),
        ]
        for accepted in written:
            assert reading.wait(accepted["document_id"], accepted["revision"])["status"] == "completed"

        # -- charts: samples with rates, lag and the latency of the documents completed ---------
        history = wait_for(lambda: (h := httpx.get(f"{url}/v1/ops/history", headers={"X-Tenant-Id": tenant}).json())
                           and sum(s["completed"] for s in h["samples"]) >= REAL + len(written) and h,
                           what="the real documents' latencies sampled", timeout=30)
        assert history["every_seconds"] == 2.0
        samples = history["samples"]
        assert {"extractor", "splitter", "indexer", "projector"} <= set(samples[-1]["stages"]), samples[-1]
        assert max(s["stages"]["projector"]["per_second"] or 0 for s in samples) > 0, samples
        latencies = [s["latency"] for s in samples if s["latency"]]
        # A reported document completes in its one report (a latency of 0); the real ones after them take time.
        assert all(0 <= lat["p50"] <= lat["p95"] <= lat["max"] < 60 for lat in latencies), latencies
        assert latencies[-1]["p50"] > 0, latencies

        page.goto(f"{url}/dashboard?tenant={tenant}&dataset={archive}")
        page.wait_for_selector("#live.on")
        for chart in ("throughput", "lag", "latency"):
            page.wait_for_function(f"() => Number(document.querySelector('#chart-{chart} svg')?.dataset.points) > 0")
            assert page.eval_on_selector_all(f"#chart-{chart} svg path.series", "paths => paths.length") >= 2
        assert page.eval_on_selector("#chart-latency svg path.series", "p => p.getAttribute('d').startsWith('M')")

        # -- paging through 20,000 documents: the newest (the real ones) first ------------------
        page.wait_for_function(f"() => document.querySelector('#documents-panel').dataset.total === '{DOCUMENTS}'")
        assert page.inner_text("#page-of") == f"page 1 of {DOCUMENTS // PAGE_SIZE} · {DOCUMENTS} documents"
        first = names(page)
        assert len(first) == PAGE_SIZE and all(name.startswith("shelf-") for name in first), first
        page.screenshot(path=tmp_path / "dashboard-views.png", full_page=True)
        page.click("#next-page")
        page.wait_for_function("() => document.querySelector('#documents-panel').dataset.page === '2'")
        second = names(page)
        assert len(second) == PAGE_SIZE and not set(second) & set(first), second
        page.click("#last-page")
        page.wait_for_function(f"() => document.querySelector('#documents-panel').dataset.page === "
                               f"'{DOCUMENTS // PAGE_SIZE}'")
        assert sorted(names(page)) == [f"ledger-{n:05d}.txt" for n in range(PAGE_SIZE)]
        assert page.is_disabled("#next-page") and page.is_disabled("#last-page")

        # -- filtered by status: the errors only, from page 1 -----------------------------------
        page.select_option("#filter-status", "error")
        errors = (DOCUMENTS - REAL + EVERY_NTH_IN_ERROR - 1) // EVERY_NTH_IN_ERROR
        page.wait_for_function(f"() => document.querySelector('#documents-panel').dataset.total === '{errors}'")
        assert page.get_attribute("#documents-panel", "data-page") == "1"
        statuses = page.eval_on_selector_all("#documents tbody td.status", "cells => cells.map(c => c.textContent)")
        assert len(statuses) == PAGE_SIZE and set(statuses) == {"error"}, statuses

        # -- searched by name (within the filter, then alone) -----------------------------------
        page.fill("#search-name", "ledger-0123")
        page.wait_for_function("() => document.querySelector('#documents-panel').dataset.total === '1'")
        assert names(page) == ["ledger-01230.txt"]
        page.select_option("#filter-status", "")
        page.wait_for_function("() => document.querySelector('#documents-panel').dataset.total === '10'")
        assert sorted(names(page)) == [f"ledger-0123{d}.txt" for d in range(10)]

        # -- one real document's chunks ---------------------------------------------------------
        page.fill("#search-name", "shelf-07")
        page.wait_for_function("() => document.querySelector('#documents-panel').dataset.total === '1'")
        page.click("#documents tbody tr td.name")
        page.wait_for_selector("#chunks-panel:not([hidden]) #chunks li")
        chunks = page.eval_on_selector_all("#chunks li .chunk-text", "texts => texts.map(t => t.textContent)")
        assert chunks == ["Shelf 7 holds maps.", "Shelf 7 holds charts of the harbour."], chunks
        assert page.inner_text("#chunks-of").startswith("2 chunks")
        assert page.inner_text("#timeline-name") == "· shelf-07.txt"

        # -- retrieval testing: scores, highlights, a filter, and hostile content as text ------
        page.goto(f"{url}/dashboard?tenant={tenant}&dataset={room}")
        page.wait_for_selector("#live.on")
        page.fill("#query", "heron marsh")
        page.select_option("#mode", "full_text")
        page.fill("#top-k", "3")
        page.click("#retrieval button[type=submit]")
        page.wait_for_selector("#records li")
        records = page.eval_on_selector_all("#records li", """items => items.map(i => ({
            document: i.dataset.documentId, score: i.querySelector('.score').textContent,
            text: [...i.querySelectorAll('.highlight')].map(h => h.textContent).join(' '),
            marks: [...i.querySelectorAll('.highlight mark')].map(m => m.textContent.toLowerCase())}))""")
        hostile = written[2]["document_id"]
        assert {r["document"] for r in records} == {written[0]["document_id"], written[1]["document_id"], hostile}
        assert all(r["marks"] and set(r["marks"]) <= {"herons", "heron", "marsh"} for r in records), records
        [shown] = [r for r in records if r["document"] == hostile]
        assert '<img src=x onerror="window.__pwned = true">' in shown["text"], shown
        assert page.eval_on_selector_all("#records img, #records script", "nodes => nodes.length") == 0
        assert page.evaluate("() => window.__pwned") is None
        assert page.inner_text("#retrieval-summary").startswith("3 records")
        page.screenshot(path=tmp_path / "dashboard-retrieval.png", full_page=True)

        page.fill("#filters", "shelf=south")
        page.click("#retrieval button[type=submit]")
        page.wait_for_function("() => document.querySelector('#retrieval-summary').textContent.startsWith('1 record ')")
        assert page.eval_on_selector_all("#records li", "items => items.map(i => i.dataset.documentId)") == [
            written[1]["document_id"]]
        page.fill("#threshold", "1000")
        page.click("#retrieval button[type=submit]")
        page.wait_for_function("() => document.querySelector('#retrieval-summary').textContent.startsWith('0 records')")
        assert page.evaluate("() => window.__pwned") is None
    print(f"\nscreenshots: {tmp_path / 'dashboard-views.png'}, {tmp_path / 'dashboard-retrieval.png'}")
