"""HTTP security basics in one pure ASGI middleware (OWASP ASVS 5.0 level 2; docs/security.md).

In order, for every HTTP request:

1. rate limits per client address and per bearer credential (`ratelimit.py`): 429 with
   `Retry-After`; `/healthz` is exempt;
2. the request-size limit (`max_body_bytes`): a declared `Content-Length` beyond it is refused
   before anything is read; a body without one (chunked) is counted as it is read and refused
   the moment it passes the limit: 413;
3. CSRF checks for form posts (`csrf.py`): 403;
4. security headers on every response the application sends (not overriding any header a
   handler set itself).

Refusals are `application/problem+json` documents (RFC 9457), as everywhere else.

Pure ASGI rather than Starlette's `BaseHTTPMiddleware`, because it sits in front of the
measured NGSI-LD write path: per request it builds one dict of the request headers, takes at
most two token-bucket decisions and appends a few pre-encoded headers to the response start.
Responses produced by Starlette's outermost error middleware (an unhandled exception's 500)
bypass it.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Callable, Mapping

import orjson
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smartregion.api.csrf import (
    BINDING_KEY,
    HEADER,
    STATE_KEY,
    CsrfState,
    CsrfTokens,
    SecretKey,
    cookie_header,
    cookie_token,
    form_token,
    needs_check,
    origin_of,
    same_origin,
)
from smartregion.api.ngsild.problems import PROBLEM_JSON, problem_response
from smartregion.api.ratelimit import RateLimits
from smartregion.errors import PayloadTooLarge
from smartregion.settings import Settings

__all__ = ["API_CSP", "SWAGGER_UI_CSP", "SecurityMiddleware"]

#: CSP of every response that is not a page: load nothing, be framed nowhere (OWASP REST
#: Security Cheat Sheet) — harmless for JSON, and it defuses a response a browser renders
API_CSP = "default-src 'none'; frame-ancestors 'none'"
#: CSP of the admin API's Swagger UI page (FastAPI's), which loads its script and styles from
#: cdn.jsdelivr.net and starts them with an inline script
SWAGGER_UI_CSP = (
    "default-src 'none'; script-src https://cdn.jsdelivr.net 'unsafe-inline'; "
    "style-src https://cdn.jsdelivr.net 'unsafe-inline'; img-src 'self' data: "
    "https://fastapi.tiangolo.com; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
#: media types a browser renders as a document that can run script
PAGE_TYPES = (b"text/html", b"application/xhtml+xml", b"image/svg+xml")
EXEMPT_FROM_RATE_LIMITS = frozenset({"/healthz", "/healthz/"})

_CSP = b"content-security-policy"
_HSTS = b"strict-transport-security"
_OURS = frozenset({b"x-content-type-options", b"x-frame-options", b"referrer-policy", _CSP, _HSTS})


def _problem(
    status: int, title: str, detail: str, headers: Mapping[str, str] | None = None
) -> Response:
    """A problem document in the shape of `problems.problem_body` for non-NGSI errors."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return Response(
        orjson.dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


def too_many_requests(wait: float) -> Response:
    """429 with `Retry-After` in whole seconds (RFC 6585 §4, RFC 9110 §10.2.3)."""
    seconds = max(1, math.ceil(wait))
    return _problem(
        429,
        "TooManyRequests",
        f"request rate limit exceeded; retry after {seconds} second(s)",
        {"Retry-After": str(seconds)},
    )


def payload_too_large(limit: int) -> Response:
    """413; the connection is closed because the unread rest of the body may still be coming."""
    response = problem_response(PayloadTooLarge(f"the body exceeds the limit of {limit} bytes"))
    response.headers["Connection"] = "close"
    return response


def forbidden(detail: str) -> Response:
    """403 for a failed CSRF check."""
    return _problem(403, "Forbidden", detail)


def _capped(receive: Receive, limit: int) -> Receive:
    """`receive` that raises PayloadTooLarge once the body read so far passes `limit`."""
    size = 0

    async def receive_capped() -> Message:
        nonlocal size
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limit:
                raise PayloadTooLarge(f"the body exceeds the limit of {limit} bytes")
        return message

    return receive_capped


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` that first hands over an already read body, then defers to the original."""
    pending = True

    async def receive_replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return receive_replayed


class SecurityMiddleware:
    """Rate limits, request-size limit, CSRF checks and security headers (module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        csp_by_path: Mapping[str, str] | None = None,
        page_csp: str | None = None,
        binding: Callable[[Mapping[bytes, bytes]], str] | None = None,
    ) -> None:
        self.app = app
        self.max_body = settings.max_body_bytes
        limits = RateLimits(
            address_rate=settings.rate_limit_address_rate,
            address_burst=settings.rate_limit_address_burst,
            key_rate=settings.rate_limit_key_rate,
            key_burst=settings.rate_limit_key_burst,
            trusted_proxies=settings.trusted_proxies,
        )
        self.limits = limits if limits.enabled else None
        self.tokens = CsrfTokens(SecretKey(settings.secret_key, settings.secret_key_file))
        public = settings.public_base_url
        self.public_origin = origin_of(public) if public else None
        # behind a TLS-terminating proxy the app sees http; public_base_url says what clients use
        self.always_https = public.lower().startswith("https://")
        self.hsts = settings.strict_transport_security.encode()
        # pages: the setting's policy, or the one the wiring derived from it (the portal's maps)
        #: the CSRF binding of a request (the portal's session id), from its headers
        self.binding = binding
        self.page_csp = (
            settings.content_security_policy if page_csp is None else page_csp
        ).encode()
        self.api_csp = API_CSP.encode()
        self.csp_by_path = {path: policy.encode() for path, policy in (csp_by_path or {}).items()}
        self.common = (
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin"),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, bytes] = dict(scope["headers"])
        path: str = scope["path"]
        https = self.always_https or scope.get("scheme") == "https"
        csrf = CsrfState(self.tokens)
        scope[STATE_KEY] = csrf
        started = False

        async def send_secured(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = self._secure(message, path, https, csrf.issued)
            await send(message)

        if self.limits is not None and path not in EXEMPT_FROM_RATE_LIMITS:
            wait = self.limits.check(scope, headers.get(b"authorization"))
            if wait:
                await too_many_requests(wait)(scope, receive, send_secured)
                return
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit():
            # the server enforces Content-Length framing: a body cannot grow past it
            if int(declared) > self.max_body:
                await payload_too_large(self.max_body)(scope, receive, send_secured)
                return
        else:
            receive = _capped(receive, self.max_body)
        try:
            if needs_check(scope["method"], headers):
                if self.binding is not None:
                    scope[BINDING_KEY] = self.binding(headers)
                refusal, receive = await self._check_csrf(scope, headers, receive)
                if refusal is not None:
                    await refusal(scope, receive, send_secured)
                    return
            await self.app(scope, receive, send_secured)
        except PayloadTooLarge:
            # a handler that does not map domain errors itself; or the CSRF check's own read
            if started:
                raise
            await payload_too_large(self.max_body)(scope, receive, send_secured)

    async def _check_csrf(
        self, scope: Scope, headers: dict[bytes, bytes], receive: Receive
    ) -> tuple[Response | None, Receive]:
        """None when the request passes, else the 403; and the `receive` the app must use."""
        if not same_origin(scope, headers, self.public_origin):
            return forbidden("cross-origin form submissions are refused"), receive
        if b"cookie" not in headers:
            # no ambient credential to abuse: the origin check above is all that applies (it
            # also stops login CSRF: browsers send Origin on every cross-origin POST)
            return None, receive
        expected = cookie_token(headers)
        if expected is None:
            return forbidden(
                "the CSRF cookie is missing; reload the form and submit it again"
            ), receive
        raw = headers.get(HEADER)
        submitted = raw.decode("latin-1") if raw is not None else None
        content_type = headers.get(b"content-type")
        if submitted is None and content_type is not None:
            chunks: list[bytes] = []
            while True:
                message = await receive()
                if message["type"] != "http.request":  # the client went away
                    return forbidden("the request body did not arrive"), receive
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            body = b"".join(chunks)
            submitted = form_token(content_type, body)
            receive = _replay(body, receive)
        binding: str = scope.get(BINDING_KEY, "")
        if (
            submitted is None
            or not hmac.compare_digest(submitted.encode("latin-1"), expected.encode("latin-1"))
            or not self.tokens.valid(expected, binding)
        ):
            return forbidden("the CSRF token is missing or invalid; reload the form"), receive
        return None, receive

    def _secure(self, message: Message, path: str, https: bool, issued: str | None) -> Message:
        """The response start with the security headers the handler did not set itself."""
        raw = message.get("headers", ())
        content_type = b""
        own: set[bytes] | None = None  # security headers the handler set itself
        for name, value in raw:
            lower = name.lower()
            if lower == b"content-type":
                content_type = value
            elif lower in _OURS:
                own = own or set()
                own.add(lower)
        if own is None:
            added = list(self.common)
        else:
            added = [header for header in self.common if header[0] not in own]
        if own is None or _CSP not in own:
            if content_type.startswith(PAGE_TYPES):
                policy = self.csp_by_path.get(path.rstrip("/"), self.page_csp)
            else:
                policy = self.api_csp
            if policy:
                added.append((_CSP, policy))
        if https and self.hsts and (own is None or _HSTS not in own):
            added.append((_HSTS, self.hsts))  # RFC 6797 §7.2: never on plain HTTP
        if issued is not None:
            added.append((b"set-cookie", cookie_header(issued, secure=https)))
        message["headers"] = [*raw, *added]
        return message
