"""Live streams for dashboards: Server-Sent Events of entity changes the caller may read.

    GET /live/entities?type=T            entities of a type (an NGSI-LD type expression)
    GET /live/entities?id=E1,E2          given entities
    GET /live/entities?dataset=D         a data set's entities (its owner's, of its types, in
                                         its scope)
        [&idPattern=…][&q=…][&options=keyValues|concise]   (NGSILD-Tenant, Link as for NGSI-LD)

Each committed write of a selected entity the caller may read sends `event: entity` with the
entity as it is when the stream reads the change (the NGSI-LD representation asked for; a burst
of writes to one entity may arrive as its latest state only), `id:` the change-feed number; an entity the stream showed that is deleted or no longer readable sends `event: gone`
with its id. A comment line every 15 s keeps proxies from closing an idle stream. A client that
reconnects with `Last-Event-ID` resumes from there while the feed still holds it (ten minutes);
a stream that falls too far behind is closed (`event: overflow`) and should reconnect.

Who may read what is decided when the stream opens and again at most once a second while
changes arrive, so a revoked key or grant stops the stream's flow of entities within a second
(`docs/security.md`). The feed is read from the database (broker/live.py), so writes of every
process — other workers, the MQTT bridge, imports — appear.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from smartregion.api.ngsild.exchange import Exchange
from smartregion.broker.disclosure import narrowed_query
from smartregion.broker.live import LiveFeed
from smartregion.core.entities import is_uri
from smartregion.core.qlang import parse_q
from smartregion.core.rendering import RenderOptions, render_entity
from smartregion.core.scopes import scopes_within
from smartregion.core.typeexpr import parse_type_expr
from smartregion.errors import BadRequestData, ResourceNotFound
from smartregion.storage.base import EntityQuery, Readable, Slice

__all__ = ["entity_stream"]

KEEP_ALIVE_S = 15.0
#: how often, at most, what the caller may read is decided again while changes arrive
REDECIDE_S = 1.0


def _event(name: str, data: Any, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


async def entity_stream(request: Request) -> Response:
    """GET /live/entities: see the module docstring."""
    ex = Exchange(request)
    ex.allow("type", "id", "idPattern", "q", "dataset", "options", "format")
    vocab = await ex.vocab()
    ids = ex.list_param("id")
    for entity_id in ids or ():
        if not is_uri(entity_id):
            raise BadRequestData(f"{entity_id!r} is not a valid entity id (a URI)")
    type_expr = ex.params.get("type")
    dataset_id = ex.params.get("dataset")
    if ids is None and type_expr is None and dataset_id is None:
        raise BadRequestData("a live stream selects by type, id or dataset")
    base = EntityQuery(
        types=parse_type_expr(type_expr, vocab.expand_term) if type_expr else None,
        id_pattern=ex.params.get("idPattern"),
        q=parse_q(ex.params["q"], vocab.expand_term) if "q" in ex.params else None,
    )
    scope: Readable | None = None
    if dataset_id is not None:
        scope = await _dataset_scope(ex, dataset_id)
    opts = RenderOptions(format=ex.representation())
    last = request.headers.get("last-event-id")
    after = int(last) if last is not None and last.isdigit() else None
    feed: LiveFeed = request.app.state.live
    queue = await feed.subscribe(after)
    wanted_ids = frozenset(ids) if ids is not None else None

    async def readable() -> Readable | None:
        decided = await ex.readable(fresh=True)  # keys and grants may have been revoked
        return decided if scope is None else _within(scope, decided)

    async def events() -> AsyncIterator[bytes]:
        shown: set[str] = set()
        audited: frozenset[str] = frozenset()
        allowed = await readable()
        decided_at = time.monotonic()
        try:
            yield b"retry: 2000\n\n"
            while True:
                try:
                    entry = await asyncio.wait_for(queue.get(), KEEP_ALIVE_S)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if entry is None:
                    yield _event("overflow", {"detail": "the stream fell behind; reconnect"})
                    return
                if entry.tenant != ex.tenant:
                    continue
                changed = [i for i in entry.entity_ids if wanted_ids is None or i in wanted_ids]
                if not changed:
                    continue
                if time.monotonic() - decided_at > REDECIDE_S:
                    allowed = await readable()
                    decided_at = time.monotonic()
                query = EntityQuery(
                    ids=tuple(changed),
                    types=base.types,
                    id_pattern=base.id_pattern,
                    q=base.q,
                    readable=allowed,
                    limit=len(changed),
                )
                found = await ex.broker.store.query(ex.tenant, narrowed_query(query))
                # what the caller sees of them; a stream's read of others' non-open data is
                # audited once per data set, not once per event
                seen = await ex.broker.queries.discloser.shown(ex.tenant, found.docs, allowed)
                if not seen.audited <= audited:
                    await ex.broker.queries.discloser.audit(seen, allowed)
                    audited |= seen.audited
                present = set()
                for doc in seen.docs:
                    present.add(doc["id"])
                    shown.add(doc["id"])
                    yield _event("entity", render_entity(doc, vocab, opts), entry.seq)
                for entity_id in changed:
                    if entity_id in shown and entity_id not in present:
                        shown.discard(entity_id)
                        yield _event("gone", {"id": entity_id}, entry.seq)
        finally:
            feed.unsubscribe(queue)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    if ex.tenant:
        headers["NGSILD-Tenant"] = ex.tenant
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


async def _dataset_scope(ex: Exchange, dataset_id: str) -> Readable:
    """The data set's entities as a readable slice; 404 for one the caller may not know of."""
    principal = ex.principal
    if principal is not None:
        dataset = await ex.governance.visible_dataset(principal, dataset_id)  # 404 if hidden
    else:
        found = await ex.governance.store.get_dataset(dataset_id)
        if found is None or found.policy_kind == "private":
            raise ResourceNotFound(f"no data set {dataset_id!r}")
        dataset = found
    return Readable(slices=(dataset.selection,))


def _within(scope: Readable, decided: Readable | None) -> Readable:
    """The part of a data set's slice (`scope`) that the caller may read (`decided`), shown
    through the caller's privacy views (`decided.disclosure`)."""
    if decided is None:
        return scope
    slices: list[Slice] = []
    for wanted in scope.slices:
        if wanted.owner in decided.owners:
            slices.append(wanted)
            continue
        for have in decided.slices:
            if have.owner != wanted.owner or not (types := wanted.types & have.types):
                continue
            meet, narrower = _narrower(wanted.scope, have.scope)
            if meet:
                slices.append(Slice(wanted.owner, types, narrower))
    return Readable(slices=tuple(slices), disclosure=decided.disclosure)


def _narrower(a: str | None, b: str | None) -> tuple[bool, str | None]:
    """(whether one scope holds what is within both `a` and `b`, that scope; None: any). Two
    disjoint hierarchies have none: an entity with a scope in each is left out (fail closed)."""
    if a is None or b is None:
        return True, (b if a is None else a)
    if scopes_within(a, [b]):
        return True, b
    if scopes_within(b, [a]):
        return True, a
    return False, None
