"""A dataset moves to another embedding model without downtime: every document is re-embedded as
a new revision while search keeps answering from the old one, and afterwards only the new
model's chunks are left. A searcher runs through the whole switch: no empty answer, no error."""

from __future__ import annotations

import threading
import time

from services.runtime.settings import Settings
from tests.support.gateway import Gateway
from tests.test_pipeline_e2e import ALPHA, BETA, chunks

OTHER_MODEL = "use-multilingual-v3"  # not the deployment default
TEXTS = {"aurora.txt": ALPHA, "bread.txt": BETA, "tides.txt": "Tides rise and fall twice a day along the harbour."}


def test_switching_a_datasets_model_keeps_search_answering(pipeline: Settings):
    gateway = Gateway(pipeline, tenant="switch", dataset="switching")
    documents = {}
    for name, text in TEXTS.items():
        accepted = gateway.create_text(name, text)
        gateway.wait(accepted["document_id"], accepted["revision"])
        documents[name] = accepted["document_id"]

    answers: list[str] = []
    stop = threading.Event()

    def search_all_along() -> None:
        searcher = Gateway(pipeline, tenant="switch", dataset="switching")
        while not stop.is_set():
            for mode in ("semantic", "hybrid"):
                response = searcher.http.post("/v1/datasets/switching/retrieve",
                                              json={"query": "wild yeast ferments the dough", "mode": mode})
                ok = response.status_code == 200 and response.json()["records"]
                answers.append("ok" if ok else f"{mode}: {response.status_code} {response.text[:200]}")
            time.sleep(0.05)

    def answered(count: int) -> None:
        deadline = time.monotonic() + 30
        while len(answers) < count:
            assert time.monotonic() < deadline, "the searcher is not answering"
            time.sleep(0.05)

    searcher = threading.Thread(target=search_all_along, daemon=True)
    searcher.start()
    try:
        answered(4)  # searching before the switch ...
        response = gateway.http.post("/v1/datasets/switching/embedding-model", json={"embedding_model": OTHER_MODEL})
        assert response.status_code == 200, response.text
        assert response.json() == {"embedding_model": OTHER_MODEL, "documents": 3}
        deadline = time.monotonic() + 120
        while not all(c["model"] == OTHER_MODEL for d in documents.values() for c in chunks(pipeline, d, tenant="switch")):
            assert time.monotonic() < deadline, "documents not re-embedded"
            time.sleep(0.3)
        answered(len(answers) + 4)  # ... through it, and after it
    finally:
        stop.set()
        searcher.join(10)

    assert set(answers) == {"ok"}, [a for a in answers if a != "ok"][:5]
    [hit] = gateway.search("wild yeast ferments the dough", mode="semantic", top_k=1)
    assert hit["document_id"] == documents["bread.txt"]
    # New documents of the dataset take the new model.
    later = gateway.create_text("later.txt", "Later text.")
    gateway.wait(later["document_id"], later["revision"])
    assert {c["model"] for c in chunks(pipeline, later["document_id"], tenant="switch")} == {OTHER_MODEL}
