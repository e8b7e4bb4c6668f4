"""The operations dashboard in a real headless Chromium (Debian's), against the running pipeline:
states change on screen as documents flow, without a reload; the pipeline panel shows every
stage; a button sends a command whose effect the page then shows; the timeline opens. Screenshots
are saved (INDEXFLOW_TEST_ARTIFACTS, default .ci/artifacts) and their paths printed."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from services.runtime.settings import Settings
from tests.support.browser import chromium_page
from tests.support.gateway import Gateway

ARTIFACTS = Path(os.environ.get("INDEXFLOW_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / ".ci" / "artifacts"))
STAGES = {"extractor", "splitter", "embedder", "indexer", "projector"}
BUSY = {"waiting", "parsing", "splitting", "indexing"}

# Records every status each document row shows, as the page changes it (the page itself is not
# touched: an observer of its DOM).
RECORD_STATUSES = """() => {
  window.__seen = {};
  const note = () => {
    for (const row of document.querySelectorAll('#documents tr[data-document-id]')) {
      const id = row.dataset.documentId, status = row.querySelector('td.status').textContent;
      const seen = (window.__seen[id] ||= []);
      if (seen[seen.length - 1] !== status) seen.push(status);
    }
  };
  new MutationObserver(note).observe(document.querySelector('#documents tbody'), {childList: true, subtree: true});
  note();
}"""


@pytest.fixture
def page():
    with chromium_page() as page:
        yield page


def seen(page, document_id: str) -> list[str]:
    return page.evaluate("(id) => window.__seen[id] || []", document_id)


def test_the_dashboard_shows_states_change_live_and_sends_commands(pipeline: Settings, page):
    tenant = f"ops-{uuid.uuid4().hex[:6]}"
    gateway = Gateway(pipeline, tenant=tenant, dataset="handbook")
    first = gateway.create_text("first.txt", "The dashboard shows every document's state. " * 20)
    assert gateway.wait(first["document_id"], first["revision"])["status"] == "completed"

    page.goto(f"{pipeline.gateway_url}/dashboard?tenant={tenant}&dataset=handbook")
    page.wait_for_selector("#live.on")
    page.wait_for_selector(f'#documents tr[data-document-id="{first["document_id"]}"] .status-completed')
    page.evaluate(RECORD_STATUSES)
    page.evaluate("() => { window.__sameDocument = true; }")  # gone if the page reloads

    texts = {f"chapter-{i}.txt": f"Chapter {i}. " + "Kafka partitions keep every document in order. " * 300
             for i in range(4)}
    created = [gateway.create_text(name, text) for name, text in texts.items()]
    page.wait_for_function(
        "(ids) => ids.some(id => document.querySelector(`#documents tr[data-document-id='${id}'] .status-indexing,"
        " #documents tr[data-document-id='${id}'] .status-parsing,"
        " #documents tr[data-document-id='${id}'] .status-splitting`))",
        arg=[c["document_id"] for c in created], timeout=60_000,
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / "dashboard-live.png", full_page=True)
    for accepted in created:
        page.wait_for_selector(f'#documents tr[data-document-id="{accepted["document_id"]}"] .status-completed',
                               timeout=120_000)
    for accepted in created:
        shown = seen(page, accepted["document_id"])
        assert shown[-1] == "completed" and BUSY & set(shown), f"{accepted['document_id']} showed only {shown}"
    assert page.evaluate("() => window.__sameDocument === true"), "the page reloaded"

    # Documents by state, per dataset, and the pipeline's stages with live replicas.
    page.wait_for_function("() => document.querySelector('#datasets li[data-dataset-id=handbook]')"
                           "?.textContent.includes('completed 5')", timeout=30_000)
    stages = page.eval_on_selector_all("#pipeline tbody tr", "rows => rows.map(r => [r.dataset.stage,"
                                       " Number(r.cells[1].textContent)])")
    assert {stage for stage, _ in stages} == STAGES and all(replicas >= 1 for _, replicas in stages), stages
    assert page.inner_text("#dead-letters").isdigit()

    # A button: retry the first document; the page shows it complete again, its last update moved
    # on. (Its busy states show when they are announced apart: a one-page document's whole run can
    # reach a lagging projector in one batch, announced at once and shown as its newest.)
    row = f'#documents tr[data-document-id="{first["document_id"]}"]'
    updated = page.inner_text(f"{row} td:nth-child(6)")
    page.click(f'{row} button[data-command="retry"]')
    page.wait_for_selector("#toast.shown")
    assert "retry: accepted" in page.inner_text("#toast")
    page.wait_for_function(
        "([row, updated]) => document.querySelector(`${row} td:nth-child(6)`)?.textContent !== updated"
        " && document.querySelector(`${row} td.status`)?.textContent === 'completed'",
        arg=[row, updated], timeout=60_000,
    )
    assert gateway.state(first["document_id"])["revision"] > first["revision"]

    # The timeline of one document: its transitions, in order.
    page.click(f'#documents tr[data-document-id="{created[0]["document_id"]}"] td')
    page.wait_for_selector("#timeline-panel:not([hidden])")
    steps = page.eval_on_selector_all("#timeline li .badge", "badges => badges.map(b => b.textContent)")
    assert steps[0] == "waiting" and steps[-1] == "completed", steps
    page.screenshot(path=ARTIFACTS / "dashboard.png", full_page=True)
    print(f"\nscreenshots: {ARTIFACTS / 'dashboard-live.png'}, {ARTIFACTS / 'dashboard.png'}")
