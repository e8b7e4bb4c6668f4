"""Errors as Dify's Knowledge API answers them, ``{"code", "message", "status"}``, on every route:
Dify's clients read the code and message. ``detail`` stays beside them for the native API's
clients (FastAPI's field: a message, or the list of invalid fields)."""

from __future__ import annotations

import elasticsearch
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.runtime.errors import OUTAGE_ERRORS, DependencyUnavailable, as_outage
from services.runtime.registry import DocumentBusy
from services.runtime.revisions import RevisionsExhausted

# Dify's code for each status where it has one (werkzeug's names otherwise).
_CODES = {
    400: "invalid_param", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 413: "file_too_large", 415: "unsupported_file_type", 429: "too_many_requests",
    500: "internal_server_error",
    503: "service_unavailable",
}


class ApiError(StarletteHTTPException):
    def __init__(self, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None,
                 **extra: object):
        super().__init__(status, message, headers)
        self.code = code or _CODES.get(status, "error")
        self.extra = extra  # more fields of the answer


def _answer(status: int, code: str, message: str, detail: object, headers: dict | None = None,
            extra: dict | None = None) -> JSONResponse:
    return JSONResponse(
        status_code=status, headers=headers,
        content={"code": code, "message": message, "status": status, "detail": detail, **(extra or {})},
    )


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An error in this shape, for answers made before a route is reached (the ASGI middlewares)."""
    return _answer(status, _CODES.get(status, "error"), message, message, headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = getattr(exc, "code", None) or _CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else orjson.dumps(exc.detail).decode()
        return _answer(exc.status_code, code, message, exc.detail, getattr(exc, "headers", None),
                       getattr(exc, "extra", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # 400 as Dify answers a bad parameter (FastAPI's default is 422).
        errors = exc.errors()
        message = "; ".join(f"{'.'.join(str(p) for p in e['loc'] if p != 'body')}: {e['msg']}" for e in errors)
        detail = [{k: v for k, v in e.items() if k in ("type", "loc", "msg")} for e in errors]
        return _answer(400, "invalid_param", message, detail)

    @app.exception_handler(RevisionsExhausted)
    async def revisions_exhausted(_request: Request, exc: RevisionsExhausted) -> JSONResponse:
        return _answer(409, "conflict", str(exc), str(exc))

    @app.exception_handler(DocumentBusy)
    async def document_busy(_request: Request, exc: DocumentBusy) -> JSONResponse:
        return _answer(409, "document_busy", str(exc), str(exc), {"Retry-After": "1"})

    # A server the gateway needs is down, restarting or overloaded: the client should retry, as
    # it would not for a 500 (a fault of ours). Elasticsearch's own errors are outages only for
    # some statuses (429, 503, ...); any other still surfaces as a 500.
    async def outage(_request: Request, exc: Exception) -> JSONResponse:
        if (unavailable := as_outage(exc)) is None:
            raise exc
        message = f"a server indexflow needs is unavailable, retry shortly: {unavailable}"
        return _answer(503, "service_unavailable", message, message, {"Retry-After": "1"})

    for outage_type in (DependencyUnavailable, elasticsearch.ApiError, *OUTAGE_ERRORS):
        app.add_exception_handler(outage_type, outage)
