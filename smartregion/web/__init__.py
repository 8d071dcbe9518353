"""The portal: server-rendered pages in Dutch and English (docs/portal.md)."""

from __future__ import annotations

from starlette.applications import Starlette

from smartregion.web import (
    account,
    actors,
    challenges,
    follows,
    funding,
    initiatives,
    pages,
    purchases,
    usecases,
)  # fmt: skip
from smartregion.web.portal import Portal, Reader
from smartregion.web.sessions import SessionCodec

__all__ = ["Portal", "Reader", "SessionCodec", "portal_app"]


def portal_app(portal: Portal) -> Starlette:
    """The portal's ASGI app with every page."""
    return portal.app(
        [
            *pages.routes(portal),
            *account.routes(portal),
            # the hub's pages (docs/portal.md, "Hub pages")
            *usecases.routes(portal),
            *initiatives.routes(portal),
            *actors.routes(portal),
            *challenges.routes(portal),
            *purchases.routes(portal),
            *funding.routes(portal),
            *follows.routes(portal),
        ]
    )
