"""Extraction: page numbers for PDFs, clear reasons for what yields no text, a sandbox whose
time and memory limits cost one document, and parts that fit in a Kafka record."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from schemas import Page
from services.extractor.parsers import ExtractionLimits, UnextractableDocument
from services.extractor.parts import into_parts
from services.extractor.sandbox import Sandbox
from tests.conftest import SHARED

CORPUS = SHARED / "corpus" / "documents"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"{CORPUS} not found: the corpus lives in ../shared")


@pytest.fixture(scope="module")
def sandbox():
    box = Sandbox(timeout=60, memory_limit_mb=2048)
    yield box
    box.close()


@needs_corpus
def test_pdfs_keep_their_page_numbers(sandbox: Sandbox):
    extraction = sandbox.extract(CORPUS / "pdf_layout-parser-paper-with-empty-pages.pdf")
    assert extraction.content_type == "application/pdf"
    assert [n for n, _ in extraction.pages] == [1, 2, 3, 4]
    assert "LayoutParser" in extraction.pages[0][1]


@needs_corpus
@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("pdf_password.pdf", "encrypted PDF: a password is required"),
        ("password_protected.xlsx", "encrypted document: a password is required"),
        ("empty.txt", "empty document (0 bytes)"),
        ("img_bmp_24.bmp", "no text found by OCR in image/bmp"),  # three coloured triangles
        ("CantinaBand3.wav", "unsupported type audio/vnd.wave: no text to extract"),
    ],
)
def test_documents_without_text_fail_with_a_reason(sandbox: Sandbox, name: str, reason: str):
    with pytest.raises(UnextractableDocument, match=reason.replace("(", r"\(").replace(")", r"\)")):
        sandbox.extract(CORPUS / name)


@needs_corpus
@pytest.mark.parametrize("name", ["fake-text-utf-16-be.txt", "fake-text-utf-32.txt", "fake-html-cp1252.html"])
def test_encodings_are_decoded(sandbox: Sandbox, name: str):
    [(_, text)] = sandbox.extract(CORPUS / name).pages
    assert "\x00" not in text and ("test document" in text or "CP1252" in text)


@pytest.mark.parametrize("opening", ["FLV files and their versions", "PK tables", "%!PS is PostScript's header"])
def test_a_text_file_is_read_as_text_whatever_its_first_bytes_look_like(sandbox: Sandbox, tmp_path: Path,
                                                                         opening: str):
    # Content sniffing took a .txt file opening with "FLV" for a Flash video, and failed it.
    path = tmp_path / "notes.txt"
    path.write_text(f"{opening} of the survey.\n\nThe survey counted seabirds on the cliffs.")
    extraction = sandbox.extract(path)
    assert extraction.content_type == "text/plain"
    assert "seabirds" in extraction.pages[0][1] and opening in extraction.pages[0][1]


@needs_corpus
def test_a_hang_or_a_memory_blowup_costs_one_document():
    big = CORPUS / "pdf_DA-619p.pdf"
    box = Sandbox(timeout=0.3, memory_limit_mb=2048)
    with pytest.raises(UnextractableDocument, match=r"timed out after 0s"):
        box.extract(big)
    box.timeout = 60
    assert box.extract(CORPUS / "pdf_chevron-page.pdf").pages, "a fresh sandbox takes the next document"
    box.memory_limit = 8 * 2**20  # below any Python process: the watchdog must fire
    with pytest.raises(UnextractableDocument, match="exceeded the memory limit"):
        box.extract(big)
    box.close()


def test_parts_respect_page_and_size_limits():
    pages = [Page(number=i, text="x" * 10) for i in range(1, 30)]
    parts = into_parts(pages, pages_per_part=12, max_chars=1000)
    assert [len(p) for p in parts] == [12, 12, 5]
    assert [p.number for part in parts for p in part] == list(range(1, 30))

    huge = Page(number=None, text="\n".join("line %05d" % i for i in range(3000)))  # 30k chars
    parts = into_parts([huge], pages_per_part=12, max_chars=10_000)
    assert all(sum(len(p.text) for p in part) <= 10_000 for part in parts)
    assert "".join(p.text for part in parts for p in part) == huge.text


@pytest.mark.parametrize("suffix", [".txt", ".pdf"])
def test_text_past_the_limit_fails_the_document_instead_of_being_cut(tmp_path: Path, suffix: str):
    long_text = tmp_path / f"long{suffix}"
    if suffix == ".pdf":
        long_text = CORPUS / "pdf_layout-parser-paper-with-empty-pages.pdf"
        if not long_text.exists():
            pytest.skip(f"{long_text} not found: the corpus lives in ../shared")
    else:
        long_text.write_text("word " * 2000)  # 10,000 characters
    limited = Sandbox(timeout=60, limits=ExtractionLimits(max_chars=5_000))
    fits = Sandbox(timeout=60, limits=ExtractionLimits(max_chars=10_000_000))
    try:
        with pytest.raises(UnextractableDocument, match="over the 5,000 character limit"):
            limited.extract(long_text)
        text = "".join(t for _, t in fits.extract(long_text).pages)
        assert len(text) > 5_000
        if suffix == ".txt":
            assert text.count("word") == 2000, "all of it, not cut"
    finally:
        limited.close()
        fits.close()


def blank_pdf(path: Path, pages: int) -> Path:
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument.new()
    for _ in range(pages):
        document.new_page(200, 200)
    document.save(str(path))
    return path


def test_a_pdf_over_the_page_limit_fails_with_the_limit_named(tmp_path: Path):
    box = Sandbox(timeout=60, limits=ExtractionLimits(max_pages=5))
    try:
        with pytest.raises(UnextractableDocument, match=r"6 pages, over the 5 page limit"):
            box.extract(blank_pdf(tmp_path / "six.pdf", 6))
    finally:
        box.close()


def test_an_archive_that_expands_past_the_limit_is_refused_unopened(tmp_path: Path):
    bomb = tmp_path / "bomb.docx"  # the shape of an OOXML document: a zip of XML
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w") as entry:
            for _ in range(64):
                entry.write(b"\0" * 2**20)
    assert bomb.stat().st_size < 2**20
    box = Sandbox(timeout=60, limits=ExtractionLimits(max_expanded_bytes=16 * 2**20))
    try:
        with pytest.raises(UnextractableDocument, match=r"archive expands to 64 MB, over the 16 MB limit"):
            box.extract(bomb)
    finally:
        box.close()
