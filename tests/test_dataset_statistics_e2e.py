"""BM25 scores a dataset's chunks with that dataset's own term statistics, as if it were alone:
another dataset of the same tenant and model, full of one of the query's words, does not make
that word worthless in this one."""

from __future__ import annotations

from services.runtime.settings import Settings
from tests.support.gateway import Gateway


def test_a_dataset_is_ranked_by_its_own_term_statistics(pipeline: Settings):
    crowded = Gateway(pipeline, tenant="statistics", dataset="orchards")
    for i in range(40):
        crowded.create_text(f"orchard-{i}.txt", f"Apple orchard number {i} grows apples.", indexing_technique="economy")
    searched = Gateway(pipeline, tenant="statistics", dataset="pantry")
    # "apple" twice here, "banana" once there: within this dataset both words are as rare, so the
    # document saying "apple" more often ranks first; scored with the orchards' statistics, where
    # "apple" is in 41 documents of 42, "banana" would win.
    apples = searched.create_text("apples.txt", "Apple crumble, apple tart.", indexing_technique="economy")
    bananas = searched.create_text("bananas.txt", "Banana bread keeps well.", indexing_technique="economy")
    last = crowded.create_text("orchard-last.txt", "The last apple orchard.", indexing_technique="economy")
    for gateway, accepted in ((searched, apples), (searched, bananas), (crowded, last)):
        assert gateway.wait(accepted["document_id"], accepted["revision"])["status"] == "completed"

    ranked = [hit["document_id"] for hit in searched.search("apple banana", mode="full_text")]
    assert ranked == [apples["document_id"], bananas["document_id"]], ranked
