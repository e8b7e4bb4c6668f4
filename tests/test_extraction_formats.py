"""What people actually upload: page images and scanned PDFs (OCR with Tesseract), text in any
encoding, and mail (headers, attachments, signed). Files are made by the tests from known text, so
what comes back can be checked word for word."""

from __future__ import annotations

import re
from email.message import EmailMessage
from pathlib import Path

import pytest
from PIL import Image

from services.extractor.parsers import ExtractionOptions, UnextractableDocument
from services.extractor.sandbox import Sandbox
from tests.conftest import SHARED
from tests.support.scans import KNOWN_TEXT, page_image, recovered, scanned_pdf

CORPUS = SHARED / "corpus" / "documents"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"{CORPUS} not found: the corpus lives in ../shared")

@pytest.fixture(scope="module")
def sandbox():
    box = Sandbox(timeout=120, memory_limit_mb=2048)
    yield box
    box.close()


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".webp", ".heic"])
def test_a_page_image_is_read_by_ocr(sandbox: Sandbox, tmp_path: Path, suffix: str):
    import pillow_heif

    pillow_heif.register_heif_opener()
    path = tmp_path / f"scan{suffix}"
    image = page_image()
    image.convert("RGB").save(path, quality=90) if suffix in (".jpg", ".webp", ".heic") else image.save(path)
    extraction = sandbox.extract(path)
    [(number, text)] = extraction.pages
    assert number == 1
    assert recovered(KNOWN_TEXT, text) >= 0.95, text
    assert extraction.ocr_pages == 1 and extraction.ocr_seconds > 0


def test_a_multi_page_tiff_keeps_its_page_numbers(sandbox: Sandbox, tmp_path: Path):
    first, second = page_image(KNOWN_TEXT[:300]), page_image("Second page about flood barriers and storms")
    path = tmp_path / "fax.tiff"
    first.save(path, save_all=True, append_images=[second], compression="tiff_lzw")
    extraction = sandbox.extract(path)
    assert [number for number, _ in extraction.pages] == [1, 2]
    assert "barriers" in extraction.pages[1][1] and "quarterly" in extraction.pages[0][1]
    assert extraction.ocr_pages == 2


def test_a_pdf_without_a_text_layer_is_read_by_ocr_page_by_page(sandbox: Sandbox, tmp_path: Path):
    path = scanned_pdf(tmp_path / "scan.pdf", page_image(), page_image("The second scanned page names turbidity"))
    extraction = sandbox.extract(path)
    assert [number for number, _ in extraction.pages] == [1, 2]
    assert recovered(KNOWN_TEXT, extraction.pages[0][1]) >= 0.95
    assert "turbidity" in extraction.pages[1][1]
    assert extraction.ocr_pages == 2


@needs_corpus
def test_a_mixed_pdf_ocrs_only_the_pages_without_text(sandbox: Sandbox, tmp_path: Path):
    import pypdfium2 as pdfium

    scan = scanned_pdf(tmp_path / "scan.pdf", page_image())
    mixed = pdfium.PdfDocument.new()
    mixed.import_pages(pdfium.PdfDocument(str(CORPUS / "pdf_reliance.pdf")), [0])
    mixed.import_pages(pdfium.PdfDocument(str(scan)), [0])
    path = tmp_path / "mixed.pdf"
    mixed.save(str(path))
    extraction = sandbox.extract(path)
    assert [number for number, _ in extraction.pages] == [1, 2]
    assert extraction.ocr_pages == 1
    assert "Integrated Annual Report" in extraction.pages[0][1]
    assert recovered(KNOWN_TEXT, extraction.pages[1][1]) >= 0.95


def test_ocr_can_be_turned_off_and_then_says_so(sandbox: Sandbox, tmp_path: Path):
    path = tmp_path / "scan.png"
    page_image().save(path)
    with pytest.raises(UnextractableDocument, match="no text: image/png image and OCR is turned off"):
        sandbox.extract(path, ExtractionOptions(ocr=False))


def test_the_ocr_language_is_the_documents(sandbox: Sandbox, tmp_path: Path):
    path = tmp_path / "scan.png"
    page_image().save(path)
    with pytest.raises(UnextractableDocument, match="OCR language 'xyz' is not installed"):
        sandbox.extract(path, ExtractionOptions(ocr_languages="xyz"))


@needs_corpus
def test_a_chinese_scan_is_read_in_its_language(sandbox: Sandbox):
    extraction = sandbox.extract(CORPUS / "img_chi_sim_image.jpeg", ExtractionOptions(ocr_languages="chi_sim"))
    assert len(re.findall(r"[\u4e00-\u9fff]", extraction.pages[0][1])) > 20


def test_a_blank_image_has_no_text_and_says_so(sandbox: Sandbox, tmp_path: Path):
    path = tmp_path / "blank.png"
    Image.new("L", (800, 600), 255).save(path)
    with pytest.raises(UnextractableDocument, match="no text found by OCR in image/png"):
        sandbox.extract(path)


# --- encodings -------------------------------------------------------------------------------

XML = '<?xml version="1.0" encoding="UTF-16"?>\n<report><title>Steel grades</title><p>Tensile strength</p></report>\n'


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("utf16le-no-bom.xml", XML.encode("utf-16-le")),
        ("utf16be-no-bom.xml", XML.encode("utf-16-be")),
        ("undeclared.xml", XML.split("\n", 1)[1].encode("utf-16-le")),
        ("declared-utf8-but-utf16.xml", XML.replace("UTF-16", "UTF-8").encode("utf-16")),
        ("utf8-bom.xml", XML.replace("UTF-16", "UTF-8").encode("utf-8-sig")),
    ],
)
def test_xml_in_any_encoding(sandbox: Sandbox, tmp_path: Path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    [(_, text)] = sandbox.extract(path).pages
    assert "Steel grades" in text and "Tensile strength" in text


LEGACY = "Café naïve résumé: the façade of the théâtre costs 42 €, señor. Über grüße!\n" * 3


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("notes.txt", LEGACY.encode("cp1252")),
        ("notes-utf16.txt", LEGACY.encode("utf-16-le")),
        ("table.csv", ("name;city\n" + LEGACY.replace(",", "")).encode("utf-16-le")),
        ("page.html", f"<html><body><p>{LEGACY}</p></body></html>".encode("utf-16")),
        ("notes-no-suffix", LEGACY.encode("utf-16-be")),
    ],
)
def test_legacy_and_utf16_text_is_detected_not_assumed(sandbox: Sandbox, tmp_path: Path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    text = "".join(t for _, t in sandbox.extract(path).pages)
    assert "théâtre" in text and "señor" in text and "grüße" in text, text[:200]


# --- mail ------------------------------------------------------------------------------------


def mail(body: str = "The pumps need new seals before winter.") -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = "Pump maintenance plan"
    message["From"] = "Alice Example <alice@example.com>"
    message["To"] = "ops@example.com"
    message["Date"] = "Tue, 03 Nov 2026 09:30:00 +0000"
    message.set_content(body)
    return message


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_a_utf16_mail_is_read(sandbox: Sandbox, tmp_path: Path, encoding: str):
    path = tmp_path / "mail.eml"
    path.write_bytes(mail().as_string().encode(encoding))
    extraction = sandbox.extract(path)
    text = "".join(t for _, t in extraction.pages)
    assert "new seals before winter" in text
    assert extraction.metadata["mail_subject"] == "Pump maintenance plan"


def test_mail_headers_are_metadata_and_searchable_text(sandbox: Sandbox, tmp_path: Path):
    message = mail()
    message.add_alternative("<html><body><p>The pumps need <b>new seals</b> before winter.</p></body></html>",
                            subtype="html")
    message.add_attachment(b"Attached: the seal supplier quotes 40 euros each.", maintype="text",
                           subtype="plain", filename="quote.txt")
    path = tmp_path / "plan.eml"
    path.write_bytes(message.as_bytes())
    extraction = sandbox.extract(path)
    text = "".join(t for _, t in extraction.pages)
    assert extraction.metadata["mail_subject"] == "Pump maintenance plan"
    assert extraction.metadata["mail_from"] == "Alice Example <alice@example.com>"
    assert extraction.metadata["mail_to"] == "ops@example.com"
    assert extraction.metadata["mail_date"] == "2026-11-03T09:30:00+00:00"
    assert "Subject: Pump maintenance plan" in text and "alice@example.com" in text
    assert text.count("new seals") == 1, "one body, not the plain and the HTML alternative both"
    assert "quote.txt" in text and "seal supplier quotes 40 euros" in text


def test_an_image_attached_to_a_mail_is_read_by_ocr(sandbox: Sandbox, tmp_path: Path):
    import io

    scan = io.BytesIO()
    page_image().save(scan, format="PNG")
    message = mail("See the scanned report attached.")
    message.add_attachment(scan.getvalue(), maintype="image", subtype="png", filename="report.png")
    path = tmp_path / "scan.eml"
    path.write_bytes(message.as_bytes())
    extraction = sandbox.extract(path)
    assert recovered(KNOWN_TEXT, "".join(t for _, t in extraction.pages)) >= 0.95
    assert extraction.ocr_pages == 1


SIGNED = (
    'MIME-Version: 1.0\nContent-Type: multipart/signed; protocol="application/x-pkcs7-signature"; '
    'micalg="sha-256"; boundary="----B0UND"\n\nThis is an S/MIME signed message\n\n------B0UND\n'
    "The contract was signed on Friday.\n\n------B0UND\nContent-Type: application/x-pkcs7-signature; "
    'name="smime.p7s"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; '
    'filename="smime.p7s"\n\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A\n\n------B0UND--\n'
)


@pytest.mark.parametrize("name", ["signed-doc.p7s", "signed.eml"])
def test_a_signed_mail_is_read_through_to_its_content(sandbox: Sandbox, tmp_path: Path, name: str):
    path = tmp_path / name
    path.write_text(SIGNED)
    text = "".join(t for _, t in sandbox.extract(path).pages)
    assert "The contract was signed on Friday." in text
    assert "MIIBIjAN" not in text


def test_an_opaque_signed_mail_is_unwrapped(sandbox: Sandbox, tmp_path: Path):
    import base64

    from asn1crypto import cms

    inner = mail("The opaque signed body names the harbour crane.").as_bytes()
    signed = cms.ContentInfo({
        "content_type": "signed_data",
        "content": cms.SignedData({
            "version": "v1", "digest_algorithms": [], "signer_infos": [],
            "encap_content_info": {"content_type": "data", "content": inner},
        }),
    }).dump()
    outer = (
        "MIME-Version: 1.0\nSubject: Opaque\nContent-Type: application/pkcs7-mime; smime-type=signed-data; "
        'name="smime.p7m"\nContent-Transfer-Encoding: base64\n\n' + base64.encodebytes(signed).decode()
    )
    path = tmp_path / "opaque.eml"
    path.write_text(outer)
    text = "".join(t for _, t in sandbox.extract(path).pages)
    assert "harbour crane" in text


def test_a_mail_without_a_body_says_so(sandbox: Sandbox, tmp_path: Path):
    message = EmailMessage()
    message["Subject"] = ""
    path = tmp_path / "empty.eml"
    path.write_bytes(message.as_bytes())
    with pytest.raises(UnextractableDocument, match="no text found in message/rfc822"):
        sandbox.extract(path)


@needs_corpus
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("eml_fake-email-utf-16.eml", "This is a test email to use for unit tests."),
        ("eml_fake-email-attachment.eml", "Hey this is a fake attachment!"),
        ("fake-email-attachment.msg", "Hey this is a fake attachment!"),
    ],
)
def test_corpus_mail(sandbox: Sandbox, name: str, expected: str):
    extraction = sandbox.extract(CORPUS / name)
    assert expected in "".join(t for _, t in extraction.pages)
    assert extraction.metadata.get("mail_subject")


# --- the sandbox's limits cover OCR ----------------------------------------------------------


def running_tesseracts(group: int) -> int:
    """Live Tesseract processes of the sandbox's process group: this test's only, never another
    stack's on the same machine (a killed one stays listed until its new parent reaps it)."""
    import time

    for _ in range(5):
        live = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                pid_and_name, _, rest = stat.read_text().rpartition(")")
            except OSError:
                continue  # gone meanwhile
            state, _parent, process_group = rest.split()[:3]
            live += pid_and_name.endswith("(tesseract") and int(process_group) == group and state != "Z"
        if not live:
            return 0
        time.sleep(0.1)
    return live


def test_ocr_past_the_time_limit_fails_the_document_and_leaves_no_ocr_process(tmp_path: Path):
    path = tmp_path / "long-page.png"
    page_image(KNOWN_TEXT * 12).save(path)  # seconds of OCR
    warm_up = tmp_path / "note.txt"
    warm_up.write_text("started and ready")
    box = Sandbox(timeout=60, memory_limit_mb=2048)
    try:
        box.extract(warm_up)  # the sandbox is up: the time limit below meets OCR, not Python's start
        box.timeout = 2.0
        group = box.process_group
        with pytest.raises(UnextractableDocument, match="timed out after 2s without progress"):
            box.extract(path)
        assert running_tesseracts(group) == 0, "the OCR process is killed with its sandbox"
    finally:
        box.close()


def test_a_long_scan_is_not_cut_off_while_its_pages_progress(tmp_path: Path):
    """Each page within the step limit, the whole document well past it: done, with its progress."""
    import time

    path = scanned_pdf(tmp_path / "scan.pdf", *[page_image(f"Page number {n} of the long scan") for n in range(4)])
    started = time.monotonic()
    single = Sandbox(timeout=60)
    single.extract(scanned_pdf(tmp_path / "one.pdf", page_image("Page number 0 of the long scan")))
    step = time.monotonic() - started
    single.close()
    reports = []
    box = Sandbox(timeout=step * 2.5, max_seconds=600)
    try:
        extraction = box.extract(path, progress=lambda done, total: reports.append((done, total)))
    finally:
        box.close()
    assert extraction.ocr_pages == 4
    assert reports == [(1, 4), (2, 4), (3, 4), (4, 4)]
