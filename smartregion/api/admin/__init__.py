"""The admin HTTP API at /api/v1 (FastAPI): organisations, keys, data sets, mandates, access
requests, agreements and grants; OpenAPI at /api/v1/openapi.json. Authenticated with
`Authorization: Bearer <api key>` (`auth.py`); every rule lives in the governance service."""

from __future__ import annotations

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from smartregion import __version__, errors
from smartregion.api.admin import problems
from smartregion.api.admin.auth import refuse_credentials_in_query
from smartregion.api.admin.routes import router
from smartregion.governance import Governance, GovernanceStore
from smartregion.storage import Store

__all__ = ["admin_api"]


def admin_api(store: Store) -> FastAPI:
    """The admin API over a store that keeps governance records."""
    if not isinstance(store, GovernanceStore):
        raise TypeError(f"{type(store).__name__} keeps no governance records")
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
    api.state.governance = Governance(store)
    return api
