"""HTTP security basics through the real app: headers, size limit, rate limits, CSRF (docs/security.md)."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from smartregion.api.csrf import BINDING_KEY, COOKIE, CsrfTokens, SecretKey, csrf_token
from smartregion.api.security import SWAGGER_UI_CSP
from smartregion.app import create_app
from smartregion.settings import HTML_CSP, Settings

SECRET = "s" * 40
pytestmark = pytest.mark.anyio

ENTITY = b'{"id": "urn:ngsi-ld:Sensor:1", "type": "Sensor"}'


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def page(request: Request) -> Response:
    """A portal-like page: a form with the CSRF token."""
    token = csrf_token(request)
    return HTMLResponse(f'<form method="post"><input name="csrf_token" value="{token}"></form>')


async def framed(request: Request) -> Response:
    return HTMLResponse(
        "<p>embeddable</p>",
        headers={
            "X-Frame-Options": "SAMEORIGIN",
            "Content-Security-Policy": "frame-ancestors https://partner.example",
        },
    )


async def submit(request: Request) -> Response:
    """Echoes the body the handler receives, to show the checked body reaches it intact."""
    return JSONResponse({"body": (await request.body()).decode()})


def with_test_routes(app: Starlette) -> Starlette:
    app.router.routes[:0] = [
        Route("/test/page", page),
        Route("/test/framed", framed),
        Route("/test/submit", submit, methods=["POST", "PUT", "DELETE"]),
    ]
    return app


@pytest.fixture
async def clients(tmp_path: Path) -> AsyncIterator[Any]:
    """`await clients(base_url, **settings)` -> an httpx client on the real app, lifespan run."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(base_url: str = "http://testserver", **overrides: Any) -> httpx.AsyncClient:
            values: dict[str, Any] = {
                "database_url": f"sqlite:///{tmp_path}/security.db",
                "anonymous_writes": True,
                "secret_key": SECRET,
                **overrides,
            }
            app = with_test_routes(create_app(Settings(**values)))
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app)
            return await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url=base_url)
            )

        yield make


# -- headers -----------------------------------------------------------------------------------


async def test_every_response_carries_the_security_headers(clients: Any) -> None:
    client = await clients()
    for response in (
        await client.get("/healthz"),
        await client.get("/ngsi-ld/v1/entities", params={"type": "Sensor"}),
        await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:missing"),  # a problem document
        await client.post(
            "/ngsi-ld/v1/entities", content=b"{", headers={"Content-Type": "application/json"}
        ),
    ):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert (
            response.headers["Content-Security-Policy"]
            == "default-src 'none'; frame-ancestors 'none'"
        )
        assert "Strict-Transport-Security" not in response.headers  # plain HTTP: RFC 6797 §7.2


async def test_html_gets_the_strict_policy_and_handlers_keep_their_own_headers(
    clients: Any,
) -> None:
    client = await clients()
    r = await client.get("/test/page")
    assert r.headers["Content-Security-Policy"] == HTML_CSP
    assert "'unsafe-inline'" not in HTML_CSP and "frame-ancestors 'none'" in HTML_CSP
    r = await client.get("/test/framed")
    assert r.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert r.headers.get_list("Content-Security-Policy") == [
        "frame-ancestors https://partner.example"
    ]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    # the admin API's Swagger UI page needs its CDN and inline start-up script
    r = await client.get("/api/v1/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["Content-Security-Policy"] == SWAGGER_UI_CSP


async def test_hsts_only_over_https(clients: Any) -> None:
    client = await clients("https://testserver")
    r = await client.get("/healthz")
    assert r.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    # behind a TLS-terminating proxy the app sees http; public_base_url tells it otherwise
    client = await clients(
        public_base_url="https://data.example.org", strict_transport_security="max-age=600"
    )
    assert (await client.get("/healthz")).headers["Strict-Transport-Security"] == "max-age=600"
    client = await clients(
        "https://testserver", strict_transport_security="", content_security_policy=""
    )
    r = await client.get("/test/page")
    assert "Strict-Transport-Security" not in r.headers
    assert "Content-Security-Policy" not in r.headers


# -- request size ------------------------------------------------------------------------------


async def test_a_declared_body_over_the_limit_is_refused_on_every_route(clients: Any) -> None:
    client = await clients(max_body_bytes=1000)
    big = b'{"padding": "' + b"x" * 2000 + b'"}'
    for method, path in (
        ("POST", "/ngsi-ld/v1/entities"),
        ("POST", "/api/v1/organisations"),
        ("PUT", "/test/submit"),
        ("POST", "/nowhere"),
    ):
        r = await client.request(
            method, path, content=big, headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 413, (path, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["title"] == "PayloadTooLarge" and "1000 bytes" in r.json()["detail"]
        assert r.headers["Connection"] == "close"
        assert r.headers["X-Content-Type-Options"] == "nosniff"


async def test_a_chunked_body_is_cut_off_at_the_limit(clients: Any) -> None:
    client = await clients(max_body_bytes=1000)

    async def chunks(total: int) -> AsyncIterator[bytes]:
        body = (
            b'{"id": "urn:ngsi-ld:Sensor:chunked", "type": "Sensor", "p": {"type": "Property", "value": "'
            + b"x" * total
            + b'"}}'
        )
        for i in range(0, len(body), 100):
            yield body[i : i + 100]

    headers = {"Content-Type": "application/json"}
    r = await client.post("/ngsi-ld/v1/entities", content=chunks(5000), headers=headers)
    assert r.status_code == 413, r.text
    assert r.json()["title"] == "PayloadTooLarge"
    r = await client.put(
        "/test/submit", content=chunks(5000), headers=headers
    )  # a handler of no interface
    assert r.status_code == 413, r.text
    assert (await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:chunked")).status_code == 404
    r = await client.post("/ngsi-ld/v1/entities", content=chunks(100), headers=headers)
    assert r.status_code == 201, r.text


# -- rate limits -------------------------------------------------------------------------------


async def test_an_address_over_its_burst_gets_429_with_retry_after(clients: Any) -> None:
    client = await clients(rate_limit_address_rate=0.01, rate_limit_address_burst=3)
    for _ in range(3):
        assert (await client.get("/ngsi-ld/v1/types")).status_code == 200
    r = await client.get("/ngsi-ld/v1/types")
    assert r.status_code == 429
    assert r.headers["Retry-After"].isdigit() and int(r.headers["Retry-After"]) >= 1
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["status"] == 429 and r.json()["title"] == "TooManyRequests"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert (await client.get("/healthz")).status_code == 200  # exempt: load balancers poll it


async def test_each_credential_has_its_own_bucket_and_is_never_logged(
    clients: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = await clients(
        rate_limit_address_rate=0, rate_limit_key_rate=0.01, rate_limit_key_burst=2
    )
    first = {"Authorization": "Bearer srk_aaaa_first-secret-token"}
    second = {"Authorization": "Bearer srk_bbbb_second-secret-token"}
    # the keys are unknown: past the limiter, authentication refuses them (401); the limiter
    # runs first, so the third request of one key is refused by it (429) before authentication
    assert (await client.get("/ngsi-ld/v1/types", headers=first)).status_code == 401
    assert (await client.get("/ngsi-ld/v1/types", headers=first)).status_code == 401
    assert (await client.get("/ngsi-ld/v1/types", headers=first)).status_code == 429
    assert (await client.get("/ngsi-ld/v1/types", headers=second)).status_code == 401
    assert (
        await client.get("/ngsi-ld/v1/types")
    ).status_code == 200  # anonymous: address limit only (off)
    assert "secret-token" not in caplog.text


async def test_forwarded_addresses_count_only_from_trusted_proxies(clients: Any) -> None:
    # httpx's ASGI transport connects from 127.0.0.1
    limits = {"rate_limit_address_rate": 0.01, "rate_limit_address_burst": 1}
    spoofed = await clients(**limits)
    assert (
        await spoofed.get("/ngsi-ld/v1/types", headers={"X-Forwarded-For": "198.51.100.1"})
    ).status_code == 200
    assert (
        await spoofed.get("/ngsi-ld/v1/types", headers={"X-Forwarded-For": "198.51.100.2"})
    ).status_code == 429
    proxied = await clients(trusted_proxies="127.0.0.1", **limits)
    assert (
        await proxied.get("/ngsi-ld/v1/types", headers={"X-Forwarded-For": "198.51.100.1"})
    ).status_code == 200
    assert (
        await proxied.get("/ngsi-ld/v1/types", headers={"X-Forwarded-For": "198.51.100.2"})
    ).status_code == 200
    assert (
        await proxied.get("/ngsi-ld/v1/types", headers={"X-Forwarded-For": "198.51.100.1"})
    ).status_code == 429


async def test_zero_disables_the_limits(clients: Any) -> None:
    client = await clients(
        rate_limit_address_rate=0, rate_limit_address_burst=1, rate_limit_key_burst=0
    )
    for _ in range(20):
        # an unknown key: authentication's 401, never the limiter's 429
        assert (
            await client.get("/ngsi-ld/v1/types", headers={"Authorization": "Bearer k"})
        ).status_code == 401


# -- CSRF --------------------------------------------------------------------------------------


async def _token(client: httpx.AsyncClient) -> str:
    r = await client.get("/test/page")
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    token = client.cookies[COOKIE]
    assert f'value="{token}"' in r.text
    return token


async def test_a_form_post_needs_the_cookie_and_the_same_token(clients: Any) -> None:
    client = await clients()
    token = await _token(client)
    assert "set-cookie" not in (await client.get("/test/page")).headers  # a valid cookie is reused
    form = {"csrf_token": token, "name": "Gent"}
    r = await client.post("/test/submit", data=form)
    assert r.status_code == 200, r.text
    # the body the middleware read reaches the handler intact
    assert dict(parse_qsl(r.json()["body"])) == form
    r = await client.post(
        "/test/submit", files={"upload": ("a.txt", b"file-data")}, data={"csrf_token": token}
    )
    assert r.status_code == 200, r.text
    assert token in r.json()["body"] and "file-data" in r.json()["body"]
    r = await client.post(
        "/test/submit",
        content=b"hello",
        headers={"Content-Type": "text/plain", "X-CSRF-Token": token},
    )
    assert r.json() == {"body": "hello"}
    assert (await client.delete("/test/submit", headers={"X-CSRF-Token": token})).status_code == 200

    for refused in (
        await client.post("/test/submit", data={"name": "no token"}),
        await client.post("/test/submit", data={"csrf_token": token + "x"}),
        await client.post("/test/submit", content=b"hi", headers={"Content-Type": "text/plain"}),
        await client.delete("/test/submit"),  # no body, no type, but cookies: checked
    ):
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["title"] == "Forbidden"


async def test_forged_and_foreign_tokens_are_refused(clients: Any, tmp_path: Path) -> None:
    client = await clients()
    token = await _token(client)
    # a made-up token set as cookie and field (cookie tossing from a sibling domain)
    forged = "AAAAAAAAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
    client.cookies.set(COOKIE, forged)
    assert (await client.post("/test/submit", data={"csrf_token": forged})).status_code == 403
    # a token signed with another server's secret
    other = CsrfTokens(SecretKey("o" * 40, str(tmp_path / "unused"))).issue()
    client.cookies.set(COOKIE, other)
    assert (await client.post("/test/submit", data={"csrf_token": other})).status_code == 403
    client.cookies.set(COOKIE, token)
    assert (await client.post("/test/submit", data={"csrf_token": token})).status_code == 200


async def test_cross_origin_form_posts_are_refused(clients: Any) -> None:
    client = await clients()
    token = await _token(client)
    form = {"csrf_token": token}
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Referer": "https://evil.example/x"},
    ):
        assert (await client.post("/test/submit", data=form, headers=headers)).status_code == 403
    for headers in ({"Origin": "http://testserver"}, {"Referer": "http://testserver/test/page"}):
        assert (await client.post("/test/submit", data=form, headers=headers)).status_code == 200
    # login CSRF: a cross-site form without any cookie is stopped by its Origin
    fresh = await clients()
    r = await fresh.post(
        "/test/submit", data={"name": "x"}, headers={"Origin": "https://evil.example"}
    )
    assert r.status_code == 403
    # behind a proxy the public origin counts, not the Host the app sees
    proxied = await clients(public_base_url="https://data.example.org")
    r = await proxied.post(
        "/test/submit", data={"a": "b"}, headers={"Origin": "https://data.example.org"}
    )
    assert r.status_code == 200
    r = await proxied.post("/test/submit", data={"a": "b"}, headers={"Origin": "http://testserver"})
    assert r.status_code == 403


async def test_api_clients_are_not_subject_to_csrf(clients: Any) -> None:
    client = await clients()
    await _token(client)  # the client now holds cookies, like a browser would
    bearer = {"Authorization": "Bearer srk_x_y", "Origin": "https://elsewhere.example"}
    assert (await client.post("/test/submit", data={"a": "b"}, headers=bearer)).status_code == 200
    r = await client.post(
        "/ngsi-ld/v1/entities", content=ENTITY, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 201, r.text
    # without cookies, a wrong media type keeps its precise 415
    bare = await clients()
    r = await bare.post(
        "/ngsi-ld/v1/entities", content=ENTITY, headers={"Content-Type": "text/plain"}
    )
    assert r.status_code == 415


def test_tokens_are_bound_to_their_session(tmp_path: Path) -> None:
    tokens = CsrfTokens(SecretKey(SECRET, str(tmp_path / "unused")))
    token = tokens.issue("session-1")
    assert tokens.valid(token, "session-1")
    assert not tokens.valid(token, "session-2")
    assert not tokens.valid(token)
    for junk in ("", ".", "a.b", "!!!.???", token.replace(".", ""), "x" * 500):
        assert not tokens.valid(junk)
    assert BINDING_KEY  # a session layer sets scope[BINDING_KEY] to bind the middleware's check


def test_the_secret_file_is_created_once_and_shared(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "smartregion.secret"
    first, second = SecretKey("", str(path)), SecretKey("", str(path))  # two worker processes
    assert first.get() == second.get()
    assert len(first.get()) == 64
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["smartregion.secret"]
    with pytest.raises(ValueError, match="32 characters"):
        SecretKey("too-short", str(path))
    with pytest.raises(ValueError, match="32 characters"):
        Settings.load(environ={"SMARTREGION_SECRET_KEY": "short"})
    assert SECRET not in repr(Settings(secret_key=SECRET))
