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


Shaped = tuple[int, dict, "dict[str, str] | None"]  # an error answer: status, content, headers


def error_content(status: int, message: str, code: str | None = None, detail: object = None,
                  extra: dict | None = None) -> dict:
    return {"code": code or _CODES.get(status, "error"), "message": message, "status": status,
            "detail": message if detail is None else detail, **(extra or {})}


def _answer(shaped: Shaped) -> JSONResponse:
    status, content, headers = shaped
    return JSONResponse(status_code=status, headers=headers, content=content)


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An error in this shape, for answers made before a route is reached (the ASGI middlewares)."""
    return _answer((status, error_content(status, message), headers))


def api_error(exc: StarletteHTTPException) -> Shaped:
    code = getattr(exc, "code", None) or _CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else orjson.dumps(exc.detail).decode()
    content = error_content(exc.status_code, message, code, exc.detail, getattr(exc, "extra", None))
    return exc.status_code, content, getattr(exc, "headers", None)


def invalid_request(errors: list[dict]) -> Shaped:
    """400 as Dify answers a bad parameter (FastAPI's default is 422)."""
    message = "; ".join(f"{'.'.join(str(p) for p in e['loc'] if p != 'body')}: {e['msg']}" for e in errors)
    detail = [{k: v for k, v in e.items() if k in ("type", "loc", "msg")} for e in errors]
    return 400, error_content(400, message, "invalid_param", detail), None


def outage(exc: Exception) -> Shaped | None:
    """503 with Retry-After when ``exc`` is a server indexflow needs being down, restarting or
    overloaded (the client should retry, as it would not for a 500, a fault of ours); None when
    it is not one (Elasticsearch's own errors are outages only for some statuses: 429, 503, ...)."""
    if (unavailable := as_outage(exc)) is None:
        return None
    message = f"a server indexflow needs is unavailable, retry shortly: {unavailable}"
    return 503, error_content(503, message), {"Retry-After": "1"}


def install(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _answer(api_error(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request_body(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _answer(invalid_request(exc.errors()))

    @app.exception_handler(RevisionsExhausted)
    async def revisions_exhausted(_request: Request, exc: RevisionsExhausted) -> JSONResponse:
        return _answer((409, error_content(409, str(exc), "conflict"), None))

    @app.exception_handler(DocumentBusy)
    async def document_busy(_request: Request, exc: DocumentBusy) -> JSONResponse:
        return _answer((409, error_content(409, str(exc), "document_busy"), {"Retry-After": "1"}))

    async def outage_error(_request: Request, exc: Exception) -> JSONResponse:
        if (shaped := outage(exc)) is None:
            raise exc
        return _answer(shaped)

    for outage_type in (DependencyUnavailable, elasticsearch.ApiError, *OUTAGE_ERRORS):
        app.add_exception_handler(outage_type, outage_error)
