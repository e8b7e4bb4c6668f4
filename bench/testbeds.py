"""The judged retrieval sets in ../shared/eval/wiki-testbeds, and nDCG@10 over them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

TESTBEDS = Path(__file__).resolve().parents[2] / "shared" / "eval" / "wiki-testbeds"


@dataclass(frozen=True)
class Query:
    text: str
    relevance: dict[str, int]  # document name -> graded relevance 0..2


@dataclass(frozen=True)
class Testbed:
    name: str
    documents: dict[str, str]  # "document.N" -> text
    queries: list[Query]


def load_testbeds(limit: int | None = None) -> list[Testbed]:
    if not TESTBEDS.is_dir():
        raise FileNotFoundError(f"{TESTBEDS} not found: the eval sets live in ../shared beside the project")
    beds = []
    for directory in sorted(TESTBEDS.glob("testbed*"), key=lambda p: int(p.name.removeprefix("testbed"))):
        documents = {
            p.name: p.read_text(errors="replace") for p in directory.glob("document.*")
        }
        queries = []
        for q in sorted(directory.glob("query.*")):
            grades = (directory / f"relevance.{q.suffix[1:]}").read_text().split()
            queries.append(Query(q.read_text().strip(), {f"document.{i}": int(g) for i, g in enumerate(grades, 1)}))
        beds.append(Testbed(directory.name, documents, queries))
    return beds[:limit]


def ndcg_at_10(ranked: list[str], relevance: dict[str, int]) -> float:
    """nDCG@10 with the grade itself as the gain (trec_eval's and scikit-learn's), the measure the
    issue's reference figures use: a Lucene-like whole-document BM25 scores 0.684 with it here
    against their 0.682, and 0.650 with the exponential gain 2^grade - 1."""
    gains = [relevance.get(doc, 0) for doc in ranked[:10]]
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    ideal = sorted(relevance.values(), reverse=True)[:10]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at_10(ranked: list[str], relevance: dict[str, int]) -> float:
    relevant = {doc for doc, grade in relevance.items() if grade > 0}
    return len(relevant & set(ranked[:10])) / len(relevant) if relevant else 0.0
