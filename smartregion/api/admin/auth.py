"""Authentication of admin API requests through the shared authenticator (`api/auth.py`).

Every admin endpoint needs credentials: `Authorization: Bearer <api key or OIDC token>`. A
credential in the query string is refused with 400 before anything else — even when the
request also has a valid header (OWASP ASVS 5.0 V14.2.1).
"""

from __future__ import annotations

from fastapi import Request

from smartregion.api.auth import CREDENTIAL_PARAMETERS, Authenticator
from smartregion.errors import Unauthenticated
from smartregion.governance import Principal

__all__ = ["CREDENTIAL_PARAMETERS", "authenticate", "refuse_credentials_in_query"]

INTERFACE = "admin"


def _authenticator(request: Request) -> Authenticator:
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator


async def refuse_credentials_in_query(request: Request) -> None:
    """Authenticate early (every endpoint's dependency): a query credential is 400, bad ones 401."""
    await _authenticator(request).authenticate(request, interface=INTERFACE)


async def authenticate(request: Request) -> Principal:
    """The principal of the request's bearer credential, or Unauthenticated (401)."""
    principal = await _authenticator(request).authenticate(request, interface=INTERFACE)
    if principal is None:
        raise Unauthenticated("this API needs an `Authorization: Bearer <api key>` header")
    return principal
