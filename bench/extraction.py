"""What extraction costs beside the embedding model, in pages/s, measured side by side in one run:

- text PDFs: the shared corpus's 619- and 400-page PDFs, their text layers read by PDFium;
- scanned pages: a PDF of N pages rendered from known text at 300 dpi, every page OCR'd by
  Tesseract, with the share of the words recovered;
- the default embedding model on the text of the first text-PDF pages, chunked as the pipeline
  chunks them: the pages/s the embedder absorbs, against which the other two are ratios;
- the whole shared corpus through the extractor: documents, extracted, errors by reason, OCR pages
  and their time.

Everything runs in the extractor's sandbox, as the service runs it; no stack is needed.

    .venv/bin/python -m bench.extraction [--scanned-pages 10]
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import time
from pathlib import Path

from schemas import ProcessRule
from services.embedder.batching import token_budget_batches
from services.embedder.models import EmbeddingSettings, load_provider
from services.extractor.parsers import UnextractableDocument
from services.extractor.sandbox import Sandbox
from services.runtime.tokens import count_tokens
from services.splitter.cleaning import clean
from services.splitter.splitting import split
from tests.support.scans import KNOWN_TEXT, page_image, recovered, scanned_pdf

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "documents"
TEXT_PDFS = ("pdf_DA-619p.pdf", "pdf_pdf2image-memory-error-test-400p.pdf")


def timed(sandbox: Sandbox, path: Path):
    started = time.perf_counter()
    extraction = sandbox.extract(path)
    return extraction, time.perf_counter() - started


def embedding_pages_per_second(pages: list[str]) -> tuple[float, int]:
    """Pages/s of the default model on ``pages``, split as the pipeline splits; and the chunks."""
    config = EmbeddingSettings()
    model = load_provider(config.default_model, config)
    rule = ProcessRule()
    texts = [piece.text for page in pages for piece in split(clean(page, rule), rule, model.automatic_chunk_tokens)]
    model.embed_documents(texts[:2])  # loaded and warm, as the embedder is
    tokens = [count_tokens(text) for text in texts]
    started = time.perf_counter()
    for indices in token_budget_batches(tokens, model.max_batch_tokens, model.max_batch_texts):
        model.embed_documents([texts[i] for i in indices])
    return len(pages) / (time.perf_counter() - started), len(texts)


def corpus_summary(sandbox: Sandbox) -> None:
    files = sorted(p for p in CORPUS.iterdir() if p.is_file())
    errors: collections.Counter[str] = collections.Counter()
    ocr_pages, ocr_seconds, extracted = 0, 0.0, 0
    for path in files:
        try:
            extraction = sandbox.extract(path)
        except UnextractableDocument as exc:
            errors[str(exc)] += 1
            continue
        extracted += 1
        ocr_pages += extraction.ocr_pages
        ocr_seconds += extraction.ocr_seconds
    print(f"\nshared corpus: {len(files)} documents, {extracted} extracted, {sum(errors.values())} errors")
    for reason, count in errors.most_common():
        print(f"  {count} x {reason}")
    print(f"  OCR: {ocr_pages} pages in {ocr_seconds:.1f} s ({ocr_seconds / max(1, ocr_pages):.2f} s/page)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scanned-pages", type=int, default=10)
    args = parser.parse_args()
    if not CORPUS.is_dir():
        raise SystemExit(f"{CORPUS} not found: the text PDFs and the corpus live in ../shared")
    sandbox = Sandbox(timeout=600)
    sandbox.extract(CORPUS / "pdf_chevron-page.pdf")  # the sandbox process is up, as in the service

    text_pages, text_seconds, sample = 0, 0.0, []
    for name in TEXT_PDFS:
        extraction, seconds = timed(sandbox, CORPUS / name)
        text_pages += len(extraction.pages)
        text_seconds += seconds
        sample = sample or [text for _, text in extraction.pages[:60]]

    with tempfile.TemporaryDirectory() as folder:
        page_text = " ".join([KNOWN_TEXT] * 3)  # about 300 words: a typed page
        scan = scanned_pdf(Path(folder) / "scan.pdf", *[page_image(page_text)] * args.scanned_pages)
        scanned, ocr_seconds = timed(sandbox, scan)
    recovered_share = sum(recovered(page_text, text) for _, text in scanned.pages) / len(scanned.pages)

    embed_rate, chunks = embedding_pages_per_second(sample)
    text_rate, ocr_rate = text_pages / text_seconds, len(scanned.pages) / ocr_seconds
    print(f"{'stage':34} {'pages':>6} {'seconds':>8} {'pages/s':>9} {'x embedding':>12}")
    print(f"{'text PDFs (PDFium)':34} {text_pages:>6} {text_seconds:>8.2f} {text_rate:>9.1f} {text_rate / embed_rate:>12.2f}")
    print(f"{'scanned PDF (render + Tesseract)':34} {len(scanned.pages):>6} {ocr_seconds:>8.2f} {ocr_rate:>9.2f} "
          f"{ocr_rate / embed_rate:>12.2f}")
    print(f"{'embedding ({} chunks)'.format(chunks):34} {len(sample):>6} {len(sample) / embed_rate:>8.2f} "
          f"{embed_rate:>9.2f} {1.0:>12.2f}")
    print(f"OCR: {ocr_seconds / len(scanned.pages):.2f} s/page, {scanned.ocr_seconds / scanned.ocr_pages:.2f} s/page "
          f"in Tesseract; words recovered {recovered_share:.1%} ({len(scanned.pages)} pages of ~300 words)")
    corpus_summary(sandbox)
    sandbox.close()


if __name__ == "__main__":
    main()
