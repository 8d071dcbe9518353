"""The admin API's one mapping of domain errors to HTTP (RFC 9457 problem+json)."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from smartregion import errors
from smartregion.api.auth import audit_refusal
from smartregion.governance import Forbidden

log = logging.getLogger("smartregion.api.admin")

PROBLEM_JSON = "application/problem+json"

STATUS: dict[type[errors.SmartRegionError], int] = {
    errors.InvalidRequest: 400,
    errors.BadRequestData: 400,
    errors.Unauthenticated: 401,
    Forbidden: 403,
    errors.ResourceNotFound: 404,
    errors.AlreadyExists: 409,
    errors.Conflict: 409,
    errors.PayloadTooLarge: 413,
    errors.UnsupportedMediaType: 415,
}


def status_of(error: errors.SmartRegionError) -> int:
    """The HTTP status of a domain error (most specific class wins; unknown: 500)."""
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]  # type: ignore[index]
    return 500


def problem(status: int, title: str, detail: str, **extra: Any) -> Response:
    """A problem+json response."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    headers = None
    if status == 401:
        # RFC 6750 §3: tell the client which scheme to use
        headers = {"WWW-Authenticate": 'Bearer realm="smartregion"'}
    return Response(
        orjson.dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


async def domain_error(request: Request, exc: Exception) -> Response:
    """Handler for SmartRegionError."""
    assert isinstance(exc, errors.SmartRegionError)
    await audit_refusal(request, exc, interface="admin")
    status = status_of(exc)
    if status == 500:
        log.error("unexpected domain error on %s %s: %r", request.method, request.url.path, exc)
        return problem(500, "InternalError", "an unexpected error occurred; it has been logged")
    return problem(status, exc.title, exc.detail)


async def validation_error(request: Request, exc: Exception) -> Response:
    """Handler for request bodies/parameters that fail their schema: 400."""
    assert isinstance(exc, RequestValidationError)
    issues = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
        for e in exc.errors()
    ]
    return problem(400, "BadRequestData", "the request does not match its schema", errors=issues)


async def http_error(request: Request, exc: Exception) -> Response:
    """Handler for routing errors (404 unknown path, 405 method)."""
    assert isinstance(exc, HTTPException)
    return problem(exc.status_code, "HTTPError", str(exc.detail))


async def unexpected_error(request: Request, exc: Exception) -> Response:
    """Last resort: log the bug, answer 500 without details."""
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(500, "InternalError", "an unexpected error occurred; it has been logged")
