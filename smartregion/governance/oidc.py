"""OIDC bearer tokens: validation of JWTs from one configured issuer against its JWKS.

What a token must be to be accepted (docs/security.md):

- a JWS in compact form whose header `alg` is in the configured allow-list, which may only name
  asymmetric algorithms — never `none`, never an HMAC (`HS*`): with a public key as the "secret"
  anyone could sign (the algorithm-confusion attack, RFC 8725 §2.1/§3.1);
- signed by a key of the issuer's JWKS (the configured URL, or `jwks_uri` of
  `{issuer}/.well-known/openid-configuration`) with the `kid` of its header; the key's type and
  its own `alg`, when given, must fit the header's algorithm;
- `iss` equal to the configured issuer, `aud` containing the configured audience, `exp` present
  and not past, `nbf`/`iat` not in the future — each with a small leeway for clock skew;
- carrying the organisation and role claims (configurable names), the role one of ROLES.

The JWKS is cached. A token naming an unknown `kid` triggers one refresh (the issuer rotated its
keys), but at most one per `refresh_interval`, so a stream of made-up key ids cannot make us
hammer the issuer; the cache is also refreshed after `max_age`. Fetches use httpx with a timeout
and without following redirects.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from smartregion.errors import Unauthenticated
from smartregion.governance.principals import ROLES

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "InvalidToken",
    "OidcConfig",
    "OidcVerifier",
    "TokenIdentity",
    "looks_like_jwt",
]

log = logging.getLogger("smartregion.governance.oidc")

#: the algorithms an allow-list may name: signatures verified with a public key only
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
#: the JWK key type each algorithm family needs (RFC 7518 §6.1, RFC 8037)
_KEY_TYPE = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
_JWT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_ORG_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
#: the largest JWKS or discovery document we read
_MAX_DOCUMENT = 1_000_000


def looks_like_jwt(token: str) -> bool:
    """Whether a bearer token has the shape of a compact JWS (three base64url parts)."""
    return _JWT.fullmatch(token) is not None


class InvalidToken(Unauthenticated):
    """A bearer JWT that is not acceptable (401); `reason` is a short code for the audit log."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"the bearer token is not valid: {detail}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class OidcConfig:
    """Where tokens come from and what they must say (settings `oidc_*`)."""

    issuer: str
    audience: str
    jwks_url: str = ""
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    org_claim: str = "smartregion_org"
    role_claim: str = "smartregion_role"
    #: seconds of clock skew tolerated on exp, nbf and iat
    leeway: float = 30.0
    #: seconds to wait for the discovery document or the JWKS
    timeout: float = 5.0
    #: least seconds between two JWKS fetches caused by unknown key ids
    refresh_interval: float = 60.0
    #: seconds after which the cached JWKS is fetched again
    max_age: float = 3600.0

    def __post_init__(self) -> None:
        if not self.issuer.startswith(("https://", "http://")):
            raise ValueError("oidc_issuer must be an http(s) URL")
        if not self.audience:
            raise ValueError("oidc_audience is required when oidc_issuer is set")
        if not self.algorithms:
            raise ValueError("oidc_algorithms names no algorithm")
        wrong = [a for a in self.algorithms if a not in ASYMMETRIC_ALGORITHMS]
        if wrong:
            # `none` and HS* are refused here, before any token is seen (RFC 8725 §3.1)
            raise ValueError(
                f"oidc_algorithms may only name asymmetric algorithms "
                f"({', '.join(sorted(ASYMMETRIC_ALGORITHMS))}), not {', '.join(wrong)}"
            )
        if not self.org_claim or not self.role_claim:
            raise ValueError("oidc_org_claim and oidc_role_claim must not be empty")

    @classmethod
    def parse_algorithms(cls, text: str) -> tuple[str, ...]:
        """The comma-separated setting as a tuple."""
        return tuple(a.strip() for a in text.split(",") if a.strip())


@dataclass(frozen=True, slots=True)
class TokenIdentity:
    """Who a valid token names: an organisation id and role (the organisation not yet checked)."""

    org_id: str
    role: str
    #: a pseudonym of (issuer, sub) for the audit log: never the raw subject (personal data)
    subject: str | None
    key_id: str | None


def pseudonym(issuer: str, subject: str) -> str:
    """A stable, non-reversible name for a token subject (16 hex digits of SHA-256)."""
    return hashlib.sha256(f"{issuer}\n{subject}".encode()).hexdigest()[:16]


class OidcVerifier:
    """Validates bearer JWTs for one `OidcConfig` (see the module docstring)."""

    def __init__(
        self,
        config: OidcConfig,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._client = client
        self._own_client = client is None
        self._clock = clock
        self._keys: dict[str | None, _Key] = {}
        #: when the JWKS was last fetched, and last tried (successfully or not)
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._jwks_url = config.jwks_url or None
        self._lock = asyncio.Lock()

    async def aclose(self) -> None:
        """Close the HTTP client this verifier made."""
        if self._client is not None and self._own_client:
            await self._client.aclose()
            self._client = None

    async def verify(self, token: str) -> TokenIdentity:
        """The identity a token names, or InvalidToken (401) saying why."""
        cfg = self.config
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed", "it is not a well-formed JWT") from exc
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in cfg.algorithms:
            raise InvalidToken("algorithm", f"algorithm {alg!r} is not accepted")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken("malformed", "kid must be a string")
        key = await self._key(kid, alg)
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[alg],
                audience=cfg.audience,
                issuer=cfg.issuer,
                leeway=cfg.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("expired", "it has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise InvalidToken("not-yet-valid", "it is not valid yet") from exc
        except jwt.InvalidAudienceError as exc:
            raise InvalidToken("audience", "it is meant for another audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise InvalidToken("issuer", "it comes from another issuer") from exc
        except jwt.InvalidSignatureError as exc:
            raise InvalidToken("signature", "its signature does not verify") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken("claims", f"the {exc.claim} claim is missing") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed", "it cannot be verified") from exc
        return self._identity(claims, kid)

    def _identity(self, claims: dict[str, Any], kid: str | None) -> TokenIdentity:
        cfg = self.config
        org = claims.get(cfg.org_claim)
        role = claims.get(cfg.role_claim)
        if not isinstance(org, str) or not _ORG_ID.fullmatch(org):
            raise InvalidToken("claims", f"the {cfg.org_claim} claim does not name an organisation")
        if not isinstance(role, str) or role not in ROLES:
            raise InvalidToken("claims", f"the {cfg.role_claim} claim is not one of {list(ROLES)}")
        sub = claims.get("sub")
        subject = pseudonym(cfg.issuer, sub) if isinstance(sub, str) and sub else None
        return TokenIdentity(org, role, subject, kid)

    # -- keys -------------------------------------------------------------------------------

    async def _key(self, kid: str | None, alg: str) -> jwt.PyJWK:
        fetched = self._fetched_at
        stale = fetched is None or self._clock() - fetched >= self.config.max_age
        if stale or self._pick(kid) is None:
            await self._refresh()
        found = self._pick(kid)
        if found is None:
            if self._fetched_at is None:
                raise InvalidToken("jwks-unavailable", "the issuer's keys are unavailable")
            raise InvalidToken("unknown-key", "it is signed with a key the issuer does not publish")
        if found.key.key_type != _KEY_TYPE.get(alg[:2]):
            raise InvalidToken("algorithm", f"key {kid!r} is not a key for {alg}")
        if found.alg is not None and found.alg != alg:
            raise InvalidToken("algorithm", f"key {kid!r} is for {found.alg}, not {alg}")
        return found.key

    def _pick(self, kid: str | None) -> _Key | None:
        if kid is not None:
            return self._keys.get(kid)
        # a token without kid: acceptable only when the issuer publishes exactly one key
        return next(iter(self._keys.values())) if len(self._keys) == 1 else None

    async def _refresh(self) -> None:
        """Fetch the JWKS — at most once per `refresh_interval`, whatever the outcome."""
        async with self._lock:
            now, last = self._clock(), self._attempted_at
            if last is not None and now - last < self.config.refresh_interval:
                return  # tried a moment ago (perhaps for a concurrent request)
            self._attempted_at = now
            try:
                document = await self._get_json(await self._jwks_location())
                self._keys = _parse_jwks(document, self.config.algorithms)
            except (httpx.HTTPError, ValueError) as exc:
                # keep the keys we have: an issuer briefly down does not lock everyone out
                log.warning("cannot fetch the JWKS of %s: %s", self.config.issuer, exc)
                return
            self._fetched_at = now

    async def _jwks_location(self) -> str:
        if self._jwks_url is None:
            issuer = self.config.issuer.rstrip("/")
            discovery = await self._get_json(f"{issuer}/.well-known/openid-configuration")
            # OpenID Connect Discovery 1.0 §4.3: the document must name the issuer we trust
            if not isinstance(discovery, dict) or discovery.get("issuer") != self.config.issuer:
                raise ValueError("the discovery document names another issuer")
            url = discovery.get("jwks_uri")
            if not isinstance(url, str) or not url.startswith(("https://", "http://")):
                raise ValueError("the discovery document has no jwks_uri")
            self._jwks_url = url
        return self._jwks_url

    async def _get_json(self, url: str) -> Any:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.config.timeout, follow_redirects=False)
        response = await self._client.get(url, timeout=self.config.timeout)
        response.raise_for_status()
        if len(response.content) > _MAX_DOCUMENT:
            raise ValueError(f"{url} is larger than {_MAX_DOCUMENT} bytes")
        return response.json()


@dataclass(frozen=True, slots=True)
class _Key:
    """A usable JWKS entry and the algorithm it declares (its `alg`), if any."""

    key: jwt.PyJWK
    alg: str | None


def _parse_jwks(document: Any, algorithms: tuple[str, ...]) -> dict[str | None, _Key]:
    """The signature keys of a JWKS by kid; keys we cannot use are skipped."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("the JWKS has no keys array")
    wanted = {_KEY_TYPE[a[:2]] for a in algorithms}
    keys: dict[str | None, _Key] = {}
    for data in document["keys"]:
        if not isinstance(data, dict) or data.get("kty") not in wanted:
            continue
        if data.get("use", "sig") != "sig":
            continue
        if "alg" in data and data["alg"] not in algorithms:
            continue
        try:
            key = jwt.PyJWK(data)
        except jwt.PyJWTError:
            continue  # malformed or unsupported: unusable, like an absent key
        kid = data.get("kid")
        keys[kid if isinstance(kid, str) else None] = _Key(key, data.get("alg"))
    return keys
