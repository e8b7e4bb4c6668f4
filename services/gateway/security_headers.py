"""Headers on every answer that keep a browser from turning the gateway's pages against their
user: no framing (clickjacking), no guessing a JSON answer is HTML (nosniff), and scripts, styles
and connections from the gateway itself only. FastAPI's API documentation pages load Swagger UI
from its CDN with an inline script, so they go without the content policy."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_ALWAYS = [(b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff")]


class SecurityHeaders:
    """Pure ASGI, so streamed answers (the dashboard's events) pass through untouched."""

    def __init__(self, app: ASGIApp, documentation_paths: frozenset[str]):
        self.app = app
        self.documentation_paths = documentation_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = list(_ALWAYS)
        if scope["path"] not in self.documentation_paths:
            added.append((b"content-security-policy", CONTENT_SECURITY_POLICY.encode()))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        await self.app(scope, receive, with_headers)
