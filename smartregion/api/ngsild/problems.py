"""The one place where domain errors become HTTP responses (RFC 7807 ProblemDetails, NGSI-LD 1.8 §5.5.2)."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from smartregion import errors
from smartregion.api.auth import audit_refusal
from smartregion.governance import Forbidden

log = logging.getLogger("smartregion.api")

PROBLEM_JSON = "application/problem+json"

STATUS: dict[type[errors.SmartRegionError], int] = {
    errors.InvalidRequest: 400,
    errors.BadRequestData: 400,
    errors.AlreadyExists: 409,
    errors.OperationNotSupported: 422,
    errors.ResourceNotFound: 404,
    errors.NonExistingTenant: 404,
    errors.LdContextNotAvailable: 503,
    errors.TooComplexQuery: 403,
    errors.TooManyResults: 403,
    errors.Conflict: 409,
    errors.UnsupportedMediaType: 415,
    errors.NotAcceptable: 406,
    errors.PayloadTooLarge: 413,
    errors.MethodNotAllowed: 405,
    errors.Unauthenticated: 401,
    errors.Gone: 410,
    errors.Overloaded: 429,
    Forbidden: 403,
    errors.InternalError: 500,
}


def status_of(error: errors.SmartRegionError) -> int:
    """The HTTP status for a domain error (most specific class wins)."""
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]  # type: ignore[index]
    return 500


def problem_body(error: errors.SmartRegionError) -> dict[str, Any]:
    """A ProblemDetails object for a domain error."""
    body: dict[str, Any] = {"type": error.type_uri, "title": error.title, "detail": error.detail}
    if error.type_uri == "about:blank":
        body["status"] = status_of(error)
    body.update(error.extra)
    return body


def problem_response(error: errors.SmartRegionError) -> Response:
    """The HTTP response for a domain error."""
    status = status_of(error)
    headers: dict[str, str] = {}
    if "allow" in error.extra:
        headers["Allow"] = error.extra["allow"]
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="smartregion"'  # RFC 6750 §3
    if "retry_after" in error.extra:
        headers["Retry-After"] = str(error.extra["retry_after"])  # RFC 9110 §10.2.3
    body = problem_body(error)
    body.pop("allow", None)
    body.pop("retry_after", None)
    return Response(
        orjson.dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=headers or None
    )


async def domain_error_handler(request: Request, exc: Exception) -> Response:
    """Starlette exception handler for SmartRegionError."""
    assert isinstance(exc, errors.SmartRegionError)
    await audit_refusal(request, exc, interface="ngsi-ld")
    return problem_response(exc)


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    """Last resort: log the bug and answer 500 with a ProblemDetails body."""
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(
        errors.InternalError("an unexpected error occurred; it has been logged")
    )
