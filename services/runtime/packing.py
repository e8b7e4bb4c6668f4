"""How the state Redis keeps the records it holds one of per document (registered upserts, projected
states): their JSON deflated against a preset dictionary of what such a record looks like, so the
field names, tags and timestamps' shared digits cost a few bytes, not most of the record (a
completed state: 930 bytes of JSON, about 200 packed).

A packed value is ``\\x01``, the record's revision in digits, ``:``, then the raw deflate stream of
its JSON with the document id left out (``"document_id":""``: the field's key, tenant/document, holds
it): a Lua script reads the revision without inflating (``STORED_REVISION_LUA``). A value that starts
with ``{`` is JSON as kept before packing, read as it is. A dictionary is part of the format for
good: another one would be another leading byte."""

from __future__ import annotations

import zlib

import orjson

_PACKED = b"\x01"
# The envelope's fields come first in a record's JSON, so the first such field is its own (ids hold
# no quote, and a quote in a name or text is escaped).
_ID_LEFT_OUT = b'"document_id":""'

# A completed state, as the projector writes one.
_STATE_DICTIONARY = (
    b'{"event_id":"00000000-0000-0000-0000-000000000000","type":"document.state","schema_version":1,'
    b'"tenant_id":"tenant","dataset_id":"dataset","document_id":"00000000-0000-0000-0000-000000000000",'
    b'"revision":1700000000000,"produced_at":"2026-01-01T00:00:00.123456+00:00","priority":"interactive",'
    b'"name":"document.txt","content_hash":"0000000000000000000000000000000000000000000000000000000000000000",'
    b'"status":"completed","stage":"indexer","progress":1.0,"segment_count":1,"token_count":100,'
    b'"word_count":100,"attempts":1,"error":null,"error_stage":null,"ocr_pages":0,"ocr_seconds":0.0,'
    b'"transitions":{"waiting":"2026-01-01T00:00:00.123456+00:00","parsing":"2026-01-01T00:00:00.123456+00:00",'
    b'"splitting":"2026-01-01T00:00:00.123456+00:00","indexing":"2026-01-01T00:00:00.123456+00:00",'
    b'"completed":"2026-01-01T00:00:00.123456+00:00"},"indexing_latency":1.0,'
    b'"searchable_revision":1700000000000,"updated_at":"2026-01-01T00:00:00.123456+00:00"}'
)

# A registered upsert (compact: defaults left out), by blob and inline, with words texts are made of.
_UPSERT_DICTIONARY = (
    b" the of and to in is that for it as with was on be by this are from or at an which have not but "
    b"they their has were been one all can there more would will its also other into than when who "
    b'{"event_id":"00000000-0000-0000-0000-000000000000","tenant_id":"tenant","dataset_id":"dataset",'
    b'"document_id":"00000000-0000-0000-0000-000000000000","revision":1700000000000,'
    b'"produced_at":"2026-01-01T00:00:00.123456Z","name":"document.pdf","mime_type":"application/pdf",'
    b'"source":{"uri":"file:///blobs/tenant/document/1700000000000/document.pdf","size":1000,"kind":"blob"},'
    b'"metadata":{},"indexing":{"process_rule":{"mode":"custom"},"indexing_technique":"economy",'
    b'"doc_form":"text_model"},"attempt":2,'
    b'"content_hash":"0000000000000000000000000000000000000000000000000000000000000000",'
    b'"type":"document.upserted","schema_version":1}'
    b'{"event_id":"00000000-0000-0000-0000-000000000000","tenant_id":"tenant","dataset_id":"dataset",'
    b'"document_id":"00000000-0000-0000-0000-000000000000","revision":1700000000000,'
    b'"produced_at":"2026-01-01T00:00:00.123456Z","name":"document.txt","source":{"text":"'
)

# Lua: the revision of a stored record, packed or JSON.
STORED_REVISION_LUA = """
local function stored_revision(raw)
  if string.byte(raw, 1) == 1 then return tonumber(string.match(raw, '^\\1(%d+):')) end
  return tonumber(cjson.decode(raw)['revision'])
end
"""


class Packing:
    def __init__(self, dictionary: bytes):
        self._dictionary = dictionary
        # A 2 KiB window holds the dictionary and a small record (the few kept larger compress less)
        # and costs a tenth of the default's set-up; each record deflated by a copy of it primed.
        self._primed = zlib.compressobj(6, zlib.DEFLATED, -11, 4, zlib.Z_DEFAULT_STRATEGY, dictionary)

    def pack(self, document_key: str, revision: int, raw_json: bytes) -> bytes:
        """The record (JSON) of the document ``document_key`` (tenant/document), packed."""
        record = raw_json.replace(_id_field(document_key), _ID_LEFT_OUT, 1)
        deflate = self._primed.copy()
        return b"%s%d:%s" % (_PACKED, revision, deflate.compress(record) + deflate.flush())

    def unpack(self, document_key: str, stored: bytes) -> bytes:
        """The JSON of the record stored for the document ``document_key``."""
        if not stored.startswith(_PACKED):
            return stored  # JSON, as kept before packing
        inflate = zlib.decompressobj(-15, self._dictionary)
        record = inflate.decompress(stored[stored.index(b":") + 1:]) + inflate.flush()
        return record.replace(_ID_LEFT_OUT, _id_field(document_key), 1)

    def loads(self, document_key: str, stored: bytes) -> dict:
        return orjson.loads(self.unpack(document_key, stored))


def _id_field(document_key: str) -> bytes:
    return b'"document_id":"%s"' % document_key.partition("/")[2].encode()


STATES = Packing(_STATE_DICTIONARY)
REGISTERED = Packing(_UPSERT_DICTIONARY)
