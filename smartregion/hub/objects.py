"""The hub service: create, replace, delete, read, search and export hub objects.

Every rule lives here (the HTTP API is thin over it):

- Anyone may read: the hub is a public showcase (like CKAN's public catalogue).
- Members with the editor role (or admin) create objects for their organisation and change or
  delete their organisation's objects; the platform organisation's admins moderate: they may
  change or delete anyone's (the governance rule, `Governance.is_platform_admin`).
- An object names only what exists: its owner and partner organisations, the objects and data
  sets it links to, and taxonomy terms (unknown ones are a 400, and nothing is written).
- A change is written only over the version it was based on: two concurrent edits never lose
  one silently (the second is a Conflict, to be retried on a fresh read).
- Every change is audited in the governance hash chain, in the change's transaction.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from smartregion.core.audit import AuditEvent
from smartregion.core.taxonomy import Taxonomy, scheme_of
from smartregion.core.words import words
from smartregion.errors import AlreadyExists, BadRequestData, Conflict, ResourceNotFound
from smartregion.governance import Forbidden, Governance, Principal, iso
from smartregion.hub.kinds import KINDS, Kind, References, slug
from smartregion.storage.hub import SORTS, HubObject, HubPage, HubQuery, HubStore

__all__ = ["EXPORT_LIMIT", "Filters", "Hub", "title_of"]

#: the most objects one export returns (a larger catalogue is exported by narrower filters)
EXPORT_LIMIT = 10_000
_ID = re.compile(r"[a-z0-9][a-z0-9-]{1,99}")
#: ids that name endpoints or portal pages beside the objects' (`/initiatives/report`,
#: `/funding/eligibility`, `/challenges/similar`, the portal's `/challenges/new` and
#: `/funding/calendar`)
_RESERVED = frozenset({"report", "export", "eligibility", "similar", "new", "calendar"})


@dataclass(frozen=True, slots=True)
class Filters:
    """What a list or export selects."""

    terms: Sequence[str] = ()
    q: str = ""
    statuses: Sequence[str] = ()
    owners: Sequence[str] = ()
    owner_kinds: Sequence[str] = ()


def _utc_now() -> datetime:
    return datetime.now(UTC)


def title_of(fields: dict[str, Any]) -> str:
    """The sort title: the Dutch title, else the English one."""
    title = fields.get("title") or {}
    return str(title.get("nl") or title.get("en") or "")


class Hub:
    """Hub objects over a store that keeps governance records too (see the module docstring)."""

    def __init__(
        self,
        store: HubStore,
        governance: Governance,
        taxonomy: Taxonomy,
        *,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.store = store
        self.governance = governance
        self.taxonomy = taxonomy
        self.clock = clock

    def now(self) -> str:
        """The current time in the governance records' format."""
        return iso(self.clock())

    @staticmethod
    def kind(name: str) -> Kind:
        """The kind named `name` (a programming error when unknown)."""
        return KINDS[name]

    # --- permissions -----------------------------------------------------------------------

    async def may_edit(self, principal: Principal, owner: str) -> bool:
        """Whether `principal` may change objects of `owner` (its editors, platform admins)."""
        if principal.org_id == owner and principal.has_role("editor"):
            return True
        return await self.governance.is_platform_admin(principal)

    async def _require_edit(self, principal: Principal, owner: str) -> None:
        if not await self.may_edit(principal, owner):
            raise Forbidden(f"needs the editor role in organisation {owner!r} (or platform admin)")

    # --- checks ----------------------------------------------------------------------------

    async def _check_references(self, refs: References) -> None:
        for org_id in sorted(refs.orgs):
            if await self.governance.store.get_organisation(org_id) is None:
                raise BadRequestData(f"no organisation {org_id!r}")
        for org_id in sorted(refs.local_governments):
            org = await self.governance.store.get_organisation(org_id)
            if org is None or org.kind not in ("municipality", "province"):
                raise BadRequestData(f"{org_id!r} is not a municipality or province")
        for dataset_id in sorted(refs.datasets):
            if await self.governance.store.get_dataset(dataset_id) is None:
                raise BadRequestData(f"no data set {dataset_id!r}")
        for kind, ids in refs.objects.items():
            found = {o.id for o in await self.store.get_hub_objects(sorted(ids)) if o.kind == kind}
            missing = sorted(ids - found)
            if missing:
                raise BadRequestData(f"no {kind} {', '.join(map(repr, missing[:5]))}")
        self.taxonomy.check(sorted(refs.terms))

    def _index(self, kind: Kind, fields: dict[str, Any]) -> tuple[list[str], list[str]]:
        keys = sorted(self.taxonomy.expand(fields.get("terms", [])) | set(kind.keys(fields)))
        return keys, words(kind.words_of(fields))

    async def _prepare(self, kind: Kind, fields: dict[str, Any]) -> tuple[list[str], list[str]]:
        status = fields.get(kind.status_field)
        if status not in kind.statuses:
            raise BadRequestData(f"{kind.status_field} must be one of {list(kind.statuses)}")
        fields["terms"] = self.taxonomy.check(fields.get("terms", []))
        await self._check_references(kind.references(fields))
        return self._index(kind, fields)

    # --- writes ----------------------------------------------------------------------------

    async def create(
        self,
        principal: Principal,
        kind_name: str,
        fields: dict[str, Any],
        *,
        object_id: str | None = None,
        owner: str | None = None,
    ) -> HubObject:
        """Create an object for `owner` (default: the caller's organisation)."""
        kind = self.kind(kind_name)
        owner = owner or principal.org_id
        await self._require_edit(principal, owner)
        org = await self.governance.store.get_organisation(owner)
        if org is None:
            raise BadRequestData(f"no organisation {owner!r}")
        if kind.name == "actor":
            # one profile per organisation, found at a predictable id
            object_id = object_id or f"actor-{slug(owner)}"
        elif object_id is None:
            object_id = (
                f"{slug(title_of(fields))[:60].strip('-') or kind.name}-{secrets.token_hex(3)}"
            )
        if not _ID.fullmatch(object_id) or object_id in _RESERVED:
            raise BadRequestData(f"{object_id!r} is not a valid id (a-z, 0-9, -; 2 to 100 long)")
        keys, found_words = await self._prepare(kind, fields)
        at = self.now()
        obj = HubObject(
            object_id,
            kind.name,
            owner,
            org.kind,
            fields[kind.status_field],
            title_of(fields),
            at,
            at,
            fields,
        )
        audit = AuditEvent(principal.actor, f"hub.{kind.name}.create", object_id, {"owner": owner})
        if not await self.store.create_hub_object(obj, keys, found_words, audit=audit):
            raise AlreadyExists(f"an object with id {object_id!r} exists")
        return obj

    async def replace(
        self, principal: Principal, kind_name: str, object_id: str, fields: dict[str, Any]
    ) -> HubObject:
        """Replace an object's fields (its owner, id and creation time stay)."""
        kind = self.kind(kind_name)
        current = await self.get(kind_name, object_id)
        await self._require_edit(principal, current.owner)
        keys, found_words = await self._prepare(kind, fields)
        org = await self.governance.store.get_organisation(current.owner)
        obj = HubObject(
            object_id,
            kind.name,
            current.owner,
            org.kind if org else current.owner_kind,
            fields[kind.status_field],
            title_of(fields),
            current.created_at,
            max(self.now(), current.updated_at),
            fields,
            current.endorsements,
        )
        audit = AuditEvent(
            principal.actor, f"hub.{kind.name}.update", object_id, {"owner": current.owner}
        )
        if not await self.store.replace_hub_object(
            obj, keys, found_words, expected_updated_at=current.updated_at, audit=audit
        ):
            raise Conflict(f"{object_id!r} was changed or deleted meanwhile; read it again")
        return obj

    async def delete(self, principal: Principal, kind_name: str, object_id: str) -> None:
        """Delete an object with its endorsements and adoptions."""
        current = await self.get(kind_name, object_id)
        await self._require_edit(principal, current.owner)
        audit = AuditEvent(
            principal.actor, f"hub.{kind_name}.delete", object_id, {"owner": current.owner}
        )
        if not await self.store.delete_hub_object(object_id, audit=audit):
            raise ResourceNotFound(f"no {kind_name} {object_id!r}")

    # --- reads -----------------------------------------------------------------------------

    async def get(self, kind_name: str, object_id: str) -> HubObject:
        """One object of the kind, or ResourceNotFound."""
        obj = await self.store.get_hub_object(object_id)
        if obj is None or obj.kind != kind_name:
            raise ResourceNotFound(f"no {kind_name} {object_id!r}")
        return obj

    def _query(self, kind: Kind, filters: Filters, **rest: Any) -> HubQuery:
        for term in filters.terms:
            prefix = term.partition(":")[0]
            if scheme_of(term) is None and prefix not in kind.key_prefixes:
                raise BadRequestData(
                    f"{term!r} is neither a taxonomy term nor a {kind.name} key"
                    f" ({', '.join(p + ':…' for p in kind.key_prefixes) or 'none'})"
                )
        if rest.get("sort", "-updated") not in SORTS:
            raise BadRequestData(f"sort must be one of {list(SORTS)}")
        return HubQuery(
            kind.name,
            keys=tuple(dict.fromkeys(filters.terms)),
            words=words([filters.q])[:20],
            statuses=tuple(filters.statuses),
            owners=tuple(filters.owners),
            owner_kinds=tuple(filters.owner_kinds),
            **rest,
        )

    async def search(
        self,
        kind_name: str,
        filters: Filters,
        *,
        sort: str = "-updated",
        limit: int = 20,
        offset: int = 0,
        facets: bool = True,
    ) -> HubPage:
        """A page of the matching objects, their count and their facets."""
        query = self._query(
            self.kind(kind_name), filters, sort=sort, limit=limit, offset=offset, facets=facets
        )
        return await self.store.query_hub_objects(query)

    async def export(
        self, kind_name: str, filters: Filters, *, sort: str = "-updated"
    ) -> list[HubObject]:
        """Every matching object (at most EXPORT_LIMIT), for CSV/JSON export and reports."""
        query = self._query(self.kind(kind_name), filters, sort=sort, limit=EXPORT_LIMIT)
        return (await self.store.query_hub_objects(query)).items
