"""Refuse request bodies over their limit before they are read (Content-Length), or as soon as a
body sent without one passes it, so no request can fill the gateway's memory or disk.

The limit follows the body's media type (uploads may be larger than JSON), so a request whose
headers could be read two ways (two Content-Types, two lengths, a length beside chunked
encoding) is refused: the limit and the parser that reads the body must see the same request."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway.errors import error_response

# Headers a request may carry once: each decides how its body is framed or read.
_SINGLE = (b"content-type", b"content-length", b"transfer-encoding")


class BodyTooLarge(HTTPException):
    # An HTTPException, so the body parsers let it through and it is answered as a 413.
    def __init__(self, limit: int):
        super().__init__(413, _reason(limit))


class BodyLimit:
    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]):
        self.app = app
        self.limit_for = limit_for  # content type -> bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, list[str]] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name.lower(), []).append(value.decode("latin-1"))
        if problem := _ambiguity(headers):
            await error_response(400, problem, {"Connection": "close"})(scope, receive, send)
            return
        [content_type] = headers.get(b"content-type", [""])
        limit = self.limit_for(content_type)
        [declared] = headers.get(b"content-length", [None])
        if declared is not None and int(declared) > limit:
            await error_response(413, _reason(limit), {"Connection": "close"})(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)


def is_multipart(content_type: str) -> bool:
    """An upload's media type, in any case, as the form parser reads it."""
    return content_type.partition(";")[0].strip().lower() == "multipart/form-data"


def _ambiguity(headers: dict[bytes, list[str]]) -> str | None:
    """Why the request's headers say two things about its body; None when they say one."""
    for name in _SINGLE:
        if len(headers.get(name, [])) > 1:
            return f"more than one {name.decode().title()} header"
    [declared] = headers.get(b"content-length", ["0"])
    if not re.fullmatch(r"\s*[0-9]+\s*", declared):
        return "Content-Length is not a number of bytes"
    [content_type] = headers.get(b"content-type", [""])
    if "," in content_type.partition(";")[0]:
        return "more than one media type in Content-Type"
    if b"content-length" in headers and b"transfer-encoding" in headers:
        return "both Content-Length and Transfer-Encoding"
    return None


def _reason(limit: int) -> str:
    return f"request body over the {limit:,} byte limit"
