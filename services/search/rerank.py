"""Optional reranking of search candidates by Cohere's rerank API. It runs only when a request asks
for it; when Cohere cannot answer in time the fused order stands and the response says why."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class RerankUnavailable(Exception):
    """The reranker did not answer (the caller keeps the order it had)."""


class CohereReranker:
    def __init__(self, model: str, api_key: str, base_url: str | None = None, timeout: float = 5.0):
        import cohere

        if not api_key:
            raise ValueError("reranking with Cohere needs an API key: set CO_API_KEY")
        self.model = model
        self._client = cohere.ClientV2(api_key=api_key, base_url=base_url, timeout=timeout)

    def rerank(self, query: str, documents: list[str], top_n: int) -> list[tuple[int, float]]:
        """(index into ``documents``, relevance score), best first."""
        try:
            response = self._client.rerank(
                model=self.model, query=query, documents=documents, top_n=top_n,
                request_options={"max_retries": 0},  # a search waits for no retry
            )
        except Exception as exc:  # noqa: BLE001 - any failure of the remote call means: keep the fused order
            raise RerankUnavailable(f"{type(exc).__name__}: {exc}"[:300]) from exc
        return [(result.index, result.relevance_score) for result in response.results]
