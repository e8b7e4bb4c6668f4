"""A local stand-in for Cohere's hosted embed and rerank APIs (POST /v2/embed, /v2/rerank), speaking
their HTTP API, so the real ``cohere`` client is tested without the internet. Vectors are
deterministic per text; rerank scores are the share of the query's words a document contains."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np


def vector_for(text: str, dims: int) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    vector = np.random.default_rng(seed).standard_normal(dims)
    return (vector / np.linalg.norm(vector)).tolist()


def rerank(body: dict) -> dict:
    def words(text: str) -> set[str]:
        return set(re.findall(r"\w+", text.lower()))

    query = words(body["query"])
    scores = [len(query & words(d)) / max(len(query), 1) for d in body["documents"]]
    order = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)[: body.get("top_n") or len(scores)]
    return {
        "id": "standin",
        "results": [{"index": i, "relevance_score": scores[i]} for i in order],
        "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}},
    }


class CohereStandIn:
    def __init__(self, dims: int = 1024):
        self.dims = dims
        self.requests: list[dict] = []
        self.rate_limited = 0  # answer this many next requests with 429
        self.failing = False  # answer every request with 503
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stand_in.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
                if stand_in.rate_limited > 0:
                    stand_in.rate_limited -= 1
                    self._answer(429, {"message": "too many requests"}, {"Retry-After": "2"})
                    return
                if stand_in.failing:
                    self._answer(503, {"message": "service unavailable"})
                    return
                if self.path == "/v2/rerank":
                    self._answer(200, rerank(body))
                    return
                if self.path != "/v2/embed" or not body.get("texts"):
                    self._answer(400, {"message": "texts required"})
                    return
                self._answer(
                    200,
                    {
                        "id": "standin",
                        "response_type": "embeddings_by_type",
                        "embeddings": {"float": [vector_for(t, stand_in.dims) for t in body["texts"]]},
                        "texts": body["texts"],
                        "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 1}},
                    },
                )

            def _answer(self, status: int, payload: dict, headers: dict | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> CohereStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
