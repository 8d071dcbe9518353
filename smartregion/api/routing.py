"""A Starlette router that looks up a request's routes instead of trying each in turn."""

from __future__ import annotations

from collections.abc import Sequence

from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import Receive, Scope, Send


class IndexedRouter(Router):
    """`Router`, with its routes indexed by method and first path segment.

    Starlette's router tries every route in order, each with a regular expression; the
    NGSI-LD table has 42 routes, and `PATCH /entities/{id}/attrs` is the ninth. Here a request
    tries only the routes of its method whose path starts with its first segment — the only
    ones that can match it fully —, in table order, so the route chosen is the same. Anything
    else (no full match: 405 and 404 answers, redirects; lifespan) goes to `Router.app` as it
    is. A table with a route that is not a plain `Route`, or whose path starts with a
    parameter, is not indexed.
    """

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        super().__init__(routes=list(routes))
        self._index: dict[tuple[str, str], list[Route]] | None = None
        index: dict[tuple[str, str], list[Route]] = {}
        for route in self.routes:
            head = _first_segment(getattr(route, "path", "{"))
            if not isinstance(route, Route) or not route.methods or "{" in head:
                return  # not indexed: every request goes to `Router.app`
            for method in route.methods:
                index.setdefault((method, head), []).append(route)
        self._index = index

    def full_match(self, scope: Scope) -> tuple[Route, Scope] | None:
        """The route that fully matches an HTTP request, with its child scope; None if none does."""
        if self._index is None:
            return None
        candidates = self._index.get((scope["method"], _first_segment(get_route_path(scope))))
        for route in candidates or ():
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                return route, child_scope
        return None

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self.full_match(scope) if scope["type"] == "http" else None
        if found is None:
            await super().app(scope, receive, send)
            return
        route, child_scope = found
        if "router" not in scope:
            scope["router"] = self
        scope["route"] = route
        scope.update(child_scope)
        await route.handle(scope, receive, send)


def _first_segment(path: str) -> str:
    return path[1:].split("/", 1)[0] if path.startswith("/") else path.split("/", 1)[0]
