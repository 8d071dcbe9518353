"""Subscriptions (NGSI-LD 1.8 §5.8) and the matching of entity writes against them (§5.11).

`SubscriptionService` is the subscription resource: create, retrieve, query, update, delete.
`NotifyingStore` wraps the entity `Store`: every `transact` (the one entity write path) is
matched against the tenant's active subscriptions inside the transaction's `mutate`, on the
documents as they were locked and as they will be written, and the resulting notifications are
written to the outbox with the entity writes when the backend takes `Notify` ops (both built-in
backends do), so an acknowledged write always has its notifications queued. A backend without
`Notify` support gets them enqueued right after the commit instead (a crash in between loses
them). `smartregion.broker.notifier.Notifier` sends what is queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from smartregion.broker.contexts import ContextResolver
from smartregion.broker.disclosure import Discloser, narrowed_query
from smartregion.broker.history import instance_rows
from smartregion.broker.linking import fetch_linked
from smartregion.core.jsonld import CORE_CONTEXT_URL
from smartregion.core.rendering import RenderOptions, linked_targets, render_entity
from smartregion.core.subscriptions import (
    ChangeSteps,
    CompiledSubscription,
    EntityChange,
    change_rounds,
    compile_subscription,
    merge_subscription,
    new_subscription_id,
    notification_entities,
    notification_options,
    parse_subscription,
)
from smartregion.core.times import format_datetime, utc_now
from smartregion.errors import AlreadyExists, BadRequestData, ResourceNotFound, SmartRegionError
from smartregion.governance import Forbidden, WriteAccess
from smartregion.storage.base import (
    AttrInfo,
    Delete,
    EntityQuery,
    FeedEntry,
    OwnersCheck,
    Put,
    QueryResult,
    Readable,
    Store,
    StoredContext,
    TypeInfo,
    WriteOp,
)
from smartregion.storage.history import RecordInstances
from smartregion.storage.subscriptions import (
    Notify,
    OutboxRow,
    StoredSubscription,
    SubscriptionStore,
)

log = logging.getLogger("smartregion.subscriptions")

T = TypeVar("T")
Doc = dict[str, Any]

#: how long a tenant's compiled subscriptions are trusted before storage is asked for changes
#: made by other processes (this process invalidates its own changes at once)
REFRESH_SECONDS = 1.0
#: the most entities a purge re-reads to notify their deletion (beyond: no notifications)
PURGE_NOTIFY_LIMIT = 100_000
#: seconds a read of a subscription waits for this process's sends to be recorded
RECORD_WAIT = 2.0


def validate_subscription_id(value: str) -> str:
    """BadRequestData unless `value` is a URI (§5.8.3/§5.8.5: invalid ids are bad requests)."""
    from smartregion.core.entities import is_uri

    if not is_uri(value):
        raise BadRequestData(f"subscription id {value!r} is not a valid URI")
    return value


#: the internal member of a subscription document naming the organisation that owns it
OWNER = "owner"


def subscription_owner(doc: Doc, unowned: str) -> str:
    """The organisation owning a subscription (`unowned` for one made before owners existed)."""
    owner = doc.get(OWNER)
    return owner if isinstance(owner, str) else unowned


def _require_owner(stored: StoredSubscription, writer: WriteAccess, unowned: str) -> None:
    # subscriptions belong to the organisation that made them; mandates cover entity data only
    if not writer.unrestricted and subscription_owner(stored.doc, unowned) != writer.org_id:
        raise Forbidden(f"subscription {stored.doc['id']} is owned by another organisation")


class SubscriptionService:
    """The subscription resource over a `SubscriptionStore`, per tenant."""

    def __init__(
        self,
        subs: SubscriptionStore,
        contexts: ContextResolver,
        *,
        default_limit: int = 20,
        max_limit: int = 1000,
    ) -> None:
        self.subs = subs
        self.contexts = contexts
        self.default_limit = default_limit
        self.max_limit = max_limit
        self._compiled: dict[str, _TenantMatcher] = {}
        self._version: int | None = None
        self._checked = 0.0
        self._lock = asyncio.Lock()
        #: set whenever notifications were queued; the notifier waits on it
        self.queued = asyncio.Event()
        #: (tenant, subscription id) -> the outbox rows this process is sending, or has sent,
        #: whose outcome is not recorded yet
        self._unrecorded: dict[tuple[str, str], set[str]] = {}
        #: set (and replaced) whenever outcomes were recorded
        self._recorded = asyncio.Event()

    # ------------------------------------------------------------------ delivery records

    def outcome_pending(self, tenant: str, subscription_id: str, row_id: str) -> None:
        """The notifier is sending outbox row `row_id`; its outcome is not recorded yet."""
        self._unrecorded.setdefault((tenant, subscription_id), set()).add(row_id)

    def outcomes_recorded(self, rows: Sequence[tuple[str, str, str]]) -> None:
        """Those (tenant, subscription id, row id) are recorded (or were not sent after all);
        wake the reads waiting for them."""
        for tenant, subscription_id, row_id in rows:
            key = (tenant, subscription_id)
            pending = self._unrecorded.get(key)
            if pending is not None:
                pending.discard(row_id)
                if not pending:
                    del self._unrecorded[key]
        self._recorded.set()
        self._recorded = asyncio.Event()

    async def _settled(self, selects: Callable[[tuple[str, str]], bool]) -> None:
        """Wait until the sends pending now of the subscriptions `selects` picks are recorded,
        at most RECORD_WAIT seconds.

        A client that was just notified and reads the subscription sees that notification in
        timesSent, status, lastNotification and lastSuccess (§5.2.14), although the notifier
        records a batch's outcomes in one transaction after the last send of the batch. Only
        the sends under way when the read starts are waited for (a busy subscription's later
        ones do not prolong it), and only this process's (not another worker's).
        """
        waited = {
            (key, row_id)
            for key, rows in self._unrecorded.items()
            if selects(key)
            for row_id in rows
        }
        if not waited:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RECORD_WAIT
        while any(row_id in self._unrecorded.get(key, ()) for key, row_id in waited):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._recorded.wait(), remaining)

    # ------------------------------------------------------------------ the resource (§5.8)

    async def create(
        self,
        tenant: str,
        payload: Any,
        context: Any,
        *,
        owner: str,
        base_url: str | None = None,
    ) -> str:
        """Create a subscription owned by `owner` (§5.8.1); returns its id.

        AlreadyExists when the id is taken.
        """
        vocab = await self.contexts.term_map(context, tenant=tenant)
        doc = parse_subscription(payload, vocab, context=context)
        doc[OWNER] = owner  # after parsing: a client cannot choose it (unknown members are dropped)
        doc.setdefault("id", new_subscription_id())
        await self._check_contexts(doc, tenant)
        await self._implicit_context(doc, tenant, base_url)
        now = format_datetime(datetime.now(UTC))
        doc["createdAt"] = doc["modifiedAt"] = now
        if not await self.subs.create_subscription(tenant, doc):
            raise AlreadyExists(f"subscription {doc['id']} already exists")
        self._changed(tenant)
        return str(doc["id"])

    async def retrieve(
        self,
        tenant: str,
        subscription_id: str,
        *,
        owners: frozenset[str] | None = None,
        unowned: str = "",
    ) -> StoredSubscription:
        """One subscription (§5.8.3); ResourceNotFound when absent or, when `owners` is given
        (None: every subscription), owned by an organisation not among them — exactly as if
        it did not exist (docs/security.md)."""
        validate_subscription_id(subscription_id)
        await self._settled(lambda key: key == (tenant, subscription_id))
        return await self._stored(tenant, subscription_id, owners, unowned)

    async def _stored(
        self, tenant: str, subscription_id: str, owners: frozenset[str] | None, unowned: str
    ) -> StoredSubscription:
        # the stored subscription as it is now (update and delete do not wait for records)
        validate_subscription_id(subscription_id)
        found = await self.subs.get_subscription(tenant, subscription_id)
        if found is None or (
            owners is not None and subscription_owner(found.doc, unowned) not in owners
        ):
            raise ResourceNotFound(f"subscription {subscription_id} not found")
        return found

    async def query(
        self,
        tenant: str,
        *,
        limit: int | None,
        offset: int,
        owners: frozenset[str] | None = None,
        unowned: str = "",
    ) -> tuple[list[StoredSubscription], int, int]:
        """One page of the tenant's subscriptions (§5.8.4): (page, total, limit used); only
        those owned by `owners` when given (None: all), in the page and in the total."""
        limit = self.default_limit if limit is None else limit
        if limit < 0 or offset < 0:
            raise BadRequestData("limit and offset must not be negative")
        if limit > self.max_limit:
            from smartregion.errors import TooManyResults

            raise TooManyResults(f"limit must not exceed {self.max_limit}")
        await self._settled(lambda key: key[0] == tenant)
        if owners is None:
            page, total = await self.subs.list_subscriptions(tenant, limit=limit, offset=offset)
            return page, total, limit
        # a tenant holds few subscriptions: filter them all, then take the page (the total
        # counts only the caller's)
        mine = [
            s
            for s in await self.subs.tenant_subscriptions(tenant)
            if subscription_owner(s.doc, unowned) in owners
        ]
        return mine[offset : offset + limit], len(mine), limit

    async def update(
        self,
        tenant: str,
        subscription_id: str,
        fragment: Any,
        context: Any,
        *,
        writer: WriteAccess,
        unowned: str,
        base_url: str | None = None,
    ) -> None:
        """Update a subscription with a fragment (§5.8.2); Forbidden unless `writer` owns it."""
        stored = await self._stored(tenant, subscription_id, None, unowned)
        _require_owner(stored, writer, unowned)
        vocab = await self.contexts.term_map(context, tenant=tenant)
        doc = merge_subscription(
            stored.doc, fragment, vocab, context=context if context is not None else None
        )
        if isinstance(fragment, dict) and "jsonldContext" in fragment:
            doc.pop("implicitContext", None)
        await self._check_contexts(doc, tenant)
        if context is not None and context != stored.doc.get("@context"):
            if doc.get("implicitContext"):
                doc.pop("jsonldContext", None)
                doc.pop("implicitContext", None)
            await self._implicit_context(doc, tenant, base_url)
        doc["modifiedAt"] = format_datetime(datetime.now(UTC))
        if not await self.subs.replace_subscription(tenant, doc):
            raise ResourceNotFound(f"subscription {subscription_id} not found")
        self._changed(tenant)

    async def delete(
        self, tenant: str, subscription_id: str, *, writer: WriteAccess, unowned: str
    ) -> None:
        """Delete a subscription (§5.8.5); Forbidden unless `writer` owns it."""
        _require_owner(await self._stored(tenant, subscription_id, None, unowned), writer, unowned)
        if not await self.subs.delete_subscription(tenant, subscription_id):
            raise ResourceNotFound(f"subscription {subscription_id} not found")
        self._changed(tenant)

    async def _check_contexts(self, doc: Doc, tenant: str) -> None:
        # NGSI-LD 1.8 §5.2.12: jsonldContext must be retrievable (503 LdContextNotAvailable) and a
        # valid context (400), like any @context
        if "jsonldContext" in doc and not doc.get("implicitContext"):
            await self.contexts.term_map(doc["jsonldContext"], tenant=tenant)

    async def _implicit_context(self, doc: Doc, tenant: str, base_url: str | None) -> None:
        # NGSI-LD 1.8 §5.13.2: an inline or compound @context is kept as an ImplicitlyCreated
        # context whose URL the subscription reports as jsonldContext (notifications link it)
        if "jsonldContext" in doc:
            return
        context = doc.get("@context")
        if context is None or isinstance(context, str):
            return
        if isinstance(context, list) and len(context) == 1 and isinstance(context[0], str):
            return
        doc["jsonldContext"] = await self.contexts.implicit(
            context, tenant=tenant, base_url=base_url
        )
        doc["implicitContext"] = True

    # ------------------------------------------------------------------ matching (§5.11)

    def _changed(self, tenant: str) -> None:
        self._compiled.pop(tenant, None)

    async def matcher(self, tenant: str) -> _TenantMatcher | None:
        """The tenant's compiled subscriptions, or None when it has none."""
        now = time.monotonic()
        if now - self._checked >= REFRESH_SECONDS:
            version = await self.subs.subscriptions_version()
            self._checked = now
            if version != self._version:
                self._version = version
                self._compiled.clear()
        matcher = self._compiled.get(tenant)
        if matcher is None:
            async with self._lock:
                matcher = self._compiled.get(tenant)
                if matcher is None:
                    matcher = await self._compile(tenant)
                    self._compiled[tenant] = matcher
        return matcher if matcher.subscriptions else None

    async def _compile(self, tenant: str) -> _TenantMatcher:
        compiled: list[CompiledSubscription] = []
        for stored in await self.subs.tenant_subscriptions(tenant):
            try:
                compiled.append(await self.compile(tenant, stored.doc))
            except SmartRegionError as exc:
                # a context that became unavailable must not block entity writes
                log.warning(
                    "subscription %s cannot be matched: %s", stored.doc.get("id"), exc.detail
                )
        return _TenantMatcher(tenant, compiled)

    async def compile(self, tenant: str, doc: Doc) -> CompiledSubscription:
        """A subscription compiled with the vocabulary its notifications are compacted with."""
        vocab_context = doc.get("@context")
        if "jsonldContext" in doc and not doc.get("implicitContext"):
            vocab_context = doc["jsonldContext"]
        vocab = await self.contexts.term_map(vocab_context, tenant=tenant)
        return compile_subscription(tenant, doc, vocab)


async def join_linked(
    subscriptions: SubscriptionService,
    store: Store,
    row: OutboxRow,
    readable: Readable | None = None,
) -> dict[str, Any]:
    """The notification body of a row whose subscription joins linked entities (§4.5.23)."""
    docs: list[Doc] = row.target.get("join") or []
    stored = await subscriptions.subs.get_subscription(row.tenant, row.subscription_id)
    if not docs or stored is None:
        return row.body
    sub = await subscriptions.compile(row.tenant, stored.doc)
    opts = notification_options(sub)
    if opts.join is None:
        return row.body

    def follow(doc: Doc, state: RenderOptions) -> list[tuple[str, RenderOptions]]:
        return [(uri, state.for_linked(iri)) for iri, uri in linked_targets(doc, state)]

    # only what the subscription's owner may read is joined (`NotificationFilter`)
    kept = {item.get("id") for item in row.body.get("data", [])}
    docs = [doc for doc in docs if doc.get("id") in kept]
    linked = await fetch_linked(
        store,
        row.tenant,
        [(doc, opts) for doc in docs],
        levels=opts.join_level,
        follow=follow,
        readable=readable,
    )
    context = row.body["data"][0].get("@context") if row.body.get("data") else None

    def finish(item: Doc) -> Doc:
        return {**item, "@context": context} if context is not None else item

    data: list[Doc] = list(row.body.get("data", []))
    if opts.join == "inline":
        rendered = {d["id"]: render_entity(d, sub.vocab, opts, linked.docs()) for d in docs}
        data = [
            finish(rendered[item["id"]]) if item.get("id") in rendered else item for item in data
        ]
    else:
        data += [finish(render_entity(d, sub.vocab, state)) for d, state in linked.found.values()]
    return {**row.body, "data": data}


class PeriodicSender:
    """Queues the notifications of timeInterval subscriptions (§5.8.1, §5.11: periodic).

    Each process keeps its own schedule in memory: with several API workers, each sends its own
    periodic notifications (a known gap until the schedule lives in storage).
    """

    def __init__(
        self,
        subscriptions: SubscriptionService,
        store: Store,
        readers: NotificationFilter | None = None,
    ) -> None:
        self.subscriptions = subscriptions
        self.store = store
        #: what each subscription's owner may read (None: no read enforcement)
        self.readers = readers
        self._last: dict[tuple[str, str], float] = {}

    async def run_due(self) -> int:
        """Queue a notification for every periodic subscription whose interval has passed."""
        now = time.monotonic()
        wall = datetime.now(UTC)
        rows: list[OutboxRow] = []
        seen: set[tuple[str, str]] = set()
        for tenant in await self.store.tenants():
            for stored in await self.subscriptions.subs.tenant_subscriptions(tenant):
                doc = stored.doc
                if "timeInterval" not in doc:
                    continue
                key = (tenant, str(doc["id"]))
                seen.add(key)
                last = self._last.get(key)
                if last is not None and now - last < float(doc["timeInterval"]):
                    continue
                try:
                    sub = await self.subscriptions.compile(tenant, doc)
                except SmartRegionError:
                    continue
                if not sub.active(wall):
                    continue
                self._last[key] = now
                entities = await self._matching(sub)
                if not entities:
                    continue
                changes = [(EntityChange(e, e), "timeInterval") for e in entities]
                data = notification_entities(sub, changes, now=format_datetime(wall))
                if data:
                    row = build_row(sub, data, "timeInterval")
                    # whose entities these are, as for change notifications: the notifier
                    # sends only what the subscription's owner may read, and drops a row that
                    # does not say (fail closed) — without this, no periodic row was ever sent
                    ids = [str(e["id"]) for e in entities]
                    owners = await self.store.owners_of(tenant, ids)
                    row.target["about"] = [
                        [e["id"], owners.get(str(e["id"]), ""), _types(e)] for e in entities
                    ]
                    rows.append(row)
        for key in set(self._last) - seen:
            del self._last[key]
        if rows:
            await self.subscriptions.subs.enqueue(rows)
        return len(rows)

    async def _matching(self, sub: CompiledSubscription) -> list[Doc]:
        selectors = sub.doc.get("entities") or [{}]
        found: dict[str, Doc] = {}
        # decided now, when the notification is made: only what the owner may read now
        readable = await self.readers.readable(sub.doc) if self.readers is not None else None
        for index, selector in enumerate(selectors):
            query = EntityQuery(
                ids=(selector["id"],) if "id" in selector else None,
                id_pattern=selector.get("idPattern"),
                types=sub.types[index] if "type" in selector else None,
                q=sub.q,
                geo=sub.geo,
                scope_q=sub.scope_q,
                limit=PERIODIC_LIMIT,
                readable=readable,
            )
            for doc in (await self.store.query(sub.tenant, narrowed_query(query))).docs:
                found.setdefault(doc["id"], doc)
        # what the owner sees of them (attribute classes, open views), the read audited
        return await Discloser(self.store).documents(sub.tenant, list(found.values()), readable)


class NotificationFilter:
    """Leaves out of a notification what the subscription's owner may not read, when sent.

    A subscription belongs to an organisation (docs/security.md); its notifications carry only
    the entities that organisation may read at the moment the notification is sent (or, for
    periodic ones, made): a grant given counts from the next notification on, a grant revoked
    or expired stops them. `readable_of(org)` is `Governance.readable_for` of a member of org.
    """

    def __init__(
        self, readable_of: Callable[[str], Awaitable[Readable | None]], unowned: str
    ) -> None:
        self.readable_of = readable_of
        #: the owner of subscriptions made before owners were recorded
        self.unowned = unowned

    async def readable(self, doc: Doc) -> Readable | None:
        """What the owner of a subscription (document or outbox target) may read now."""
        return await self.readable_of(subscription_owner(doc, self.unowned))

    async def body(self, row: OutboxRow, body: Doc, readable: Readable | None) -> Doc | None:
        """`body` without the entities the owner may not read; None when none is left.

        A row that does not say whose entities it is about (queued before owners were recorded)
        is sent only to a subscriber that reads everything (fail closed).
        """
        if readable is None:
            return body
        # [id, owner, types, scopes]; rows queued before scopes were recorded have no scopes,
        # so scoped data sets admit nothing of them (fail closed)
        about = {
            str(e[0]): (str(e[1]), e[2], e[3] if len(e) > 3 else None)
            for e in row.target.get("about", [])
        }
        data = [
            item
            for item in body.get("data", [])
            if (found := about.get(item.get("id"))) is not None and readable.admits(*found)
        ]
        disclosure = readable.disclosure
        if disclosure is not None and data:
            # the body was rendered when the change was committed, as stored: an entity the
            # owner may see only transformed (attribute classes, open views) is left out (fail
            # closed); reads of others' non-open data are audited
            audited: set[str] = set()
            shown = []
            for item in data:
                view = disclosure.view(*about[item["id"]])
                if view.privacy.transforms(view.access):
                    continue
                audited.update(view.audited)
                shown.append(item)
            if audited and disclosure.audit is not None:
                await disclosure.audit(sorted(audited), len(shown))
            data = shown
        return {**body, "data": data} if data else None


def _types(doc: Doc) -> list[str]:
    value = doc.get("type", [])
    return [value] if isinstance(value, str) else list(value)


def _scopes(doc: Doc) -> list[str]:
    value = doc.get("scope", [])
    return [value] if isinstance(value, str) else list(value)


#: the most entities one periodic notification carries
PERIODIC_LIMIT = 1000


def notification_context(doc: Doc) -> Any:
    """The @context a subscription's notifications carry (§5.11.2: jsonldContext or its own)."""
    if "jsonldContext" in doc:
        return doc["jsonldContext"]
    context = doc.get("@context")
    if isinstance(context, list) and len(context) == 1:
        context = context[0]
    return context if context is not None else CORE_CONTEXT_URL


@dataclass(slots=True)
class _TenantMatcher:
    """One tenant's subscriptions, compiled; builds outbox rows for committed changes."""

    tenant: str
    subscriptions: list[CompiledSubscription]
    #: subscription id -> monotonic time of the last notification queued (throttling)
    last_queued: dict[str, float] = field(default_factory=dict)

    def rows(
        self, changes: Sequence[EntityChange], owners: Callable[[str], str] | None = None
    ) -> list[OutboxRow]:
        """Outbox rows for the changes: one notification per subscription (§5.11).

        `owners` names each entity's owner: the row keeps the owner and types of every entity
        it is about, so that what the subscription's owner may not read is left out when the
        notification is sent (`NotificationFilter`)."""
        now = datetime.now(UTC)
        stamp = format_datetime(now)
        clock = time.monotonic()
        rows: list[OutboxRow] = []
        for sub in self.subscriptions:
            fired = [(c, reason) for c in changes if (reason := sub.fires(c, now)) is not None]
            if not fired:
                continue
            throttling = sub.doc.get("throttling")
            last = self.last_queued.get(sub.id)
            if throttling is not None and last is not None and clock - last < float(throttling):
                continue  # §5.2.12 throttling: at most one notification per period
            data = notification_entities(sub, fired, now=stamp)
            if not data:
                continue
            self.last_queued[sub.id] = clock
            row = build_row(sub, data, fired[0][1])
            if owners is not None:
                row.target["about"] = [
                    [c.entity["id"], owners(c.entity["id"]), _types(c.entity), _scopes(c.entity)]
                    for c, _ in fired
                ]
            if sub.doc["notification"].get("join") in ("flat", "inline"):
                # §4.5.23 in notifications: linked entities are read when the row is sent (the
                # write transaction cannot wait for reads); keep the documents to render then
                row.target["join"] = [c.new for c, _ in fired if c.new is not None]
            rows.append(row)
        return rows


def build_row(sub: CompiledSubscription, data: list[Doc], reason: str) -> OutboxRow:
    """The outbox row of one notification (§5.2.15), with its HTTP target."""
    endpoint = sub.doc["notification"]["endpoint"]
    accept = endpoint.get("accept", "application/json")
    context = notification_context(sub.doc)
    headers: dict[str, str] = {}
    if accept == "application/ld+json":
        data = [{**item, "@context": context} for item in data]
        content_type = "application/ld+json"
    else:
        content_type = "application/json"
        if isinstance(context, str):
            headers["Link"] = (
                f'<{context}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
            )
    headers["Content-Type"] = content_type
    if sub.tenant:
        headers["NGSILD-Tenant"] = sub.tenant
    for pair in endpoint.get("receiverInfo", []):
        headers[pair["key"]] = pair["value"]
    body: Doc = {
        "id": f"urn:ngsi-ld:Notification:{uuid.uuid4()}",
        "type": "Notification",
        "subscriptionId": sub.id,
        "data": data,
        "triggerReason": reason,
    }
    target: Doc = {"uri": endpoint["uri"], "headers": headers}
    if isinstance(sub.doc.get(OWNER), str):
        target[OWNER] = sub.doc[OWNER]
    if "notifierInfo" in endpoint:
        target["notifierInfo"] = endpoint["notifierInfo"]
    if "timeout" in endpoint:
        target["timeout"] = endpoint["timeout"]
    return OutboxRow(
        id=uuid.uuid4().hex,
        tenant=sub.tenant,
        subscription_id=sub.id,
        body=body,
        target=target,
        due_at=0.0,
    )


def changes_of(current: dict[str, Doc | None], ops: Sequence[WriteOp]) -> list[EntityChange]:
    """What a transaction does to each entity, from the locked documents and its ops."""
    final: dict[str, Doc | None] = {}
    for op in ops:
        if isinstance(op, Put):
            final[op.doc["id"]] = op.doc
        elif isinstance(op, Delete):
            final[op.entity_id] = None
    return [EntityChange(current.get(eid), new) for eid, new in final.items()]


def _without_steps(ops: list[Any]) -> tuple[list[Any], list[EntityChange] | None]:
    """A transaction's ops without its `ChangeSteps` (for the notifications), and those steps."""
    if not any(isinstance(op, ChangeSteps) for op in ops):
        return ops, None
    steps = [c for op in ops if isinstance(op, ChangeSteps) for c in op.changes]
    return [op for op in ops if not isinstance(op, ChangeSteps)], steps


class NotifyingStore(Store):
    """A `Store` whose entity writes queue the notifications they cause (see the module doc)."""

    def __init__(
        self, inner: Store, subscriptions: SubscriptionService, *, record_history: bool = True
    ) -> None:
        self.inner = inner
        self.subscriptions = subscriptions
        self.backend = inner.backend
        #: whether the backend writes `Notify` ops in the entity transaction
        self.in_transaction = bool(getattr(inner, "supports_notify", False))
        #: whether the backend keeps attribute history (`RecordInstances` ops)
        self.records_history = record_history and bool(getattr(inner, "supports_history", False))
        #: entity writes may carry `ChangeSteps` (each entry of a batch notifies on its own)
        self.notifies_steps = True

    async def transact(
        self,
        tenant: str,
        entity_ids: Sequence[str],
        mutate: Callable[[dict[str, Doc | None]], tuple[list[WriteOp], T]],
        *,
        owner: str,
        check_owners: OwnersCheck | None = None,
    ) -> T:
        """`Store.transact`, with the notifications of the write queued (§5.11) and its
        attribute instances recorded in history (broker/history.py), both in the transaction."""
        matcher = await self.subscriptions.matcher(tenant)
        if matcher is None and not self.records_history:

            def plain(current: dict[str, Doc | None]) -> tuple[list[WriteOp], T]:
                ops, result = mutate(current)
                return _without_steps(ops)[0], result

            return await self.inner.transact(
                tenant, entity_ids, plain, owner=owner, check_owners=check_owners
            )
        queued: list[OutboxRow] = []
        owners_of: dict[str, str] = {}
        check = check_owners
        if matcher is not None:

            def check(found: Mapping[str, str]) -> None:
                owners_of.update(found)  # whose entities the notifications will be about
                if check_owners is not None:
                    check_owners(found)

        def observed(current: dict[str, Doc | None]) -> tuple[list[WriteOp], T]:
            written, result = mutate(current)
            ops, steps = _without_steps(written)
            changes = changes_of(current, ops)
            extra: list[Any] = []
            # a write that records its own instances (the temporal API) is left alone
            if self.records_history and not any(isinstance(op, RecordInstances) for op in ops):
                rows = instance_rows(changes, utc_now())
                if rows:
                    extra.append(RecordInstances(tuple(rows)))
            if matcher is not None:

                def whose(eid: str) -> str:
                    return owners_of.get(eid, owner)

                if steps is None:
                    queued[:] = matcher.rows(changes, whose)
                else:  # each entry of a batch naming an entity twice notifies on its own
                    queued[:] = [
                        row for part in change_rounds(steps) for row in matcher.rows(part, whose)
                    ]
                if queued and self.in_transaction:
                    extra.append(Notify(tuple(queued)))
            return ([*ops, *extra] if extra else ops), result

        result = await self.inner.transact(
            tenant, entity_ids, observed, owner=owner, check_owners=check
        )
        if queued:
            if not self.in_transaction:
                await self.subscriptions.subs.enqueue(list(queued))
            self.subscriptions.queued.set()
        return result

    async def delete_where(self, tenant: str, query: EntityQuery) -> int:
        """Purge (§5.6.21), as a transaction of deletions when subscriptions may care."""
        if await self.subscriptions.matcher(tenant) is None:
            return await self.inner.delete_where(tenant, query)
        found = await self.inner.query(
            tenant, replace(query, limit=PURGE_NOTIFY_LIMIT, offset=0, count=False)
        )
        ids = [doc["id"] for doc in found.docs]
        if len(ids) >= PURGE_NOTIFY_LIMIT:
            return await self.inner.delete_where(tenant, query)

        def purge(current: dict[str, Doc | None]) -> tuple[list[WriteOp], int]:
            gone: list[WriteOp] = [Delete(eid) for eid in ids if current.get(eid) is not None]
            return gone, len(gone)

        return await self.transact(tenant, ids, purge, owner="")

    # -- plain delegation ------------------------------------------------------------------
    async def change_feed(self, after: int, *, limit: int = 500) -> list[FeedEntry]:
        """Delegated."""
        return await self.inner.change_feed(after, limit=limit)

    async def change_feed_head(self) -> int:
        """Delegated."""
        return await self.inner.change_feed_head()

    async def prune_change_feed(self, before: float) -> int:
        """Delegated."""
        return await self.inner.prune_change_feed(before)

    async def open(self) -> None:
        """Open the wrapped store."""
        await self.inner.open()

    async def close(self) -> None:
        """Close the wrapped store."""
        await self.inner.close()

    async def migrate(self) -> list[str]:
        """Migrate the wrapped store."""
        return await self.inner.migrate()

    async def get_entity(self, tenant: str, entity_id: str) -> dict[str, Any] | None:
        """Delegated."""
        return await self.inner.get_entity(tenant, entity_id)

    async def get_entities(self, tenant: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Delegated."""
        return await self.inner.get_entities(tenant, ids)

    async def owners_of(self, tenant: str, ids: Sequence[str]) -> dict[str, str]:
        """Delegated."""
        return await self.inner.owners_of(tenant, ids)

    async def query(self, tenant: str, query: EntityQuery) -> QueryResult:
        """Delegated."""
        return await self.inner.query(tenant, query)

    async def tenant_exists(self, tenant: str) -> bool:
        """Delegated."""
        return await self.inner.tenant_exists(tenant)

    async def tenants(self) -> list[str]:
        """Delegated."""
        return await self.inner.tenants()

    async def entity_types(self, tenant: str, readable: Readable | None = None) -> list[TypeInfo]:
        """Delegated."""
        return await self.inner.entity_types(tenant, readable)

    async def attribute_infos(
        self, tenant: str, readable: Readable | None = None
    ) -> list[AttrInfo]:
        """Delegated."""
        return await self.inner.attribute_infos(tenant, readable)

    async def put_context(self, context_id: str, document: Any, *, kind: str = "hosted") -> None:
        """Delegated."""
        await self.inner.put_context(context_id, document, kind=kind)

    async def get_context(self, context_id: str) -> StoredContext | None:
        """Delegated."""
        return await self.inner.get_context(context_id)

    async def delete_context(self, context_id: str) -> bool:
        """Delegated."""
        return await self.inner.delete_context(context_id)

    async def list_contexts(self) -> list[StoredContext]:
        """Delegated."""
        return await self.inner.list_contexts()

    async def health(self) -> None:
        """Delegated."""
        await self.inner.health()

    def __getattr__(self, name: str) -> Any:
        # methods the Store interface gains later reach the wrapped store unchanged
        return getattr(self.inner, name)
