"""NGSI-LD subscriptions, pure: parse and validate, render, and match entity changes.

ETSI GS CIM 009 V1.8 §5.2.12 (Subscription), §5.2.14 (NotificationParams), §5.2.15
(Notification), §5.8 (subscribe operations) and §5.11 (notification behaviour).

The *internal subscription document* is a JSON-serialisable dict shaped like the NGSI-LD
Subscription, with every name (entity types, watched and notified attributes, the geoQ
geoproperty) expanded to its IRI, like the internal entity document. `q` and `scopeQ` are kept
as text; `@context` keeps the context they were written in, so they can be parsed again
(`compile_subscription`). `jsonldContext` is the client's, or, with `implicitContext: true`,
the URL of the ImplicitlyCreated context the broker made for a compound @context (§5.13.2).
Delivery counters (timesSent, …) are not part of the document: they
change with every notification and live beside it in storage (`DeliveryState`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from smartregion.core.entities import Vocabulary, is_uri
from smartregion.core.geo import GeoQuery, geo_matches, parse_geo_query
from smartregion.core.projection import Projection, parse_omit, parse_pick
from smartregion.core.qlang import QExpr, matches, parse_q
from smartregion.core.rendering import RenderOptions, render_entity
from smartregion.core.scopes import ScopeExpr, parse_scope_q, scope_matches
from smartregion.core.times import format_datetime, parse_datetime
from smartregion.core.typeexpr import (
    TypeExpr,
    TypeName,
    TypeOr,
    parse_type_ast,
    to_dnf,
    type_matches,
)
from smartregion.errors import BadRequestData

__all__ = [
    "DEFAULT_TRIGGERS",
    "ENTITY_TRIGGERS",
    "TRIGGERS",
    "ChangeSteps",
    "CompiledSubscription",
    "DeliveryState",
    "EntityChange",
    "change_rounds",
    "compile_subscription",
    "merge_subscription",
    "new_subscription_id",
    "notification_entities",
    "notification_options",
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
                raise _bad(
                    f"idPattern {pattern!r} is not a valid regular expression: {exc}"
                ) from None
            selector["idPattern"] = pattern
        if not isinstance(item["type"], str) or not item["type"].strip():
            raise _bad(
                f"entity selector type must be a type name or expression, got {item['type']!r}"
            )
        # NGSI-LD 1.8 §4.17: the selector's type may be a type expression, e.g. (Building|Tower)
        selector["type"] = type_selection(parse_type_ast(item["type"], vocab.expand_term), str)
        out.append(selector)
    return out


def type_selection(expr: TypeExpr, name: Callable[[str], str]) -> str:
    """Write a type expression back as text, each type name passed through `name`."""
    if isinstance(expr, TypeName):
        return name(expr.name)
    if isinstance(expr, TypeOr):
        return "|".join(type_selection(o, name) for o in expr.operands)
    return ";".join(
        f"({type_selection(o, name)})" if isinstance(o, TypeOr) else type_selection(o, name)
        for o in expr.operands
    )


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
            raise _bad(f'each {what} entry must be {{"key": string, "value": string}}')
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
            out[member] = (
                list(value[member]) if isinstance(value[member], list) else value[member].split(",")
            )
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


def _query_text(text: str) -> str:
    # clients copy q from URLs, percent-encoding included (the ETSI suite's 046_05 sends
    # name=="Eiffel%20Tower"); a q in a JSON body is decoded like the GET parameter would be
    return unquote(text) if "%" in text else text


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
        parse_q(_query_text(_string(value, "q")), vocab.expand_term)
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
    doc: Doc,
    vocab: Vocabulary,
    state: DeliveryState | None = None,
    *,
    now: datetime | None = None,
    sys_attrs: bool = False,
) -> Doc:
    """The Subscription as returned by retrieve/query (§5.8.3), names compacted with `vocab`."""
    out: Doc = {"id": doc["id"], "type": "Subscription"}
    for name, value in doc.items():
        if name in (
            "id",
            "type",
            "@context",
            "createdAt",
            "modifiedAt",
            "implicitContext",
            "owner",
        ):
            # implicitContext: jsonldContext was made by the broker (internal flag); owner: the
            # owning organisation (internal, see broker/subscriptions.py)
            continue
        if name == "entities":
            out[name] = [
                {**sel, "type": type_selection(parse_type_ast(sel["type"]), vocab.compact_iri)}
                for sel in value
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
                notification["attributes"] = [
                    vocab.compact_iri(a) for a in notification["attributes"]
                ]
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


@dataclass(frozen=True, slots=True)
class ChangeSteps:
    """A write op for the notifying store: a transaction's changes entry by entry.

    A batch that names one entity several times (several MQTT messages of one sensor) applies
    them in order on the running state; with this op each entry notifies as if it had been
    written on its own, instead of only the transaction's net change of the entity.
    """

    changes: tuple[EntityChange, ...]


def change_rounds(changes: Iterable[EntityChange]) -> list[list[EntityChange]]:
    """Changes cut into rounds: the k-th change of every entity goes to round k (order kept)."""
    rounds: list[list[EntityChange]] = []
    seen: dict[str, int] = {}
    for change in changes:
        eid = change.entity["id"]
        k = seen.get(eid, 0)
        seen[eid] = k + 1
        if k == len(rounds):
            rounds.append([])
        rounds[k].append(change)
    return rounds


def _by_dataset(instances: Iterable[Doc]) -> dict[str | None, Doc]:
    return {i.get("datasetId"): i for i in instances}


def triggers_of(change: EntityChange) -> dict[str, set[str]]:
    """Which triggers the change fires, each with the attribute IRIs concerned (§5.11).

    Attribute triggers look at instances: deleting one datasetId instance of an attribute fires
    attributeDeleted for it, as deleting the attribute does.
    """
    old, new = change.old, change.new
    if old is None and new is None:
        return {}
    if old is None:
        assert new is not None
        attrs = set(new.get("attrs", {}))
        return (
            {"entityCreated": attrs, "attributeCreated": attrs}
            if attrs
            else {"entityCreated": set()}
        )
    if new is None:
        attrs = set(old.get("attrs", {}))
        return (
            {"entityDeleted": attrs, "attributeDeleted": attrs}
            if attrs
            else {"entityDeleted": set()}
        )
    before: Mapping[str, Any] = old.get("attrs", {})
    after: Mapping[str, Any] = new.get("attrs", {})
    created: set[str] = set()
    updated: set[str] = set()
    deleted: set[str] = set()
    for name in set(before) | set(after):
        if name not in before:
            created.add(name)
        elif name not in after:
            deleted.add(name)
        else:
            was, now = _by_dataset(before[name]), _by_dataset(after[name])
            if any(d not in now for d in was):
                deleted.add(name)
            if any(d not in was or was[d] != inst for d, inst in now.items()):
                updated.add(name)
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
    types: list[list[frozenset[str]]] = field(default_factory=list)

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
                type_matches(dnf, types)
                and ("id" not in sel or sel["id"] == entity["id"])
                and (pattern is None or pattern.search(entity["id"]) is not None)
                for sel, pattern, dnf in zip(selectors, self.patterns, self.types, strict=True)
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
        q=parse_q(_query_text(doc["q"]), vocab.expand_term) if "q" in doc else None,
        geo=geo,
        scope_q=parse_scope_q(doc["scopeQ"]) if "scopeQ" in doc else None,
        patterns=[
            re.compile(sel["idPattern"]) if "idPattern" in sel else None
            for sel in doc.get("entities", [])
        ],
        types=[to_dnf(parse_type_ast(sel["type"])) for sel in doc.get("entities", [])],
    )


def notification_entities(
    sub: CompiledSubscription, changes: Iterable[tuple[EntityChange, str]], *, now: str
) -> list[Doc]:
    """The `data` of a notification: each entity rendered as the subscription asks (§5.11.2).

    Deleted attributes (and, for attributeDeleted or showChanges, the attributes of a deleted
    entity) are shown with the NGSI-LD Null value; with showChanges, updated and deleted
    instances carry their previous value (previousValue, previousObject, …; NGSI-LD 1.8 §5.2.14).
    """
    notification = sub.doc["notification"]
    opts = notification_options(sub)
    view = _View(sub.vocab, opts, bool(notification.get("showChanges")), now)
    watched = sub.doc.get("watchedAttributes")
    data: list[Doc] = []
    for change, trigger in changes:
        if change.new is None:
            assert change.old is not None
            body = view.deleted_entity(change.old, trigger, watched)
        else:
            body = view.changed_entity(change.old, change.new)
        if body:
            data.append(body)
    return data


def notification_options(sub: CompiledSubscription) -> RenderOptions:
    """How a subscription's notifications render entities (§5.2.14: format, attributes, …)."""
    notification = sub.doc["notification"]
    attrs = notification.get("attributes")
    projection: Projection | None = None
    if "pick" in notification:
        projection = parse_pick(",".join(notification["pick"]))
    if "omit" in notification:
        omitted = parse_omit(",".join(notification["omit"]))
        projection = projection.merge(omitted) if projection is not None else omitted
    datasets = sub.doc.get("datasetId")
    fmt = notification.get("format", "normalized")
    join = notification.get("join")
    return RenderOptions(
        format="keyValues" if fmt == "simplified" else fmt,
        sys_attrs=bool(notification.get("sysAttrs")),
        attrs=frozenset(attrs) if attrs is not None else None,
        projection=projection.expand(sub.vocab.expand_term) if projection is not None else None,
        lang=sub.doc.get("lang"),
        dataset_id=",".join(datasets) if datasets else None,
        join=None if join in (None, "@none") else join,
        join_level=int(notification.get("joinLevel", 1)),
    )


NULL = "urn:ngsi-ld:null"
#: the value member of each attribute type, and the member holding its previous value
_VALUE_MEMBER = {
    "Property": ("value", "previousValue"),
    "GeoProperty": ("value", "previousValue"),
    "Relationship": ("object", "previousObject"),
    "LanguageProperty": ("languageMap", "previousLanguageMap"),
    "JsonProperty": ("json", "previousJson"),
    "VocabProperty": ("vocab", "previousVocab"),
    "ListProperty": ("valueList", "previousValueList"),
    "ListRelationship": ("objectList", "previousObjectList"),
}


@dataclass(frozen=True, slots=True)
class _View:
    vocab: Vocabulary
    opts: RenderOptions
    show_changes: bool
    now: str

    def keeps(self, name: str) -> bool:
        if self.opts.attrs is not None and name not in self.opts.attrs:
            return False
        return self.opts.projection is None or self.opts.projection.keeps(name)

    def deleted_entity(self, old: Doc, trigger: str, watched: list[str] | None) -> Doc:
        # NGSI-LD 1.8 §5.11: a deleted entity is notified with deletedAt; its attributes are
        # shown (as NGSI-LD Null) for attributeDeleted, and with showChanges
        body = render_entity({**old, "attrs": {}}, self.vocab, self.opts)
        if self.opts.projection is None or self.opts.projection.keeps("deletedAt"):
            body["deletedAt"] = self.now
        if trigger == "attributeDeleted" or self.show_changes:
            for name, instances in old.get("attrs", {}).items():
                if trigger == "attributeDeleted" and watched is not None and name not in watched:
                    continue
                if self.keeps(name):
                    nulled = [self.nulled(i, entity_deleted=True) for i in instances]
                    body[self.vocab.compact_iri(name)] = self.pack(nulled)
        return body

    def changed_entity(self, old: Doc | None, new: Doc) -> Doc:
        body = render_entity(new, self.vocab, self.opts)
        if old is None:
            return body
        before: Mapping[str, list[Doc]] = old.get("attrs", {})
        after: Mapping[str, list[Doc]] = new.get("attrs", {})
        for name, old_instances in before.items():
            if not self.keeps(name):
                continue
            key = self.vocab.compact_iri(name)
            remaining = _by_dataset(after.get(name, []))
            gone = [i for i in old_instances if i.get("datasetId") not in remaining]
            if name not in after and len(gone) > 1:
                gone = [i for i in gone if "datasetId" not in i] or gone[:1]
                gone = [{k: v for k, v in g.items() if k != "datasetId"} for g in gone]
            if gone:
                self.add_nulled(body, key, [self.nulled(i, entity_deleted=False) for i in gone])
            if self.show_changes and name in after and not self.opts.simplified:
                self.add_previous(body, key, _by_dataset(old_instances))
        return body

    def nulled(self, instance: Doc, *, entity_deleted: bool) -> Any:
        kind = instance.get("type", "Property")
        member, previous = _VALUE_MEMBER.get(kind, ("value", "previousValue"))
        if self.opts.simplified:
            return instance.get("datasetId"), NULL
        out: Doc = {"type": kind}
        if "datasetId" in instance:
            out["datasetId"] = instance["datasetId"]
        null: Any = NULL
        if kind == "LanguageProperty" and not entity_deleted:
            null = {"@none": NULL}
        out[member] = null
        if self.show_changes:
            out[previous] = self.previous_value(instance)
        if self.opts.sys_attrs:
            for stamp in ("createdAt", "modifiedAt"):
                if stamp in instance:
                    out[stamp] = instance[stamp]
            out["deletedAt"] = self.now
        return out

    def pack(self, rendered: list[Any]) -> Any:
        if self.opts.simplified:
            if len(rendered) == 1 and rendered[0][0] is None:
                return NULL
            return {"dataset": {d or "@none": v for d, v in rendered}}
        return rendered[0] if len(rendered) == 1 else rendered

    def add_nulled(self, body: Doc, key: str, rendered: list[Any]) -> None:
        current = body.get(key)
        if current is None:
            body[key] = self.pack(rendered)
        elif self.opts.simplified:
            if not (isinstance(current, dict) and "dataset" in current):
                current = {"dataset": {"@none": current}}
            current["dataset"].update({d or "@none": v for d, v in rendered})
            body[key] = current
        else:
            items = current if isinstance(current, list) else [current]
            body[key] = [*items, *rendered]

    def previous_value(self, instance: Doc) -> Any:
        # render the old instance as the current one is rendered and take its value member
        kind = instance.get("type", "Property")
        member = _VALUE_MEMBER.get(kind, ("value", "previousValue"))[0]
        plain = RenderOptions(format="normalized")
        rendered = render_entity(
            {"id": "urn:x", "type": [], "attrs": {"urn:x:a": [instance]}}, self.vocab, plain
        )
        attribute = rendered.get(self.vocab.compact_iri("urn:x:a"), {})
        return attribute.get(member) if isinstance(attribute, dict) else None

    def add_previous(self, body: Doc, key: str, old: dict[str | None, Doc]) -> None:
        current = body.get(key)
        items = current if isinstance(current, list) else [current]
        for item in items:
            if not isinstance(item, dict):
                continue
            was = old.get(item.get("datasetId"))
            if was is None:
                continue
            member, previous = _VALUE_MEMBER.get(
                was.get("type", "Property"), ("value", "previousValue")
            )
            value = self.previous_value(was)
            if value != item.get(member):
                item[previous] = value
