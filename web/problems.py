"""Errors as ``application/problem+json`` (RFC 9457): the one place that turns an exception into an HTTP answer.

A UserError's message is meant for the person and goes out as ``detail``; anything unexpected is logged with a
reference and answered with that reference only, never a traceback.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from exact.errors import (
    DatabaseUnavailable,
    InvalidToken,
    NotFound,
    PermissionDenied,
    QueryTooSlow,
    UserError,
    ValidationError,
)

log = logging.getLogger("exact.api")

PROBLEM_JSON = "application/problem+json"
_TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    411: "Length required",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Server error",
    503: "Service unavailable",
}


class ApiProblem(Exception):
    """An answer decided by the HTTP layer itself (size, rate, media type), with its status and headers."""

    def __init__(self, status: int, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


def problem(status: int, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": _TITLES.get(status, "Error"), "status": status, "detail": detail}
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def status_of(exc: UserError) -> int:
    if isinstance(exc, InvalidToken):
        return 401
    if isinstance(exc, PermissionDenied):
        return 403
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, ValidationError):
        return 422
    return 422  # every other UserError is a refusal the user can act on (a locked login, a scoring timeout...)


def _user_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, UserError)
    status = status_of(exc)
    headers = {"WWW-Authenticate": 'Bearer realm="exact"'} if status == 401 else None
    return problem(status, str(exc), headers=headers)


def _api_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiProblem)
    return problem(exc.status, exc.detail, headers=exc.headers)


def _too_slow(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, QueryTooSlow)
    log.warning("query too slow in %s %s (limit %s ms): %s", request.method, request.url.path, exc.timeout_ms,
                exc.statement)  # fmt: skip
    return problem(503, QueryTooSlow.MESSAGE, headers={"Retry-After": "5"})


def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable in %s %s", request.method, request.url.path)
    return problem(503, "The database is unavailable right now; nothing was saved. Try again in a moment.",
                   headers={"Retry-After": "10"})  # fmt: skip


def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "Error")
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"There is no {request.url.path}; the endpoints are listed at /api/v1/docs."
    if exc.status_code == 405:
        detail = f"{request.method} is not supported on {request.url.path}; see /api/v1/docs."
    return problem(exc.status_code, detail, headers=dict(exc.headers or {}))


def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    parts = []
    for error in errors[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "request"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return problem(422, "; ".join(parts) + more)


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    reference = uuid.uuid4().hex[:8]
    log.error("unexpected error in %s %s (reference %s)", request.method, request.url.path, reference, exc_info=exc)
    return problem(
        500, f"Sorry, something went wrong on our side. If it keeps happening, quote reference {reference}.",
        reference=reference,
    )  # fmt: skip


EXCEPTION_HANDLERS = {
    UserError: _user_error,
    ApiProblem: _api_problem,
    QueryTooSlow: _too_slow,
    DatabaseUnavailable: _unavailable,
    HTTPException: _http,
    RequestValidationError: _invalid_request,
    Exception: _unexpected,
}
