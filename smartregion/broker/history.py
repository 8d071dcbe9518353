"""Attribute history of entity writes (NGSI-LD 1.8 §4.5.7, §5.6: the temporal evolution).

Every committed change of an attribute instance becomes an attribute instance in history, in
the SAME transaction as the entity write (`storage.history.RecordInstances`): creates, updates,
merges, replaces, batch operations, MQTT ingestion — every path goes through `Store.transact`,
and `NotifyingStore` (broker/subscriptions.py) adds the instances computed here from the locked
documents and the write's ops. A deletion (of an attribute instance, or of the whole entity)
is recorded as an instance with `deletedAt` and the NGSI-LD Null as its value, which the
temporal API shows with `timeproperty=deletedAt` (§4.5.7, suite TP 020_17–020_20).

The entity's scope (§4.18) has a history too, as Stellio keeps one: each change of the scope
becomes an instance of the pseudo-attribute `SCOPE_HISTORY` (a Property whose value is the list
of scopes, with createdAt and modifiedAt of the change), and its removal — by deleting `scope`
or the entity — an instance with `[]` and `deletedAt` (suite TP 020_19, 020_20).

What counts as a change: `core.mutations` keeps the stored instance object (timestamps and
all) when a write leaves its content unchanged, so an instance that is (or equals) the one before
was not touched and is not recorded again. (Not `modifiedAt` alone: the entries of one batch
that repeat an id share one timestamp, and each is a change — broker/batch.py.)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from smartregion.core.entities import NULL, VALUE_MEMBER
from smartregion.core.subscriptions import EntityChange
from smartregion.core.temporal import SCOPE_HISTORY
from smartregion.storage.history import InstanceRow

__all__ = ["deletion_instance", "instance_rows", "scope_instance"]

Doc = dict[str, Any]


#: the NGSI-LD Null in each value member's own shape (§5.6.4, as `core.mutations` accepts it)
_NULL_VALUE: dict[str, Any] = {
    "LanguageProperty": {"@none": NULL},
    "ListProperty": [NULL],
    "ListRelationship": [{"object": NULL}],
}


def deletion_instance(previous: Doc, now: str) -> Doc:
    """The history instance recording that `previous` was deleted at `now`."""
    kind = previous.get("type", "Property")
    out: Doc = {"type": kind, VALUE_MEMBER.get(kind, "value"): _NULL_VALUE.get(kind, NULL)}
    if "datasetId" in previous:
        out["datasetId"] = previous["datasetId"]
    out["createdAt"] = previous.get("createdAt", now)
    out["modifiedAt"] = now
    out["deletedAt"] = now
    return out


def scope_instance(before: Any, after: Any, now: str) -> Doc | None:
    """The history instance of a change of the entity's scope from `before` to `after` (None
    or a list of scopes each); None when the scope did not change."""
    before, after = _scopes(before), _scopes(after)
    if before == after:
        return None
    out: Doc = {"type": "Property", "value": after, "createdAt": now, "modifiedAt": now}
    if not after:
        out["deletedAt"] = now
    return out


def _scopes(scope: Any) -> list[str]:
    if not scope:
        return []
    return [scope] if isinstance(scope, str) else list(scope)


def _by_dataset(instances: Any) -> dict[Any, Doc]:
    if not isinstance(instances, list):
        return {}
    return {i.get("datasetId"): i for i in instances if isinstance(i, dict)}


def instance_rows(changes: Iterable[EntityChange], now: str) -> list[InstanceRow]:
    """The attribute instances a write adds to history (see the module docstring)."""
    rows: list[InstanceRow] = []
    for change in changes:
        old_attrs: dict[str, Any] = (change.old or {}).get("attrs") or {}
        new_attrs: dict[str, Any] = (change.new or {}).get("attrs") or {}
        eid = change.entity["id"]
        scope = scope_instance(
            (change.old or {}).get("scope"), (change.new or {}).get("scope"), now
        )
        if scope is not None:
            rows.append(InstanceRow(eid, SCOPE_HISTORY, scope))
        for attr, instances in new_attrs.items():
            before = old_attrs.get(attr)
            if before is instances:
                continue
            previous = _by_dataset(before)
            for inst in instances:
                old = previous.pop(inst.get("datasetId"), None)
                if old is not None and (old is inst or old == inst):
                    continue
                rows.append(InstanceRow(eid, attr, inst))
            # datasetIds the write removed from this attribute
            rows.extend(
                InstanceRow(eid, attr, deletion_instance(o, now)) for o in previous.values()
            )
        for attr, instances in old_attrs.items():
            if attr not in new_attrs:
                rows.extend(
                    InstanceRow(eid, attr, deletion_instance(o, now))
                    for o in _by_dataset(instances).values()
                )
    return rows
