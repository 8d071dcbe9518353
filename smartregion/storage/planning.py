"""Query planning shared by the backends: SQL push-down of an `EntityQuery`.

`plan_query` turns a query into a WHERE clause over `entity e` plus what Python must still
check. The SQL selects a superset of the matches; it is `exact` (alone decides membership, so the
database can apply limit/offset/count) only where it provably agrees with the Python evaluators
(`qlang.matches`, `geo.geo_matches`, `scopes.scope_matches`), which stay the source of truth:

- ids, idPattern, types, attrs: always exact;
- q: existence/absence of a top-level attribute, and `==`, `<`, `<=`, `>`, `>=`, ranges and
  value lists of numbers and (non date-time) strings on a top-level attribute's target value
  (`storage/indexing.py` keeps one row per target element); every other term (`!=`, `~=`,
  sub-attributes, metadata, linked entities, date-times, booleans) narrows to "the attribute
  exists", or to nothing, and leaves the decision to Python;
- counts of `type=…&q=<one such term>` are read from the attribute-value index alone, whose
  rows carry the entity's type set (`_fast_count`);
- geo: a bounding-box prefilter (`geo.bbox_prefilter`) only, then `geo_matches` in Python;
- scopeQ: Python only;
- readable (what the caller may read, `storage.base.Readable`): always exact — one condition on
  the entity's owner and types (`readable_condition`); organisations and types the store does not
  know select nothing. A restricted count is never taken from the attribute-value index alone
  (its rows carry no owner).

Placeholders are written `?` and turned into `%b` (binary) for PostgreSQL (the generated SQL contains no
other `?` or `%`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from typing import Any

import orjson

from smartregion.core import qlang
from smartregion.core.geo import GeoQuery, bbox_prefilter, geo_matches, haversine_distance
from smartregion.core.scopes import scope_matches
from smartregion.storage.base import EntityQuery, Readable
from smartregion.storage.indexing import MAX_EXACT_INT, RELATIONSHIP_KINDS

__all__ = [
    "Dialect",
    "NearScan",
    "Plan",
    "plan_query",
    "query_iris",
    "query_orgs",
    "readable_condition",
    "readable_iris",
]

_FALSE = "1 = 0"
_REL = ", ".join(str(k) for k in RELATIONSHIP_KINDS)


@dataclass(frozen=True, slots=True)
class Dialect:
    """The few SQL spellings that differ between the backends."""

    name: str  # "sqlite" | "postgresql"

    def in_list(self, column: str, values: list[Any]) -> tuple[str, list[Any]]:
        """`column` is one of `values` (one parameter, whatever the length)."""
        if self.name == "sqlite":
            return f"{column} IN (SELECT value FROM json_each(?))", [orjson.dumps(values).decode()]
        return f"{column} = ANY(?)", [values]

    def regex(self, column: str) -> str:
        """`column` matches the regular expression parameter (searched, not anchored)."""
        return f"{column} REGEXP ?" if self.name == "sqlite" else f"{column} ~ ?"

    def bbox(self) -> str:
        """Entity keys with a geometry of attribute ? whose box meets (minx, miny, maxx, maxy)."""
        if self.name == "sqlite":
            return (
                "e.entity_key IN (SELECT g.entity_key FROM geo_rtree r"
                " JOIN geo_item g ON g.geo_key = r.geo_key WHERE g.attr_key = ?"
                " AND r.max_x >= ? AND r.max_y >= ? AND r.min_x <= ? AND r.min_y <= ?)"
            )
        return (
            "e.entity_key IN (SELECT g.entity_key FROM geo_index g WHERE g.attr_key = ?"
            " AND g.geom && ST_MakeEnvelope(?, ?, ?, ?, 4326))"
        )

    def probe(self, column: str) -> str:
        """`column` in a correlated per-entity probe: SQLite must not pick the value index.

        Without statistics SQLite prefers the (attr_key, num) index to the primary key inside
        `EXISTS (… a.entity_key = e.entity_key …)` and scans a value range per entity; the
        unary `+` rules that index out. PostgreSQL's cost model needs no such hint.
        """
        return f"+{column}" if self.name == "sqlite" else column

    def scope_within(self, scope: str, doc: str = "e.doc") -> tuple[str, list[Any]]:
        """The entity document `doc` has a scope that is `scope` (`/A/B`) or below it: exactly
        `core.scopes.scopes_within` (a stored scope's leading `/` is optional, §4.18; scopes
        hold no `/` but as separators, so a text prefix ending in `/` is a level prefix)."""
        below = scope + "/"
        if self.name == "sqlite":
            return (
                f"EXISTS (SELECT 1 FROM json_each({doc}, '$.scope') sc WHERE sc.type = 'text'"
                " AND ('/' || ltrim(sc.value, '/') = ?"
                " OR substr('/' || ltrim(sc.value, '/'), 1, ?) = ?))",
                [scope, len(below), below],
            )
        return (
            "EXISTS (SELECT 1 FROM jsonb_array_elements_text(CASE WHEN"
            f" jsonb_typeof({doc}->'scope') = 'array' THEN {doc}->'scope' END) sc(v)"
            " WHERE '/' || ltrim(sc.v, '/') = ?::text"
            " OR starts_with('/' || ltrim(sc.v, '/'), ?::text))",
            [scope, below],
        )

    def sql(self, text: str) -> str:
        """The statement with this dialect's placeholders."""
        # binary parameters: psycopg's text quoting of large arrays costs more than the query
        return text if self.name == "sqlite" else text.replace("?", "%b")


@dataclass(slots=True)
class _Cond:
    sql: str | None  # None: no restriction
    params: list[Any] = field(default_factory=list)
    exact: bool = True


@dataclass(slots=True)
class Plan:
    """A WHERE clause over `entity e`, and whether Python must still filter its rows."""

    where: str
    params: list[Any]
    exact: bool
    #: the query provably selects nothing
    empty: bool
    query: EntityQuery
    #: a count of the matches that needs no join (see `_fast_count`), when there is one
    count_sql: tuple[str, list[Any]] | None = None
    #: the geoproperty's key when only a `near` a Point is left to Python: it is then decided
    #: on the indexed Point coordinates (`near_scan`), without reading documents
    near_attr: int | None = None

    def near_scan(self, need: int | None) -> NearScan:
        """A scan deciding the `near` on indexed Points; `need` matches suffice (None: all)."""
        gq = self.query.geo
        assert gq is not None
        return NearScan(gq, need)

    def python_matches(self, doc: dict[str, Any]) -> bool:
        """Whether a candidate row's document satisfies the parts SQL did not decide."""
        q = self.query
        if q.q is not None and not qlang.matches(q.q, doc):
            return False
        if q.geo is not None and not geo_matches(q.geo, doc):
            return False
        return q.scope_q is None or scope_matches(q.scope_q, doc.get("scope"))


class NearScan:
    """Decides `near` a Point on (entity key, x, y) rows fed in key order.

    x/y are an indexed Point's exact coordinates, None for another geometry: an entity with
    such a geometry and no matching Point is `unsure` and needs `geo_matches` on its document.
    """

    def __init__(self, gq: GeoQuery, need: int | None) -> None:
        self.qx = float(gq.geojson["coordinates"][0])
        self.qy = float(gq.geojson["coordinates"][1])
        self.lo, self.hi = gq.min_distance, gq.max_distance
        self.need = need
        self.order: list[int] = []
        self.status: dict[int, int] = {}  # 1 match, 0 no match (yet), -1 needs the document
        self.matches = 0
        self.unsure = 0

    def feed(self, rows: Iterable[tuple[int, float | None, float | None]]) -> bool:
        """Consume rows; True once enough entities are decided (the rest may be skipped)."""
        status = self.status
        last = self.order[-1] if self.order else None
        for key, x, y in rows:
            if key != last:
                if last is not None and status[last] == 1:
                    self.matches += 1
                elif last is not None and status[last] == -1:
                    self.unsure += 1
                if self.need is not None and self.matches >= self.need and not self.unsure:
                    return True
                self.order.append(key)
                status[key] = 0
                last = key
            if status[key] == 1:
                continue
            if x is None or y is None:
                status[key] = -1
                continue
            # exactly `geo.geodesic_distance` for two Points (haversine, mean Earth radius)
            d = haversine_distance(x, y, self.qx, self.qy)
            if (self.hi is None or d <= self.hi) and (self.lo is None or d >= self.lo):
                status[key] = 1
        return False

    def result(self) -> tuple[list[int], set[int]]:
        """Entity keys (in order) that match or need their document checked; the latter."""
        keys = [k for k in self.order if self.status[k] != 0]
        return keys, {k for k in keys if self.status[k] == -1}


def query_iris(query: EntityQuery) -> set[str]:
    """Every IRI the plan needs a dictionary key for."""
    iris: set[str] = set()
    for conjunct in query.types or ():
        iris.update(conjunct)
    iris.update(query.attrs or ())
    if query.q is not None:
        iris.update(qlang.attr_names(query.q))
    if query.geo is not None:
        iris.add(query.geo.geoproperty)
    if query.readable is not None:
        iris.update(readable_iris(query.readable))
    return iris


def query_orgs(query: EntityQuery) -> set[str]:
    """Every organisation the plan needs a dictionary key for."""
    return (
        set()
        if query.readable is None
        else set(query.readable.owners) | {s.owner for s in query.readable.slices}
    )


def readable_iris(readable: Readable) -> set[str]:
    """The entity type IRIs `readable_condition` needs keys for."""
    return {t for s in readable.slices for t in s.types}


def readable_condition(
    dialect: Dialect,
    readable: Readable,
    keys: Mapping[str, int],
    org_keys: Mapping[str, int],
) -> tuple[str, list[Any]] | None:
    """SQL over `entity e` true exactly for the readable entities; None when none can be.

    `keys` and `org_keys` map the known type IRIs and organisation names to their keys; an
    unknown one selects nothing (fail closed), and so does an empty `Readable`. A scoped slice
    also requires a scope of the entity within the slice's (`Dialect.scope_within`).
    """
    owners = {k for org in readable.owners if (k := org_keys.get(org)) is not None}
    by_slice: dict[tuple[int, str], set[int]] = {}  # (owner, scope or "") -> type keys
    for org, types, scope in readable.slices:
        owner_key = org_keys.get(org)
        if owner_key is None or owner_key in owners:
            continue  # unknown: nothing to read; or already readable as a whole
        type_keys = {k for t in types if (k := keys.get(t)) is not None}
        if type_keys:
            by_slice.setdefault((owner_key, scope or ""), set()).update(type_keys)
    # an unscoped slice of an owner covers every scoped slice of it with a subset of its types
    for (owner_key, scope), type_keys in list(by_slice.items()):
        whole = by_slice.get((owner_key, ""))
        if scope and whole is not None and type_keys <= whole:
            del by_slice[(owner_key, scope)]
    parts: list[str] = []
    params: list[Any] = []
    if owners:
        sql, in_params = dialect.in_list("e.owner_key", sorted(owners))
        parts.append(sql)
        params += in_params
    if by_slice:
        alternatives = []
        for owner_key, scope in sorted(by_slice):
            sql, in_params = dialect.in_list("r.type_key", sorted(by_slice[(owner_key, scope)]))
            if scope:
                within, scope_params = dialect.scope_within(scope)
                alternatives.append(f"(e.owner_key = ? AND {sql} AND {within})")
                params += [owner_key, *in_params, *scope_params]
            else:
                alternatives.append(f"(e.owner_key = ? AND {sql})")
                params += [owner_key, *in_params]
        parts.append(
            "EXISTS (SELECT 1 FROM entity_type r WHERE r.tenant_key = e.tenant_key"
            f" AND r.entity_key = e.entity_key AND ({' OR '.join(alternatives)}))"
        )
    if not parts:
        return None
    return " OR ".join(f"({p})" for p in parts), params


def plan_query(
    dialect: Dialect,
    query: EntityQuery,
    tenant_key: int,
    keys: Mapping[str, int],
    opaque_attrs: frozenset[int] = frozenset(),
    typesets: Mapping[int, frozenset[int]] | None = None,
    multi_attrs: frozenset[int] = frozenset(),
    org_keys: Mapping[str, int] | None = None,
) -> Plan:
    """Compile `query` for one tenant; `keys` maps the known IRIs of `query_iris` to their keys.

    `typesets` (the tenant's type sets: key -> type keys) enables the join-free count;
    `org_keys` maps the known organisations of `query_orgs` to their keys.
    """
    tenant = "e.tenant_key"
    if query.geo is not None and bbox_prefilter(query.geo) is not None:
        # drive the scan from the spatial index, not from the tenant's entities in key order
        tenant = dialect.probe(tenant)
    conds: list[_Cond] = [_Cond(f"{tenant} = ?", [tenant_key])]
    if query.readable is not None:
        readable = readable_condition(dialect, query.readable, keys, org_keys or {})
        conds.append(_Cond(_FALSE) if readable is None else _Cond(*readable))
    if query.ids is not None:
        if len(query.ids) == 1:
            # a retrieve: a plain key lookup, no list to build and scan
            conds.append(_Cond("e.entity_id = ?", [query.ids[0]]))
        else:
            sql, params = dialect.in_list("e.entity_id", list(query.ids))
            conds.append(_Cond(sql, params))
    if query.id_pattern is not None:
        conds.append(_Cond(dialect.regex("e.entity_id"), [query.id_pattern]))
    if query.types is not None:
        conds.append(_types(dialect, query.types, keys))
    if query.attrs is not None:
        known = sorted(k for a in query.attrs if (k := keys.get(a)) is not None)
        if not known:
            conds.append(_Cond(_FALSE))
        else:
            sql, params = dialect.in_list("a.attr_key", known)
            conds.append(
                _Cond(
                    f"EXISTS (SELECT 1 FROM attr_value a WHERE a.entity_key = e.entity_key AND {sql})",
                    params,
                )
            )
    if query.q is not None:
        conds.append(_QCompiler(dialect, keys, opaque_attrs).compile(query.q))
    near_attr: int | None = None
    if query.geo is not None:
        before = all(c.exact for c in conds)
        conds.append(_geo(dialect, query, keys))
        gq = query.geo
        if (
            before
            and query.scope_q is None
            and gq.georel == "near"
            and gq.geojson["type"] == "Point"
        ):
            near_attr = keys.get(gq.geoproperty)
    if query.scope_q is not None:
        conds.append(_Cond(None, exact=False))
    where = " AND ".join(f"({c.sql})" for c in conds if c.sql is not None)
    params = [p for c in conds if c.sql is not None for p in c.params]
    exact = all(c.exact for c in conds)
    return Plan(
        where=where,
        params=params,
        exact=exact,
        empty=any(c.sql == _FALSE for c in conds),
        query=query,
        count_sql=(
            _readable_fast_count(
                dialect, query, keys, opaque_attrs, typesets, multi_attrs, org_keys or {}
            )
            if exact
            else None
        ),
        near_attr=near_attr,
    )


def _readable_fast_count(
    dialect: Dialect,
    query: EntityQuery,
    keys: Mapping[str, int],
    opaque_attrs: frozenset[int],
    typesets: Mapping[int, frozenset[int]] | None,
    multi_attrs: frozenset[int],
    org_keys: Mapping[str, int],
) -> tuple[str, list[Any]] | None:
    """`_fast_count`, also for a restricted query when the caller reads every owner's entities.

    The attribute-value index knows no owners, so a restricted count normally joins `entity`.
    But when every organisation that owns anything is among the caller's readable owners (one
    organisation's own platform; the trial mode), nothing is filtered out: the statement then
    counts on the index alone. The test is part of the same statement (one snapshot), and its
    answer is NULL when some other owner exists — the store then counts with the join.
    """
    if query.readable is None:
        return _fast_count(dialect, query, keys, opaque_attrs, typesets, multi_attrs)
    owners = sorted(k for org in query.readable.owners if (k := org_keys.get(org)) is not None)
    if not owners:
        return None
    found = _fast_count(
        dialect, replace(query, readable=None), keys, opaque_attrs, typesets, multi_attrs
    )
    if found is None:
        return None
    sql, params = found
    in_sql, in_params = dialect.in_list("o.org_key", owners)
    return (
        "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM organisation o WHERE NOT"
        f" ({in_sql})) THEN ({sql}) END",
        [*in_params, *params],
    )


def _fast_count(
    dialect: Dialect,
    query: EntityQuery,
    keys: Mapping[str, int],
    opaque_attrs: frozenset[int],
    typesets: Mapping[int, frozenset[int]] | None,
    multi_attrs: frozenset[int],
) -> tuple[str, list[Any]] | None:
    """`type=…&q=attr op value` counted on the attribute-value index alone, or None."""
    c = query.q
    if (
        typesets is None
        or not isinstance(c, qlang.Comparison)
        or c.op not in ("==", ">", ">=", "<", "<=")
        or query.ids is not None
        or query.id_pattern is not None
        or query.attrs is not None
        or query.geo is not None
        or query.scope_q is not None
        or query.readable is not None
    ):
        return None
    path = c.path
    if path.sub or path.json_path or path.meta is not None or path.linked is not None:
        return None
    key = keys.get(path.attr)
    if key is None or key in opaque_attrs:
        return None
    test = _QCompiler(dialect, keys, opaque_attrs, probe=False).value_test(c.op, c.value)
    if test is None:
        return None
    wanted = sorted(
        ts for ts, members in typesets.items() if _types_match(query.types, keys, members)
    )
    if not wanted:
        return f"SELECT 0 WHERE {_FALSE}", []
    in_sql, in_params = dialect.in_list("a.typeset_key", wanted)
    sql, params = test
    # one row per entity unless some entity has several for this attribute
    counted = "DISTINCT a.entity_key" if key in multi_attrs else "*"
    return (
        f"SELECT count({counted}) FROM attr_value a WHERE a.attr_key = ? AND {in_sql} AND ({sql})",
        [key, *in_params, *params],
    )


def _types_match(
    types: list[frozenset[str]] | None, keys: Mapping[str, int], members: frozenset[int]
) -> bool:
    if types is None:
        return True
    for conjunct in types:
        needed = [keys.get(t) for t in conjunct]
        if all(k is not None and k in members for k in needed):
            return True
    return False


def _types(dialect: Dialect, types: list[frozenset[str]], keys: Mapping[str, int]) -> _Cond:
    # NGSI-LD 1.8 §4.17: the type expression in disjunctive normal form.
    disjuncts: list[list[int]] = []
    for conjunct in types:
        resolved = [keys.get(t) for t in sorted(conjunct)]
        if all(k is not None for k in resolved):
            disjuncts.append([k for k in resolved if k is not None])
    if not disjuncts:
        return _Cond(_FALSE)
    one = "EXISTS (SELECT 1 FROM entity_type t WHERE t.tenant_key = e.tenant_key AND t.type_key = ? AND t.entity_key = e.entity_key)"
    if all(len(d) == 1 for d in disjuncts) and len(disjuncts) > 1:
        sql, params = dialect.in_list("t.type_key", sorted({d[0] for d in disjuncts}))
        return _Cond(
            "EXISTS (SELECT 1 FROM entity_type t WHERE t.tenant_key = e.tenant_key"
            f" AND {sql} AND t.entity_key = e.entity_key)",
            params,
        )
    parts = [" AND ".join([one] * len(d)) for d in disjuncts]
    return _Cond(" OR ".join(f"({p})" for p in parts), [k for d in disjuncts for k in d])


def _geo(dialect: Dialect, query: EntityQuery, keys: Mapping[str, int]) -> _Cond:
    gq = query.geo
    assert gq is not None
    attr_key = keys.get(gq.geoproperty)
    if attr_key is None:
        return _Cond(_FALSE)
    box = bbox_prefilter(gq)
    if box is None:
        return _Cond(
            "EXISTS (SELECT 1 FROM attr_value a WHERE a.entity_key = e.entity_key AND a.attr_key = ?)",
            [attr_key],
            exact=False,
        )
    minx, miny, maxx, maxy = box
    return _Cond(dialect.bbox(), [attr_key, minx, miny, maxx, maxy], exact=False)


_DATETIME_PREFIX = re.compile(r"\d{4}-\d{2}-\d{2}T")


def _is_datetime_text(value: str) -> bool:
    # qlang compares two ISO 8601 date-time strings as instants, not as text (§4.9); any string
    # that could be one stays with Python
    return _DATETIME_PREFIX.match(value) is not None


def _column(value: Any) -> str | None:
    """The column a query value compares exactly against, or None."""
    if isinstance(value, bool | datetime | date | time):
        return None
    if isinstance(value, int):
        return "num" if -MAX_EXACT_INT <= value <= MAX_EXACT_INT else None
    if isinstance(value, float):
        return "num"
    if isinstance(value, str):
        return None if _is_datetime_text(value) else "txt"
    return None


def _param(value: Any) -> Any:
    return float(value) if isinstance(value, int) else value


class _QCompiler:
    """q AST -> SQL conditions over `attr_value` (NGSI-LD 1.8 §4.9, as `qlang` evaluates it)."""

    def __init__(
        self,
        dialect: Dialect,
        keys: Mapping[str, int],
        opaque_attrs: frozenset[int],
        *,
        probe: bool = True,
    ) -> None:
        self.dialect = dialect
        self.col = dialect.probe if probe else (lambda column: column)
        self.keys = keys
        self.opaque_attrs = opaque_attrs

    def compile(self, expr: qlang.QExpr) -> _Cond:
        if isinstance(expr, qlang.And):
            parts = [self.compile(t) for t in expr.terms]
            kept = [p for p in parts if p.sql is not None]
            exact = all(p.exact for p in parts)
            if not kept:
                return _Cond(None, exact=exact)
            return _Cond(
                " AND ".join(f"({p.sql})" for p in kept), [x for p in kept for x in p.params], exact
            )
        if isinstance(expr, qlang.Or):
            parts = [self.compile(t) for t in expr.terms]
            if any(p.sql is None for p in parts):
                return _Cond(None, exact=False)
            return _Cond(
                " OR ".join(f"({p.sql})" for p in parts),
                [x for p in parts for x in p.params],
                all(p.exact for p in parts),
            )
        return self.term(expr)

    def term(self, c: qlang.Comparison) -> _Cond:
        path = c.path
        if path.attr in qlang.ENTITY_MEMBERS:
            return _Cond(None, exact=False)
        plain = not path.sub and not path.json_path and path.meta is None and path.linked is None
        key = self.keys.get(path.attr)
        if c.op == "!exists":
            if not plain:
                return _Cond(None, exact=False)
            if key is None:
                return _Cond(None)
            return _Cond(f"NOT ({_exists('')})", [key])
        # every other term needs an instance of the top-level attribute
        if key is None:
            return _Cond(_FALSE)
        exists = _Cond(_exists(""), [key], exact=False)
        if not plain:
            return exists
        if c.op is None:
            return _Cond(_exists(""), [key])
        if c.op == "!=" or c.op in ("~=", "!~="):
            return exists
        test = self.value_test(c.op, c.value)
        if test is None:
            return exists
        sql, params = test
        exact = key not in self.opaque_attrs
        if not exact:
            sql = f"({sql}) OR a.opaque = 1"
        return _Cond(_exists(f" AND ({sql})"), [key, *params], exact)

    def value_test(self, op: str, value: Any) -> tuple[str, list[Any]] | None:
        """A condition on one `attr_value a` row equivalent to `qlang` on that element."""
        if op == "==":
            if isinstance(value, qlang.ValueList):
                tests = [self.value_test("==", v) for v in value.items]
                if any(t is None for t in tests):
                    return None
                return (
                    " OR ".join(f"({t[0]})" for t in tests if t is not None),
                    [p for t in tests if t is not None for p in t[1]],
                )
            if isinstance(value, qlang.Range):
                col = _column(value.lo)
                if col is None or col != _column(value.hi):
                    return None
                lo, hi = sorted((value.lo, value.hi))  # type: ignore[type-var]
                return f"{self.col('a.' + col)} BETWEEN ? AND ?", [_param(lo), _param(hi)]
            col = _column(value)
            if col is None:
                return None
            return f"{self.col('a.' + col)} = ?", [_param(value)]
        if op in (">", ">=", "<", "<="):
            col = _column(value)
            if col is None:
                return None
            if col == "txt":
                # NGSI-LD 1.8 §4.9: ordering never holds on a Relationship (numbers never are one)
                return f"{self.col('a.txt')} {op} ? AND a.kind NOT IN ({_REL})", [value]
            return f"{self.col('a.num')} {op} ?", [_param(value)]
        return None


def _exists(extra: str) -> str:
    return f"EXISTS (SELECT 1 FROM attr_value a WHERE a.entity_key = e.entity_key AND a.attr_key = ?{extra})"
