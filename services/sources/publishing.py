"""Items become documents through the gateway's own write path, in process: the same dataset
settings, tenant limits, writer locks and unchanged-content check as an upload, on the bulk lane
(a sync is an import)."""

from __future__ import annotations

import hashlib
import io
import uuid
from typing import Literal

from starlette.datastructures import Headers, UploadFile

from schemas import DocumentStatus, Priority, document_key
from services.gateway.errors import ApiError
from services.gateway.requests import FileOptions
from services.gateway.routes.documents import write
from services.gateway.services import Services, claim_id
from services.sources.definitions import Source
from services.sources.kinds import Content

Outcome = Literal["written", "unchanged"]


def document_id_for(source_id: str, item_id: str) -> str:
    """The same item of the same source always names the same document (an id, no paths in it)."""
    return "s-" + hashlib.sha256(f"{source_id}\0{item_id}".encode()).hexdigest()[:40]


class ItemRefused(Exception):
    """The gateway refused the item (a tenant limit, a bad name, another dataset's id): the reason."""


class ItemPublisher:
    def __init__(self, services: Services):
        self.services = services

    def publish(self, source: Source, document_id: str, url: str, content: Content) -> Outcome:
        s = self.services
        options = FileOptions(document_id=document_id, metadata={"source_id": source.id, "source_url": url})
        batch = f"source-{source.id}-{uuid.uuid4().hex[:8]}"
        try:
            claim_id(s, source.tenant_id, source.dataset_id, document_id)
            if content.text is not None:
                answer = write(s, source.tenant_id, source.dataset_id, document_id, options, batch, Priority.BULK,
                               text=content.text, name=content.name)
            else:
                data = content.data or b""
                headers = Headers({"content-type": content.mime_type or "application/octet-stream"})
                upload = UploadFile(io.BytesIO(data), size=len(data), filename=content.name, headers=headers)
                answer = write(s, source.tenant_id, source.dataset_id, document_id, options, batch, Priority.BULK,
                               file=upload)
        except ApiError as exc:
            if exc.status_code >= 500:
                raise
            raise ItemRefused(f"{exc.status_code} {exc.detail}") from None
        return "unchanged" if answer["unchanged"] else "written"

    def delete(self, source: Source, document_id: str) -> bool:
        """Delete the document unless it is gone already; whether a delete was published."""
        s = self.services
        state = s.states.get(document_key(source.tenant_id, document_id))
        if s.publisher.dataset_of(source.tenant_id, document_id) != source.dataset_id or (
                state is not None and state.status is DocumentStatus.DELETED):
            return False
        s.publisher.delete(source.tenant_id, source.dataset_id, document_id, Priority.BULK)
        s.usage.give_back(source.tenant_id, document_id)
        return True
