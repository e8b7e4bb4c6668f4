"""Dify's segment edits, as revisions. An edit takes the document's segments as an editor sees them
(the list its newest revision was given, or the chunks its indexed text was split into), changes
them, and the gateway publishes the result as the document's next revision: a segment list that
runs through the pipeline like any upsert, so the documents topic stays the source of truth."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from schemas import IndexingSpec
from schemas.edited import GivenChild, GivenSegment, SegmentList
from services.gateway.errors import ApiError
from services.splitter.splitting import fixed_split

Edit = Callable[[SegmentList, IndexingSpec], SegmentList]
T = TypeVar("T", GivenSegment, GivenChild)


def segment_list_of(chunks: Sequence[dict[str, Any]], hierarchical: bool) -> SegmentList:
    """The segments an indexed revision's chunks (in order) stand for; a hierarchical document's
    child chunks are gathered under their parents."""
    if not hierarchical:
        segments = [GivenSegment(id=stable_id_of(c), content=c["content"], enabled=c.get("enabled", True),
                                 page=c.get("page")) for c in chunks]
    else:
        parents: dict[str, dict[str, Any]] = {}
        for chunk in chunks:
            parent_id = chunk.get("parent_stable_id") or chunk["parent_id"]
            parent = parents.setdefault(parent_id, {
                "id": parent_id, "content": chunk.get("parent_content") or chunk["content"],
                "enabled": chunk.get("enabled", True), "page": chunk.get("page"), "children": [],
            })
            parent["children"].append(GivenChild(id=stable_id_of(chunk), content=chunk["content"]))
        segments = [GivenSegment(**parent) for parent in parents.values()]
    return SegmentList(title=chunks[0].get("title") if chunks else None, segments=segments)


def stable_id_of(chunk: dict[str, Any]) -> str:
    return chunk.get("stable_id") or chunk["segment_id"]  # chunks indexed before stable ids: their own


def children_of(content: str, indexing: IndexingSpec) -> list[GivenChild]:
    """A hierarchical document's new child chunks of ``content``, by its rule; none for a flat one."""
    if indexing.doc_form != "hierarchical_model":
        return []
    return [GivenChild(id=new_id(), content=child)
            for child in fixed_split(content, indexing.process_rule.subchunk_segmentation)]


def new_id() -> str:
    return str(uuid.uuid4())  # a UUID, as Dify's routes take


def adding(new: dict[str, str]) -> Edit:
    """New segments (id -> content) after the last; a hierarchical document's split into children."""

    def edit(given: SegmentList, indexing: IndexingSpec) -> SegmentList:
        added = [GivenSegment(id=id_, content=content, children=children_of(content, indexing))
                 for id_, content in new.items()]
        return given.model_copy(update={"segments": [*given.segments, *added]})

    return edit


def updating(segment_id: str, content: str | None, enabled: bool | None, regenerate_children: bool) -> Edit:
    """Dify's segment update: disabling ignores the rest; a disabled segment must be enabled to be
    changed; new content re-splits a hierarchical segment's children only when asked to."""

    def edit(given: SegmentList, indexing: IndexingSpec) -> SegmentList:
        segment = find(given, segment_id)
        if enabled is False:
            return replace(given, segment.model_copy(update={"enabled": False}))
        if not segment.enabled and enabled is not True:
            raise ApiError(400, "Can't update disabled segment")
        changes: dict[str, Any] = {"enabled": True}
        if content is not None:
            changes["content"] = content
            if regenerate_children and segment.children:
                changes["children"] = children_of(content, indexing)
        return replace(given, segment.model_copy(update=changes))

    return edit


def removing(segment_id: str) -> Edit:
    def edit(given: SegmentList, _: IndexingSpec) -> SegmentList:
        find(given, segment_id)
        if len(given.segments) == 1:  # a revision with nothing to index ends in error, out of search
            raise ApiError(400, "A document keeps at least one segment; delete the document instead.")
        return given.model_copy(update={"segments": [s for s in given.segments if s.id != segment_id]})

    return edit


def adding_child(segment_id: str, child: GivenChild) -> Edit:
    def edit(given: SegmentList, _: IndexingSpec) -> SegmentList:
        segment = parent_of_children(given, segment_id)
        return replace(given, segment.model_copy(update={"children": [*segment.children, child]}))

    return edit


def updating_child(segment_id: str, child_id: str, content: str) -> Edit:
    def edit(given: SegmentList, _: IndexingSpec) -> SegmentList:
        segment = parent_of_children(given, segment_id)
        find_child(segment, child_id)
        children = [c.model_copy(update={"content": content}) if c.id == child_id else c for c in segment.children]
        return replace(given, segment.model_copy(update={"children": children}))

    return edit


def removing_child(segment_id: str, child_id: str) -> Edit:
    def edit(given: SegmentList, _: IndexingSpec) -> SegmentList:
        segment = parent_of_children(given, segment_id)
        find_child(segment, child_id)
        if len(segment.children) == 1:  # a parent is found only through its children
            raise ApiError(400, "A segment keeps at least one child chunk; delete the segment instead.")
        return replace(given, segment.model_copy(update={"children": [c for c in segment.children
                                                                        if c.id != child_id]}))

    return edit


def find(given: SegmentList, segment_id: str) -> GivenSegment:
    return _by_id(given.segments, segment_id, "Segment not found.")


def parent_of_children(given: SegmentList, segment_id: str) -> GivenSegment:
    segment = find(given, segment_id)
    if not segment.children:
        raise ApiError(400, "Child chunks belong to the segments of hierarchical (parent-child) documents.")
    return segment


def find_child(segment: GivenSegment, child_id: str) -> GivenChild:
    return _by_id(segment.children, child_id, "Child chunk not found.")


def _by_id(items: Sequence[T], wanted: str, missing: str) -> T:
    found = next((item for item in items if item.id == wanted), None)
    if found is None:
        raise ApiError(404, missing)
    return found


def replace(given: SegmentList, segment: GivenSegment) -> SegmentList:
    return given.model_copy(update={"segments": [segment if s.id == segment.id else s for s in given.segments]})
