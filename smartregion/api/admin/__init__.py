"""The admin HTTP API at /api/v1 (FastAPI): organisations, keys, data sets, mandates, access
requests, agreements and grants, and the ecosystem hub (`api/hub/`); OpenAPI at
/api/v1/openapi.json. Authenticated with
`Authorization: Bearer <api key or OIDC token>` through the shared authenticator (`api/auth.py`);
every rule lives in the governance service."""

from __future__ import annotations

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

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

__all__ = ["admin_api"]


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
