"""A dataset's documents by what Dify displays of them (its ``display_status``): one sorted set per
display status, scored by position as ``dataset_live_documents`` is, so a listing filtered by status
reads a page of one set. What a document is displayed as follows from its status and, once
completed, its visibility (disabled or archived); deleted documents, which Dify lists as errors
only when asked for deleted ones too, are listed under "deleted". The Lua here is shared by the
scripts that move a document between the sets: the projector's, as its state changes, and the
one the gateway runs as a document is disabled, archived or enabled."""

from __future__ import annotations

from schemas import DocumentStatus

# Dify's display_status of a document in each status (a completed one disabled or archived is
# displayed so instead).
DISPLAY_STATUS = {
    DocumentStatus.WAITING: "queuing",
    DocumentStatus.PARSING: "indexing",
    DocumentStatus.SPLITTING: "indexing",
    DocumentStatus.INDEXING: "indexing",
    DocumentStatus.COMPLETED: "available",
    DocumentStatus.ERROR: "error",
    DocumentStatus.PAUSED: "paused",
    DocumentStatus.CANCELLED: "error",
    DocumentStatus.DELETED: "error",
}

# What a document is listed under, in the order of its dataset's sorted sets (``listed_keys``).
LISTED = ("queuing", "indexing", "available", "disabled", "archived", "error", "paused", "deleted")

# Entries each dataset's journal of listing changes keeps, about (trimmed a node of a hundred at a
# time): what a reader holding the listing may fall behind by before it reads it all again.
CHANGES_KEPT = 2000


def listed_under(display: str, deleted: bool) -> list[str]:
    """The sets a listing by ``display`` reads: a deleted document is an error to Dify."""
    return [display, "deleted"] if deleted and display == "error" else [display]


def _lua_table(pairs: dict[str, object]) -> str:
    return "{" + ", ".join(f"[{name!r}] = {value!r}" for name, value in pairs.items()) + "}"


# list_shown(first, old_first, ...): list the document under what it is displayed as among the
# dataset's sets from KEYS[first] (in LISTED's order), after taking it out of those from
# KEYS[old_first] (its dataset's before, or the same); what it is listed as.
# journal(changes, document, ...): a change of the document's listing, in its dataset's journal
# (``RedisKeys.dataset_listing_changes``): "d" its id, then "l" the index in LISTED it is listed
# under and "p" its position, "n" its name when new or renamed; or "x" when it left the dataset.
LUA = f"""
local LISTED_INDEX = {_lua_table({name: index for index, name in enumerate(LISTED)})}
local LISTED_OF_STATUS = {_lua_table({s.value: DISPLAY_STATUS[s] for s in DocumentStatus} | {"deleted": "deleted"})}
local function listed_as(status, visibility)
  local listed = LISTED_OF_STATUS[status]
  if listed == 'available' and visibility then
    local shown = cjson.decode(visibility)
    if shown.archived == true then return 'archived' end
    if shown.enabled == false then return 'disabled' end
  end
  return listed
end
local function list_shown(first, old_first, document, status, visibility, position)
  for i = old_first, old_first + {len(LISTED) - 1} do redis.call('ZREM', KEYS[i], document) end
  local listed = listed_as(status, visibility)
  redis.call('ZADD', KEYS[first + LISTED_INDEX[listed]], position, document)
  return listed
end
local function journal(changes, document, ...)
  redis.call('XADD', changes, 'MAXLEN', '~', {CHANGES_KEPT}, '*', 'd', document, ...)
end
"""
