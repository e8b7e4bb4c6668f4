"""Mail read with Python's email package: the headers worth searching (subject, from, to, cc, date)
as metadata and as the first lines of the text, the body (plain, else HTML), and the attachments
read as text of the same document (bounded). Signed mail (multipart/signed, opaque S/MIME) is read
through to what was signed; the file may be in any encoding (a UTF-16 .eml) or named .p7s."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

from services.extractor.encodings import bom_encoding, decode, wide_encoding
from services.extractor.errors import UnextractableDocument

MAIL_CONTENT_TYPE = "message/rfc822"
MAIL_SUFFIXES = frozenset({".eml", ".p7s", ".p7m", ".mbox"})
_SIGNATURES = frozenset({"application/pkcs7-signature", "application/x-pkcs7-signature"})
_OPAQUE = frozenset({"application/pkcs7-mime", "application/x-pkcs7-mime"})
_HEADER = re.compile(r"^([A-Za-z][A-Za-z0-9-]*):")
_MAIL_HEADERS = frozenset({"from", "to", "subject", "date", "message-id", "mime-version", "received", "return-path"})

# name, data -> (text, OCR pages, OCR seconds) of an attachment; raises UnextractableDocument.
ReadAttachment = Callable[[str, bytes], tuple[str, int, float]]


def looks_like_mail(head: str) -> bool:
    """A file whose first lines are mail headers, whatever its name says."""
    names = []
    for line in head.lstrip("\ufeff").splitlines()[:40]:
        if not line.strip():
            break
        if line.startswith("From ") and not names:  # mbox's envelope line
            continue
        if (match := _HEADER.match(line)) is not None:
            names.append(match.group(1).lower())
        elif not line[:1].isspace():  # neither a header nor a folded continuation of one
            return False
    return len(_MAIL_HEADERS.intersection(names)) >= 2


@dataclass
class MailText:
    metadata: dict[str, str]
    text: str
    ocr_pages: int = 0
    ocr_seconds: float = 0.0


def parse(raw: bytes) -> EmailMessage:
    if bom_encoding(raw) is not None or wide_encoding(raw) is not None:
        text = decode(raw)  # a whole file in UTF-16: its parts' charsets name what it was before
        if text is None:
            raise UnextractableDocument("unreadable mail: not text in any encoding")
        raw = text.encode("utf-8")
    return message_from_bytes(raw, policy=policy.default)


def read_mail(raw: bytes, read_attachment: ReadAttachment, max_attachments: int) -> MailText:
    message = parse(raw)
    reader = _Reader(read_attachment, max_attachments)
    reader.walk(message)
    if not any(section.strip() for section in reader.sections):
        if reader.encrypted:
            raise UnextractableDocument("encrypted mail (S/MIME): a private key is required")
        raise UnextractableDocument(f"no text found in {MAIL_CONTENT_TYPE}: the mail has no body")
    metadata = headers_of(message)
    return MailText(metadata, "\n\n".join([header_block(metadata), *reader.sections]).strip() + "\n",
                    reader.ocr_pages, reader.ocr_seconds)


def headers_of(message: EmailMessage) -> dict[str, str]:
    found = {}
    for name in ("subject", "from", "to", "cc"):
        try:
            value = str(message.get(name) or "").strip()
        except (ValueError, TypeError, IndexError):  # a header too malformed for the parser to render
            value = ""
        if value:
            found[f"mail_{name}"] = value
    try:
        date = getattr(message.get("date"), "datetime", None)
    except (ValueError, TypeError, IndexError):
        date = None
    if date is not None:
        found["mail_date"] = date.isoformat()
    return found


def header_block(metadata: dict[str, str]) -> str:
    return "\n".join(f"{name.removeprefix('mail_').capitalize()}: {metadata[name]}"
                     for name in ("mail_subject", "mail_from", "mail_to", "mail_cc", "mail_date") if name in metadata)


TIKA_MAIL_FIELDS = {  # Tika's metadata of an Outlook .msg, under the names .eml mail gets
    "mail_subject": ("dc:subject", "dc:title"),
    "mail_from": ("Message:Raw-Header:From", "Message-From"),
    "mail_to": ("Message:Raw-Header:To", "Message-To"),
    "mail_cc": ("Message:Raw-Header:Cc", "Message-Cc"),
    "mail_date": ("dcterms:created",),
}


def mail_metadata_from_tika(metadata: dict[str, str]) -> dict[str, str]:
    found = {}
    for name, sources in TIKA_MAIL_FIELDS.items():
        value = next((metadata[s].strip() for s in sources if metadata.get(s, "").strip()), None)
        if value:
            found[name] = value
    return found


@dataclass
class _Reader:
    read_attachment: ReadAttachment
    max_attachments: int
    sections: list[str] = field(default_factory=list)
    attachments: int = 0
    encrypted: bool = False
    ocr_pages: int = 0
    ocr_seconds: float = 0.0

    def walk(self, part: EmailMessage) -> None:
        kind = part.get_content_type()
        if kind in _SIGNATURES:
            return  # the signature itself: nothing to read
        if part.is_attachment() and kind != "multipart/signed":
            self._attachment(part)
        elif kind == "multipart/signed":
            signed = next(part.iter_parts(), None)  # the first part is what was signed
            if signed is not None:
                self.walk(signed)
        elif kind == "multipart/alternative":
            self._alternative(part)
        elif part.is_multipart():
            for sub in part.iter_parts():
                self.walk(sub)
        elif kind in _OPAQUE:
            self._opaque(part)
        elif kind == "text/plain":
            self.sections.append(_text_of(part))
        elif kind == "text/html":
            self._read("body.html", _text_of(part).encode("utf-8"), label=None)
        else:  # a forwarded mail, a picture, a file without a name: read as an attachment
            self._attachment(part)

    def _alternative(self, part: EmailMessage) -> None:
        """One of the same body's renderings: plain text when it says something, else the richest."""
        options = list(part.iter_parts())
        plain = [p for p in options if p.get_content_type() == "text/plain" and _text_of(p).strip()]
        if options:
            self.walk(plain[0] if plain else options[-1])

    def _opaque(self, part: EmailMessage) -> None:
        """S/MIME with the content inside the signature's envelope (smime.p7m)."""
        from asn1crypto import cms

        if (part.get_param("smime-type") or "").lower() in ("enveloped-data", "authenveloped-data"):
            self.encrypted = True
            return
        try:
            info = cms.ContentInfo.load(part.get_payload(decode=True) or b"")
            if info["content_type"].native != "signed_data":
                self.encrypted = True
                return
            inner = info["content"]["encap_content_info"]["content"].native
        except (ValueError, TypeError, KeyError) as exc:
            self.sections.append(f"(S/MIME content not read: {exc})"[:300])
            return
        if inner:
            self.walk(message_from_bytes(inner, policy=policy.default))

    def _attachment(self, part: EmailMessage) -> None:
        name = part.get_filename() or f"attachment {self.attachments + 1} ({part.get_content_type()})"
        if self.attachments >= self.max_attachments:
            self.sections.append(f"Attachment: {name} (not read: past the limit of {self.max_attachments})")
            return
        self.attachments += 1
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload(0) if part.is_multipart() else part.get_content()
            data = inner.as_bytes(policy=policy.default.clone(linesep="\n"))
            name = name if name.lower().endswith(".eml") else f"{name}.eml"
        else:
            data = part.get_payload(decode=True) or b""
        if data:
            self._read(name, data, label=f"Attachment: {name}")

    def _read(self, name: str, data: bytes, label: str | None) -> None:
        try:
            text, pages, seconds = self.read_attachment(name, data)
        except UnextractableDocument as exc:
            if label is not None:
                self.sections.append(f"{label} (not read: {exc})")
            return
        self.ocr_pages += pages
        self.ocr_seconds += seconds
        self.sections.append(text if label is None else f"{label}\n{text}")


def _text_of(part: EmailMessage) -> str:
    try:
        return part.get_content()
    except (LookupError, UnicodeError, ValueError):  # an unknown or wrong charset: detect it instead
        payload = part.get_payload(decode=True) or b""
        return decode(payload) or payload.decode("latin-1")
