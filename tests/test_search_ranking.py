"""What the ranking choices do, on real servers: English stemming, the document's title searched
beside its text, hybrid search's query feedback; and the fusions (pure functions)."""

from __future__ import annotations

import numpy as np
import pytest

from services.extractor.titles import title_of
from services.runtime.settings import Settings
from services.search.feedback import refined_query
from services.search.fusion import ranked_by_documents, rrf, vector_weighted, weighted_minmax
from tests.support.gateway import Gateway
from tests.test_pipeline_e2e import chunks


@pytest.fixture
def gateway(pipeline: Settings, request: pytest.FixtureRequest) -> Gateway:
    return Gateway(pipeline, tenant="ranking", dataset=request.node.name.replace("_", "-")[:60])


def test_full_text_search_finds_other_forms_of_a_word(gateway: Gateway):
    accepted = gateway.create_text("ferries.txt", "The ferries sailed daily between the islands.")
    gateway.wait(accepted["document_id"], accepted["revision"])
    [hit] = gateway.search("ferry sailing", mode="bm25", top_k=1)
    assert hit["document_id"] == accepted["document_id"]


def test_a_documents_title_line_is_searched_with_every_one_of_its_chunks(pipeline: Settings, gateway: Gateway):
    body = "\n\n".join(f"Paragraph {n} describes tides, harbours and lighthouse keepers at length." for n in range(12))
    accepted = gateway.create_text("notes.txt", "Marmosets of Brazil\n\n" + body, process_rule={
        "mode": "custom", "segmentation": {"separator": "\n\n", "max_tokens": 50, "chunk_overlap": 0},
    })
    state = gateway.wait(accepted["document_id"], accepted["revision"])
    stored = chunks(pipeline, accepted["document_id"], tenant="ranking")
    assert state["segment_count"] == len(stored) > 3
    assert {c["title"] for c in stored} == {"Marmosets of Brazil"}
    hits = gateway.search("marmoset", mode="bm25", top_k=50)
    assert len(hits) == len(stored)  # the paragraphs never say it; their title does


def test_title_lines_are_short_lines_that_are_not_sentences():
    assert title_of("\n  Animated Portable Network Graphics\nThe format ...") == "Animated Portable Network Graphics"
    assert title_of("The format extends PNG.\nMore text") is None
    assert title_of("word " * 40) is None


def test_fusions():
    bm25 = [("a", 12.0), ("b", 6.0), ("c", 3.0)]
    knn = [("c", 0.95), ("a", 0.90), ("d", 0.60)]
    assert [k for k, _ in rrf([bm25, knn])] == ["a", "c", "b", "d"]
    # Each ranking scaled to 0..1 by its own min and max, then weighted.
    fused = dict(weighted_minmax([bm25, knn], [0.7, 0.3]))
    assert fused["a"] == pytest.approx(0.7 + 0.3 * (0.30 / 0.35))
    assert fused["d"] == pytest.approx(0.0)
    assert [k for k, _ in vector_weighted(0.3)([bm25, knn])] == ["a", "c", "b", "d"]
    assert [k for k, _ in vector_weighted(0.9)([bm25, knn])][:2] == ["c", "a"]
    # Two kNN rankings (two models) share the vector weight.
    assert dict(vector_weighted(0.4)([bm25, knn, knn]))["c"] == pytest.approx(0.6 * (0.0) + 0.4)


def test_a_document_matching_in_two_places_outranks_one_matching_as_well_once():
    ranking = [("once", 1.0), ("twice-a", 0.98), ("twice-b", 0.5), ("other", 0.2)]
    document_of = {"once": "A", "twice-a": "B", "twice-b": "B", "other": "C"}
    ranked = ranked_by_documents([ranking], document_of, rrf, corroboration=0.3)
    assert [key for key, _ in ranked] == ["twice-a", "once", "twice-b", "other"]
    # A document's best chunk carries the document's score (raised by its next best, or the
    # ranking's lowest); every other chunk keeps its own.
    assert dict(ranked) == pytest.approx({"twice-a": 0.98 + 0.3 * 0.5, "once": 1.0 + 0.3 * 0.2,
                                          "twice-b": 0.5, "other": 0.2 + 0.3 * 0.2})
    assert ranked_by_documents([ranking], document_of, rrf, corroboration=0.0) == ranking
    assert ranked_by_documents([], {}, rrf, corroboration=0.3) == []  # semantic search, no vectors yet


def test_a_document_matching_each_mode_in_another_chunk_outranks_one_matching_both_less_well():
    # A's first chunk is BM25's best, its second kNN's best; B's one chunk is second in both.
    bm25 = [("a1", 10.0), ("b1", 6.0), ("x", 0.0)]
    knn = [("a2", 0.9), ("b1", 0.75), ("y", 0.5)]
    document_of = {"a1": "A", "a2": "A", "b1": "B", "x": "X", "y": "Y"}
    fuse = vector_weighted(0.5)
    assert [key for key, _ in fuse([bm25, knn])][0] == "b1"  # chunk by chunk, B wins
    fused = ranked_by_documents([bm25, knn], document_of, fuse, corroboration=0.0)
    assert document_of[fused[0][0]] == "A" and fused[1][0] == "b1"
    # A's best chunk in each ranking makes A's fused score (1.0); B's is its one chunk's.
    assert fused[0][1] == pytest.approx(1.0)
    assert dict(fused)["b1"] == pytest.approx(0.5 * 0.6 + 0.5 * 0.625)


def test_a_documents_other_chunks_rank_on_their_own_match_not_on_the_document():
    # A's best chunk leads both rankings; its other chunks match weakly. B's one chunk is second.
    # Documents with many chunks must not fill the top_k with their weak ones (seen through the
    # pipeline: the top 50 chunks of a hybrid search covered 12.6 documents on average).
    bm25 = [("a1", 10.0), ("b1", 8.0), ("a2", 5.0), ("a3", 4.0), ("x", 0.0)]
    knn = [("a1", 0.9), ("b1", 0.8), ("a2", 0.7), ("a3", 0.65), ("y", 0.5)]
    document_of = {"a1": "A", "a2": "A", "a3": "A", "b1": "B", "x": "X", "y": "Y"}
    for fuse in (vector_weighted(0.5), rrf):
        fused = ranked_by_documents([bm25, knn], document_of, fuse, corroboration=0.3)
        assert [key for key, _ in fused][:4] == ["a1", "b1", "a2", "a3"]
    single = ranked_by_documents([bm25], document_of, rrf, corroboration=0.3)
    assert [key for key, _ in single][:3] == ["a1", "b1", "a2"]


def test_full_text_hits_carry_highlights_of_what_matched(gateway: Gateway):
    accepted = gateway.create_text("ferries.txt", "The ferries sailed daily between the islands, weather permitting.")
    gateway.wait(accepted["document_id"], accepted["revision"])
    [hit] = gateway.search("ferry sailing", mode="hybrid", top_k=1)
    [fragment] = hit["highlights"]
    assert "<em>ferries</em>" in fragment and "<em>sailed</em>" in fragment
    [semantic_only] = gateway.search("ferry sailing", mode="semantic", top_k=1)
    assert semantic_only["highlights"] == []


def test_a_withdrawn_revision_is_not_served_from_the_projected_state_either(settings: Settings):
    from schemas import DocumentStatus, Stage, StatusEvent
    from services.gateway.services import Services
    from services.gateway.settings import GatewaySettings

    services = Services(settings, GatewaySettings())
    completed = StatusEvent(tenant_id="t", dataset_id="d", document_id="gone", revision=7, attempt=1,
                            status=DocumentStatus.COMPLETED, stage=Stage.INDEXER, segment_count=1, progress=1.0)
    services.states.fold(completed, 0)  # the projector has not seen the delete yet
    assert services.serving_revisions(["t/gone"]) == {"t/gone": 7}  # indexed before the serving record

    services.serving.withdraw("t/gone", 8)  # the indexer removed its chunks (visible until a refresh)
    assert services.serving_revisions(["t/gone"]).get("t/gone") != 7


def test_the_refined_query_turns_toward_the_feedback_by_its_weight():
    query, feedback = [1.0, 0.0, 0.0], [[0.0, 2.0, 0.0], [0.0, 0.0, 3.0]]
    assert refined_query(query, feedback, 0.0) == pytest.approx(query)
    refined = np.asarray(refined_query(query, feedback, 1.0))
    assert np.linalg.norm(refined) == pytest.approx(1.0)
    # The unit query plus the unit mean of the unit feedback vectors: (1, 1/sqrt2, 1/sqrt2) / sqrt2.
    assert refined == pytest.approx(np.array([1.0, 0.5 ** 0.5, 0.5 ** 0.5]) / 2 ** 0.5)
    assert refined_query(query, [], 0.7) == pytest.approx(query)


def test_hybrid_search_asks_knn_again_with_the_query_moved_toward_its_best_chunks(gateway: Gateway):
    texts = {
        "lighthouse.txt": "The lighthouse keeper climbed the tower each night to light the lamp for passing ships.",
        "harbour.txt": "Fishing boats return to the harbour at dawn and sell their catch on the quay.",
        "orchard.txt": "Apple trees in the orchard blossom in spring and are picked in the autumn.",
    }
    for name, text in texts.items():
        accepted = gateway.create_text(name, text)
        gateway.wait(accepted["document_id"], accepted["revision"])
    query = "keeper of the lamp"
    semantic = {hit["name"]: hit["scores"]["semantic"] for hit in gateway.search(query, mode="semantic")}
    hybrid = gateway.search(query, mode="hybrid")
    assert hybrid[0]["name"] == "lighthouse.txt"
    # The kNN ranking fused is that of the query refined by the best fused chunk: nearer to it.
    assert hybrid[0]["scores"]["semantic"] > semantic["lighthouse.txt"] + 0.01
