"""Authentication of admin API requests: `Authorization: Bearer <api key>`, nothing else.

Credentials in a query string end up in access logs, proxies and browser history (OWASP ASVS
5.0 V14.2.1), so a request carrying one there is refused with 400 before anything else —
even when it also has a valid header.
"""

from __future__ import annotations

from fastapi import Request

from smartregion.errors import InvalidRequest, Unauthenticated
from smartregion.governance import Governance, Principal
from smartregion.governance.keys import KEY_PREFIX

__all__ = ["CREDENTIAL_PARAMETERS", "authenticate", "refuse_credentials_in_query"]

#: query parameters that carry credentials in other APIs
CREDENTIAL_PARAMETERS = frozenset(
    {"api_key", "apikey", "api-key", "key", "token", "access_token", "authorization", "bearer"}
)


async def refuse_credentials_in_query(request: Request) -> None:
    """400 when the query string carries a credential (by name or by the shape of our keys)."""
    for name, value in request.query_params.multi_items():
        if name.lower() in CREDENTIAL_PARAMETERS or value.startswith(KEY_PREFIX + "_"):
            raise InvalidRequest(
                "credentials are accepted only in the Authorization header, never in the URL"
            )


async def authenticate(request: Request) -> Principal:
    """The principal of the request's bearer key, or Unauthenticated (401)."""
    await refuse_credentials_in_query(request)
    header = request.headers.get("authorization")
    if not header:
        raise Unauthenticated("this API needs an `Authorization: Bearer <api key>` header")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must use the Bearer scheme")
    governance: Governance = request.app.state.governance
    return await governance.authenticate_key(token.strip())
