"""Pure mutation semantics of NGSI-LD entity writes on internal entity documents.

Every function takes an internal entity document (docs/architecture.md) plus already expanded
attribute instances (`Attrs`: expanded attribute IRI -> list of instance dicts, as produced by
`smartregion.core.entities`) and returns a NEW document; inputs are never mutated. Only what
changes is copied: untouched attribute lists and instances are shared with the input document,
and the nested values (JSON values, sub-attributes) of written instances are shared with the
incoming fragment — copying them cost a deep copy per attribute of every batch entity, of
values that the request parsed for this very call. Callers must treat results and the fragments
they passed as immutable (or deep-copy them before mutating).

Common rules (ETSI GS CIM 009 V1.8):

- An attribute instance is identified by (attribute name, datasetId); a missing datasetId is the
  default instance (§4.5.5). Instance lists keep their order; a new default instance goes first,
  new datasetId instances go last.
- System attributes (§4.8): `createdAt` of a pre-existing entity or instance is always kept; a
  new instance gets `createdAt = modifiedAt = now`; an instance whose content changes gets
  `modifiedAt = now`, and so does the entity when anything at all changed. Timestamps carried by
  incoming fragments are ignored. Sub-attribute timestamps are not managed here.
- `UpdateOutcome.changed` is content-based: rewriting an attribute with identical content
  reports it as updated (the spec's UpdateResult) but leaves `changed` False and the
  timestamps untouched.
- NGSI-LD Null (§5.2.1: `"urn:ngsi-ld:null"` as value/object/json/vocab, `{"@none":
  "urn:ngsi-ld:null"}` as languageMap, `["urn:ngsi-ld:null"]` as valueList/objectList) deletes
  the matching instance in update, partial update and merge; elsewhere it is BadRequestData.
- Names in `updated`/`not_updated` are expanded IRIs; `scope` is reported as `SCOPE`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from smartregion.errors import BadRequestData, ResourceNotFound

__all__ = [
    "NGSI_NULL",
    "SCOPE",
    "Attrs",
    "UpdateOutcome",
    "append_attributes",
    "attribute_names",
    "batch_merge_entity",
    "batch_update_entity",
    "delete_attribute",
    "is_null_instance",
    "merge_entity",
    "partial_attribute_update",
    "replace_attribute",
    "replace_entity",
    "update_attributes",
    "upsert_entity",
]

Attrs = dict[str, list[dict[str, Any]]]

#: the NGSI-LD Null (§5.2.1)
NGSI_NULL = "urn:ngsi-ld:null"
#: expanded name of the `scope` member, as reported in updated/notUpdated (§4.18)
SCOPE = "https://uri.etsi.org/ngsi-ld/scope"

_SCOPE_NAMES = frozenset({"scope", SCOPE})
_TIMESTAMPS = ("createdAt", "modifiedAt")
_SCALAR_VALUE_MEMBERS = ("value", "object", "json", "vocab")
_LIST_VALUE_MEMBERS = ("valueList", "objectList")


@dataclass(slots=True)
class UpdateOutcome:
    """The new document plus what an update did (the spec's UpdateResult, §5.2.18)."""

    doc: dict[str, Any]
    updated: list[str] = field(default_factory=list)
    not_updated: list[tuple[str, str]] = field(default_factory=list)
    changed: bool = False


# --------------------------------------------------------------------------- helpers


def _is_null(value: Any) -> bool:
    return value is None or value == NGSI_NULL


def is_null_instance(instance: Mapping[str, Any]) -> bool:
    """Whether an attribute instance carries an NGSI-LD Null as its value member (§5.2.1)."""
    for member in _SCALAR_VALUE_MEMBERS:
        if member in instance and _is_null(instance[member]):
            return True
    if "languageMap" in instance:
        lang_map = instance["languageMap"]
        if _is_null(lang_map) or lang_map == {"@none": NGSI_NULL}:
            return True
    for member in _LIST_VALUE_MEMBERS:
        if member in instance:
            items = instance[member]
            if _is_null(items) or items == [NGSI_NULL] or items == [{"object": NGSI_NULL}]:
                return True
    return False


def _is_sub_attribute(key: str) -> bool:
    # Reserved member names never contain ":"; sub-attribute keys are absolute IRIs.
    return ":" in key


def _content(instance: Mapping[str, Any]) -> dict[str, Any]:
    """An instance without system timestamps (recursively), for change detection."""
    out: dict[str, Any] = {}
    for key, value in instance.items():
        if key in _TIMESTAMPS:
            continue
        if _is_sub_attribute(key) and isinstance(value, Mapping):
            out[key] = _content(value)
        else:
            out[key] = value
    return out


def _fresh(instance: Mapping[str, Any]) -> dict[str, Any]:
    """A new instance dict (nested values shared) without client-supplied system timestamps."""
    new = dict(instance)  # a C-level copy, then two deletions: cheaper than a comprehension
    new.pop("createdAt", None)
    new.pop("modifiedAt", None)
    return new


def _stamp(
    new: dict[str, Any], old: dict[str, Any] | None, now: str
) -> tuple[dict[str, Any], bool]:
    """Give `new` the system timestamps it deserves; returns (instance, content changed)."""
    if old is None:
        new["createdAt"] = now
        new["modifiedAt"] = now
        return new, True
    if _content(new) == _content(old):
        # Unchanged: keep the stored instance object, timestamps and all.
        return old, False
    new["createdAt"] = old.get("createdAt", now)
    new["modifiedAt"] = now
    return new, True


def _find(instances: list[dict[str, Any]], dataset_id: str | None) -> int | None:
    for index, instance in enumerate(instances):
        if instance.get("datasetId") == dataset_id:
            return index
    return None


def _insert(instances: list[dict[str, Any]], instance: dict[str, Any]) -> None:
    # The default instance goes first; datasetId instances keep arrival order (§4.5.5).
    if instance.get("datasetId") is None:
        instances.insert(0, instance)
    else:
        instances.append(instance)


def _describe(name: str, dataset_id: str | None) -> str:
    if dataset_id is None:
        return f"default instance of attribute {name}"
    return f"instance of attribute {name} with datasetId {dataset_id}"


def _normalise_types(types: Iterable[str]) -> list[str]:
    return sorted(set(types))


def _union_scope(old: list[str], new: Iterable[str]) -> list[str]:
    merged = list(old)
    for scope in new:
        if scope not in merged:
            merged.append(scope)
    return merged


class _Writer:
    """Copy-on-write access to one document's attributes, recording what happened."""

    def __init__(self, doc: Mapping[str, Any], now: str) -> None:
        self.doc: dict[str, Any] = dict(doc)
        self.attrs: dict[str, list[dict[str, Any]]] = dict(doc.get("attrs", {}))
        self.now = now
        self.copied: set[str] = set()
        self.updated: list[str] = []
        self.not_updated: list[tuple[str, str]] = []
        self.changed = False

    def instances(self, name: str) -> list[dict[str, Any]]:
        if name not in self.copied:
            self.attrs[name] = list(self.attrs.get(name, []))
            self.copied.add(name)
        return self.attrs[name]

    def mark_updated(self, name: str) -> None:
        if name not in self.updated:
            self.updated.append(name)

    def put(self, name: str, instance: Mapping[str, Any], *, merge: bool = False) -> None:
        """Write one instance: replace (or merge into) its match, or add it."""
        instances = self.instances(name)
        index = _find(instances, instance.get("datasetId"))
        old = None if index is None else instances[index]
        if old is not None and merge and instance.get("type", old.get("type")) == old.get("type"):
            new = _merge_instance(old, instance)
        else:
            new = _fresh(instance)
            if old is not None and "type" not in new and "type" in old:
                new["type"] = old["type"]
        stamped, changed = _stamp(new, old, self.now)
        if index is None:
            _insert(instances, stamped)
        else:
            instances[index] = stamped
        self.changed |= changed
        self.mark_updated(name)

    def remove(self, name: str, dataset_id: str | None) -> bool:
        """Delete one instance; drops the attribute when none is left."""
        if name not in self.attrs:
            return False
        index = _find(self.attrs[name], dataset_id)
        if index is None:
            return False
        instances = self.instances(name)
        del instances[index]
        if not instances:
            del self.attrs[name]
            self.copied.discard(name)
        self.changed = True
        return True

    def exists(self, name: str, dataset_id: str | None) -> bool:
        return name in self.attrs and _find(self.attrs[name], dataset_id) is not None

    def add_types(self, types: Iterable[str] | None) -> None:
        # §4.16: types given to append/update/merge are added to the entity's types.
        if not types:
            return
        old = list(self.doc.get("type", []))
        merged = _normalise_types([*old, *types])
        if merged != old:
            self.doc["type"] = merged
            self.changed = True

    def set_scope(self, scope: list[str] | None) -> None:
        if scope is None:
            if "scope" in self.doc:
                del self.doc["scope"]
                self.changed = True
            return
        if self.doc.get("scope") != scope:
            self.doc["scope"] = list(scope)
            self.changed = True

    def outcome(self) -> UpdateOutcome:
        self.doc["attrs"] = self.attrs
        if self.changed:
            self.doc["modifiedAt"] = self.now
        return UpdateOutcome(self.doc, self.updated, self.not_updated, self.changed)


def _merge_instance(old: Mapping[str, Any], fragment: Mapping[str, Any]) -> dict[str, Any]:
    """Merge-patch one instance (§5.6.17): members replace, sub-attributes merge, null deletes."""
    merged = dict(old)
    for key, value in fragment.items():
        if key in _TIMESTAMPS:
            continue
        if _is_sub_attribute(key):
            current = merged.get(key)
            if isinstance(value, Mapping) and is_null_instance(value):
                merged.pop(key, None)
            elif (
                isinstance(current, Mapping)
                and isinstance(value, Mapping)
                and value.get("type", current.get("type")) == current.get("type")
            ):
                merged[key] = _merge_instance(current, value)
            else:
                merged[key] = value
        elif _is_null(value):
            # e.g. "unitCode": "urn:ngsi-ld:null" removes that member (§5.6.17.4).
            merged.pop(key, None)
        else:
            # Value members (value, languageMap, json, ...) and observedAt/unitCode are
            # replaced as a whole; an observedAt absent from the fragment is kept.
            merged[key] = value
    return merged


def _reject_nulls(attrs: Attrs) -> None:
    for name, instances in attrs.items():
        for instance in instances:
            if is_null_instance(instance):
                raise BadRequestData(
                    f"NGSI-LD Null is only allowed in update and merge operations ({name})"
                )


# --------------------------------------------------------------------------- operations


def attribute_names(doc: Mapping[str, Any]) -> list[str]:
    """The expanded names of the entity's attributes, in document order."""
    return list(doc.get("attrs", {}))


def append_attributes(
    doc: Mapping[str, Any],
    attrs: Attrs,
    *,
    now: str,
    no_overwrite: bool = False,
    types: list[str] | None = None,
    scope: list[str] | None = None,
) -> UpdateOutcome:
    """Append Entity Attributes (§5.6.3, POST /entities/{id}/attrs).

    New attributes/instances are added; an existing instance (same datasetId) is replaced
    unless `no_overwrite`, in which case it is reported in `not_updated`. `types` are added
    (§4.16). `scope` replaces the entity's scope, or with `no_overwrite` is added to it
    (§4.18; ETSI TP 010_07). NGSI-LD Null is BadRequestData here (§5.2.1).
    """
    _reject_nulls(attrs)
    writer = _Writer(doc, now)
    for name, instances in attrs.items():
        for instance in instances:
            dataset_id = instance.get("datasetId")
            if no_overwrite and writer.exists(name, dataset_id):
                writer.not_updated.append(
                    (name, f"{_describe(name, dataset_id)} already exists (noOverwrite)")
                )
            else:
                writer.put(name, instance)
    writer.add_types(types)
    if scope is not None:
        old_scope = list(writer.doc.get("scope", []))
        writer.set_scope(_union_scope(old_scope, scope) if no_overwrite else list(scope))
        writer.mark_updated(SCOPE)
    return writer.outcome()


def update_attributes(
    doc: Mapping[str, Any],
    attrs: Attrs,
    *,
    now: str,
    types: list[str] | None = None,
    scope: list[str] | None = None,
    append_missing: bool = True,
) -> UpdateOutcome:
    """Update Entity Attributes (§5.6.2, PATCH /entities/{id}/attrs).

    An existing instance (same datasetId) is replaced as a whole, type changes included
    (ETSI TP 011_01_04); an NGSI-LD Null deletes just that instance, the default one when no
    datasetId is given (TP 011_07..09), and a Null for an absent instance is `not_updated`.
    Instances that do not exist yet are appended, as the conformance suite expects
    (TP 011_01_03); pass `append_missing=False` to report them as `not_updated` instead.
    `types` are added (§4.16, TP 011_06). `scope` replaces an existing scope but is never
    created: an entity without scope reports it as `not_updated` (§4.18, TP 011_05).
    """
    writer = _Writer(doc, now)
    for name, instances in attrs.items():
        for instance in instances:
            dataset_id = instance.get("datasetId")
            if is_null_instance(instance):
                if writer.remove(name, dataset_id):
                    writer.mark_updated(name)
                else:
                    writer.not_updated.append(
                        (name, f"{_describe(name, dataset_id)} does not exist; nothing to delete")
                    )
            elif append_missing or writer.exists(name, dataset_id):
                writer.put(name, instance)
            else:
                writer.not_updated.append((name, f"{_describe(name, dataset_id)} does not exist"))
    writer.add_types(types)
    if scope is not None:
        if "scope" in writer.doc:
            writer.set_scope(list(scope))
            writer.mark_updated(SCOPE)
        else:
            writer.not_updated.append((SCOPE, "the entity has no scope to update"))
    return writer.outcome()


def partial_attribute_update(
    doc: Mapping[str, Any], name: str, fragment: dict[str, Any], *, now: str
) -> UpdateOutcome:
    """Partial Attribute Update (§5.6.4, PATCH /entities/{id}/attrs/{attrId}).

    Only the members present in `fragment` change: value members, observedAt, unitCode and
    each given sub-attribute are replaced; everything else is kept (TP 012_01, 012_04). The
    instance is chosen by the fragment's datasetId (default instance without one). A type
    different from the stored one is BadRequestData (TP 012_02_03); an unknown attribute or
    instance is ResourceNotFound (TP 012_03). An NGSI-LD Null deletes the instance
    (TP 012_05..07).
    """
    if name in _SCOPE_NAMES:
        raise BadRequestData("scope cannot be updated as an attribute")
    existing = doc.get("attrs", {}).get(name)
    if not existing:
        raise ResourceNotFound(f"attribute {name} does not exist")
    if not any(key not in ("datasetId", *_TIMESTAMPS) for key in fragment):
        raise BadRequestData("the attribute fragment is empty")
    dataset_id = fragment.get("datasetId")
    index = _find(existing, dataset_id)
    reference = existing[0] if index is None else existing[index]
    if "type" in fragment and fragment["type"] != reference.get("type"):
        raise BadRequestData(
            f"attribute {name} is a {reference.get('type')}, not a {fragment['type']}"
        )
    if index is None:
        raise ResourceNotFound(f"{_describe(name, dataset_id)} does not exist")
    writer = _Writer(doc, now)
    if is_null_instance(fragment):
        writer.remove(name, dataset_id)
        writer.mark_updated(name)
        return writer.outcome()
    old = existing[index]
    new = dict(old)
    for key, value in fragment.items():
        if key in _TIMESTAMPS:
            continue
        null_sub_attribute = (
            _is_sub_attribute(key) and isinstance(value, Mapping) and is_null_instance(value)
        )
        if null_sub_attribute or _is_null(value):
            new.pop(key, None)
        else:
            new[key] = value
    stamped, changed = _stamp(new, old, now)
    writer.instances(name)[index] = stamped
    writer.changed |= changed
    writer.mark_updated(name)
    return writer.outcome()


def replace_attribute(
    doc: Mapping[str, Any], name: str, instance: dict[str, Any], *, now: str
) -> UpdateOutcome:
    """Replace Attribute (§5.6.19, PUT /entities/{id}/attrs/{attrId}).

    The instance with the same datasetId is replaced as a whole, type changes included, and
    keeps its createdAt (TP 055_01, 055_02). Missing attribute or instance: ResourceNotFound
    (TP 055_03_04); `scope` or an NGSI-LD Null: BadRequestData.
    """
    if name in _SCOPE_NAMES:
        raise BadRequestData("scope cannot be replaced as an attribute")
    if is_null_instance(instance):
        raise BadRequestData("NGSI-LD Null is not allowed when replacing an attribute")
    existing = doc.get("attrs", {}).get(name)
    if not existing:
        raise ResourceNotFound(f"attribute {name} does not exist")
    dataset_id = instance.get("datasetId")
    if _find(existing, dataset_id) is None:
        raise ResourceNotFound(f"{_describe(name, dataset_id)} does not exist")
    writer = _Writer(doc, now)
    writer.put(name, instance)
    return writer.outcome()


def delete_attribute(
    doc: Mapping[str, Any],
    name: str,
    *,
    dataset_id: str | None = None,
    delete_all: bool = False,
    now: str | None = None,
) -> dict[str, Any]:
    """Delete Attribute (§5.6.5, DELETE /entities/{id}/attrs/{attrId}).

    Deletes the default instance, the instance with `dataset_id`, or with `delete_all` every
    instance (TP 013_01); `scope` deletes the entity's scope (TP 013_04). Nothing to delete:
    ResourceNotFound (TP 013_03). With `now`, the entity's modifiedAt is set to it.
    """
    new_doc = dict(doc)
    if name in _SCOPE_NAMES:
        if "scope" not in new_doc:
            raise ResourceNotFound("the entity has no scope")
        del new_doc["scope"]
    else:
        attrs = dict(doc.get("attrs", {}))
        if name not in attrs:
            raise ResourceNotFound(f"attribute {name} does not exist")
        if delete_all:
            del attrs[name]
        else:
            instances = list(attrs[name])
            index = _find(instances, dataset_id)
            if index is None:
                raise ResourceNotFound(f"{_describe(name, dataset_id)} does not exist")
            del instances[index]
            if instances:
                attrs[name] = instances
            else:
                del attrs[name]
        new_doc["attrs"] = attrs
    if now is not None:
        new_doc["modifiedAt"] = now
    return new_doc


def merge_entity(
    doc: Mapping[str, Any],
    fragment: Attrs,
    *,
    now: str,
    types: list[str] | None = None,
    scope: list[str] | None = None,
) -> UpdateOutcome:
    """Merge Entity (§5.6.17, PATCH /entities/{id}).

    Per instance (datasetId): absent ones are added; present ones are merge-patched, i.e.
    members in the fragment replace stored ones (value, observedAt, unitCode, ...), members
    not in it are kept (so is a stored observedAt, TP 056_01_04), sub-attributes are merged
    recursively and a type change replaces the instance. An NGSI-LD Null deletes the
    instance, sub-attribute or member it stands for (TP 056_03..05). `types` are added
    (§4.16); `scope` replaces the scope, `[NGSI_NULL]` deletes it (§4.18). An empty
    fragment changes nothing.
    """
    writer = _Writer(doc, now)
    for name, instances in fragment.items():
        for instance in instances:
            dataset_id = instance.get("datasetId")
            if is_null_instance(instance):
                if writer.remove(name, dataset_id):
                    writer.mark_updated(name)
                else:
                    writer.not_updated.append(
                        (name, f"{_describe(name, dataset_id)} does not exist; nothing to delete")
                    )
            else:
                writer.put(name, instance, merge=True)
    writer.add_types(types)
    if scope is not None:
        writer.set_scope(None if any(_is_null(s) for s in scope) else list(scope))
        writer.mark_updated(SCOPE)
    return writer.outcome()


def _attrs_of(doc: Mapping[str, Any]) -> Attrs:
    attrs: Attrs = doc.get("attrs", {})
    return attrs


def replace_entity(
    doc: Mapping[str, Any], new_doc: Mapping[str, Any], *, now: str
) -> dict[str, Any]:
    """Replace Entity (§5.6.18, PUT /entities/{id}).

    Everything (types, scope, attributes) comes from `new_doc`; the entity keeps its id and
    createdAt (TP 054_01) and gets modifiedAt = now. An instance that existed before with the
    same name and datasetId keeps its createdAt; all written instances get modifiedAt = now.
    """
    _reject_nulls(_attrs_of(new_doc))
    old_attrs = _attrs_of(doc)
    result: dict[str, Any] = {k: v for k, v in new_doc.items() if k not in ("attrs", *_TIMESTAMPS)}
    result["id"] = doc["id"]
    if "type" in result:
        result["type"] = _normalise_types(result["type"])
    result["createdAt"] = doc.get("createdAt", now)
    result["modifiedAt"] = now
    attrs: Attrs = {}
    for name, instances in _attrs_of(new_doc).items():
        written: list[dict[str, Any]] = []
        for instance in instances:
            new = _fresh(instance)
            previous = old_attrs.get(name, [])
            index = _find(previous, instance.get("datasetId"))
            new["createdAt"] = now if index is None else previous[index].get("createdAt", now)
            new["modifiedAt"] = now
            _insert(written, new)
        attrs[name] = written
    result["attrs"] = attrs
    return result


def _create(new_doc: Mapping[str, Any], now: str) -> dict[str, Any]:
    """A brand-new document from `new_doc`, every timestamp set to `now` (§5.6.1)."""
    _reject_nulls(_attrs_of(new_doc))
    result: dict[str, Any] = {k: v for k, v in new_doc.items() if k not in ("attrs", *_TIMESTAMPS)}
    if "type" in result:
        result["type"] = _normalise_types(result["type"])
    result["createdAt"] = now
    result["modifiedAt"] = now
    attrs: Attrs = {}
    for name, instances in _attrs_of(new_doc).items():
        written: list[dict[str, Any]] = []
        for instance in instances:
            new = _fresh(instance)
            new["createdAt"] = now
            new["modifiedAt"] = now
            _insert(written, new)
        attrs[name] = written
    result["attrs"] = attrs
    return result


def upsert_entity(
    existing: Mapping[str, Any] | None, new_doc: Mapping[str, Any], *, now: str, mode: str
) -> dict[str, Any]:
    """Batch Entity Upsert for one entity (§5.6.8, POST /entityOperations/upsert).

    A missing entity is created. An existing one is, with mode "replace" (the default
    option), replaced as by Replace Entity (§5.6.18: types and scope from `new_doc`,
    TP 004_03, 004_08); with mode "update", updated as by Append Entity Attributes with
    overwrite (§5.6.3: types added, scope replaced, TP 004_04).
    """
    if mode not in ("replace", "update"):
        raise BadRequestData(f"unknown upsert option {mode!r}; expected 'replace' or 'update'")
    if existing is None:
        return _create(new_doc, now)
    if mode == "replace":
        return replace_entity(existing, new_doc, now=now)
    return append_attributes(
        existing,
        _attrs_of(new_doc),
        now=now,
        types=new_doc.get("type"),
        scope=new_doc.get("scope"),
    ).doc


def batch_update_entity(
    doc: Mapping[str, Any], new_doc: Mapping[str, Any], *, now: str, no_overwrite: bool
) -> UpdateOutcome:
    """Batch Entity Update for one entity (§5.6.9, POST /entityOperations/update).

    Behaves as Append Entity Attributes (§5.6.3) with the entity's attributes: new ones are
    added (TP 005_02_02), existing ones replaced unless `no_overwrite` (TP 005_02_01), types
    added (§4.16, TP 005_05), scope replaced or, with `no_overwrite`, extended.
    """
    return append_attributes(
        doc,
        _attrs_of(new_doc),
        now=now,
        no_overwrite=no_overwrite,
        types=new_doc.get("type"),
        scope=new_doc.get("scope"),
    )


def batch_merge_entity(
    doc: Mapping[str, Any], new_doc: Mapping[str, Any], *, now: str
) -> UpdateOutcome:
    """Batch Entity Merge for one entity (§5.6.20, POST /entityOperations/merge).

    Merge Entity (§5.6.17) with the entity's attributes, types (added) and scope.
    """
    return merge_entity(
        doc,
        _attrs_of(new_doc),
        now=now,
        types=new_doc.get("type"),
        scope=new_doc.get("scope"),
    )
