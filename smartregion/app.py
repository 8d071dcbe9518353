"""Application wiring: `create_app(settings)` is the only place where the parts are put together."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route, request_response
from starlette.types import ASGIApp, Receive, Scope, Send

from smartregion import __version__, errors
from smartregion.api import accesslog
from smartregion.api.admin import admin_api
from smartregion.api.auth import Authenticate, Authenticator
from smartregion.api.catalog.routes import catalog
from smartregion.api.csrf import BINDING_KEY, SecretKey, csrf_token
from smartregion.api.ldes.routes import ROUTES as LDES_ROUTES
from smartregion.api.live import entity_stream
from smartregion.api.ngsild.problems import (
    domain_error_handler,
    problem_response,
    unexpected_error_handler,
)
from smartregion.api.ngsild.routes import ROUTES as NGSILD_ROUTES
from smartregion.api.routing import IndexedRouter
from smartregion.api.security import SWAGGER_UI_CSP, SecurityMiddleware
from smartregion.broker.contexts import ContextResolver, StoreContextPersistence
from smartregion.broker.live import LiveFeed
from smartregion.broker.mqtt import TlsFiles
from smartregion.broker.notifier import Notifier
from smartregion.broker.retention import PurgeJob, RetentionService
from smartregion.broker.service import Broker
from smartregion.broker.subscriptions import NotificationFilter
from smartregion.governance import Governance, GovernanceStore, Principal
from smartregion.governance.oidc import OidcConfig, OidcVerifier
from smartregion.hub import Hub, load_taxonomy
from smartregion.hub.digests import DigestJob, SmtpMailer, send_due
from smartregion.hub.matchmaking import Matchmaking
from smartregion.ldes.streams import EventStreams, StreamConfig
from smartregion.settings import Settings
from smartregion.storage import open_store
from smartregion.storage.base import Store
from smartregion.storage.hub import HubStore
from smartregion.storage.streams import StreamStore
from smartregion.web import Portal, SessionCodec, portal_app

log = logging.getLogger("smartregion")


#: whether an app of this process has collected the heap before freezing it (`freeze_heap`)
_COLLECTED: list[bool] = []


def freeze_heap() -> None:
    """Move everything made so far out of the cyclic collector's way (the end of start-up).

    What exists once the app is up lives as long as the process; frozen, the collections a large
    answer triggers (a year of hourly aggregates is ~30,000 lists) scan only what requests made
    — not every module, class and cached term map (docs/architecture.md, "Garbage
    collection"). The first app of a process collects first, so that start-up's garbage is
    freed, not frozen. A later app (tests build hundreds in one process) skips that full
    collection — it scans every object the process holds, which in a test worker took a fifth
    of the tests' time: what it freezes is unfrozen again when it stops (`gc.unfreeze`)."""
    if not _COLLECTED:
        gc.collect()
        _COLLECTED.append(True)
    gc.freeze()


async def healthz(request: Request) -> Response:
    """GET /healthz: 200 when the database answers, 503 otherwise."""
    broker: Broker = request.app.state.broker
    try:
        await broker.store.health()
    except Exception as exc:  # any database failure means "not healthy"
        body = {"status": "unavailable", "detail": str(exc)}
        return Response(orjson.dumps(body), status_code=503, media_type="application/json")
    body = {"status": "ok", "version": __version__, "database": broker.store.backend}
    return Response(orjson.dumps(body), media_type="application/json")


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """Routing errors (unknown path, wrong method) as ProblemDetails."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        allow = (exc.headers or {}).get("Allow", "")
        return problem_response(
            errors.MethodNotAllowed(
                f"{request.method} is not allowed on {request.url.path}", allow=allow
            )
        )
    if exc.status_code == 404:
        return problem_response(errors.ResourceNotFound(f"no resource at {request.url.path}"))
    error = errors.InvalidRequest(str(exc.detail))
    response = problem_response(error)
    response.status_code = exc.status_code
    return response


class TrailingSlash:
    """Serve `/ngsi-ld/v1/entities/` as `/ngsi-ld/v1/entities` (clients and the ETSI suite use both).

    A rewrite, not a redirect: a 307 would make clients resend bodies and lose headers.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if len(path) > 1 and path.endswith("/"):
                # in place, not a copy: what the app changes in the scope (a credential blanked
                # from the query string) must reach the server's access log
                scope["path"] = path.rstrip("/") or "/"
                raw = scope.get("raw_path")
                if raw:
                    scope["raw_path"] = raw.rstrip(b"/") or b"/"
        await self.app(scope, receive, send)


@dataclass(slots=True)
class Runtime:
    """What every smartregion process builds from its settings: store, context resolver, broker.

    The HTTP app and the MQTT bridge both use it, so they wire the parts identically.
    """

    store: Store
    resolver: ContextResolver
    context_persistence: StoreContextPersistence
    broker: Broker

    def retention(self, settings: Settings) -> RetentionService:
        """The history retention service the settings describe."""
        return RetentionService(
            self.store,
            default_days=settings.history_retention_days,
            default_rollup_days=settings.history_rollup_retention_days,
            batch=settings.history_purge_batch,
        )

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        """Construct the parts (no I/O yet)."""
        store = open_store(settings.database_url)
        persistence = StoreContextPersistence(store)
        resolver = ContextResolver(
            preload_dir=Path(settings.context_preload_dir)
            if settings.context_preload_dir
            else None,
            fetch_timeout=settings.context_fetch_timeout,
            max_bytes=settings.context_max_bytes,
            allow_remote=settings.allow_remote_contexts,
            public_base_url=settings.public_base_url or f"http://{settings.host}:{settings.port}",
            persistence=persistence,
        )
        broker = Broker.build(
            store,
            resolver,
            default_limit=settings.default_limit,
            max_limit=settings.max_limit,
            max_batch_size=settings.max_batch_size,
            temporal_max_instances=settings.temporal_max_instances,
            record_history=settings.record_history,
        )
        return cls(store, resolver, persistence, broker)

    async def start(self) -> None:
        """Open the database, apply migrations, restore the @context registry."""
        await self.store.open()
        await self.store.migrate()
        await self.context_persistence.load_into(self.resolver)

    async def stop(self) -> None:
        """Release the HTTP client of the resolver and the database."""
        await self.resolver.aclose()
        await self.store.close()


def oidc_verifier(settings: Settings) -> OidcVerifier | None:
    """The OIDC token verifier the settings ask for (None: API keys only); ValueError if unsafe."""
    if not settings.oidc_issuer:
        return None
    return OidcVerifier(
        OidcConfig(
            issuer=settings.oidc_issuer,
            audience=settings.oidc_audience,
            jwks_url=settings.oidc_jwks_url,
            algorithms=OidcConfig.parse_algorithms(settings.oidc_algorithms),
            org_claim=settings.oidc_org_claim,
            role_claim=settings.oidc_role_claim,
            timeout=settings.oidc_timeout,
        )
    )


def stream_config(settings: Settings) -> StreamConfig:
    """How event streams are published, from the settings."""
    return StreamConfig(
        page_size=max(1, settings.ldes_page_size),
        settle=int(settings.ldes_settle_seconds * 1_000_000),
        max_age=settings.ldes_max_age,
        immutable_max_age=settings.ldes_immutable_max_age,
        max_concurrent=max(1, settings.ldes_max_concurrent_pages),
        cache_bytes=max(0, settings.ldes_cache_bytes),
        default_retention_days=settings.history_retention_days,
    )


def digests(
    hub: Hub | None, settings: Settings, matchmaking: Matchmaking | None = None
) -> DigestJob | None:
    """The hub's digest job when an SMTP server is configured (docs/hub.md)."""
    if hub is None or not settings.smtp_host:
        return None
    mailer = SmtpMailer(
        settings.smtp_host,
        settings.smtp_port,
        settings.smtp_sender,
        settings.smtp_starttls,
        settings.smtp_username,
        settings.smtp_password,
    )
    base_url = settings.public_base_url or f"http://{settings.host}:{settings.port}"
    return DigestJob(
        lambda: send_due(hub, mailer, base_url=base_url, matchmaking=matchmaking),
        settings.digest_interval,
    )


def page_csp(settings: Settings) -> str:
    """The pages' Content-Security-Policy: the setting's, with the map tiles' origin in img-src."""
    policy = settings.content_security_policy
    tiles = settings.map_tiles_url
    if not policy or not tiles.startswith("https://"):
        return policy
    origin = "https://" + tiles.removeprefix("https://").split("/", 1)[0].replace("{s}.", "*.")
    directives = [d.strip() for d in policy.split(";") if d.strip()]
    if any(d.startswith("img-src ") for d in directives):
        directives = [f"{d} {origin}" if d.startswith("img-src ") else d for d in directives]
    else:
        directives.append(f"img-src 'self' data: {origin}")
    return "; ".join(directives)


def matchmaking_of(hub: Hub | None, settings: Settings) -> Matchmaking | None:
    """The hub's matching service (docs/hub.md, "Matching")."""
    if hub is None:
        return None
    return Matchmaking(
        hub,
        embeddings=settings.hub_embeddings,
        ocid_prefix=settings.hub_ocid_prefix,
        purchasing_body=settings.default_org,
        uid_domain=urlsplit(settings.public_base_url).hostname or "",
        public_base_url=settings.public_base_url,
    )


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the ASGI application for the given settings."""
    settings = settings or Settings.load()
    accesslog.install()  # no raw client addresses or query strings in the access log
    runtime = Runtime.build(settings)
    store, broker = runtime.store, runtime.broker
    if not isinstance(store, GovernanceStore):
        raise TypeError(f"{type(store).__name__} keeps no governance records")
    governance = Governance(store)
    hub = Hub(store, governance, load_taxonomy()) if isinstance(store, HubStore) else None
    matchmaking = matchmaking_of(hub, settings)
    oidc = oidc_verifier(settings)
    # one authenticator for every interface (docs/security.md)
    authenticator = Authenticator(governance, oidc)
    # live streams read the change feed of every process's writes (api/live.py)
    live = LiveFeed(store)
    # every data set as a Linked Data Event Stream, and the catalogue (docs/ldes.md)
    if not isinstance(store, StreamStore):
        raise TypeError(f"{type(store).__name__} cannot publish event streams")
    streams = EventStreams(store, governance, stream_config(settings))
    # the portal (docs/portal.md): sessions signed with the same secret as CSRF tokens, and
    # its forms' tokens bound to the session
    sessions = SessionCodec(SecretKey(settings.secret_key, settings.secret_key_file).get)

    def session_binding(headers: Mapping[bytes, bytes]) -> str:
        cookie = headers.get(b"cookie")
        return sessions.binding(cookie.decode("latin-1") if cookie is not None else None)

    def portal_csrf_token(request: Request) -> str:
        request.scope[BINDING_KEY] = sessions.binding(request.headers.get("cookie"))
        return csrf_token(request)

    portal = Portal(
        broker,
        governance,
        sessions=sessions,
        csrf_token=portal_csrf_token,
        map_tiles_url=settings.map_tiles_url,
        hub=hub,
        matchmaking=matchmaking,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        if settings.demo:
            from smartregion.broker.demo import load_demo, publish_demo

            await load_demo(broker, owner=settings.default_org)
            if app.state.governance is not None:
                await publish_demo(app.state.governance, owner=settings.default_org)
            if hub is not None:
                from smartregion.broker.demo import DEMO_PASSWORD
                from smartregion.hub.demo import load_hub_demo

                await load_hub_demo(hub, owner=settings.default_org, password=DEMO_PASSWORD)
        # NGSI-LD 1.8 §5.11: deliver queued notifications while the app runs
        # notifications carry only what the subscription's owner may read (docs/security.md)
        readers = NotificationFilter(
            lambda org: governance.readable_for(Principal(org_id=org, role="reader")),
            unowned=settings.default_org,
        )
        notifier = Notifier(
            broker.subscriptions,
            store=store,
            readers=readers,
            max_attempts=settings.notification_max_attempts,
            max_delay=settings.notification_retry_max_delay,
            mqtt_tls=TlsFiles.of(
                settings.mqtt_ca_file, settings.mqtt_cert_file, settings.mqtt_key_file
            ),
        )
        await notifier.start()
        # retention (docs/operations.md): one purging process at a time per database
        digest_job = digests(hub, settings, matchmaking)
        app.state.digest_job = digest_job
        if digest_job is not None:
            await digest_job.start()
        purge_job = PurgeJob(runtime.retention(settings), settings.history_purge_interval)
        app.state.purge_job = purge_job
        await purge_job.start()
        freeze_heap()
        try:
            yield
        finally:
            gc.unfreeze()  # several apps in one process (tests): the next can collect this one
            await live.close()
            if digest_job is not None:
                await digest_job.stop()
            await purge_job.stop()
            await notifier.stop()
            if oidc is not None:
                await oidc.aclose()
            await runtime.stop()

    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Mount(
                "/ngsi-ld/v1",
                app=IndexedRouter(NGSILD_ROUTES),
                middleware=[
                    Middleware(Authenticate, authenticator=authenticator, interface="ngsi-ld")
                ],
            ),
            Mount("/api/v1", app=admin_api(authenticator, hub, matchmaking)),
            Mount(
                "/ldes",
                routes=LDES_ROUTES,
                middleware=[
                    Middleware(Authenticate, authenticator=authenticator, interface="ldes")
                ],
            ),
            Route(
                "/catalog",
                Authenticate(
                    request_response(catalog), authenticator=authenticator, interface="catalog"
                ),
                methods=["GET"],
            ),
            Mount(
                "/live",
                routes=[Route("/entities", entity_stream, methods=["GET"])],
                middleware=[
                    Middleware(Authenticate, authenticator=authenticator, interface="live")
                ],
            ),
            # last: every path no interface above claims is the portal's (HTML error pages)
            Mount("", app=portal_app(portal)),
        ],
        exception_handlers={
            errors.SmartRegionError: domain_error_handler,
            HTTPException: http_error_handler,
            Exception: unexpected_error_handler,
        },
        lifespan=lifespan,
        middleware=[
            # outermost: its refusals and every response get the security headers
            Middleware(
                SecurityMiddleware,
                settings=settings,
                page_csp=page_csp(settings),
                binding=session_binding,
                csp_by_path={"/api/v1/docs": SWAGGER_UI_CSP},
            ),
            Middleware(TrailingSlash),
        ],
    )
    app.state.settings = settings
    app.state.broker = broker
    app.state.governance = governance
    app.state.hub = hub
    app.state.matchmaking = matchmaking
    app.state.authenticator = authenticator
    app.state.live = live
    app.state.streams = streams
    return app
