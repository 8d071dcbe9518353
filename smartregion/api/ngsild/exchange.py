"""One NGSI-LD request/response exchange: tenant, parameters, @context, rendering."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from smartregion.api.auth import principal_of
from smartregion.api.ngsild.negotiation import (
    CONTEXT_REL,
    GEO_JSON,
    JSON,
    JSON_LD,
    Body,
    link_context,
    negotiate,
    read_body,
)
from smartregion.broker.service import Broker
from smartregion.core.jsonld import CORE_CONTEXT_URL, TermMap
from smartregion.core.policies import parse_purpose
from smartregion.errors import BadRequestData, InvalidRequest, Unauthenticated
from smartregion.governance import Governance, Principal, WriteAccess
from smartregion.settings import Settings
from smartregion.storage.base import DEFAULT_TENANT, Readable

#: the request header in which a reader declares the purpose of its read
PURPOSE_HEADER = "smartregion-purpose"

TENANT_HEADER = "NGSILD-Tenant"

# NGSI-LD 1.8 §6.3.x: the `options` values of all operations (each handler checks its own use)
KNOWN_OPTIONS = frozenset(
    {
        "keyValues",
        "simplified",
        "sysAttrs",
        "normalized",
        "concise",
        "noOverwrite",
        "replace",
        "update",
    }
)
# parameters every operation accepts: distribution scope (we hold only local entities)
ALWAYS_ALLOWED = frozenset({"local"})


class Exchange:
    """Request-scoped helpers shared by every NGSI-LD handler."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.broker: Broker = request.app.state.broker
        self.governance: Governance = request.app.state.governance
        self.settings: Settings = request.app.state.settings
        self.tenant: str = request.headers.get(TENANT_HEADER) or DEFAULT_TENANT
        self.context: Any = None
        self._vocab: TermMap | None = None
        self._readable: tuple[Readable | None] | None = None

    # -- input -----------------------------------------------------------------------------
    @property
    def params(self) -> Any:
        """The query parameters."""
        return self.request.query_params

    @property
    def principal(self) -> Principal | None:
        """Who is calling: set by the authenticator (`api/auth.py`); None when anonymous."""
        return principal_of(self.request.scope)

    async def writer(self) -> WriteAccess:
        """What this request may write (`governance/ownership.py`); refuses those who may not.

        Anonymous callers write only with `--anonymous-writes`, as the configured default
        organisation (and may change only what it owns); readers may not write (403).
        """
        principal = self.principal
        if principal is None:
            if not self.settings.anonymous_writes:
                raise Unauthenticated(
                    "writes need credentials (Authorization: Bearer <api key or token>); this "
                    "server does not accept anonymous writes (start it with --anonymous-writes "
                    "for local trials)"
                )
            return WriteAccess(self.settings.default_org)
        return await self.governance.write_access(principal)

    async def readable(self, *, fresh: bool = False) -> Readable | None:
        """What the caller may read, decided once per request (None: everything).

        Trial mode (`--anonymous-writes`): anonymous clients write as `default_org`, so they
        also read as a member of it (docs/security.md); otherwise anonymous callers read what
        anyone may (open data sets). `fresh`: decide again (a live stream does, now and then, so that
        a revoked key or grant takes effect).
        """
        if self._readable is None or fresh:
            principal = self.principal
            if principal is None and self.settings.anonymous_writes:
                principal = Principal(org_id=self.settings.default_org, role="reader")
            # the purpose the reader declares (docs/security.md): what restricted policies with
            # a purpose constraint test, recorded with the audited read
            purpose = parse_purpose(self.request.headers.get(PURPOSE_HEADER))
            self._readable = (await self.governance.readable_for(principal, purpose=purpose),)
        return self._readable[0]

    def subscription_owners(self) -> frozenset[str] | None:
        """The owners whose subscriptions the caller may see (None: all, the operator).

        Subscriptions belong to the organisation that made them: its members (any role) see
        them; anonymous callers see none (in trial mode, those of `default_org`).
        """
        principal = self.principal
        if principal is None:
            trial = self.settings.anonymous_writes
            return frozenset({self.settings.default_org}) if trial else frozenset()
        if principal.operator:
            return None
        return frozenset({principal.org_id})

    async def body(
        self, allowed: tuple[str, ...] = (JSON, JSON_LD), *, take_context: bool = True
    ) -> Body:
        """Read and check the JSON body; remember its @context."""
        body = await read_body(
            self.request,
            max_bytes=self.settings.max_body_bytes,
            max_depth=self.settings.max_json_depth,
            allowed=allowed,
            take_context=take_context,
        )
        self.context = body.context
        return body

    async def vocab(self) -> TermMap:
        """The term map of the request's @context (Link header or body)."""
        if self._vocab is None:
            if self.context is None:
                self.context = link_context(self.request)
            self._vocab = await self.broker.contexts.term_map(self.context, tenant=self.tenant)
        return self._vocab

    def allow(self, *names: str) -> None:
        """InvalidRequest for any query parameter this endpoint does not define (§6.3.x)."""
        unknown = sorted(set(self.params.keys()) - set(names) - ALWAYS_ALLOWED)
        if unknown:
            raise InvalidRequest(
                f"unknown query parameter(s) for this operation: {', '.join(unknown)}"
            )

    def options(self) -> set[str]:
        """The comma-separated `options` values; InvalidRequest for values the API does not define."""
        raw = self.params.get("options")
        values = {o.strip() for o in raw.split(",")} if raw is not None else set()
        bad = sorted(values - KNOWN_OPTIONS)
        if bad:
            raise InvalidRequest(f"unknown options value(s): {', '.join(bad) or '(empty)'}")
        return values

    def representation(self) -> str:
        """normalized | concise | keyValues, from `format` (1.8) or `options`."""
        fmt: str | None = self.params.get("format")
        if fmt is not None:
            if fmt in ("simplified", "keyValues"):
                return "keyValues"
            if fmt in ("normalized", "concise"):
                return fmt
            raise InvalidRequest(
                f"format {fmt!r} is not one of normalized, concise, keyValues, simplified"
            )
        opts = self.options()
        if "keyValues" in opts or "simplified" in opts:
            return "keyValues"
        if "concise" in opts:
            return "concise"
        return "normalized"

    def list_param(self, name: str) -> list[str] | None:
        """A comma-separated list parameter, or None when absent."""
        raw = self.params.get(name)
        if raw is None:
            return None
        items = [p.strip() for p in raw.split(",")]
        if any(not p for p in items):
            raise BadRequestData(f"parameter {name} has an empty item: {raw!r}")
        return items

    def int_param(self, name: str) -> int | None:
        """A non-negative integer parameter, or None when absent."""
        raw = self.params.get(name)
        if raw is None:
            return None
        try:
            return int(raw)
        except ValueError as exc:
            raise BadRequestData(f"parameter {name} must be an integer, got {raw!r}") from exc

    def bool_param(self, name: str) -> bool:
        """A true/false parameter (absent: false)."""
        raw: str | None = self.params.get(name)
        if raw is None:
            return False
        if raw in ("true", "false"):
            return raw == "true"
        raise BadRequestData(f"parameter {name} must be true or false, got {raw!r}")

    # -- output ----------------------------------------------------------------------------
    def accept(self, offered: tuple[str, ...] = (JSON, JSON_LD)) -> str:
        """The negotiated response media type."""
        return negotiate(self.request, offered)

    def _context_value(self) -> Any:
        return self.context if self.context is not None else CORE_CONTEXT_URL

    def link_header(self) -> str:
        """The JSON-LD Link header for an application/json response."""
        ctx = self.context if isinstance(self.context, str) else CORE_CONTEXT_URL
        return f'<{ctx}>; rel="{CONTEXT_REL}"; type="application/ld+json"'

    def json(
        self,
        data: Any,
        *,
        media_type: str,
        status: int = 200,
        headers: dict[str, str] | None = None,
        embed_context: bool = True,
    ) -> Response:
        """A JSON response in the negotiated media type, with the context as the binding requires."""
        out_headers = dict(headers or {})
        if media_type == JSON:
            out_headers["Link"] = self.link_header()
        elif embed_context and media_type in (JSON_LD, GEO_JSON):
            ctx = self._context_value()
            if isinstance(data, dict):
                data = {**data, "@context": ctx} if media_type == JSON_LD else _geo_ctx(data, ctx)
            elif isinstance(data, list) and media_type == JSON_LD:
                data = [
                    {**item, "@context": ctx} if isinstance(item, dict) else item for item in data
                ]
        if self.tenant != DEFAULT_TENANT:
            out_headers.setdefault(TENANT_HEADER, self.tenant)
        return Response(
            orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS),
            status_code=status,
            media_type=media_type,
            headers=out_headers,
        )

    def empty(self, status: int = 204, headers: dict[str, str] | None = None) -> Response:
        """A response without a body."""
        out_headers = dict(headers or {})
        if self.tenant != DEFAULT_TENANT:
            out_headers.setdefault(TENANT_HEADER, self.tenant)
        return Response(status_code=status, headers=out_headers)


def _geo_ctx(data: dict[str, Any], ctx: Any) -> dict[str, Any]:
    return {**data, "@context": ctx}


def require_no_body_context(body: Body) -> None:
    """InvalidRequest when a body that must be an object is something else."""
    if not isinstance(body.data, dict):
        raise InvalidRequest("the request body must be a JSON object")
