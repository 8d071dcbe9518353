"""Ecosystem hub records in storage: the `HubStore` interface, its values and its SQL.

Contract (every backend; `tests/storage/test_hub_contract.py`):

- Every hub object (actor profile, initiative, use case, challenge, solution, funding
  instrument, story) is one `hub_object` row: its id, kind, owner organisation (and that
  organisation's kind), status, a sort title, times, its endorsement count and the object as
  JSON. Beside it, `hub_key` holds the object's filter keys (taxonomy terms with their ancestors,
  and kind-specific keys such as `funder:…`) and `hub_word` its search words; both are replaced
  with the row, in the same transaction, so a query never sees an object with stale keys.
- A query (`HubQuery`) filters on keys (all must hold), words (each a prefix of some word of the
  object), statuses, owners and owner kinds (any of each), pages in a stable order and counts the
  matches and, when asked, the facets of the matches (keys, statuses, owner kinds, owners).
- One endorsement per (object, organisation): a second one changes nothing and returns False;
  the object's count is kept in the same transaction.
- A use case's adoption by a municipality is one current row; every change also appends an
  adoption event, so scale-up is tracked over time.
- A follow's last digest time moves only by compare-and-set (`claim_digest`), so two processes
  running the digest job never both send one digest; dismissals are one per (follow, object).
- Every change appends its audit record in the same transaction (the governance audit chain).

Like the governance records, the SQL is the same on both backends (JSON as text, ISO times), so
each operation is written once here as a program that `GovernanceStore._run_governance` drives.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from smartregion.core.audit import AuditEvent
from smartregion.storage.governance import Program, Sql, _append

__all__ = [
    "SORTS",
    "Adoption",
    "AdoptionEvent",
    "Dismissal",
    "Endorsement",
    "Follow",
    "HubObject",
    "HubPage",
    "HubQuery",
    "HubStore",
]

R = TypeVar("R")
T = TypeVar("T")

#: sort name -> ORDER BY (every order ends on seq, so pages are stable)
SORTS: dict[str, str] = {
    "-updated": "o.updated_at DESC, o.seq DESC",
    "updated": "o.updated_at, o.seq",
    "-created": "o.created_at DESC, o.seq DESC",
    "title": "o.title, o.seq",
    "-endorsements": "o.endorsements DESC, o.updated_at DESC, o.seq DESC",
}

_COLUMNS = "o.id, o.kind, o.owner, o.owner_kind, o.status, o.title, o.created_at, o.updated_at, o.endorsements, o.doc"


@dataclass(slots=True)
class HubObject:
    """One hub object: the indexed columns and the kind's fields (`doc`)."""

    id: str
    kind: str
    owner: str
    owner_kind: str
    status: str
    #: what lists sort on by title (the Dutch title, else the English one)
    title: str
    created_at: str
    updated_at: str
    doc: dict[str, Any]
    endorsements: int = 0


@dataclass(slots=True)
class HubQuery:
    """What a list asks for (empty filters select everything of the kind)."""

    kind: str
    keys: Sequence[str] = ()
    words: Sequence[str] = ()
    statuses: Sequence[str] = ()
    owners: Sequence[str] = ()
    owner_kinds: Sequence[str] = ()
    sort: str = "-updated"
    limit: int = 20
    offset: int = 0
    facets: bool = False
    #: only objects changed after this time (ISO, as stored)
    updated_after: str | None = None


@dataclass(slots=True)
class HubPage:
    """One page of matches, how many there are, and the facets of all matches."""

    items: list[HubObject]
    total: int
    #: facet name ("key", "status", "owner_kind", "owner") -> value -> count
    facets: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass(slots=True)
class Endorsement:
    """A local government vouches for a use case."""

    object_id: str
    org_id: str
    at: str
    actor: str


@dataclass(slots=True)
class Adoption:
    """How far a municipality has taken up a use case, now."""

    object_id: str
    municipality: str
    stage: str
    updated_at: str


@dataclass(slots=True)
class AdoptionEvent:
    """One step of a use case's scale-up (`stage` None: the adoption was withdrawn)."""

    seq: int
    object_id: str
    municipality: str
    stage: str | None
    at: str
    actor: str
    note: str = ""


@dataclass(slots=True)
class Follow:
    """A member's standing question: "tell me what is new about `target`" (a term or object)."""

    id: str
    org_id: str
    email: str
    #: a taxonomy term (or kind key) or an object id
    target: str
    #: "daily" | "weekly" | "none" (kept, listed on the portal, never e-mailed)
    frequency: str
    lang: str
    created_at: str
    created_by: str
    #: only these kinds (empty: every kind)
    kinds: list[str] = field(default_factory=list)
    #: the last digest's time ("" before the first)
    last_sent_at: str = ""


@dataclass(slots=True)
class Dismissal:
    """A follower marked an object "not relevant" for one follow."""

    follow_id: str
    object_id: str
    at: str
    actor: str


_FOLLOW_FIELDS = (
    "id",
    "org_id",
    "email",
    "target",
    "frequency",
    "lang",
    "created_at",
    "created_by",
    "kinds",
)


def _follow(row: Sequence[Any]) -> Follow:
    return Follow(**orjson.loads(row[0]), last_sent_at=row[1])


def _row(row: Sequence[Any]) -> HubObject:
    return HubObject(
        id=row[0],
        kind=row[1],
        owner=row[2],
        owner_kind=row[3],
        status=row[4],
        title=row[5],
        created_at=row[6],
        updated_at=row[7],
        endorsements=int(row[8]),
        doc=orjson.loads(row[9]),
    )


def _each(make: Callable[[Sequence[Any]], T], text: str, *params: Any) -> Program[list[T]]:
    """A read of many rows, each made into a `T`."""
    result = yield Sql(text, params)
    return [make(r) for r in result.rows]


def _get(object_id: str) -> Program[HubObject | None]:
    result = yield Sql(f"SELECT {_COLUMNS} FROM hub_object o WHERE o.id = ?", (object_id,))
    return _row(result.rows[0]) if result.rows else None


def _index(seq: int, keys: Sequence[str], words: Sequence[str]) -> Program[None]:
    yield Sql("DELETE FROM hub_key WHERE object_seq = ?", (seq,))
    yield Sql("DELETE FROM hub_word WHERE object_seq = ?", (seq,))
    for key in sorted(set(keys)):
        yield Sql("INSERT INTO hub_key (term, object_seq) VALUES (?, ?)", (key, seq))
    for word in sorted(set(words)):
        yield Sql("INSERT INTO hub_word (word, object_seq) VALUES (?, ?)", (word, seq))


def _where(query: HubQuery) -> tuple[str, list[Any]]:
    clauses = ["o.kind = ?"]
    params: list[Any] = [query.kind]
    for key in query.keys:
        clauses.append("o.seq IN (SELECT object_seq FROM hub_key WHERE term = ?)")
        params.append(key)
    for word in query.words:
        # a prefix is a range of the (word, object) index in byte order: words are [0-9a-z]
        # only (core.words), and the last letter's successor bounds it ('ab' -> ['ab', 'ac'))
        clauses.append("o.seq IN (SELECT object_seq FROM hub_word WHERE word >= ? AND word < ?)")
        params += [word, word[:-1] + chr(ord(word[-1]) + 1)]
    if query.updated_after is not None:
        clauses.append("o.updated_at > ?")
        params.append(query.updated_after)
    for column, values in (
        ("o.status", query.statuses),
        ("o.owner", query.owners),
        ("o.owner_kind", query.owner_kinds),
    ):
        if values:
            clauses.append(f"{column} IN ({', '.join('?' for _ in values)})")
            params.extend(values)
    return " AND ".join(clauses), params


#: facet name -> (the value counted, the rows it is counted over); every facet counts the
#: objects the query matches
_FACETS: dict[str, tuple[str, str]] = {
    "key": ("k.term", "hub_key k JOIN hub_object o ON o.seq = k.object_seq"),
    "status": ("o.status", "hub_object o"),
    "owner_kind": ("o.owner_kind", "hub_object o"),
    "owner": ("o.owner", "hub_object o"),
}


def _statements(query: HubQuery) -> tuple[Sql, Sql, Sql | None]:
    """A query's statements, each over the same WHERE: the count, the page and (asked) the
    facets, all four facets in one statement (one `UNION ALL` branch each)."""
    where, params = _where(query)

    def select(what: str, rows: str = "hub_object o", tail: str = "") -> str:
        return f"SELECT {what} FROM {rows} WHERE {where}{tail}"

    count = Sql(select("count(*)"), tuple(params))
    page = Sql(
        select(_COLUMNS, tail=f" ORDER BY {SORTS[query.sort]} LIMIT ? OFFSET ?"),
        (*params, query.limit, query.offset),
    )
    if not query.facets:
        return count, page, None
    facets = Sql(
        " UNION ALL ".join(
            select(f"'{name}', {value}, count(*)", rows, f" GROUP BY {value}")
            for name, (value, rows) in _FACETS.items()
        ),
        tuple(params) * len(_FACETS),
    )
    return count, page, facets


class HubStore(abc.ABC):
    """Where hub objects, endorsements and adoptions live (see the module docstring)."""

    @abc.abstractmethod
    async def _run_governance(self, program: Program[R], *, write: bool) -> R:
        """Drive `program` to completion inside one transaction (GovernanceStore)."""

    # --- objects ---------------------------------------------------------------------------

    async def create_hub_object(
        self, obj: HubObject, keys: Sequence[str], words: Sequence[str], *, audit: AuditEvent
    ) -> bool:
        """Insert an object with its keys and words; False when its id is taken."""

        def run() -> Program[bool]:
            result = yield Sql(
                "INSERT INTO hub_object (id, kind, owner, owner_kind, status, title, created_at,"
                " updated_at, endorsements, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?)"
                " ON CONFLICT DO NOTHING RETURNING seq",
                (
                    obj.id,
                    obj.kind,
                    obj.owner,
                    obj.owner_kind,
                    obj.status,
                    obj.title,
                    obj.created_at,
                    obj.updated_at,
                    orjson.dumps(obj.doc).decode(),
                ),
            )
            if not result.rows:
                return False
            yield from _index(int(result.rows[0][0]), keys, words)
            yield from _append(audit)
            return True

        return await self._run_governance(run(), write=True)

    async def replace_hub_object(
        self,
        obj: HubObject,
        keys: Sequence[str],
        words: Sequence[str],
        *,
        expected_updated_at: str | None = None,
        audit: AuditEvent,
    ) -> bool:
        """Replace an object (not its creation time, owner or endorsements) and its index; False
        when it does not exist or, given `expected_updated_at`, was changed meanwhile."""

        def run() -> Program[bool]:
            sql = (
                "UPDATE hub_object SET owner_kind = ?, status = ?, title = ?, updated_at = ?,"
                " doc = ? WHERE id = ? AND kind = ?"
            )
            params: list[Any] = [
                obj.owner_kind,
                obj.status,
                obj.title,
                obj.updated_at,
                orjson.dumps(obj.doc).decode(),
                obj.id,
                obj.kind,
            ]
            if expected_updated_at is not None:
                sql += " AND updated_at = ?"
                params.append(expected_updated_at)
            result = yield Sql(sql + " RETURNING seq", tuple(params))
            if not result.rows:
                return False
            yield from _index(int(result.rows[0][0]), keys, words)
            yield from _append(audit)
            return True

        return await self._run_governance(run(), write=True)

    async def delete_hub_object(self, object_id: str, *, audit: AuditEvent) -> bool:
        """Delete an object with its index, endorsements, adoptions and match dismissals; whether
        it existed."""

        def run() -> Program[bool]:
            result = yield Sql("DELETE FROM hub_object WHERE id = ? RETURNING seq", (object_id,))
            if not result.rows:
                return False
            seq = int(result.rows[0][0])
            yield Sql("DELETE FROM hub_key WHERE object_seq = ?", (seq,))
            yield Sql("DELETE FROM hub_word WHERE object_seq = ?", (seq,))
            yield Sql("DELETE FROM hub_endorsement WHERE object_id = ?", (object_id,))
            yield Sql("DELETE FROM hub_adoption WHERE object_id = ?", (object_id,))
            yield Sql("DELETE FROM hub_adoption_event WHERE object_id = ?", (object_id,))
            # "not relevant" feedback naming it (storage/matchfeedback.py)
            yield Sql(
                "DELETE FROM hub_match_dismissal WHERE challenge_id = ? OR solution_id = ?",
                (object_id, object_id),
            )
            yield from _append(audit)
            return True

        return await self._run_governance(run(), write=True)

    async def get_hub_object(self, object_id: str) -> HubObject | None:
        """One object, or None."""
        return await self._run_governance(_get(object_id), write=False)

    async def get_hub_objects(self, object_ids: Sequence[str]) -> list[HubObject]:
        """The objects among `object_ids` that exist, in no particular order."""

        def run() -> Program[list[HubObject]]:
            if not object_ids:
                return []
            marks = ", ".join("?" for _ in object_ids)
            result = yield Sql(
                f"SELECT {_COLUMNS} FROM hub_object o WHERE o.id IN ({marks})", tuple(object_ids)
            )
            return [_row(r) for r in result.rows]

        return await self._run_governance(run(), write=False)

    async def query_hub_objects(self, query: HubQuery) -> HubPage:
        """A page of the objects matching `query`, their count and (asked) their facets."""
        if query.sort not in SORTS:
            raise ValueError(f"unknown sort {query.sort!r}")

        def run() -> Program[HubPage]:
            count, rows, facets = _statements(query)
            total = yield count
            page = yield rows
            out = HubPage([_row(r) for r in page.rows], int(total.rows[0][0]))
            if facets is not None:
                counted = yield facets
                out.facets = {name: {} for name in _FACETS}
                for name, value, n in counted.rows:
                    out.facets[str(name)][str(value)] = int(n)
            return out

        return await self._run_governance(run(), write=False)

    # --- endorsements ----------------------------------------------------------------------

    async def endorse_hub_object(self, endorsement: Endorsement, *, audit: AuditEvent) -> bool:
        """Record an organisation's endorsement; False when it had endorsed the object already
        (or the object does not exist)."""

        def run() -> Program[bool]:
            exists = yield Sql("SELECT 1 FROM hub_object WHERE id = ?", (endorsement.object_id,))
            if not exists.rows:
                return False
            result = yield Sql(
                "INSERT INTO hub_endorsement (object_id, org_id, at, actor) VALUES (?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (endorsement.object_id, endorsement.org_id, endorsement.at, endorsement.actor),
            )
            if result.rowcount <= 0:
                return False
            yield Sql(
                "UPDATE hub_object SET endorsements = endorsements + 1 WHERE id = ?",
                (endorsement.object_id,),
            )
            yield from _append(audit)
            return True

        return await self._run_governance(run(), write=True)

    async def withdraw_endorsement(self, object_id: str, org_id: str, *, audit: AuditEvent) -> bool:
        """Remove an organisation's endorsement; whether there was one."""

        def run() -> Program[bool]:
            result = yield Sql(
                "DELETE FROM hub_endorsement WHERE object_id = ? AND org_id = ?",
                (object_id, org_id),
            )
            if result.rowcount <= 0:
                return False
            yield Sql(
                "UPDATE hub_object SET endorsements = endorsements - 1 WHERE id = ?", (object_id,)
            )
            yield from _append(audit)
            return True

        return await self._run_governance(run(), write=True)

    async def list_endorsements(self, object_id: str) -> list[Endorsement]:
        """An object's endorsements, oldest first."""
        return await self._run_governance(
            _each(
                lambda r: Endorsement(*r),
                "SELECT object_id, org_id, at, actor FROM hub_endorsement WHERE object_id = ?"
                " ORDER BY at, org_id",
                object_id,
            ),
            write=False,
        )

    # --- adoptions (scale-up) --------------------------------------------------------------

    async def set_adoption(self, event: AdoptionEvent, *, audit: AuditEvent) -> bool:
        """Set (stage) or withdraw (stage None) a municipality's adoption of an object and
        append the event; False when nothing changes (same stage, or nothing to withdraw)."""

        def run() -> Program[bool]:
            current = yield Sql(
                "SELECT stage FROM hub_adoption WHERE object_id = ? AND municipality = ?",
                (event.object_id, event.municipality),
            )
            before = current.rows[0][0] if current.rows else None
            if before == event.stage:
                return False
            if event.stage is None:
                yield Sql(
                    "DELETE FROM hub_adoption WHERE object_id = ? AND municipality = ?",
                    (event.object_id, event.municipality),
                )
            elif before is None:
                yield Sql(
                    "INSERT INTO hub_adoption (object_id, municipality, stage, updated_at)"
                    " VALUES (?, ?, ?, ?)",
                    (event.object_id, event.municipality, event.stage, event.at),
                )
            else:
                yield Sql(
                    "UPDATE hub_adoption SET stage = ?, updated_at = ?"
                    " WHERE object_id = ? AND municipality = ?",
                    (event.stage, event.at, event.object_id, event.municipality),
                )
            yield Sql(
                "INSERT INTO hub_adoption_event (object_id, municipality, stage, at, actor, note)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    event.object_id,
                    event.municipality,
                    event.stage,
                    event.at,
                    event.actor,
                    event.note,
                ),
            )
            yield from _append(audit)
            return True

        return await self._run_governance(run(), write=True)

    async def list_adoptions(self, object_id: str) -> list[Adoption]:
        """An object's current adoptions, by municipality."""
        return await self._run_governance(
            _each(
                lambda r: Adoption(*r),
                "SELECT object_id, municipality, stage, updated_at FROM hub_adoption"
                " WHERE object_id = ? ORDER BY municipality",
                object_id,
            ),
            write=False,
        )

    async def adoption_history(self, object_id: str) -> list[AdoptionEvent]:
        """Every adoption event of an object, in the order they happened."""
        return await self._run_governance(
            _each(
                lambda r: AdoptionEvent(int(r[0]), *r[1:]),
                "SELECT seq, object_id, municipality, stage, at, actor, note"
                " FROM hub_adoption_event WHERE object_id = ? ORDER BY seq",
                object_id,
            ),
            write=False,
        )

    # --- follows and dismissals ------------------------------------------------------------

    async def create_follow(self, follow: Follow, *, audit: AuditEvent) -> bool:
        """Insert a follow; False when its id is taken."""

        def run() -> Program[bool]:
            doc = orjson.dumps({k: getattr(follow, k) for k in _FOLLOW_FIELDS}).decode()
            result = yield Sql(
                "INSERT INTO hub_follow (id, org_id, doc, last_sent_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (follow.id, follow.org_id, doc, follow.last_sent_at),
            )
            if result.rowcount <= 0:
                return False
            yield from _append(audit)
            return True

        return await self._run_governance(run(), write=True)

    async def get_follow(self, follow_id: str) -> Follow | None:
        """One follow, or None."""

        def run() -> Program[Follow | None]:
            result = yield Sql(
                "SELECT doc, last_sent_at FROM hub_follow WHERE id = ?", (follow_id,)
            )
            return _follow(result.rows[0]) if result.rows else None

        return await self._run_governance(run(), write=False)

    async def list_follows(self, org_id: str | None = None) -> list[Follow]:
        """An organisation's follows (None: every follow), oldest first."""
        if org_id is None:
            program = _each(_follow, "SELECT doc, last_sent_at FROM hub_follow ORDER BY seq")
        else:
            program = _each(
                _follow,
                "SELECT doc, last_sent_at FROM hub_follow WHERE org_id = ? ORDER BY seq",
                org_id,
            )
        return await self._run_governance(program, write=False)

    async def delete_follow(self, follow_id: str, *, audit: AuditEvent) -> bool:
        """Delete a follow and its dismissals; whether it existed."""

        def run() -> Program[bool]:
            result = yield Sql("DELETE FROM hub_follow WHERE id = ?", (follow_id,))
            if result.rowcount <= 0:
                return False
            yield Sql("DELETE FROM hub_dismissal WHERE follow_id = ?", (follow_id,))
            yield from _append(audit)
            return True

        return await self._run_governance(run(), write=True)

    async def replace_follow(self, follow: Follow, *, audit: AuditEvent) -> bool:
        """Store a follow's changed settings (frequency, e-mail address, language, kinds); its
        last digest time stays. False when it no longer exists."""

        def run() -> Program[bool]:
            doc = orjson.dumps({k: getattr(follow, k) for k in _FOLLOW_FIELDS}).decode()
            result = yield Sql("UPDATE hub_follow SET doc = ? WHERE id = ?", (doc, follow.id))
            if result.rowcount <= 0:
                return False
            yield from _append(audit)
            return True

        return await self._run_governance(run(), write=True)

    async def claim_digest(self, follow_id: str, previous: str, sent_at: str) -> bool:
        """Move a follow's last digest time from `previous` to `sent_at`; False when another
        process did first (so one digest is sent once however many workers run the job)."""

        def run() -> Program[bool]:
            result = yield Sql(
                "UPDATE hub_follow SET last_sent_at = ? WHERE id = ? AND last_sent_at = ?",
                (sent_at, follow_id, previous),
            )
            return result.rowcount > 0

        return await self._run_governance(run(), write=True)

    async def dismiss(self, dismissal: Dismissal, *, audit: AuditEvent) -> bool:
        """Record "not relevant"; False when it was recorded already."""

        def run() -> Program[bool]:
            result = yield Sql(
                "INSERT INTO hub_dismissal (follow_id, object_id, at, actor) VALUES (?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (dismissal.follow_id, dismissal.object_id, dismissal.at, dismissal.actor),
            )
            if result.rowcount <= 0:
                return False
            yield from _append(audit)
            return True

        return await self._run_governance(run(), write=True)

    async def list_dismissals(self, follow_id: str) -> list[Dismissal]:
        """What a follow's owners marked "not relevant", oldest first."""
        return await self._run_governance(
            _each(
                lambda r: Dismissal(*r),
                "SELECT follow_id, object_id, at, actor FROM hub_dismissal WHERE follow_id = ?"
                " ORDER BY at, object_id",
                follow_id,
            ),
            write=False,
        )
