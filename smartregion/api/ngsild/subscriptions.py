"""HTTP handlers for /subscriptions (NGSI-LD 1.8 §6.10–§6.11)."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from smartregion.api.ngsild.exchange import Exchange, require_no_body_context
from smartregion.api.ngsild.negotiation import JSON, JSON_LD, MERGE_PATCH
from smartregion.broker.subscriptions import validate_subscription_id
from smartregion.core.subscriptions import render_subscription
from smartregion.errors import NonExistingTenant
from smartregion.storage.base import DEFAULT_TENANT

BASE = "/ngsi-ld/v1"
MEDIA = (JSON, JSON_LD)


def _subscription_id(request: Request) -> str:
    return validate_subscription_id(request.path_params["subscription_id"])


def _base_url(ex: Exchange) -> str:
    if ex.settings.public_base_url:
        return ex.settings.public_base_url.rstrip("/")
    return str(ex.request.base_url).rstrip("/")


async def create_subscription(request: Request) -> Response:
    """POST /subscriptions (§6.10.3.1): 201 with Location."""
    ex = Exchange(request)
    ex.allow()
    writer = await ex.writer()  # a write: refuse anonymous callers unless allowed, and readers
    body = await ex.body()
    require_no_body_context(body)
    subs = ex.broker.subscriptions
    sub_id = await subs.create(
        ex.tenant, body.data, ex.context, owner=writer.org_id, base_url=_base_url(ex)
    )
    return ex.empty(201, {"Location": f"{BASE}/subscriptions/{quote(sub_id, safe=':/')}"})


async def query_subscriptions(request: Request) -> Response:
    """GET /subscriptions (§6.10.3.2): one page, with count and prev/next links."""
    ex = Exchange(request)
    ex.allow("limit", "offset", "count", "options")
    media = ex.accept(MEDIA)
    sys_attrs = "sysAttrs" in ex.options()
    vocab = await ex.vocab()
    await _check_tenant(ex)
    offset = ex.int_param("offset") or 0
    page, total, limit = await ex.broker.subscriptions.query(
        ex.tenant,
        limit=ex.int_param("limit"),
        offset=offset,
        owners=ex.subscription_owners(),
        unowned=ex.settings.default_org,
    )
    data = [render_subscription(s.doc, vocab, s.state, sys_attrs=sys_attrs) for s in page]
    headers: dict[str, str] = {}
    if ex.bool_param("count"):
        headers["NGSILD-Results-Count"] = str(total)
    links = _page_links(limit, offset, len(page), total)
    if links:
        headers["Link"] = ", ".join(links)
    response = ex.json(data, media_type=media, headers=headers)
    if links and media == JSON:
        response.headers["Link"] = ", ".join([ex.link_header(), *links])
    return response


def _page_links(limit: int, offset: int, returned: int, total: int) -> list[str]:
    # NGSI-LD 1.8 §6.3.13 pagination; the ETSI suite (031_02) expects this exact shape
    if limit == 0:
        return []
    links = []
    if offset > 0:
        prev = max(0, offset - limit)
        links.append(
            f'</ngsi-ld/v1/subscriptions?limit={limit}&offset={prev}>;rel="prev";type="application/ld+json"'
        )
    if offset + returned < total:
        links.append(
            f'</ngsi-ld/v1/subscriptions?limit={limit}&offset={offset + limit}>;rel="next";type="application/ld+json"'
        )
    return links


async def _check_tenant(ex: Exchange) -> None:
    if ex.tenant != DEFAULT_TENANT and not await ex.broker.store.tenant_exists(ex.tenant):
        page, _, _ = await ex.broker.subscriptions.query(ex.tenant, limit=1, offset=0)
        if not page:
            raise NonExistingTenant(f"tenant {ex.tenant!r} does not exist")


async def retrieve_subscription(request: Request) -> Response:
    """GET /subscriptions/{subscriptionId} (§6.11.3.1)."""
    ex = Exchange(request)
    ex.allow("options")
    media = ex.accept(MEDIA)
    sys_attrs = "sysAttrs" in ex.options()
    sub_id = _subscription_id(request)
    vocab = await ex.vocab()
    stored = await ex.broker.subscriptions.retrieve(
        ex.tenant, sub_id, owners=ex.subscription_owners(), unowned=ex.settings.default_org
    )
    return ex.json(
        render_subscription(stored.doc, vocab, stored.state, sys_attrs=sys_attrs), media_type=media
    )


async def update_subscription(request: Request) -> Response:
    """PATCH /subscriptions/{subscriptionId} (§6.11.3.2): 204."""
    ex = Exchange(request)
    ex.allow()
    writer = await ex.writer()
    sub_id = _subscription_id(request)
    body = await ex.body((JSON, JSON_LD, MERGE_PATCH))
    require_no_body_context(body)
    await ex.broker.subscriptions.update(
        ex.tenant,
        sub_id,
        body.data,
        ex.context,
        writer=writer,
        unowned=ex.settings.default_org,
        base_url=_base_url(ex),
    )
    return ex.empty()


async def delete_subscription(request: Request) -> Response:
    """DELETE /subscriptions/{subscriptionId} (§6.11.3.3): 204."""
    ex = Exchange(request)
    ex.allow()
    writer = await ex.writer()
    await ex.broker.subscriptions.delete(
        ex.tenant, _subscription_id(request), writer=writer, unowned=ex.settings.default_org
    )
    return ex.empty()
