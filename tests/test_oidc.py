"""OIDC bearer tokens: keys made here, the JWKS served by a real local HTTP server.

Every unacceptable token is 401 (RFC 8725 pitfalls included: `alg=none`, an HMAC signed with
the public key); a valid one names its organisation and role, and works on the HTTP API.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from smartregion.app import create_app
from smartregion.governance import Governance, Principal
from smartregion.governance.oidc import InvalidToken, OidcConfig, OidcVerifier
from smartregion.settings import Settings

pytestmark = pytest.mark.anyio

AUDIENCE = "smartregion-api"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- a real issuer: discovery document and JWKS over HTTP --------------------------------------


@dataclass
class Issuer:
    """A local OIDC issuer: what it serves, how often its JWKS was fetched."""

    base: str
    documents: dict[str, Any] = field(default_factory=dict)
    fetches: dict[str, int] = field(default_factory=dict)

    def publish(self, *keys: dict[str, Any]) -> None:
        self.documents["/jwks"] = {"keys": list(keys)}


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    state = Issuer(base="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.fetches[self.path] = state.fetches.get(self.path, 0) + 1
            doc = state.documents.get(self.path)
            body = json.dumps(doc).encode() if doc is not None else b"{}"
            self.send_response(200 if doc is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    state.documents["/.well-known/openid-configuration"] = {
        "issuer": state.base,
        "jwks_uri": f"{state.base}/jwks",
    }
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, kid: str, **extra: Any
) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPrivateKey):
        data = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    else:
        data = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    return {**data, "kid": kid, "use": "sig", **extra}


def claims(issuer: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": issuer,
        "aud": AUDIENCE,
        "sub": "user-42",
        "iat": now,
        "exp": now + 300,
        "smartregion_org": "ghent",
        "smartregion_role": "editor",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict[str, Any], key: Any, alg: str = "RS256", kid: str | None = "k1") -> str:
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid} if kid else None)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(payload: dict[str, Any], header: dict[str, Any]) -> tuple[str, bytes]:
    """The signing input of a hand-made token (for the forgeries PyJWT refuses to make)."""
    text = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    return text, text.encode()


def verifier(issuer: Issuer, **config: Any) -> OidcVerifier:
    return OidcVerifier(OidcConfig(issuer=issuer.base, audience=AUDIENCE, **config))


# --- the verifier ------------------------------------------------------------------------------


async def test_a_valid_token_names_organisation_role_and_a_pseudonymous_subject(
    issuer: Issuer, rsa_key: rsa.RSAPrivateKey
) -> None:
    issuer.publish(public_jwk(rsa_key, "k1"))
    v = verifier(issuer)
    try:
        identity = await v.verify(sign(claims(issuer.base), rsa_key))
    finally:
        await v.aclose()
    assert (identity.org_id, identity.role, identity.key_id) == ("ghent", "editor", "k1")
    assert identity.subject is not None and "user-42" not in identity.subject
    # found through discovery: the configuration document, then the JWKS it names
    assert issuer.fetches == {"/.well-known/openid-configuration": 1, "/jwks": 1}


async def test_es256_and_a_configured_jwks_url(issuer: Issuer) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    issuer.publish(public_jwk(key, "e1", alg="ES256"))
    v = verifier(issuer, jwks_url=f"{issuer.base}/jwks")
    try:
        identity = await v.verify(
            sign(claims(issuer.base, smartregion_role="admin"), key, "ES256", "e1")
        )
    finally:
        await v.aclose()
    assert identity.role == "admin"
    assert "/.well-known/openid-configuration" not in issuer.fetches


def _negative_cases(
    iss: str, key: rsa.RSAPrivateKey, other: rsa.RSAPrivateKey
) -> dict[str, tuple[str, str]]:
    """name -> (token, the reason code it must be refused with)."""
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    none_token, _ = unsigned(claims(iss), {"alg": "none", "typ": "JWT", "kid": "k1"})
    hs_text, hs_input = unsigned(claims(iss), {"alg": "HS256", "typ": "JWT", "kid": "k1"})
    hs_token = f"{hs_text}.{_b64(hmac.new(public_pem, hs_input, hashlib.sha256).digest())}"
    valid = sign(claims(iss), key)
    head, _body, _ = valid.split(".")
    forged_body = _b64(json.dumps(claims(iss, smartregion_role="admin")).encode())
    return {
        "alg none": (none_token + ".", "algorithm"),
        "HS256 signed with the public key": (hs_token, "algorithm"),
        "wrong audience": (sign(claims(iss, aud="someone-else"), key), "audience"),
        "wrong issuer": (sign(claims(iss, iss="https://evil.example"), key), "issuer"),
        "expired": (sign(claims(iss, exp=int(time.time()) - 3600), key), "expired"),
        "not yet valid": (sign(claims(iss, nbf=int(time.time()) + 3600), key), "not-yet-valid"),
        "signed by another key with the same kid": (sign(claims(iss), other), "signature"),
        "payload changed after signing": (
            f"{head}.{forged_body}.{valid.split('.')[2]}",
            "signature",
        ),
        "unknown kid": (sign(claims(iss), other, kid="k9"), "unknown-key"),
        "no expiry": (sign(claims(iss, exp=None), key), "claims"),
        "no organisation claim": (sign(claims(iss, smartregion_org=None), key), "claims"),
        "role outside reader/editor/admin": (
            sign(claims(iss, smartregion_role="root"), key),
            "claims",
        ),
        "not a JWT": ("a.b.c", "malformed"),
    }


async def test_every_unacceptable_token_is_refused_with_its_reason(
    issuer: Issuer, rsa_key: rsa.RSAPrivateKey, other_rsa_key: rsa.RSAPrivateKey
) -> None:
    issuer.publish(public_jwk(rsa_key, "k1"))
    v = verifier(issuer)
    wrong: list[str] = []
    try:
        for name, (token, reason) in _negative_cases(issuer.base, rsa_key, other_rsa_key).items():
            try:
                await v.verify(token)
            except InvalidToken as exc:
                if exc.reason != reason:
                    wrong.append(f"{name}: refused as {exc.reason}, expected {reason}")
            else:
                wrong.append(f"{name}: accepted")
    finally:
        await v.aclose()
    assert not wrong, "\n".join(wrong)


async def test_an_unknown_kid_refreshes_the_jwks_once_then_waits(
    issuer: Issuer, rsa_key: rsa.RSAPrivateKey, other_rsa_key: rsa.RSAPrivateKey
) -> None:
    issuer.publish(public_jwk(rsa_key, "k1"))
    now = [1000.0]
    v = OidcVerifier(OidcConfig(issuer=issuer.base, audience=AUDIENCE), clock=lambda: now[0])
    try:
        await v.verify(sign(claims(issuer.base), rsa_key))
        # the issuer rotates: k2 appears; a token signed with it makes us fetch again
        issuer.publish(public_jwk(rsa_key, "k1"), public_jwk(other_rsa_key, "k2"))
        now[0] += 61
        assert (await v.verify(sign(claims(issuer.base), other_rsa_key, kid="k2"))).key_id == "k2"
        assert issuer.fetches["/jwks"] == 2
        # made-up kids right after: refused without another fetch (no hammering the issuer)
        for kid in ("x1", "x2", "x3"):
            with pytest.raises(InvalidToken):
                await v.verify(sign(claims(issuer.base), other_rsa_key, kid=kid))
        assert issuer.fetches["/jwks"] == 2
    finally:
        await v.aclose()


async def test_an_unreachable_issuer_refuses_tokens(rsa_key: rsa.RSAPrivateKey) -> None:
    v = OidcVerifier(OidcConfig(issuer="http://127.0.0.1:9", audience=AUDIENCE, timeout=2))
    try:
        with pytest.raises(InvalidToken) as info:
            await v.verify(sign(claims("http://127.0.0.1:9"), rsa_key))
    finally:
        await v.aclose()
    assert info.value.reason == "jwks-unavailable"


@pytest.mark.parametrize("algorithms", [("none",), ("HS256",), ("RS256", "HS512"), ()])
def test_unsafe_algorithm_lists_are_refused_at_configuration(algorithms: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        OidcConfig(issuer="https://id.example", audience=AUDIENCE, algorithms=algorithms)


def test_an_issuer_needs_an_audience() -> None:
    with pytest.raises(ValueError):
        OidcConfig(issuer="https://id.example", audience="")


# --- over HTTP ---------------------------------------------------------------------------------


@dataclass
class Env:
    client: httpx.AsyncClient
    gov: Governance
    issuer: Issuer


@pytest.fixture
async def env(tmp_path: Path, issuer: Issuer, rsa_key: rsa.RSAPrivateKey) -> AsyncIterator[Env]:
    issuer.publish(public_jwk(rsa_key, "k1"))
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/oidc.db",
        oidc_issuer=issuer.base,
        oidc_audience=AUDIENCE,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        gov: Governance = app.state.governance
        await gov.create_organisation(Principal.cli(), "ghent", "Stad Gent", "municipality")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield Env(c, gov, issuer)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_token_writes_for_its_organisation(env: Env, rsa_key: rsa.RSAPrivateKey) -> None:
    token = sign(claims(env.issuer.base), rsa_key)
    r = await env.client.post(
        "/ngsi-ld/v1/entities",
        headers=bearer(token),
        json={"id": "urn:ngsi-ld:Sensor:oidc", "type": "Sensor"},
    )
    assert r.status_code == 201, r.text
    # the organisation owns it: its API key may change it
    key = (await env.gov.create_api_key(Principal.cli(), "ghent", role="editor")).key
    r = await env.client.patch(
        "/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:oidc/attrs",
        headers=bearer(key),
        json={"t": {"type": "Property", "value": 1}},
    )
    assert r.status_code == 204, r.text
    # and the admin API takes the same token
    r = await env.client.get("/api/v1/organisations/ghent/mandates", headers=bearer(token))
    assert r.status_code == 200


async def test_refused_tokens_are_401_problems_and_audited(
    env: Env, rsa_key: rsa.RSAPrivateKey, other_rsa_key: rsa.RSAPrivateKey
) -> None:
    cases = _negative_cases(env.issuer.base, rsa_key, other_rsa_key)
    for name, (token, _reason) in cases.items():
        r = await env.client.get("/ngsi-ld/v1/types", headers=bearer(token))
        assert r.status_code == 401, name
        assert r.headers["www-authenticate"].startswith("Bearer"), name
        assert r.headers["content-type"] == "application/problem+json", name
    records = [r for r in await env.gov.store.audit_records() if r.action == "auth.refused"]
    assert [r.detail["reason"] for r in records] == [
        f"token-{reason}" for _, reason in cases.values()
    ]
    assert all(r.detail["interface"] == "ngsi-ld" for r in records)
    # ids and reason codes only: no token, no subject
    text = json.dumps([r.detail for r in records]) + "".join(r.subject for r in records)
    assert "user-42" not in text and "eyJ" not in text


async def test_a_token_of_an_unregistered_organisation_is_403(
    env: Env, rsa_key: rsa.RSAPrivateKey
) -> None:
    token = sign(claims(env.issuer.base, smartregion_org="nowhere"), rsa_key)
    r = await env.client.get("/ngsi-ld/v1/types", headers=bearer(token))
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/problem+json"


async def test_without_oidc_a_jwt_is_401(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/plain.db"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            r = await c.get("/ngsi-ld/v1/types", headers=bearer(sign(claims("https://x"), rsa_key)))
    assert r.status_code == 401
