"""The admin HTTP API at /api/v1 (FastAPI): organisations, keys, data sets, mandates, access
requests, agreements and grants, and the ecosystem hub (`api/hub/`); OpenAPI at
/api/v1/openapi.json. Authenticated with
`Authorization: Bearer <api key or OIDC token>` through the shared authenticator (`api/auth.py`);
every rule lives in the governance service."""

from __future__ import annotations

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from smartregion import __version__, errors
from smartregion.api.admin import problems
from smartregion.api.admin.auth import refuse_credentials_in_query
from smartregion.api.admin.routes import router
from smartregion.api.auth import Authenticator
from smartregion.api.hub.matches import matchmaking_router
from smartregion.api.hub.routes import hub_router
from smartregion.governance import Governance
from smartregion.hub import Hub
from smartregion.hub.matchmaking import Matchmaking

__all__ = ["LazyAdminAPI", "admin_api"]


def admin_api(
    authenticator: Authenticator, hub: Hub | None = None, matchmaking: Matchmaking | None = None
) -> FastAPI:
    """The admin API over the authenticator's governance service (and the hub's API, given a hub
    and its matchmaking)."""
    api = FastAPI(
        title="smartregion admin API",
        version=__version__,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        dependencies=[Depends(refuse_credentials_in_query)],
        exception_handlers={
            errors.SmartRegionError: problems.domain_error,
            RequestValidationError: problems.validation_error,
            HTTPException: problems.http_error,
            Exception: problems.unexpected_error,
        },
    )
    api.include_router(router)
    if hub is not None:
        matchmaking = matchmaking or Matchmaking(hub)
        # before the objects' routes: /funding/eligibility is not an object id
        api.include_router(matchmaking_router())
        api.include_router(hub_router())
    api.state.hub = hub
    api.state.matchmaking = matchmaking
    governance: Governance = authenticator.governance
    api.state.governance = governance
    api.state.authenticator = authenticator
    return api


class LazyAdminAPI:
    """The admin API (`admin_api`), built when its first request arrives.

    Building it costs more than the rest of `create_app` together (FastAPI analyses every
    route's parameters with pydantic: ~150 ms for its ~85 routes); an app that never serves
    /api/v1 — most test apps, a process serving only NGSI-LD — need not pay it. Built once,
    on the event loop (no await in between, so two first requests cannot both build it).
    """

    def __init__(
        self,
        authenticator: Authenticator,
        hub: Hub | None = None,
        matchmaking: Matchmaking | None = None,
    ) -> None:
        self._args = (authenticator, hub, matchmaking)
        self._api: FastAPI | None = None

    @property
    def api(self) -> FastAPI:
        """The admin API, built now if it was not yet."""
        if self._api is None:
            self._api = admin_api(*self._args)
        return self._api

    @property
    def built(self) -> bool:
        """Whether the admin API has been built."""
        return self._api is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.api(scope, receive, send)
