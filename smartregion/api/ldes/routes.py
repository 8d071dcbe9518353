"""The event-stream routes, mounted at /ldes: parse, call `EventStreams`, answer with caching.

- `GET /ldes/{dataset}`: the stream's description (`ldes:EventStream`, shape, views);
- `GET /ldes/{dataset}/{view}[/YYYY[/MM[/DD[/HH]]]][?after=p.series.t.seq]`: a page;
- `GET /ldes/{dataset}/members/{series}.{t}.{seq}`: one member.

HTTP (RFC 9110/9111): content negotiation over N-Quads, N-Triples, Turtle, TriG and JSON-LD
with `Vary: Accept`; a strong `ETag` per representation and 304 on `If-None-Match`;
`Cache-Control: public, max-age=<a year>, immutable` on pages that can never change and a
short `max-age` on the others (`private` for data sets that are not open, which also vary on
`Authorization`); 410 for pages past retention; 429 with `Retry-After` when too many pages are
being rendered. A URL that names a page in a non-canonical way (`?after=007.…`) redirects (308)
to the page's IRI, so every page IRI equals the URL it is served at.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from smartregion.api.auth import principal_of
from smartregion.errors import InvalidRequest, ResourceNotFound
from smartregion.ldes.fragments import parse_page
from smartregion.ldes.serialisation import negotiate
from smartregion.ldes.streams import EventStreams, Rendered

__all__ = ["ROUTES", "base_url", "respond"]

_MEMBER = re.compile(r"(\d{1,19})\.(-?\d{1,19})\.(\d{1,10})")


def base_url(request: Request) -> str:
    """The external base URL: `public_base_url`, else the request's scheme and host."""
    configured: str = request.app.state.settings.public_base_url
    if configured:
        return configured.rstrip("/")
    return f"{request.url.scheme}://{request.url.netloc}"


def _matches(header: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: If-None-Match (weak comparison) names this representation."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in header.split(","))


def respond(
    request: Request,
    page: Rendered,
    *,
    max_age: int,
    immutable_max_age: int,
    per_caller: bool = False,
) -> Response:
    """The page with its validators and caching headers, or 304 when the client has it
    (`per_caller`: the content depends on who asks, even when public)."""
    scope = "public" if page.public else "private"
    if page.immutable:
        cache = f"{scope}, max-age={immutable_max_age}, immutable"
    else:
        cache = f"{scope}, max-age={max_age}"
    headers = {
        "ETag": page.etag,
        "Cache-Control": cache,
        "Vary": "Accept" if page.public and not per_caller else "Accept, Authorization",
    }
    if _matches(request.headers.get("if-none-match"), page.etag):
        return Response(status_code=304, headers=headers)
    media = page.media_type
    if media.startswith("text/"):
        media += "; charset=utf-8"
    return Response(page.body, headers=headers, media_type=media)


async def stream(request: Request) -> Response:
    """GET /ldes/{dataset}: the event stream's own description."""
    streams: EventStreams = request.app.state.streams
    if request.query_params:
        raise InvalidRequest("an event stream takes no query parameters")
    stream = await streams.readable_dataset(
        principal_of(request.scope), request.path_params["dataset"]
    )
    dataset = stream.dataset
    media = negotiate(request.headers.get("accept"))
    rendered = streams.render_stream(dataset, base_url(request), media)
    return respond(request, rendered, max_age=streams.config.max_age, immutable_max_age=0)


async def page(request: Request) -> Response:
    """GET /ldes/{dataset}/{view}[/…]: one page of a view."""
    streams: EventStreams = request.app.state.streams
    extra = set(request.query_params) - {"after"}
    if extra or len(request.query_params.getlist("after")) > 1:
        raise InvalidRequest("a page takes one query parameter at most: after")
    stream = await streams.readable_dataset(
        principal_of(request.scope), request.path_params["dataset"]
    )
    dataset = stream.dataset
    ref = parse_page(
        request.path_params["view"],
        request.path_params.get("rest", ""),
        request.query_params.get("after"),
    )
    stream_path = f"/ldes/{dataset.id}"
    asked = request.url.path.removeprefix(stream_path)
    if request.url.query:
        asked += "?" + request.url.query
    if asked != ref.path:
        # a page IRI equals the URL it is served at: other spellings redirect to it
        return RedirectResponse(base_url(request) + stream_path + ref.path, status_code=308)
    media = negotiate(request.headers.get("accept"))
    rendered = await streams.render_page(dataset, ref, base_url(request), media, stream.withheld)
    if stream.audit is not None:
        await stream.audit([dataset.id], 0)
    return respond(
        request,
        rendered,
        max_age=streams.config.max_age,
        immutable_max_age=streams.config.immutable_max_age,
    )


async def member(request: Request) -> Response:
    """GET /ldes/{dataset}/members/{series}.{t}.{seq}: one member's triples."""
    streams: EventStreams = request.app.state.streams
    if request.query_params:
        raise InvalidRequest("a member takes no query parameters")
    stream = await streams.readable_dataset(
        principal_of(request.scope), request.path_params["dataset"]
    )
    dataset = stream.dataset
    found = _MEMBER.fullmatch(request.path_params["key"])
    if found is None:
        raise ResourceNotFound("no such member in this event stream")
    key = (int(found[1]), int(found[2]), int(found[3]))
    media = negotiate(request.headers.get("accept"))
    rendered = await streams.render_member(dataset, key, base_url(request), media, stream.withheld)
    if stream.audit is not None:
        await stream.audit([dataset.id], 0)
    return respond(
        request,
        rendered,
        max_age=streams.config.max_age,
        immutable_max_age=streams.config.immutable_max_age,
    )


ROUTES = [
    Route("/{dataset}", stream, methods=["GET"]),
    Route("/{dataset}/members/{key}", member, methods=["GET"]),
    Route("/{dataset}/{view}", page, methods=["GET"]),
    Route("/{dataset}/{view}/{rest:path}", page, methods=["GET"]),
]
