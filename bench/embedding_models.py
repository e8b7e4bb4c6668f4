"""Which local embedding model: semantic nDCG@10 and throughput of each, side by side, on the
judged testbeds, chunked exactly as the pipeline chunks (automatic rules).

    .venv/bin/python -m bench.embedding_models [--testbeds N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench.testbeds import load_testbeds, ndcg_at_10
from schemas import ProcessRule
from services.embedder.models import local_models
from services.splitter.cleaning import clean
from services.splitter.splitting import split


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--testbeds", type=int, default=None, help="use only the first N testbeds")
    args = parser.parse_args()
    beds = load_testbeds(args.testbeds)
    rule = ProcessRule()
    print(f"{len(beds)} testbeds, {sum(len(b.queries) for b in beds)} queries")
    print(f"{'model':28} {'dims':>5} {'chunk tokens':>12} {'chunks':>7} {'nDCG@10':>8} {'chunks/s':>9}")
    for model in local_models():
        chunks = {  # as the pipeline chunks for this model
            bed.name: [(doc, piece.text) for doc, text in bed.documents.items()
                       for piece in split(clean(text, rule), rule, model.automatic_chunk_tokens)]
            for bed in beds
        }
        total = sum(len(c) for c in chunks.values())
        scores, seconds = [], 0.0
        for bed in beds:
            docs, texts = zip(*chunks[bed.name])
            started = time.perf_counter()
            vectors = np.asarray(
                [v for i in range(0, len(texts), 32) for v in model.embed_documents(list(texts[i : i + 32]))]
            )
            seconds += time.perf_counter() - started
            for query in bed.queries:
                sims = vectors @ np.asarray(model.embed_query(query.text))
                best: dict[str, float] = {}
                for doc, sim in zip(docs, sims):
                    best[doc] = max(best.get(doc, -1.0), float(sim))
                ranked = sorted(best, key=best.get, reverse=True)
                scores.append(ndcg_at_10(ranked, query.relevance))
        print(f"{model.name:28} {model.dims:>5} {model.automatic_chunk_tokens:>12} {total:>7} "
              f"{np.mean(scores):>8.4f} {total / seconds:>9.1f}", flush=True)


if __name__ == "__main__":
    main()
