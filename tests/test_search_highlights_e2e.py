"""Highlights are HTML (the matches marked with ``<em>``), so a document's own markup comes back
escaped in them, once: rendered, it is text, never a script."""

from __future__ import annotations

from services.runtime.settings import Settings
from tests.support.gateway import Gateway

HOSTILE = "A segment with markup <img src=x onerror=alert('seg')> & \"quotes\" about the seg keyword."


def test_a_documents_markup_comes_back_escaped_in_highlights(pipeline: Settings):
    gateway = Gateway(pipeline, tenant="highlights", dataset="markup")
    accepted = gateway.create_text("markup.txt", HOSTILE)
    assert gateway.wait(accepted["document_id"], accepted["revision"])["status"] == "completed"

    [record] = gateway.search("seg keyword", mode="full_text")
    [highlight] = record["highlights"]
    assert "<em>" in highlight, highlight
    assert "<img" not in highlight and "&lt;img src=x onerror=alert(" in highlight, highlight
    assert "&amp;" in highlight and "&amp;amp;" not in highlight and "&amp;lt;" not in highlight, highlight
    assert record["content"] == HOSTILE  # the text itself is data, not markup: as written
