"""Documents' originals, as Dify hands them out: a signed link to one document's upload, valid a few
minutes and fetched without an API key, and a zip of several documents' uploads. A document written
as text downloads as that text. A document whose segments were edited has no original left to give
(its newest revision is the edited segments)."""

from __future__ import annotations

import mimetypes
import os
import tempfile
import zipfile
from pathlib import Path, PurePath
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from schemas import DocumentStatus, DocumentUpserted, InlineSource, document_key
from schemas.edited import SEGMENT_LIST_MIME
from schemas.envelope import Id
from services.gateway.download_links import Grant, InvalidLink
from services.gateway.errors import ApiError
from services.gateway.services import Clients, Services, Tenant, existing_dataset, require_document

router = APIRouter(prefix="/v1/datasets/{dataset_id}/documents")
files_router = APIRouter()

MAX_ZIP_DOCUMENTS = 100  # Dify's


class ZipRequest(BaseModel):
    document_ids: list[Id] = Field(min_length=1, max_length=MAX_ZIP_DOCUMENTS)


@router.get("/{document_id}/download")
def download_link(dataset_id: Id, document_id: Id, request: Request, tenant: Tenant, s: Clients) -> dict:
    """Dify's ``{"url"}``: a link to the document's original, valid INDEXFLOW_GATEWAY_DOWNLOAD_LINK_SECONDS."""
    existing_dataset(s, tenant, dataset_id)
    upsert = original(s, tenant, dataset_id, document_id)
    token = s.download_links.token(Grant(tenant, document_id, upsert.content_hash or ""))
    return {"url": str(request.url_for("download", token=token))}


@files_router.get("/files/documents/{token}", name="download", include_in_schema=False)
def download(token: str, s: Clients) -> Response:
    """The original a signed link names; no API key (the signature is the permission)."""
    try:
        grant = s.download_links.verify(token)
    except (InvalidLink, ValueError, KeyError, TypeError):
        raise ApiError(403, "The download link is invalid or has expired.") from None
    upsert = s.publisher.registry.newest_upsert(document_key(grant.tenant_id, grant.document_id))
    if upsert is None or (upsert.content_hash or "") != grant.content_hash:
        raise ApiError(404, "The document has changed or is gone since the link was made.")
    upsert = original(s, grant.tenant_id, upsert.dataset_id, grant.document_id)
    # A document written as text has no type of its own: its name says (notes.txt is text/plain).
    media_type = upsert.mime_type or mimetypes.guess_type(upsert.name)[0] or "application/octet-stream"
    path = _local_path(s, upsert)
    if path is not None:
        return FileResponse(path, media_type=media_type, headers=_attachment(upsert.name))
    return Response(s.publisher.blobs.source_of(upsert), media_type=media_type, headers=_attachment(upsert.name))


@router.post("/download-zip")
def download_zip(dataset_id: Id, body: ZipRequest, tenant: Tenant, s: Clients) -> FileResponse:
    """The originals of up to 100 of the dataset's documents in one zip, each under its name (made
    unique), built on disk and bounded by INDEXFLOW_GATEWAY_MAX_ZIP_BYTES."""
    record = existing_dataset(s, tenant, dataset_id)
    upserts = [original(s, tenant, dataset_id, document_id) for document_id in dict.fromkeys(body.document_ids)]
    total = sum(_size(u) for u in upserts)
    if total > s.gateway.max_zip_bytes:
        raise ApiError(413, f"the documents hold {total:,} bytes, over the {s.gateway.max_zip_bytes:,} byte "
                            "limit of one zip (INDEXFLOW_GATEWAY_MAX_ZIP_BYTES): ask for fewer")
    handle, name = tempfile.mkstemp(prefix="indexflow-zip-", suffix=".zip")
    os.close(handle)
    try:
        with zipfile.ZipFile(name, "w", zipfile.ZIP_DEFLATED) as archive:
            for upsert, member in zip(upserts, _unique([u.name for u in upserts])):
                _add(s, archive, upsert, member)
    except BaseException:
        os.unlink(name)
        raise
    return FileResponse(name, media_type="application/zip", filename=f"{record.name}.zip",
                        background=BackgroundTask(os.unlink, name))


def original(s: Services, tenant: str, dataset_id: str, document_id: str) -> DocumentUpserted:
    """The document's newest upsert, whose source is its original (a short text kept inline, a
    longer one as a blob); 404 for none."""
    require_document(s, tenant, dataset_id, document_id, live=True)
    state = s.states.get(document_key(tenant, document_id))
    upsert = s.publisher.registry.newest_upsert(document_key(tenant, document_id))
    if upsert is None or (state is not None and state.status is DocumentStatus.DELETED):
        raise ApiError(404, f"Document not found: {document_id}")
    if upsert.mime_type == SEGMENT_LIST_MIME:
        raise ApiError(404, f"Document {document_id} has no upload file: its segments were edited, and they are "
                            "its content now")
    return upsert


def _add(s: Services, archive: zipfile.ZipFile, upsert: DocumentUpserted, member: str) -> None:
    path = _local_path(s, upsert)
    if path is not None:
        archive.write(path, member)  # streamed from the file, never whole in memory
    else:
        archive.writestr(member, s.publisher.blobs.source_of(upsert))


def _local_path(s: Services, upsert: DocumentUpserted) -> Path | None:
    """The original's file, for a blob on local disk; None for a text or an S3 blob."""
    if isinstance(upsert.source, InlineSource):
        return None
    return s.publisher.blobs.local_path(upsert.source.uri, upsert.tenant_id)


def _size(upsert: DocumentUpserted) -> int:
    source = upsert.source
    return len(source.text.encode()) if isinstance(source, InlineSource) else source.size or 0


def _unique(names: list[str]) -> list[str]:
    """Zip member names: each document's own name (its last path part), "name (2).ext" for a repeat."""
    taken: set[str] = set()
    unique = []
    for name in names:
        base = PurePath(name.replace("\\", "/")).name or "document"
        stem, suffix = PurePath(base).stem, PurePath(base).suffix
        candidate, n = base, 1
        while candidate in taken:
            n += 1
            candidate = f"{stem} ({n}){suffix}"
        taken.add(candidate)
        unique.append(candidate)
    return unique


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f"attachment; filename*=utf-8''{quote(PurePath(name).name or 'document')}"}
