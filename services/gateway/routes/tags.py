"""Dify's knowledge tags: a tenant's own labels for its datasets, made, renamed, deleted, bound to
datasets and unbound; the dataset list filters by them (services/gateway/routes/datasets.py)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from schemas.envelope import Id
from services.gateway.dataset_tags import Tag, TagNameTaken, TagsFull, UnknownTag
from services.gateway.errors import ApiError
from services.gateway.requests import TagBinding, TagDelete, TagName, TagRename, TagUnbinding
from services.gateway.services import Clients, Services, Tenant, existing_dataset
from services.gateway.tenant_limits import LimitReached

router = APIRouter(prefix="/v1/datasets")


def _shaped(tag: Tag, bindings: int) -> dict:
    # Dify answers the count as a string (its service API keeps the older string field).
    return {"id": tag.id, "name": tag.name, "type": "knowledge", "binding_count": str(bindings)}


def _counts(s: Services, tenant: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for tag_ids in s.tags.bound(tenant).values():
        for tag_id in tag_ids:
            counts[tag_id] = counts.get(tag_id, 0) + 1
    return counts


@router.get("/tags")
def list_tags(tenant: Tenant, s: Clients) -> list[dict]:
    counts = _counts(s, tenant)
    return [_shaped(tag, counts.get(tag.id, 0)) for tag in s.tags.all(tenant)]


@router.post("/tags")
def create_tag(body: TagName, tenant: Tenant, s: Clients) -> dict:
    limit = s.limits.of(tenant).tags
    try:
        return _shaped(s.tags.create(tenant, body.name, limit), 0)
    except TagsFull:
        raise LimitReached(403, "tags", limit) from None
    except TagNameTaken:
        raise ApiError(400, "Tag name already exists") from None


@router.patch("/tags")
def rename_tag(body: TagRename, tenant: Tenant, s: Clients) -> dict:
    try:
        tag = s.tags.rename(tenant, body.tag_id, body.name)
    except UnknownTag:
        raise ApiError(404, "Tag not found.") from None
    except TagNameTaken:
        raise ApiError(400, "Tag name already exists") from None
    return _shaped(tag, _counts(s, tenant).get(tag.id, 0))


@router.delete("/tags", status_code=204)
def delete_tag(body: TagDelete, tenant: Tenant, s: Clients) -> Response:
    """The tag and its bindings; the datasets stay."""
    try:
        s.tags.delete(tenant, body.tag_id)
    except UnknownTag:
        raise ApiError(404, "Tag not found.") from None
    return Response(status_code=204)


@router.post("/tags/binding", status_code=204)
def bind_tags(body: TagBinding, tenant: Tenant, s: Clients) -> Response:
    existing_dataset(s, tenant, body.target_id)
    try:
        s.tags.bind(tenant, body.target_id, body.tag_ids)
    except UnknownTag as exc:
        raise ApiError(404, f"Tag not found: {exc.tag_id}") from None
    return Response(status_code=204)


@router.post("/tags/unbinding", status_code=204)
def unbind_tags(body: TagUnbinding, tenant: Tenant, s: Clients) -> Response:
    """Tags not bound to the dataset are skipped, as in Dify."""
    existing_dataset(s, tenant, body.target_id)
    s.tags.unbind(tenant, body.target_id, body.named)
    return Response(status_code=204)


@router.get("/{dataset_id}/tags")
def dataset_tags(dataset_id: Id, tenant: Tenant, s: Clients) -> dict:
    existing_dataset(s, tenant, dataset_id)
    tags = bound_tags(s, tenant).get(dataset_id, [])
    return {"data": [{"id": tag["id"], "name": tag["name"]} for tag in tags], "total": len(tags)}


# Dify's route is the GET; dify-dataset-sdk asks it with a POST.
router.add_api_route("/{dataset_id}/tags", dataset_tags, methods=["POST"], include_in_schema=False)


def bound_tags(s: Services, tenant: str) -> dict[str, list[dict]]:
    """Dataset id -> Dify's ``tags`` of it (id, name, type), newest tag first."""
    tags = {tag.id: tag for tag in s.tags.all(tenant)}
    order = {tag_id: n for n, tag_id in enumerate(tags)}
    return {
        dataset_id: [{"id": t, "name": tags[t].name, "type": "knowledge"}
                     for t in sorted((t for t in tag_ids if t in tags), key=order.__getitem__)]
        for dataset_id, tag_ids in s.tags.bound(tenant).items()
    }
