"""NGSI-LD subscriptions, pure: parse and validate, render, and match entity changes.

ETSI GS CIM 009 V1.8 §5.2.12 (Subscription), §5.2.14 (NotificationParams), §5.2.15
(Notification), §5.8 (subscribe operations) and §5.11 (notification behaviour).

The *internal subscription document* is a JSON-serialisable dict shaped like the NGSI-LD
Subscription, with every name (entity types, watched and notified attributes, the geoQ
geoproperty) expanded to its IRI, like the internal entity document. `q` and `scopeQ` are kept
as text; `@context` keeps the context they were written in, so they can be parsed again
(`compile_subscription`). Delivery counters (timesSent, …) are not part of the document: they
change with every notification and live beside it in storage (`DeliveryState`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from smartregion.core.entities import Vocabulary, is_uri
from smartregion.core.geo import GeoQuery, geo_matches, parse_geo_query
from smartregion.core.projection import Projection, parse_omit, parse_pick
from smartregion.core.qlang import QExpr, matches, parse_q
from smartregion.core.rendering import RenderOptions, render_entity
from smartregion.core.scopes import ScopeExpr, parse_scope_q, scope_matches
from smartregion.core.times import format_datetime, parse_datetime
from smartregion.errors import BadRequestData

__all__ = [
    "DEFAULT_TRIGGERS",
    "ENTITY_TRIGGERS",
    "TRIGGERS",
    "CompiledSubscription",
    "DeliveryState",
    "EntityChange",
    "compile_subscription",
    "merge_subscription",
    "new_subscription_id",
    "notification_entities",
    "parse_subscription",
    "render_subscription",
    "status_of",
    "triggers_of",
]

ENTITY_TRIGGERS = ("entityCreated", "entityUpdated", "entityDeleted")
ATTRIBUTE_TRIGGERS = ("attributeCreated", "attributeUpdated", "attributeDeleted")
TRIGGERS = ENTITY_TRIGGERS + ATTRIBUTE_TRIGGERS
#: NGSI-LD 1.8 §5.2.12: without notificationTrigger a subscription fires on attribute creation and
#: update (the ETSI suite's expectations show exactly these two)
DEFAULT_TRIGGERS = ("attributeCreated", "attributeUpdated")
#: §5.2.14 NotificationParams.format ("simplified" is the 1.8 alias of keyValues)
FORMATS = ("normalized", "concise", "keyValues", "simplified")
#: §5.2.15 / §6.3.6: the media types a notification can be sent as
ACCEPTS = ("application/json", "application/ld+json", "application/geo+json")
SCHEMES = ("http", "https", "mqtt", "mqtts")
SUBSCRIPTION_PREFIX = "urn:ngsi-ld:Subscription:"
# members the broker sets; a client sending them is ignored (§5.2.12: "provided by the system")
_READ_ONLY = frozenset({"status", "createdAt", "modifiedAt"})
_NOTIFICATION_READ_ONLY = frozenset(
    {"status", "timesSent", "timesFailed", "lastNotification", "lastSuccess", "lastFailure"}
)
_MANDATORY = ("type", "notification")

Doc = dict[str, Any]


def new_subscription_id() -> str:
    """A fresh subscription id (§5.8.1: generated when the payload has none)."""
    return SUBSCRIPTION_PREFIX + str(uuid.uuid4())


# ------------------------------------------------------------------------------------ parsing


def _bad(detail: str) -> BadRequestData:
    return BadRequestData(detail, title="Invalid subscription")


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or any(c in value for c in "<>\"'=;()"):
        raise _bad(f"{what} must be a valid name, got {value!r}")
    return value


def _names(value: Any, what: str, vocab: Vocabulary) -> list[str]:
    if not isinstance(value, list) or not value:
        raise _bad(f"{what} must be a non-empty array of names")
    return [vocab.expand_term(_name(v, what)) for v in value]


def _positive(value: Any, what: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise _bad(f"{what} must be a number greater than 0, got {value!r}")
    return value


def _bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise _bad(f"{what} must be true or false, got {value!r}")
    return value


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise _bad(f"{what} must be a string, got {value!r}")
    return value


def _entities(value: Any, vocab: Vocabulary) -> list[Doc]:
    # §5.2.33 EntitySelector: type is mandatory, id and idPattern optional
    if not isinstance(value, list) or not value:
        raise _bad("entities must be a non-empty array of entity selectors")
    out: list[Doc] = []
    for item in value:
        if not isinstance(item, dict):
            raise _bad("each entity selector must be a JSON object")
        unknown = set(item) - {"id", "idPattern", "type"}
        if unknown:
            raise _bad(f"unknown member(s) in an entity selector: {', '.join(sorted(unknown))}")
        if "type" not in item:
            raise _bad("each entity selector needs a type")
        selector: Doc = {}
        if "id" in item:
            if not isinstance(item["id"], str) or not is_uri(item["id"]):
                raise _bad(f"entity selector id {item['id']!r} is not a URI")
            selector["id"] = item["id"]
        if "idPattern" in item:
            pattern = _string(item["idPattern"], "idPattern")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise _bad(f"idPattern {pattern!r} is not a valid regular expression: {exc}") from None
            selector["idPattern"] = pattern
        selector["type"] = vocab.expand_term(_name(item["type"], "entity selector type"))
        out.append(selector)
    return out


def _triggers(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise _bad("notificationTrigger must be a non-empty array")
    for item in value:
        if item not in TRIGGERS:
            raise _bad(f"notificationTrigger {item!r} is not one of {', '.join(TRIGGERS)}")
    return list(dict.fromkeys(value))


def _geo_q(value: Any, vocab: Vocabulary) -> Doc:
    if not isinstance(value, dict):
        raise _bad("geoQ must be a JSON object")
    for member in ("georel", "geometry", "coordinates"):
        if member not in value:
            raise _bad(f"geoQ needs {member}")
    coordinates = value["coordinates"]
    if isinstance(coordinates, str):
        coordinates_arg: Any = coordinates
    elif isinstance(coordinates, list):
        coordinates_arg = coordinates
    else:
        raise _bad("geoQ coordinates must be an array (or its JSON text)")
    geoproperty = value.get("geoproperty")
    if geoproperty is not None:
        _name(geoproperty, "geoQ geoproperty")
    # validates georel, geometry and coordinates (§4.10)
    parse_geo_query(
        _string(value["georel"], "georel"),
        _string(value["geometry"], "geometry"),
        coordinates_arg,
        geoproperty,
        vocab.expand_term,
    )
    out: Doc = {
        "geometry": value["geometry"],
        "coordinates": coordinates,
        "georel": value["georel"],
    }
    if geoproperty is not None:
        out["geoproperty"] = vocab.expand_term(geoproperty)
    return out


def _key_values(value: Any, what: str) -> list[Doc]:
    # §5.2.22 KeyValuePair
    if not isinstance(value, list):
        raise _bad(f"{what} must be an array of key-value pairs")
    for item in value:
        if (
            not isinstance(item, dict)
            or set(item) != {"key", "value"}
            or not isinstance(item["key"], str)
            or not isinstance(item["value"], str)
            or not item["key"]
        ):
            raise _bad(f"each {what} entry must be {{\"key\": string, \"value\": string}}")
    return [dict(item) for item in value]


def _endpoint(value: Any) -> Doc:
    # §5.2.15 Endpoint
    if not isinstance(value, dict):
        raise _bad("notification.endpoint must be a JSON object")
    uri = value.get("uri")
    if not isinstance(uri, str) or not is_uri(uri):
        raise _bad(f"notification.endpoint.uri must be a URI, got {uri!r}")
    scheme = uri.split(":", 1)[0].lower()
    if scheme not in SCHEMES or "://" not in uri or not uri.split("://", 1)[1].split("/")[0]:
        raise _bad(f"notification.endpoint.uri {uri!r} must be an http, https, mqtt or mqtts URL")
    out: Doc = {"uri": uri}
    if "accept" in value:
        if value["accept"] not in ACCEPTS:
            raise _bad(f"notification.endpoint.accept must be one of {', '.join(ACCEPTS)}")
        out["accept"] = value["accept"]
    if "timeout" in value:
        out["timeout"] = _positive(value["timeout"], "notification.endpoint.timeout")
    if "cooldown" in value:
        out["cooldown"] = _positive(value["cooldown"], "notification.endpoint.cooldown")
    for member in ("receiverInfo", "notifierInfo"):
        if member in value:
            out[member] = _key_values(value[member], f"notification.endpoint.{member}")
    return out


def _projection_list(value: Any, what: str) -> Projection:
    if isinstance(value, str):
        text = value
    elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        text = ",".join(value)
    else:
        raise _bad(f"notification.{what} must be a non-empty array of member names")
    return parse_pick(text) if what == "pick" else parse_omit(text)


def _notification(value: Any, vocab: Vocabulary) -> Doc:
    if not isinstance(value, dict):
        raise _bad("notification must be a JSON object")
    if "endpoint" not in value or value["endpoint"] is None:
        raise _bad("notification.endpoint is mandatory")
    out: Doc = {}
    if "attributes" in value:
        out["attributes"] = _names(value["attributes"], "notification.attributes", vocab)
    if "format" in value:
        if value["format"] not in FORMATS:
            raise _bad(f"notification.format must be one of {', '.join(FORMATS)}")
        out["format"] = value["format"]
    for member in ("sysAttrs", "showChanges"):
        if member in value:
            out[member] = _bool(value[member], f"notification.{member}")
    # §4.21 / §5.2.14 (1.8): pick and omit, exclusive with attributes
    projections: list[Projection] = []
    for member in ("pick", "omit"):
        if member in value:
            if "attributes" in value:
                raise _bad(f"notification.{member} cannot be combined with notification.attributes")
            projections.append(_projection_list(value[member], member))
            out[member] = list(value[member]) if isinstance(value[member], list) else value[member].split(",")
    if len(projections) == 2:
        projections[0].merge(projections[1])  # BadRequestData when a member is in both
    if "join" in value:
        if value["join"] not in ("flat", "inline", "@none"):
            raise _bad("notification.join must be one of flat, inline, @none")
        out["join"] = value["join"]
    if "joinLevel" in value:
        level = value["joinLevel"]
        if isinstance(level, bool) or not isinstance(level, int) or level < 1:
            raise _bad("notification.joinLevel must be a positive integer")
        out["joinLevel"] = level
    out["endpoint"] = _endpoint(value["endpoint"])
    return out


def _expires_at(value: Any, now: datetime) -> str:
    when = parse_datetime(_string(value, "expiresAt"), what="expiresAt")
    if when <= now:
        # §5.8.1/§5.8.2: a subscription cannot be created or updated to expire in the past
        raise _bad(f"expiresAt {value!r} is not in the future")
    return format_datetime(when)


def _member(name: str, value: Any, vocab: Vocabulary, now: datetime) -> Any:
    """Parse one top-level member; returns its internal value."""
    if name == "type":
        if value != "Subscription":
            raise _bad(f'type must be "Subscription", got {value!r}')
        return value
    if name in ("subscriptionName", "description", "csf", "lang"):
        return _string(value, name)
    if name == "entities":
        return _entities(value, vocab)
    if name == "watchedAttributes":
        return _names(value, name, vocab)
    if name == "notificationTrigger":
        return _triggers(value)
    if name in ("timeInterval", "throttling"):
        return _positive(value, name)
    if name == "q":
        parse_q(_string(value, "q"), vocab.expand_term)
        return value
    if name == "scopeQ":
        parse_scope_q(_string(value, "scopeQ"))
        return value
    if name == "geoQ":
        return _geo_q(value, vocab)
    if name == "isActive":
        return _bool(value, name)
    if name == "expiresAt":
        return _expires_at(value, now)
    if name == "notification":
        return _notification(value, vocab)
    if name == "datasetId":
        items = value if isinstance(value, list) else [value]
        for item in items:
            if not isinstance(item, str) or not (item == "@none" or is_uri(item)):
                raise _bad(f"datasetId {item!r} is not a URI")
        return list(items)
    if name == "jsonldContext":
        if not isinstance(value, str) or not is_uri(value) or "://" not in value:
            raise _bad(f"jsonldContext must be the URL of a JSON-LD @context, got {value!r}")
        return value
    if name == "temporalQ":
        if not isinstance(value, dict):
            raise _bad("temporalQ must be a JSON object")
        return value
    return _UNKNOWN


_UNKNOWN: Any = object()


def parse_subscription(
    payload: Any, vocab: Vocabulary, *, context: Any, now: datetime | None = None
) -> Doc:
    """Validate a Subscription payload (§5.2.12, §5.8.1) into an internal document."""
    now = now or datetime.now(UTC)
    if not isinstance(payload, dict):
        raise _bad("a subscription must be a JSON object")
    if not payload:
        raise _bad("the subscription is empty")
    doc: Doc = {}
    if "id" in payload:
        sub_id = payload["id"]
        if not isinstance(sub_id, str) or not is_uri(sub_id):
            raise _bad(f"subscription id {sub_id!r} is not a URI")
        doc["id"] = sub_id
    for member in _MANDATORY:
        if member not in payload:
            raise _bad(f"{member} is mandatory in a subscription")
    for name, value in payload.items():
        if name in ("id", "@context") or name in _READ_ONLY:
            continue
        if value is None:
            raise _bad(f"{name} cannot be null")
        parsed = _member(name, value, vocab, now)
        if parsed is not _UNKNOWN:
            doc[name] = parsed
    if context is not None:
        doc["@context"] = context
    check_subscription(doc)
    return doc


def merge_subscription(
    stored: Doc, fragment: Any, vocab: Vocabulary, *, context: Any, now: datetime | None = None
) -> Doc:
    """Apply a PATCH fragment (§5.8.2): each member given replaces the stored one, null removes it."""
    now = now or datetime.now(UTC)
    if not isinstance(fragment, dict):
        raise _bad("a subscription fragment must be a JSON object")
    if not fragment:
        raise _bad("the subscription fragment is empty")
    if "id" in fragment and fragment["id"] != stored["id"]:
        raise _bad("the subscription id cannot be changed")
    doc = dict(stored)
    for name, value in fragment.items():
        if name in ("id", "@context") or name in _READ_ONLY:
            continue
        if value is None:
            if name in _MANDATORY:
                raise _bad(f"{name} is mandatory and cannot be removed")
            doc.pop(name, None)
            continue
        parsed = _member(name, value, vocab, now)
        if parsed is not _UNKNOWN:
            doc[name] = parsed
    if context is not None:
        doc["@context"] = context
    check_subscription(doc)
    return doc


def check_subscription(doc: Doc) -> None:
    """The constraints between members (§5.2.12)."""
    if "entities" not in doc and "watchedAttributes" not in doc and "timeInterval" not in doc:
        raise _bad("a subscription needs entities or watchedAttributes")
    if "timeInterval" in doc and "throttling" in doc:
        raise _bad("timeInterval and throttling cannot be combined")
    if "timeInterval" in doc and "watchedAttributes" in doc:
        raise _bad("timeInterval and watchedAttributes cannot be combined")


# ------------------------------------------------------------------------------------- status


@dataclass(slots=True)
class DeliveryState:
    """What the notifier records about a subscription's notifications (§5.2.14)."""

    times_sent: int = 0
    times_failed: int = 0
    last_notification: str | None = None
    last_success: str | None = None
    last_failure: str | None = None

    def as_members(self) -> Doc:
        """The NotificationParams status members that have a value."""
        out: Doc = {}
        if self.times_sent:
            out["timesSent"] = self.times_sent
        if self.times_failed:
            out["timesFailed"] = self.times_failed
        if self.last_notification:
            out["lastNotification"] = self.last_notification
        if self.last_success:
            out["lastSuccess"] = self.last_success
        if self.last_failure:
            out["lastFailure"] = self.last_failure
        if self.last_notification:
            failed = self.last_failure is not None and (
                self.last_success is None or self.last_failure >= self.last_success
            )
            out["status"] = "failed" if failed else "ok"
        return out


def status_of(doc: Doc, now: datetime | None = None) -> str:
    """active | paused | expired (§5.2.12 status)."""
    expires = doc.get("expiresAt")
    if expires is not None and parse_datetime(expires) <= (now or datetime.now(UTC)):
        return "expired"
    return "active" if doc.get("isActive", True) else "paused"


# ---------------------------------------------------------------------------------- rendering


def render_subscription(
    doc: Doc, vocab: Vocabulary, state: DeliveryState | None = None, *, now: datetime | None = None,
    sys_attrs: bool = False,
) -> Doc:
    """The Subscription as returned by retrieve/query (§5.8.3), names compacted with `vocab`."""
    out: Doc = {"id": doc["id"], "type": "Subscription"}
    for name, value in doc.items():
        if name in ("id", "type", "@context", "createdAt", "modifiedAt"):
            continue
        if name == "entities":
            out[name] = [
                {**sel, "type": vocab.compact_iri(sel["type"])} for sel in value
            ]
        elif name == "watchedAttributes":
            out[name] = [vocab.compact_iri(a) for a in value]
        elif name == "geoQ":
            geo = dict(value)
            if "geoproperty" in geo:
                geo["geoproperty"] = vocab.compact_iri(geo["geoproperty"])
            out[name] = geo
        elif name == "notification":
            notification = dict(value)
            if "attributes" in notification:
                notification["attributes"] = [vocab.compact_iri(a) for a in notification["attributes"]]
            if state is not None:
                notification.update(state.as_members())
            out[name] = notification
        else:
            out[name] = value
    out.setdefault("notificationTrigger", list(DEFAULT_TRIGGERS))
    out["status"] = status_of(doc, now)
    if sys_attrs:
        for name in ("createdAt", "modifiedAt"):
            if name in doc:
                out[name] = doc[name]
    return out


# ----------------------------------------------------------------------------------- matching


@dataclass(frozen=True, slots=True)
class EntityChange:
    """One entity's state before and after a committed write (None: absent)."""

    old: Doc | None
    new: Doc | None

    @property
    def entity(self) -> Doc:
        """The document the notification is about (the old one for a deletion)."""
        doc = self.new if self.new is not None else self.old
        assert doc is not None
        return doc


def triggers_of(change: EntityChange) -> dict[str, set[str]]:
    """Which triggers the change fires, each with the attribute IRIs concerned (§5.11)."""
    old, new = change.old, change.new
    if old is None and new is None:
        return {}
    if old is None:
        assert new is not None
        attrs = set(new.get("attrs", {}))
        return {"entityCreated": attrs, "attributeCreated": attrs} if attrs else {"entityCreated": set()}
    if new is None:
        return {"entityDeleted": set(old.get("attrs", {}))}
    before: Mapping[str, Any] = old.get("attrs", {})
    after: Mapping[str, Any] = new.get("attrs", {})
    created = {a for a in after if a not in before}
    deleted = {a for a in before if a not in after}
    updated = {a for a in after if a in before and after[a] != before[a]}
    fired: dict[str, set[str]] = {}
    if created:
        fired["attributeCreated"] = created
    if updated:
        fired["attributeUpdated"] = updated
    if deleted:
        fired["attributeDeleted"] = deleted
    other = any(old.get(k) != new.get(k) for k in ("type", "scope"))
    if fired or other:
        fired["entityUpdated"] = created | updated | deleted
    return fired


@dataclass(slots=True)
class CompiledSubscription:
    """A subscription ready to match: its document with q, geoQ and scopeQ parsed."""

    tenant: str
    doc: Doc
    vocab: Vocabulary
    q: QExpr | None = None
    geo: GeoQuery | None = None
    scope_q: ScopeExpr | None = None
    patterns: list[re.Pattern[str] | None] = field(default_factory=list)

    @property
    def id(self) -> str:
        """The subscription id."""
        return str(self.doc["id"])

    @property
    def triggers(self) -> tuple[str, ...]:
        """The triggers it listens to."""
        return tuple(self.doc.get("notificationTrigger", DEFAULT_TRIGGERS))

    def active(self, now: datetime) -> bool:
        """Whether it notifies now (isActive and not expired)."""
        return status_of(self.doc, now) == "active"

    def selects(self, entity: Doc) -> bool:
        """Whether the entity matches the entities selectors, q, geoQ and scopeQ."""
        selectors = self.doc.get("entities")
        if selectors:
            types = entity.get("type", [])
            if not any(
                sel["type"] in types
                and ("id" not in sel or sel["id"] == entity["id"])
                and (pattern is None or pattern.search(entity["id"]) is not None)
                for sel, pattern in zip(selectors, self.patterns, strict=True)
            ):
                return False
        if self.q is not None and not matches(self.q, entity):
            return False
        if self.geo is not None and not geo_matches(self.geo, entity):
            return False
        return self.scope_q is None or scope_matches(self.scope_q, entity.get("scope"))

    def fires(self, change: EntityChange, now: datetime) -> str | None:
        """The trigger reason when the change is to be notified, else None (§5.11)."""
        if "timeInterval" in self.doc or not self.active(now):
            return None
        fired = triggers_of(change)
        watched = self.doc.get("watchedAttributes")
        for trigger in self.triggers:
            if trigger not in fired:
                continue
            if watched is not None and not set(watched) & fired[trigger]:
                continue
            if self.selects(change.entity):
                return trigger
        return None


def compile_subscription(tenant: str, doc: Doc, vocab: Vocabulary) -> CompiledSubscription:
    """Parse the textual members of a stored subscription with its own @context's vocabulary."""
    geo = None
    if "geoQ" in doc:
        g = doc["geoQ"]
        geo = parse_geo_query(g["georel"], g["geometry"], g["coordinates"], g.get("geoproperty"))
    return CompiledSubscription(
        tenant=tenant,
        doc=doc,
        vocab=vocab,
        q=parse_q(doc["q"], vocab.expand_term) if "q" in doc else None,
        geo=geo,
        scope_q=parse_scope_q(doc["scopeQ"]) if "scopeQ" in doc else None,
        patterns=[
            re.compile(sel["idPattern"]) if "idPattern" in sel else None
            for sel in doc.get("entities", [])
        ],
    )


def notification_entities(
    sub: CompiledSubscription, changes: Iterable[tuple[EntityChange, str]], *, now: str
) -> list[Doc]:
    """The `data` of a notification: each entity rendered as the subscription asks (§5.11.2)."""
    notification = sub.doc["notification"]
    attrs = notification.get("attributes")
    projection: Projection | None = None
    if "pick" in notification:
        projection = parse_pick(",".join(notification["pick"]))
    if "omit" in notification:
        omitted = parse_omit(",".join(notification["omit"]))
        projection = projection.merge(omitted) if projection is not None else omitted
    datasets = sub.doc.get("datasetId")
    opts = RenderOptions(
        format="keyValues" if notification.get("format") == "simplified" else notification.get("format", "normalized"),
        sys_attrs=bool(notification.get("sysAttrs")),
        attrs=frozenset(attrs) if attrs is not None else None,
        projection=projection.expand(sub.vocab.expand_term) if projection is not None else None,
        lang=sub.doc.get("lang"),
        dataset_id=",".join(datasets) if datasets else None,
    )
    data: list[Doc] = []
    for change, trigger in changes:
        entity = change.entity
        if change.new is None:
            entity = _deleted_view(entity, now)
        elif trigger == "attributeDeleted" and change.old is not None:
            entity = _with_deleted_attributes(change.old, entity, now)
        body = render_entity(entity, sub.vocab, opts)
        if change.new is None and "deletedAt" not in body and (opts.projection is None or opts.projection.keeps("deletedAt")):
            body["deletedAt"] = now
        if body:
            data.append(body)
    return data


_NULL = "urn:ngsi-ld:null"
_NULL_MEMBERS = {
    "Property": "value", "GeoProperty": "value", "Relationship": "object",
    "LanguageProperty": "languageMap", "JsonProperty": "json", "VocabProperty": "vocab",
    "ListProperty": "valueList", "ListRelationship": "objectList",
}


def _nulled(instance: Doc, now: str) -> Doc:
    """An attribute instance as notified after its deletion (§5.11: the value is NGSI-LD Null)."""
    kind = instance.get("type", "Property")
    member = _NULL_MEMBERS.get(kind, "value")
    out = {k: v for k, v in instance.items() if k not in _NULL_MEMBERS.values() and ":" not in k}
    out.pop("observedAt", None)
    out.pop("unitCode", None)
    out[member] = {"@none": _NULL} if kind == "LanguageProperty" else _NULL
    out["deletedAt"] = now
    return out


def _deleted_view(old: Doc, now: str) -> Doc:
    """A deleted entity as notified: its attributes nulled, with deletedAt (§5.11, 1.8)."""
    attrs = {name: [_nulled(i, now) for i in insts] for name, insts in old.get("attrs", {}).items()}
    return {**old, "attrs": attrs, "deletedAt": now}


def _with_deleted_attributes(old: Doc, new: Doc, now: str) -> Doc:
    """The entity after an attribute deletion, the deleted instances shown with NGSI-LD Null."""
    attrs = {k: list(v) for k, v in new.get("attrs", {}).items()}
    for name, insts in old.get("attrs", {}).items():
        kept = attrs.get(name, [])
        datasets = {i.get("datasetId") for i in kept}
        gone = [_nulled(i, now) for i in insts if i.get("datasetId") not in datasets]
        if gone:
            attrs[name] = kept + gone
    return {**new, "attrs": attrs}
