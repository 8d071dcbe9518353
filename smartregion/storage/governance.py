"""Governance records in storage: the `GovernanceStore` interface, its values and its SQL.

Contract (every backend; `tests/storage/test_governance_contract.py`):

- Organisations, people, memberships, API keys, mandates, data sets, access requests, agreements
  and grants are kept one row per object (an id, the columns looked up by, and the object as
  JSON). `create_*` returns False when the id (or another unique value: a KBO number, a NIS code,
  an e-mail address) is taken; lists come in creation order.
- Every change takes an `AuditEvent` and appends it to the hash-chained audit log
  (`smartregion.core.audit`) *in the same transaction*: a change is never committed without its
  audit row, nor the row without the change. Appends are serialised by the row lock on
  `audit_head` (its `UPDATE … RETURNING` is the first write of the append), so the chain stays a
  chain under any number of concurrent writers.
- Approving an access request is one transaction: the request leaves `pending` (only once: a
  second approval or a refusal returns False), and the agreement and the grant are created.

The SQL is the same on both backends (JSON kept as text, times as ISO 8601 UTC strings, `?`
placeholders rewritten for psycopg), so each operation is written once, here, as a *program*: a
generator that yields `Sql` statements and receives their `SqlResult`. A backend only drives
programs inside one transaction (`_run_governance`): SQLite on its writer thread under
`BEGIN IMMEDIATE`, PostgreSQL on a pooled connection's transaction.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson

from smartregion.core.audit import GENESIS, AuditEvent, AuditRecord, record_hash
from smartregion.storage.base import Slice

__all__ = [
    "AccessRequest",
    "Agreement",
    "ApiKey",
    "Dataset",
    "GovernanceStore",
    "Grant",
    "Mandate",
    "Membership",
    "Organisation",
    "Person",
    "Program",
    "ReaderRecords",
    "Sql",
    "SqlResult",
]

R = TypeVar("R")


@dataclass(slots=True)
class Organisation:
    """A body that owns data: municipality, province, region/agency, company, …"""

    id: str
    name: str
    kind: str
    #: KBO/BCE enterprise number, 10 digits (normalised)
    kbo: str | None = None
    #: NIS/INS code (municipalities, provinces)
    nis: str | None = None
    created_at: str = ""


@dataclass(slots=True)
class Person:
    """A human account; belongs to organisations through memberships."""

    id: str
    email: str
    name: str
    #: argon2id encoded hash (never the password)
    password_hash: str
    created_at: str = ""


@dataclass(slots=True)
class Membership:
    """A person's role in an organisation."""

    person_id: str
    org_id: str
    role: str

    @property
    def id(self) -> str:
        """The row id: one membership per (person, organisation)."""
        return f"{self.person_id}\x1f{self.org_id}"


@dataclass(slots=True)
class ApiKey:
    """A service account's key: only its hash is stored."""

    id: str
    org_id: str
    role: str
    #: SHA-256 hex digest of the whole key
    secret_hash: str
    label: str = ""
    created_at: str = ""
    expires_at: str | None = None
    revoked_at: str | None = None


@dataclass(slots=True)
class Mandate:
    """`owner_org` lets `mandated_org` write into its data sets (one, or all when None)."""

    id: str
    owner_org: str
    mandated_org: str
    dataset_id: str | None = None
    created_at: str = ""
    revoked_at: str | None = None


@dataclass(slots=True)
class Dataset:
    """A named, described selection of one owner's data, with its access policy."""

    id: str
    owner_org: str
    #: language tag -> text ("nl", "en")
    title: dict[str, str]
    description: dict[str, str] = field(default_factory=dict)
    #: expanded entity type IRIs
    entity_types: list[str] = field(default_factory=list)
    scope: str | None = None
    theme: str | None = None
    license: str | None = None
    #: "open" | "restricted" | "private"
    policy_kind: str = "private"
    #: the ODRL policy document (`smartregion.core.policies`)
    policy: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    modified_at: str = ""
    #: days of attribute history kept for its entities (None: the default setting; 0: forever)
    retention_days: int | None = None
    #: days its roll-ups are kept (None: the default setting; 0: as long as the raw history)
    rollup_retention_days: int | None = None
    #: attribute classes and open-view rules (`core.privacy.Privacy.to_json`); {}: none
    privacy: dict[str, Any] = field(default_factory=dict)

    @property
    def selection(self) -> Slice:
        """The entities the data set selects: its owner's, of its types, within its scope."""
        return Slice(self.owner_org, frozenset(self.entity_types), self.scope)


@dataclass(slots=True)
class AccessRequest:
    """An organisation asks a data set's owner for access."""

    id: str
    dataset_id: str
    owner_org: str
    requester_org: str
    purpose: str
    start: str | None = None
    end: str | None = None
    #: "pending" | "approved" | "refused"
    status: str = "pending"
    created_at: str = ""
    decided_at: str | None = None
    decided_by: str | None = None
    agreement_id: str | None = None


@dataclass(slots=True)
class Agreement:
    """The frozen terms both parties agreed to (a copy of the policy at approval time)."""

    id: str
    request_id: str
    dataset_id: str
    provider_org: str
    consumer_org: str
    purpose: str
    policy: dict[str, Any]
    created_at: str = ""


@dataclass(slots=True)
class Grant:
    """The right an agreement gives: `org_id` may read the data set until `expires_at`."""

    id: str
    agreement_id: str
    dataset_id: str
    owner_org: str
    org_id: str
    purpose: str
    created_at: str = ""
    expires_at: str | None = None
    revoked_at: str | None = None


@dataclass(slots=True)
class ReaderRecords:
    """What a read decision about one organisation (or anonymous) needs, read at one instant."""

    organisation: Organisation | None = None
    #: mandates the organisation received and that are not revoked
    mandates: list[Mandate] = field(default_factory=list)
    #: grants the organisation holds that are not revoked (expiry is the caller's to check)
    grants: list[Grant] = field(default_factory=list)
    #: the agreements of those grants, by id
    agreements: dict[str, Agreement] = field(default_factory=dict)
    #: every data set
    datasets: list[Dataset] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Sql:
    """One statement of a program (`?` placeholders)."""

    text: str
    params: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class SqlResult:
    """What a statement returned."""

    rows: list[tuple[Any, ...]]
    rowcount: int


#: an operation: yields statements, receives their results, returns its value
Program = Generator[Sql, SqlResult, R]


@dataclass(frozen=True, slots=True)
class _Table:
    name: str
    cls: type[Any]
    #: looked-up columns beside `id` (attributes of the object)
    columns: tuple[str, ...] = ()


_ORG = _Table("gov_organisation", Organisation, ("kbo", "nis"))
_PERSON = _Table("gov_person", Person, ("email",))
_MEMBERSHIP = _Table("gov_membership", Membership, ("person_id", "org_id"))
_KEY = _Table("gov_api_key", ApiKey, ("org_id",))
_MANDATE = _Table("gov_mandate", Mandate, ("owner_org", "mandated_org"))
_DATASET = _Table("gov_dataset", Dataset, ("owner_org",))
_REQUEST = _Table("gov_access_request", AccessRequest, ("dataset_id", "owner_org", "requester_org"))
_AGREEMENT = _Table("gov_agreement", Agreement, ("dataset_id",))
_GRANT = _Table("gov_grant", Grant, ("dataset_id", "owner_org", "org_id"))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _doc(obj: Any) -> str:
    return orjson.dumps(dataclasses.asdict(obj)).decode()


def _load(table: _Table, text: str) -> Any:
    return table.cls(**orjson.loads(text))


def _insert(table: _Table, obj: Any) -> Program[bool]:
    cols = ("id", *table.columns, "doc")
    values = (obj.id, *(getattr(obj, c) for c in table.columns), _doc(obj))
    marks = ", ".join("?" for _ in cols)
    result = yield Sql(
        f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({marks}) ON CONFLICT DO NOTHING",
        values,
    )
    return result.rowcount > 0


def _replace(table: _Table, obj: Any) -> Program[bool]:
    sets = ", ".join(f"{c} = ?" for c in (*table.columns, "doc"))
    values = (*(getattr(obj, c) for c in table.columns), _doc(obj), obj.id)
    result = yield Sql(f"UPDATE {table.name} SET {sets} WHERE id = ?", values)
    return result.rowcount > 0


def _get(table: _Table, column: str, value: Any) -> Program[Any]:
    result = yield Sql(f"SELECT doc FROM {table.name} WHERE {column} = ?", (value,))
    return _load(table, result.rows[0][0]) if result.rows else None


def _list(table: _Table, where: str = "", params: tuple[Any, ...] = ()) -> Program[list[Any]]:
    clause = f" WHERE {where}" if where else ""
    result = yield Sql(f"SELECT doc FROM {table.name}{clause} ORDER BY seq", params)
    return [_load(table, row[0]) for row in result.rows]


def _append(event: AuditEvent) -> Program[AuditRecord]:
    """Append one audit record (inside the caller's transaction)."""
    yield Sql(
        "INSERT INTO audit_head (one, seq, hash) VALUES (1, 0, ?) ON CONFLICT DO NOTHING",
        (GENESIS,),
    )
    # the first write: takes the head's row lock until commit (serialises appenders)
    head = yield Sql("UPDATE audit_head SET seq = seq + 1 WHERE one = 1 RETURNING seq, hash")
    seq, prev = int(head.rows[0][0]), str(head.rows[0][1])
    at = _now()
    digest = record_hash(prev, seq, at, event.actor, event.action, event.subject, event.detail)
    yield Sql(
        "INSERT INTO audit_log (seq, at, actor, action, subject, detail, prev_hash, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            seq,
            at,
            event.actor,
            event.action,
            event.subject,
            orjson.dumps(event.detail, option=orjson.OPT_SORT_KEYS).decode(),
            prev,
            digest,
        ),
    )
    yield Sql("UPDATE audit_head SET hash = ? WHERE one = 1", (digest,))
    return AuditRecord(
        seq, at, event.actor, event.action, event.subject, event.detail, prev, digest
    )


def _audited(change: Program[bool], audit: AuditEvent) -> Program[bool]:
    """Run a change; when it changed something, append its audit record."""
    changed = yield from change
    if changed:
        yield from _append(audit)
    return changed


def _stamp_revoked(table: _Table, obj_id: str, at: str) -> Program[bool]:
    obj = yield from _get(table, "id", obj_id)
    if obj is None or obj.revoked_at is not None:
        return False
    obj.revoked_at = at
    return (yield from _replace(table, obj))


class GovernanceStore(abc.ABC):
    """Where governance records and the audit chain live (see the module docstring)."""

    @abc.abstractmethod
    async def _run_governance(self, program: Program[R], *, write: bool) -> R:
        """Drive `program` to completion inside one transaction."""

    # --- organisations and people ----------------------------------------------------------

    async def create_organisation(self, org: Organisation, *, audit: AuditEvent) -> bool:
        """Insert an organisation; False when its id, KBO number or NIS code is taken."""
        return await self._run_governance(_audited(_insert(_ORG, org), audit), write=True)

    async def get_organisation(self, org_id: str) -> Organisation | None:
        """One organisation, or None."""
        found: Organisation | None = await self._run_governance(
            _get(_ORG, "id", org_id), write=False
        )
        return found

    async def list_organisations(self) -> list[Organisation]:
        """Every organisation in creation order."""
        return await self._run_governance(_list(_ORG), write=False)

    async def create_person(self, person: Person, *, audit: AuditEvent) -> bool:
        """Insert a person; False when the id or e-mail address is taken."""
        return await self._run_governance(_audited(_insert(_PERSON, person), audit), write=True)

    async def get_person(self, person_id: str) -> Person | None:
        """One person, or None."""
        found: Person | None = await self._run_governance(
            _get(_PERSON, "id", person_id), write=False
        )
        return found

    async def get_person_by_email(self, email: str) -> Person | None:
        """The person with this e-mail address, or None."""
        found: Person | None = await self._run_governance(
            _get(_PERSON, "email", email), write=False
        )
        return found

    # --- memberships -----------------------------------------------------------------------

    async def put_membership(self, membership: Membership, *, audit: AuditEvent) -> None:
        """Create a membership or change its role."""

        def run() -> Program[bool]:
            if not (yield from _replace(_MEMBERSHIP, membership)):
                yield from _insert(_MEMBERSHIP, membership)
            return True

        await self._run_governance(_audited(run(), audit), write=True)

    async def delete_membership(self, person_id: str, org_id: str, *, audit: AuditEvent) -> bool:
        """Remove a membership; whether it existed."""

        def run() -> Program[bool]:
            result = yield Sql(
                "DELETE FROM gov_membership WHERE person_id = ? AND org_id = ?", (person_id, org_id)
            )
            return result.rowcount > 0

        return await self._run_governance(_audited(run(), audit), write=True)

    async def list_memberships(
        self, *, person_id: str | None = None, org_id: str | None = None
    ) -> list[Membership]:
        """Memberships of a person and/or of an organisation."""
        where, params = _filters(person_id=person_id, org_id=org_id)
        return await self._run_governance(_list(_MEMBERSHIP, where, params), write=False)

    # --- API keys --------------------------------------------------------------------------

    async def create_api_key(self, key: ApiKey, *, audit: AuditEvent) -> bool:
        """Insert a key record; False when its id is taken."""
        return await self._run_governance(_audited(_insert(_KEY, key), audit), write=True)

    async def get_api_key(self, key_id: str) -> ApiKey | None:
        """One key record, or None."""
        found: ApiKey | None = await self._run_governance(_get(_KEY, "id", key_id), write=False)
        return found

    async def list_api_keys(self, org_id: str) -> list[ApiKey]:
        """An organisation's keys (revoked ones included)."""
        return await self._run_governance(_list(_KEY, "org_id = ?", (org_id,)), write=False)

    async def revoke_api_key(self, key_id: str, at: str, *, audit: AuditEvent) -> bool:
        """Mark a key revoked; False when unknown or already revoked."""
        return await self._run_governance(
            _audited(_stamp_revoked(_KEY, key_id, at), audit), write=True
        )

    # --- mandates --------------------------------------------------------------------------

    async def create_mandate(self, mandate: Mandate, *, audit: AuditEvent) -> bool:
        """Insert a mandate; False when its id is taken."""
        return await self._run_governance(_audited(_insert(_MANDATE, mandate), audit), write=True)

    async def get_mandate(self, mandate_id: str) -> Mandate | None:
        """One mandate, or None."""
        found: Mandate | None = await self._run_governance(
            _get(_MANDATE, "id", mandate_id), write=False
        )
        return found

    async def list_mandates(self, org_id: str) -> list[Mandate]:
        """Mandates an organisation gave or received (revoked ones included)."""
        return await self._run_governance(
            _list(_MANDATE, "owner_org = ? OR mandated_org = ?", (org_id, org_id)), write=False
        )

    async def revoke_mandate(self, mandate_id: str, at: str, *, audit: AuditEvent) -> bool:
        """Mark a mandate revoked; False when unknown or already revoked."""
        return await self._run_governance(
            _audited(_stamp_revoked(_MANDATE, mandate_id, at), audit), write=True
        )

    # --- data sets -------------------------------------------------------------------------

    async def create_dataset(self, dataset: Dataset, *, audit: AuditEvent) -> bool:
        """Insert a data set; False when its id is taken."""
        return await self._run_governance(_audited(_insert(_DATASET, dataset), audit), write=True)

    async def replace_dataset(self, dataset: Dataset, *, audit: AuditEvent) -> bool:
        """Replace a data set's record; False when it does not exist."""
        return await self._run_governance(_audited(_replace(_DATASET, dataset), audit), write=True)

    async def get_dataset(self, dataset_id: str) -> Dataset | None:
        """One data set, or None."""
        found: Dataset | None = await self._run_governance(
            _get(_DATASET, "id", dataset_id), write=False
        )
        return found

    async def list_datasets(self, *, owner_org: str | None = None) -> list[Dataset]:
        """Every data set, or one owner's."""
        where, params = _filters(owner_org=owner_org)
        return await self._run_governance(_list(_DATASET, where, params), write=False)

    # --- access requests, agreements, grants -----------------------------------------------

    async def create_access_request(self, request: AccessRequest, *, audit: AuditEvent) -> bool:
        """Insert a pending request; False when its id is taken."""
        return await self._run_governance(_audited(_insert(_REQUEST, request), audit), write=True)

    async def get_access_request(self, request_id: str) -> AccessRequest | None:
        """One access request, or None."""
        found: AccessRequest | None = await self._run_governance(
            _get(_REQUEST, "id", request_id), write=False
        )
        return found

    async def list_access_requests(self, org_id: str) -> list[AccessRequest]:
        """Requests an organisation made or received."""
        return await self._run_governance(
            _list(_REQUEST, "owner_org = ? OR requester_org = ?", (org_id, org_id)), write=False
        )

    async def approve_access_request(
        self,
        request_id: str,
        *,
        decided_at: str,
        decided_by: str,
        agreement: Agreement,
        grant: Grant,
        audit: AuditEvent,
    ) -> bool:
        """Approve a pending request, creating its agreement and grant (one transaction)."""

        def run() -> Program[bool]:
            request = yield from _get(_REQUEST, "id", request_id)
            if request is None or request.status != "pending":
                return False
            request.status, request.decided_at, request.decided_by = (
                "approved",
                decided_at,
                decided_by,
            )
            request.agreement_id = agreement.id
            yield from _replace(_REQUEST, request)
            if not (yield from _insert(_AGREEMENT, agreement)):
                raise RuntimeError(f"agreement id {agreement.id} is taken")
            if not (yield from _insert(_GRANT, grant)):
                raise RuntimeError(f"grant id {grant.id} is taken")
            return True

        return await self._run_governance(_audited(run(), audit), write=True)

    async def refuse_access_request(
        self, request_id: str, *, decided_at: str, decided_by: str, audit: AuditEvent
    ) -> bool:
        """Refuse a pending request; False when it is not pending."""

        def run() -> Program[bool]:
            request = yield from _get(_REQUEST, "id", request_id)
            if request is None or request.status != "pending":
                return False
            request.status, request.decided_at, request.decided_by = (
                "refused",
                decided_at,
                decided_by,
            )
            return (yield from _replace(_REQUEST, request))

        return await self._run_governance(_audited(run(), audit), write=True)

    async def get_agreement(self, agreement_id: str) -> Agreement | None:
        """One agreement, or None."""
        found: Agreement | None = await self._run_governance(
            _get(_AGREEMENT, "id", agreement_id), write=False
        )
        return found

    async def get_grant(self, grant_id: str) -> Grant | None:
        """One grant, or None."""
        found: Grant | None = await self._run_governance(_get(_GRANT, "id", grant_id), write=False)
        return found

    async def list_grants(
        self, *, org_id: str | None = None, dataset_id: str | None = None
    ) -> list[Grant]:
        """Grants an organisation holds or gave (revoked/expired included), optionally of one data set."""
        clauses: list[str] = []
        params: list[Any] = []
        if org_id is not None:
            clauses.append("(org_id = ? OR owner_org = ?)")
            params += [org_id, org_id]
        if dataset_id is not None:
            clauses.append("dataset_id = ?")
            params.append(dataset_id)
        return await self._run_governance(
            _list(_GRANT, " AND ".join(clauses), tuple(params)), write=False
        )

    async def reader_records(self, org_id: str | None) -> ReaderRecords:
        """Everything `Governance.readable_for` needs, in one read transaction (one round trip)."""

        def run() -> Program[ReaderRecords]:
            records = ReaderRecords()
            if org_id is not None:
                records.organisation = yield from _get(_ORG, "id", org_id)
                mandates: list[Mandate] = yield from _list(_MANDATE, "mandated_org = ?", (org_id,))
                records.mandates = [m for m in mandates if m.revoked_at is None]
                grants: list[Grant] = yield from _list(_GRANT, "org_id = ?", (org_id,))
                records.grants = [g for g in grants if g.revoked_at is None]
                for grant in records.grants:
                    agreement = yield from _get(_AGREEMENT, "id", grant.agreement_id)
                    if agreement is not None:
                        records.agreements[agreement.id] = agreement
            records.datasets = yield from _list(_DATASET)
            return records

        return await self._run_governance(run(), write=False)

    async def revoke_grant(self, grant_id: str, at: str, *, audit: AuditEvent) -> bool:
        """Mark a grant revoked; False when unknown or already revoked."""
        return await self._run_governance(
            _audited(_stamp_revoked(_GRANT, grant_id, at), audit), write=True
        )

    # --- the audit chain -------------------------------------------------------------------

    async def append_audit(self, event: AuditEvent) -> AuditRecord:
        """Record an event that changes nothing else (e.g. a refused authentication)."""
        return await self._run_governance(_append(event), write=True)

    async def audit_records(self, *, after: int = 0, limit: int = 10_000) -> list[AuditRecord]:
        """Audit records with seq > `after`, in order, at most `limit`."""

        def run() -> Program[list[AuditRecord]]:
            result = yield Sql(
                "SELECT seq, at, actor, action, subject, detail, prev_hash, hash FROM audit_log"
                " WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            )
            return [
                AuditRecord(int(r[0]), r[1], r[2], r[3], r[4], orjson.loads(r[5]), r[6], r[7])
                for r in result.rows
            ]

        return await self._run_governance(run(), write=False)

    async def audit_head(self) -> tuple[int, str] | None:
        """(last seq, last hash) of the chain, or None before the first record."""

        def run() -> Program[tuple[int, str] | None]:
            result = yield Sql("SELECT seq, hash FROM audit_head WHERE one = 1")
            return (int(result.rows[0][0]), str(result.rows[0][1])) if result.rows else None

        return await self._run_governance(run(), write=False)


def _filters(**equal: str | None) -> tuple[str, tuple[Any, ...]]:
    given = {k: v for k, v in equal.items() if v is not None}
    return " AND ".join(f"{k} = ?" for k in given), tuple(given.values())
