"""The governance service: organisations, people, keys, mandates, data sets, access in trust.

Every operation takes the acting `Principal` and checks, here and only here, that it may act:
the HTTP admin API and the CLI are thin over these methods. Rules (docs/security.md):

- The *platform organisation* is the first organisation ever created (bootstrapped from the
  CLI); its admins register further organisations and may issue keys for any organisation.
- An organisation's admins manage its members, keys, data sets and their policies, the mandates
  it gives, and decide on access requests to its data sets (and revoke the grants that follow).
- Editors may request access to others' data sets for their organisation; readers may list.

Every change is written with its audit record in one transaction (`GovernanceStore`).
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from smartregion.core.audit import AuditEvent, verify_chain
from smartregion.core.jsonld import core_term_map
from smartregion.core.policies import (
    ORGANISATION_KINDS,
    AccessContext,
    evaluate,
    open_policy,
    parse_instant,
    private_policy,
    restricted_policy,
)
from smartregion.core.privacy import Access, Disclosure, Privacy, SliceView
from smartregion.core.scopes import DATASET_SCOPE
from smartregion.errors import AlreadyExists, BadRequestData, ResourceNotFound, Unauthenticated
from smartregion.governance.identifiers import normalise_kbo, normalise_nis
from smartregion.governance.keys import hash_key, issue_key, key_matches, parse_key
from smartregion.governance.ownership import WriteAccess
from smartregion.governance.passwords import hash_password, verify_password
from smartregion.governance.principals import ROLES, Forbidden, Principal
from smartregion.storage.base import Readable, Slice
from smartregion.storage.governance import (
    AccessRequest,
    Agreement,
    ApiKey,
    Dataset,
    GovernanceStore,
    Grant,
    Mandate,
    Membership,
    Organisation,
    Person,
    ReaderRecords,
)
from smartregion.storage.ingestion import DeadLetter, IngestionStore

__all__ = [
    "DEFAULT_OPEN_LICENSE",
    "POLICY_KINDS",
    "THEMES",
    "Governance",
    "IssuedApiKey",
    "iso",
    "parse_time",
]

#: the six focus domains of the strategy
THEMES = ("mobility", "environment", "living", "people", "government", "economy")
POLICY_KINDS = ("open", "restricted", "private")
#: the licence of an open data set when none is given
DEFAULT_OPEN_LICENSE = "https://creativecommons.org/licenses/by/4.0/"

_ORG_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_OBJECT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,255}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{2,63}")
_URI = re.compile(r"(https?://|urn:)\S+")
_NIS_KINDS = ("municipality", "province")


@functools.cache
def _dummy_hash() -> str:
    """Verified when the e-mail address is unknown, so that both failures cost the same time."""
    return hash_password("no account has this password, ever")


@dataclass(frozen=True, slots=True)
class IssuedApiKey:
    """A freshly created key: its record and the key itself (shown once, never stored)."""

    record: ApiKey
    key: str


def iso(moment: datetime) -> str:
    """UTC, microseconds, `Z`: the one time format of governance records (sorts as text)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _check(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise BadRequestData(f"{value!r} is not a valid {what}")
    return value


def check_retention(raw_days: int | None, rollup_days: int | None) -> None:
    """Refuse a retention that cannot hold: negative days, or roll-ups kept for a shorter time
    than the raw history they summarise (0 means forever for raw data, "as long as the raw
    data" for roll-ups: docs/operations.md, Retention)."""
    for value, what in ((raw_days, "retention_days"), (rollup_days, "rollup_retention_days")):
        if value is not None and (not isinstance(value, int) or value < 0):
            raise BadRequestData(f"{what} must be a whole number of days, 0 or more")
    if raw_days and rollup_days and rollup_days < raw_days:
        raise BadRequestData(
            "rollup_retention_days must be at least retention_days: roll-ups never go before"
            " the raw history they summarise"
        )


def _texts(value: str | dict[str, str] | None, what: str) -> dict[str, str]:
    if value is None:
        return {}
    texts = {"nl": value} if isinstance(value, str) else dict(value)
    if not all(
        lang in ("nl", "en") and isinstance(t, str) and t.strip() for lang, t in texts.items()
    ):
        raise BadRequestData(f"{what} is text in nl and/or en")
    return texts


class Governance:
    """Governance operations over a `GovernanceStore` (see the module docstring)."""

    def __init__(self, store: GovernanceStore, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self.store = store
        self.clock = clock

    def _now(self) -> str:
        return iso(self.clock())

    async def _is_platform_admin(self, principal: Principal) -> bool:
        if principal.operator:
            return True
        orgs = await self.store.list_organisations()
        return bool(orgs) and orgs[0].id == principal.org_id and principal.has_role("admin")

    async def is_platform_admin(self, principal: Principal) -> bool:
        """Whether `principal` is the operator or an admin of the platform organisation."""
        return await self._is_platform_admin(principal)

    async def _require(self, principal: Principal, org_id: str, role: str) -> None:
        """Act for `org_id` with `role`, or be a platform admin."""
        if principal.org_id == org_id and principal.has_role(role):
            return
        if await self._is_platform_admin(principal):
            return
        principal.require(org_id, role)

    # --- organisations ---------------------------------------------------------------------

    async def create_organisation(
        self,
        principal: Principal,
        org_id: str,
        name: str,
        kind: str,
        *,
        kbo: str | None = None,
        nis: str | None = None,
    ) -> Organisation:
        """Register an organisation (operator, or an admin of the platform organisation)."""
        if not await self._is_platform_admin(principal):
            raise Forbidden("only the platform organisation's admins register organisations")
        _check(_ORG_ID, org_id, "organisation id (lower-case letters, digits, . _ -)")
        if not name.strip():
            raise BadRequestData("an organisation needs a name")
        if kind not in ORGANISATION_KINDS:
            raise BadRequestData(f"kind must be one of {list(ORGANISATION_KINDS)}")
        if nis is not None and kind not in _NIS_KINDS:
            raise BadRequestData("only municipalities and provinces have a NIS code")
        org = Organisation(
            id=org_id,
            name=name.strip(),
            kind=kind,
            kbo=normalise_kbo(kbo) if kbo else None,
            nis=normalise_nis(nis) if nis else None,
            created_at=self._now(),
        )
        if await self.store.get_organisation(org_id) is not None:
            raise AlreadyExists(f"organisation {org_id!r} exists")
        audit = AuditEvent(principal.actor, "organisation.create", org_id, {"kind": kind})
        if not await self.store.create_organisation(org, audit=audit):
            raise AlreadyExists("an organisation with this KBO number or NIS code exists")
        return org

    async def get_organisation(self, org_id: str) -> Organisation:
        """One organisation, or ResourceNotFound."""
        org = await self.store.get_organisation(org_id)
        if org is None:
            raise ResourceNotFound(f"no organisation {org_id!r}")
        return org

    async def list_organisations(self) -> list[Organisation]:
        """Every organisation (names and kinds are public)."""
        return await self.store.list_organisations()

    # --- people and memberships ------------------------------------------------------------

    async def create_person(
        self, principal: Principal, person_id: str, email: str, name: str, password: str
    ) -> Person:
        """Create a person account with an argon2id password hash (platform admins)."""
        if not await self._is_platform_admin(principal):
            raise Forbidden("only the platform organisation's admins create accounts")
        _check(_ORG_ID, person_id, "person id")
        _check(_EMAIL, email, "e-mail address")
        person = Person(
            person_id, email.lower(), name.strip(), hash_password(password), self._now()
        )
        # the audit record names the id only: no e-mail address or name (personal data)
        audit = AuditEvent(principal.actor, "person.create", person_id)
        if not await self.store.create_person(person, audit=audit):
            raise AlreadyExists("a person with this id or e-mail address exists")
        return person

    async def set_membership(
        self, principal: Principal, person_id: str, org_id: str, role: str
    ) -> Membership:
        """Give a person a role in an organisation (that organisation's admins)."""
        if role not in ROLES:
            raise BadRequestData(f"role must be one of {list(ROLES)}")
        await self.get_organisation(org_id)
        await self._require(principal, org_id, "admin")
        if await self.store.get_person(person_id) is None:
            raise ResourceNotFound(f"no person {person_id!r}")
        membership = Membership(person_id, org_id, role)
        audit = AuditEvent(
            principal.actor, "membership.set", org_id, {"person": person_id, "role": role}
        )
        await self.store.put_membership(membership, audit=audit)
        return membership

    async def remove_membership(self, principal: Principal, person_id: str, org_id: str) -> None:
        """End a person's membership of an organisation."""
        await self._require(principal, org_id, "admin")
        audit = AuditEvent(principal.actor, "membership.remove", org_id, {"person": person_id})
        if not await self.store.delete_membership(person_id, org_id, audit=audit):
            raise ResourceNotFound(f"{person_id!r} is no member of {org_id!r}")

    async def list_memberships(self, principal: Principal, org_id: str) -> list[Membership]:
        """An organisation's members (its members may see them)."""
        await self._require(principal, org_id, "reader")
        return await self.store.list_memberships(org_id=org_id)

    async def sign_in(self, email: str, password: str) -> tuple[Person, list[Membership]]:
        """The person with this e-mail address and password, and their memberships.

        Unauthenticated with one message for every failure (no such person, wrong password, no
        membership), after the same argon2 work, so the answer tells nothing about accounts;
        each refusal is audited without the address or the password.
        """
        person = await self.store.get_person_by_email(email.strip().lower())
        encoded = person.password_hash if person is not None else _dummy_hash()
        matches = verify_password(encoded, password)
        memberships = (
            await self.store.list_memberships(person_id=person.id)
            if person is not None and matches
            else []
        )
        if person is None or not matches or not memberships:
            await self.store.append_audit(
                AuditEvent(
                    "anonymous", "auth.refused", "-", {"reason": "password", "interface": "portal"}
                )
            )
            raise Unauthenticated("the e-mail address or the password is not right")
        await self.store.append_audit(AuditEvent(f"person:{person.id}", "auth.sign_in", person.id))
        return person, sorted(memberships, key=lambda m: m.org_id)

    # --- API keys --------------------------------------------------------------------------

    async def create_api_key(
        self,
        principal: Principal,
        org_id: str,
        *,
        role: str = "editor",
        expires_at: datetime | None = None,
        label: str = "",
    ) -> IssuedApiKey:
        """Issue a service-account key for an organisation; the key is returned only here."""
        if role not in ROLES:
            raise BadRequestData(f"role must be one of {list(ROLES)}")
        await self.get_organisation(org_id)
        await self._require(principal, org_id, "admin")
        if expires_at is not None:
            if expires_at.tzinfo is None:
                raise BadRequestData("an expiry needs a time zone offset (e.g. Z)")
            if expires_at <= self.clock():
                raise BadRequestData("the expiry is in the past")
        issued = issue_key()
        record = ApiKey(
            id=issued.key_id,
            org_id=org_id,
            role=role,
            secret_hash=hash_key(issued.key),
            label=label[:200],
            created_at=self._now(),
            expires_at=iso(expires_at) if expires_at else None,
        )
        audit = AuditEvent(
            principal.actor,
            "key.create",
            issued.key_id,
            {"org": org_id, "role": role, "expires": record.expires_at},
        )
        if not await self.store.create_api_key(record, audit=audit):
            raise AlreadyExists("key id collision; try again")  # 2^-64: practically never
        return IssuedApiKey(record, issued.key)

    async def revoke_api_key(self, principal: Principal, key_id: str) -> ApiKey:
        """Revoke a key: it is refused from the very next request on."""
        record = await self.store.get_api_key(key_id)
        if record is None:
            raise ResourceNotFound(f"no key {key_id!r}")
        await self._require(principal, record.org_id, "admin")
        audit = AuditEvent(principal.actor, "key.revoke", key_id, {"org": record.org_id})
        if not await self.store.revoke_api_key(key_id, self._now(), audit=audit):
            raise AlreadyExists(f"key {key_id!r} is already revoked")
        revoked = await self.store.get_api_key(key_id)
        assert revoked is not None
        return revoked

    async def list_api_keys(self, principal: Principal, org_id: str) -> list[ApiKey]:
        """An organisation's keys (admins only; hashes are never rendered)."""
        await self._require(principal, org_id, "admin")
        return await self.store.list_api_keys(org_id)

    async def authenticate_key(self, key: str) -> Principal:
        """The principal of a presented API key; Unauthenticated when it is not valid now.

        One message for every failure: the caller learns nothing about which check failed.
        """
        refused = Unauthenticated("invalid, expired or revoked credentials")
        key_id = parse_key(key)
        if key_id is None:
            raise refused
        record = await self.store.get_api_key(key_id)
        if record is None or not key_matches(key, record.secret_hash):
            raise refused
        if record.revoked_at is not None:
            raise refused
        if record.expires_at is not None and record.expires_at <= self._now():
            raise refused
        return Principal(org_id=record.org_id, role=record.role, key_id=record.id)

    # --- mandates --------------------------------------------------------------------------

    async def create_mandate(
        self,
        principal: Principal,
        owner_org: str,
        mandated_org: str,
        *,
        dataset_id: str | None = None,
    ) -> Mandate:
        """Let `mandated_org` write into `owner_org`'s data sets (one, or all)."""
        await self.get_organisation(owner_org)
        await self.get_organisation(mandated_org)
        await self._require(principal, owner_org, "admin")
        if owner_org == mandated_org:
            raise BadRequestData("an organisation needs no mandate of its own")
        if dataset_id is not None:
            dataset = await self.get_dataset(dataset_id)
            if dataset.owner_org != owner_org:
                raise BadRequestData(f"data set {dataset_id!r} is not {owner_org!r}'s")
        mandate = Mandate(
            f"urn:smartregion:Mandate:{uuid.uuid4()}",
            owner_org,
            mandated_org,
            dataset_id,
            self._now(),
        )
        audit = AuditEvent(
            principal.actor,
            "mandate.create",
            mandate.id,
            {"owner": owner_org, "mandated": mandated_org, "dataset": dataset_id},
        )
        await self.store.create_mandate(mandate, audit=audit)
        return mandate

    async def revoke_mandate(self, principal: Principal, mandate_id: str) -> Mandate:
        """Revoke a mandate (the owner's admins)."""
        mandate = await self.store.get_mandate(mandate_id)
        if mandate is None:
            raise ResourceNotFound(f"no mandate {mandate_id!r}")
        await self._require(principal, mandate.owner_org, "admin")
        audit = AuditEvent(
            principal.actor, "mandate.revoke", mandate_id, {"owner": mandate.owner_org}
        )
        if not await self.store.revoke_mandate(mandate_id, self._now(), audit=audit):
            raise AlreadyExists(f"mandate {mandate_id!r} is already revoked")
        revoked = await self.store.get_mandate(mandate_id)
        assert revoked is not None
        return revoked

    async def list_mandates(self, principal: Principal, org_id: str) -> list[Mandate]:
        """Mandates an organisation gave or received."""
        await self._require(principal, org_id, "reader")
        return await self.store.list_mandates(org_id)

    async def dead_letters(
        self, principal: Principal, org_id: str, *, tenant: str | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        """What the MQTT bridge could not ingest for an organisation, newest first: its members
        see it (docs/ingestion.md)."""
        await self._require(principal, org_id, "reader")
        if not isinstance(self.store, IngestionStore):
            return []
        if not 1 <= limit <= 1000:
            raise BadRequestData("limit is between 1 and 1000")
        return await self.store.dead_letters(org_id, tenant=tenant, limit=limit)

    async def mandated_owners(self, org_id: str, dataset_id: str | None = None) -> list[str]:
        """The owners that currently mandate `org_id` (for all data sets, or this one)."""
        return sorted(
            {
                m.owner_org
                for m in await self.store.list_mandates(org_id)
                if m.mandated_org == org_id
                and m.revoked_at is None
                and (m.dataset_id is None or m.dataset_id == dataset_id)
            }
        )

    async def write_access(self, principal: Principal) -> WriteAccess:
        """What `principal` may write into (its own data and its mandators'); Forbidden for readers.

        Read from the database on every call: a revoked mandate stops counting at once.
        """
        if principal.operator:
            return WriteAccess.system(principal.org_id)
        if not principal.has_role("editor"):
            raise Forbidden("the reader role may not write")
        mandates = [
            m
            for m in await self.store.list_mandates(principal.org_id)
            if m.mandated_org == principal.org_id and m.revoked_at is None
        ]
        if not mandates:
            return WriteAccess(principal.org_id)
        blanket = frozenset(m.owner_org for m in mandates if m.dataset_id is None)
        named = {m.dataset_id for m in mandates if m.dataset_id is not None}
        covered: list[tuple[str, str, frozenset[str], str | None]] = []
        for owner in sorted({m.owner_org for m in mandates}):
            for dataset in await self.store.list_datasets(owner_org=owner):
                if owner in blanket or dataset.id in named:
                    covered.append(
                        (owner, dataset.id, frozenset(dataset.entity_types), dataset.scope)
                    )
        covered.sort(key=lambda c: c[:2])
        return WriteAccess(
            principal.org_id,
            blanket,
            tuple((owner, types, scope) for owner, _, types, scope in covered),
        )

    async def record_refused_authentication(
        self, reason: str, *, interface: str, key_id: str | None = None
    ) -> None:
        """Audit a refused credential: ids and a reason code only, never the credential itself."""
        detail: dict[str, Any] = {"reason": reason, "interface": interface}
        await self.store.append_audit(
            AuditEvent("anonymous", "auth.refused", f"key:{key_id}" if key_id else "-", detail)
        )

    async def record_refused_authorisation(
        self, principal: Principal | None, *, interface: str, method: str, route: str
    ) -> None:
        """Audit a refused authorisation (403): who, and which operation — the route template,
        never the concrete URL, whose ids and query could hold personal data."""
        detail: dict[str, Any] = {"interface": interface, "method": method, "route": route}
        actor = principal.actor if principal is not None else "anonymous"
        await self.store.append_audit(AuditEvent(actor, "authz.refused", "-", detail))

    # --- data sets -------------------------------------------------------------------------

    def _policy_for(
        self, dataset_id: str, kind: str, permissions: Sequence[dict[str, Any]] | None
    ) -> dict[str, Any]:
        uid = f"urn:smartregion:Policy:{dataset_id}:{uuid.uuid4()}"
        if kind == "open":
            return open_policy(uid, dataset_id)
        if kind == "private":
            return private_policy(uid)
        if kind == "restricted":
            return restricted_policy(
                uid, [{**p, "target": dataset_id} for p in (permissions or [])]
            )
        raise BadRequestData(f"policy must be one of {list(POLICY_KINDS)}")

    async def create_dataset(
        self,
        principal: Principal,
        dataset_id: str,
        owner_org: str,
        title: str | dict[str, str],
        entity_types: Sequence[str],
        *,
        description: str | dict[str, str] | None = None,
        scope: str | None = None,
        theme: str | None = None,
        license: str | None = None,
        policy: str = "private",
        permissions: Sequence[dict[str, Any]] | None = None,
        retention_days: int | None = None,
        rollup_retention_days: int | None = None,
        privacy: Mapping[str, Any] | None = None,
    ) -> Dataset:
        """Describe a data set of `owner_org` with its access policy (the owner's admins)."""
        _check(_OBJECT_ID, dataset_id, "data set id")
        await self.get_organisation(owner_org)
        await self._require(principal, owner_org, "admin")
        titles = _texts(title, "a title")
        if not titles:
            raise BadRequestData("a data set needs a title")
        types = [t.strip() for t in entity_types if t.strip()]
        if not types:
            raise BadRequestData("a data set selects at least one entity type")
        if theme is not None and theme not in THEMES:
            raise BadRequestData(f"theme must be one of {list(THEMES)}")
        if scope is not None and not DATASET_SCOPE.fullmatch(scope):
            raise BadRequestData(
                f"scope {scope!r} is not an NGSI-LD scope with a leading / (NGSI-LD 1.8 §4.18:"
                " levels of letters, digits and _, each starting with a letter, e.g. /Gent/Centrum)"
            )
        if policy == "open" and license is None:
            license = DEFAULT_OPEN_LICENSE
        if license is not None:
            _check(_URI, license, "licence URI")
        if permissions and policy != "restricted":
            raise BadRequestData("permissions are given for restricted data sets only")
        check_retention(retention_days, rollup_retention_days)
        term_map = core_term_map()
        rules = Privacy.parse(privacy, term_map.expand_term)
        now = self._now()
        dataset = Dataset(
            id=dataset_id,
            owner_org=owner_org,
            title=titles,
            description=_texts(description, "a description"),
            entity_types=sorted({term_map.expand_term(t) for t in types}),
            scope=scope,
            theme=theme,
            license=license,
            policy_kind=policy,
            policy=self._policy_for(dataset_id, policy, permissions),
            created_at=now,
            modified_at=now,
            retention_days=retention_days,
            rollup_retention_days=rollup_retention_days,
            privacy=rules.to_json(),
        )
        audit = AuditEvent(
            principal.actor,
            "dataset.create",
            dataset_id,
            {"owner": owner_org, "policy": dataset.policy},
        )
        if not await self.store.create_dataset(dataset, audit=audit):
            raise AlreadyExists(f"data set {dataset_id!r} exists")
        return dataset

    async def set_dataset_policy(
        self,
        principal: Principal,
        dataset_id: str,
        policy: str,
        permissions: Sequence[dict[str, Any]] | None = None,
    ) -> Dataset:
        """Change a data set's policy (audited with the new ODRL document)."""
        dataset = await self.visible_dataset(principal, dataset_id)
        await self._require(principal, dataset.owner_org, "admin")
        if permissions and policy != "restricted":
            raise BadRequestData("permissions are given for restricted data sets only")
        dataset.policy = self._policy_for(dataset_id, policy, permissions)
        dataset.policy_kind = policy
        if policy == "open" and dataset.license is None:
            dataset.license = DEFAULT_OPEN_LICENSE
        dataset.modified_at = self._now()
        audit = AuditEvent(
            principal.actor, "dataset.policy", dataset_id, {"policy": dataset.policy}
        )
        await self.store.replace_dataset(dataset, audit=audit)
        return dataset

    async def set_dataset_privacy(
        self, principal: Principal, dataset_id: str, privacy: Mapping[str, Any] | None
    ) -> Dataset:
        """Classify a data set's attributes and set its open-view rules (`core/privacy.py`);
        audited with the new rules. `None` or `{}` removes them."""
        dataset = await self.visible_dataset(principal, dataset_id)
        await self._require(principal, dataset.owner_org, "admin")
        dataset.privacy = Privacy.parse(privacy, core_term_map().expand_term).to_json()
        dataset.modified_at = self._now()
        audit = AuditEvent(
            principal.actor, "dataset.privacy", dataset_id, {"privacy": dataset.privacy}
        )
        await self.store.replace_dataset(dataset, audit=audit)
        return dataset

    async def get_dataset(self, dataset_id: str) -> Dataset:
        """One data set, or ResourceNotFound."""
        dataset = await self.store.get_dataset(dataset_id)
        if dataset is None:
            raise ResourceNotFound(f"no data set {dataset_id!r}")
        return dataset

    async def list_datasets(self, *, owner_org: str | None = None) -> list[Dataset]:
        """Every data set (no visibility filter: for the services and the operator)."""
        return await self.store.list_datasets(owner_org=owner_org)

    async def _sees(self, principal: Principal, dataset: Dataset) -> bool:
        # a private data set is the owner's alone: others are not told it exists
        return (
            dataset.policy_kind != "private"
            or principal.org_id == dataset.owner_org
            or await self._is_platform_admin(principal)
        )

    async def visible_dataset(self, principal: Principal, dataset_id: str) -> Dataset:
        """A data set the principal may know of; ResourceNotFound as if absent otherwise."""
        dataset = await self.store.get_dataset(dataset_id)
        if dataset is None or not await self._sees(principal, dataset):
            raise ResourceNotFound(f"no data set {dataset_id!r}")
        return dataset

    async def visible_datasets(
        self, principal: Principal, *, owner_org: str | None = None
    ) -> list[Dataset]:
        """The data sets the principal may know of (private ones only for their owner)."""
        return [
            d
            for d in await self.store.list_datasets(owner_org=owner_org)
            if await self._sees(principal, d)
        ]

    # --- access in trust -------------------------------------------------------------------

    async def request_access(
        self,
        principal: Principal,
        dataset_id: str,
        purpose: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> AccessRequest:
        """Ask a data set's owner for access for the principal's organisation (editors)."""
        principal.require(principal.org_id, "editor")
        dataset = await self.visible_dataset(principal, dataset_id)
        if dataset.owner_org == principal.org_id:
            raise BadRequestData("an owner needs no access request for its own data set")
        if dataset.policy_kind == "open":
            raise BadRequestData("an open data set needs no access request")
        if not purpose.strip() or len(purpose) > 500:
            raise BadRequestData("a purpose (at most 500 characters) is required")
        for moment in (start, end):
            if moment is not None and moment.tzinfo is None:
                raise BadRequestData("start and end need a time zone offset")
        if start and end and end <= start:
            raise BadRequestData("the end of the period is before its start")
        request = AccessRequest(
            id=f"urn:smartregion:AccessRequest:{uuid.uuid4()}",
            dataset_id=dataset_id,
            owner_org=dataset.owner_org,
            requester_org=principal.org_id,
            purpose=purpose.strip(),
            start=iso(start) if start else None,
            end=iso(end) if end else None,
            created_at=self._now(),
        )
        audit = AuditEvent(
            principal.actor,
            "access.request",
            request.id,
            {"dataset": dataset_id, "requester": principal.org_id},
        )
        await self.store.create_access_request(request, audit=audit)
        return request

    async def get_access_request(self, principal: Principal, request_id: str) -> AccessRequest:
        """One request, visible to both parties (others: ResourceNotFound)."""
        request = await self.store.get_access_request(request_id)
        if request is None or not (
            principal.operator or principal.org_id in (request.owner_org, request.requester_org)
        ):
            raise ResourceNotFound(f"no access request {request_id!r}")
        return request

    async def list_access_requests(self, principal: Principal, org_id: str) -> list[AccessRequest]:
        """Requests an organisation made or received."""
        await self._require(principal, org_id, "reader")
        return await self.store.list_access_requests(org_id)

    async def approve_access_request(
        self, principal: Principal, request_id: str, *, expires_at: datetime | None = None
    ) -> tuple[Agreement, Grant]:
        """Approve: a frozen agreement and a grant (expiring at the period's end or `expires_at`)."""
        request = await self.get_access_request(principal, request_id)
        await self._require(principal, request.owner_org, "admin")
        dataset = await self.get_dataset(request.dataset_id)
        expiry = iso(expires_at) if expires_at else request.end
        constraints: list[dict[str, Any]] = [
            {"leftOperand": "purpose", "operator": "eq", "rightOperand": request.purpose}
        ]
        if request.start:
            constraints.append(
                {"leftOperand": "dateTime", "operator": "gteq", "rightOperand": request.start}
            )
        if expiry:
            constraints.append(
                {"leftOperand": "dateTime", "operator": "lt", "rightOperand": expiry}
            )
        now = self._now()
        agreement = Agreement(
            id=f"urn:smartregion:Agreement:{uuid.uuid4()}",
            request_id=request.id,
            dataset_id=dataset.id,
            provider_org=dataset.owner_org,
            consumer_org=request.requester_org,
            purpose=request.purpose,
            # ODRL §2.1 Agreement: the data set's policy as it stands now, plus the granted
            # permission; later policy changes do not alter it
            policy={
                **dataset.policy,
                "@type": "Agreement",
                "uid": f"urn:smartregion:Policy:{dataset.id}:agreement:{uuid.uuid4()}",
                "permission": [
                    *dataset.policy.get("permission", []),
                    {
                        "target": dataset.id,
                        "action": "read",
                        "assignee": request.requester_org,
                        "constraint": constraints,
                    },
                ],
            },
            created_at=now,
        )
        grant = Grant(
            id=f"urn:smartregion:Grant:{uuid.uuid4()}",
            agreement_id=agreement.id,
            dataset_id=dataset.id,
            owner_org=dataset.owner_org,
            org_id=request.requester_org,
            purpose=request.purpose,
            created_at=now,
            expires_at=expiry,
        )
        audit = AuditEvent(
            principal.actor,
            "access.approve",
            request.id,
            {"grant": grant.id, "agreement": agreement.id, "expires": expiry},
        )
        if not await self.store.approve_access_request(
            request.id,
            decided_at=now,
            decided_by=principal.actor,
            agreement=agreement,
            grant=grant,
            audit=audit,
        ):
            raise AlreadyExists(f"access request {request_id!r} was already decided")
        return agreement, grant

    async def refuse_access_request(self, principal: Principal, request_id: str) -> AccessRequest:
        """Refuse a pending request (the owner's admins)."""
        request = await self.get_access_request(principal, request_id)
        await self._require(principal, request.owner_org, "admin")
        audit = AuditEvent(principal.actor, "access.refuse", request.id)
        if not await self.store.refuse_access_request(
            request.id, decided_at=self._now(), decided_by=principal.actor, audit=audit
        ):
            raise AlreadyExists(f"access request {request_id!r} was already decided")
        return await self.get_access_request(principal, request_id)

    async def get_agreement(self, principal: Principal, agreement_id: str) -> Agreement:
        """One agreement, visible to both parties."""
        agreement = await self.store.get_agreement(agreement_id)
        if agreement is None or not (
            principal.operator
            or principal.org_id in (agreement.provider_org, agreement.consumer_org)
        ):
            raise ResourceNotFound(f"no agreement {agreement_id!r}")
        return agreement

    async def list_grants(self, principal: Principal, org_id: str) -> list[Grant]:
        """Grants an organisation holds or gave."""
        await self._require(principal, org_id, "reader")
        return await self.store.list_grants(org_id=org_id)

    async def revoke_grant(self, principal: Principal, grant_id: str) -> Grant:
        """Revoke a grant (the data set owner's admins): refused from the next request on."""
        grant = await self.store.get_grant(grant_id)
        if grant is None or not (
            principal.operator or principal.org_id in (grant.owner_org, grant.org_id)
        ):
            raise ResourceNotFound(f"no grant {grant_id!r}")
        await self._require(principal, grant.owner_org, "admin")
        audit = AuditEvent(principal.actor, "grant.revoke", grant_id, {"dataset": grant.dataset_id})
        if not await self.store.revoke_grant(grant_id, self._now(), audit=audit):
            raise AlreadyExists(f"grant {grant_id!r} is already revoked")
        revoked = await self.store.get_grant(grant_id)
        assert revoked is not None
        return revoked

    def grant_is_active(self, grant: Grant) -> bool:
        """Whether a grant is neither revoked nor expired now."""
        return grant.revoked_at is None and (
            grant.expires_at is None or grant.expires_at > self._now()
        )

    async def may_read(
        self, org_id: str | None, dataset: Dataset, *, purpose: str | None = None
    ) -> bool:
        """Whether `org_id` (None: anonymous) may read a data set now: owner, policy or grant."""
        reader = self._reader(org_id, await self.store.reader_records(org_id))
        return self._reads(reader, dataset, purpose)

    async def readable_for(
        self, principal: Principal | None, *, purpose: str | None = None
    ) -> Readable | None:
        """What `principal` (None: anonymous) may read of the entities, now; None: everything.

        The operator reads everything. A member of an organisation (any role) reads all of its
        organisation's entities and of the owners that mandate it for all their data sets; and
        of every other data set it `may_read` (open, the policy, an active grant, a mandate for
        that data set) the entities of the data set's owner having one of its entity types.
        Anonymous callers read the data sets whose policy lets anyone read (open ones).
        Of a data set with a scope, only the entities with a scope within it (`Slice.scope`).

        The result carries the reader's `Disclosure` when it does not see everything it reads
        as stored (attribute classes, open views) or when its reads must be audited (non-open
        data of others), so that the broker can apply it; otherwise none, at no cost.

        One read of the governance records, no per-entity work and no caching: a grant revoked
        or expired now no longer counts on the very next request.
        """
        if principal is not None and principal.operator:
            return None
        org_id = principal.org_id if principal is not None else None
        records = await self.store.reader_records(org_id)
        owners: set[str] = set()
        mandated: set[tuple[str, str]] = set()  # (owner, data set id) mandated one by one
        if org_id is not None:
            owners.add(org_id)
            for mandate in records.mandates:
                if mandate.mandated_org != org_id or mandate.revoked_at is not None:
                    continue
                if mandate.dataset_id is None:
                    owners.add(mandate.owner_org)
                else:
                    mandated.add((mandate.owner_org, mandate.dataset_id))
        reader = self._reader(org_id, records)
        slices: list[Slice] = []
        views: list[SliceView] = []
        for dataset in records.datasets:
            if dataset.owner_org in owners:
                continue
            types = frozenset(dataset.entity_types)
            if (dataset.owner_org, dataset.id) in mandated:
                access = Access.FULL
            elif self._reads(reader, dataset, purpose):
                granted = dataset.policy_kind != "open" or any(
                    grant.dataset_id == dataset.id for grant, _ in reader.held
                )
                access = Access.GRANTED if granted else Access.OPEN
            else:
                continue
            slices.append(Slice(dataset.owner_org, types, dataset.scope))
            views.append(
                SliceView(
                    dataset.id,
                    dataset.owner_org,
                    types,
                    access,
                    Privacy.from_json(dataset.privacy),
                    dataset.scope,
                )
            )
        disclosure = Disclosure(
            frozenset(owners), tuple(views), audit=self._read_audit(principal, purpose)
        )
        return Readable(
            owners=frozenset(owners),
            slices=tuple(sorted(slices, key=_slice_key)),
            disclosure=disclosure if disclosure.needed else None,
        )

    def _read_audit(
        self, principal: Principal | None, purpose: str | None
    ) -> Callable[[Sequence[str], int], Awaitable[None]]:
        """Records one read of non-open data: who, which data sets, how many entities, purpose."""
        actor = principal.actor if principal is not None else "anonymous"

        async def record(dataset_ids: Sequence[str], entities: int) -> None:
            detail: dict[str, Any] = {"datasets": sorted(dataset_ids), "entities": entities}
            if purpose:
                detail["purpose"] = purpose
            await self.store.append_audit(
                AuditEvent(actor, "data.read", ",".join(sorted(dataset_ids)), detail)
            )

        return record

    def _reader(self, org_id: str | None, records: ReaderRecords) -> _Reader:
        """Who reads: the organisation and its active grants with their agreements."""
        org = records.organisation
        held: list[tuple[Grant, Agreement]] = []
        if org is not None:
            for grant in records.grants:
                agreement = records.agreements.get(grant.agreement_id)
                if grant.org_id == org.id and self.grant_is_active(grant) and agreement:
                    held.append((grant, agreement))
        return _Reader(org_id, org, held)

    def _reads(self, reader: _Reader, dataset: Dataset, purpose: str | None) -> bool:
        """The one read rule: the owner; otherwise the data set's policy; otherwise a grant."""
        if reader.org_id is not None and reader.org_id == dataset.owner_org:
            return True
        org = reader.org
        ctx = AccessContext(
            action="read",
            at=self.clock(),
            org_id=org.id if org else None,
            org_kind=org.kind if org else None,
            purpose=purpose,
        )
        if evaluate(dataset.policy, ctx):
            return True
        if org is None:
            return False
        for grant, agreement in reader.held:
            if grant.dataset_id != dataset.id:
                continue
            grant_ctx = AccessContext(
                action="read",
                at=self.clock(),
                org_id=org.id,
                org_kind=org.kind,
                purpose=purpose or grant.purpose,
            )
            if evaluate(agreement.policy, grant_ctx):
                return True
        return False

    # --- audit -----------------------------------------------------------------------------

    async def verify_audit(self) -> tuple[int, list[str]]:
        """(number of records, every inconsistency found); no problems: the chain is intact."""
        records = []
        after = 0
        while True:
            page = await self.store.audit_records(after=after, limit=10_000)
            if not page:
                break
            records.extend(page)
            after = page[-1].seq
        return len(records), verify_chain(records, await self.store.audit_head())


@dataclass(frozen=True, slots=True)
class _Reader:
    """The facts a read decision needs about the reading organisation (None: anonymous)."""

    org_id: str | None
    org: Organisation | None
    #: its active grants, each with its agreement
    held: list[tuple[Grant, Agreement]]


def _slice_key(item: Slice) -> tuple[str, list[str], str]:
    return item.owner, sorted(item.types), item.scope or ""


def parse_time(text: str) -> datetime:
    """An ISO 8601 date-time with an offset (interfaces' input), or BadRequestData."""
    moment = parse_instant(text)
    if moment is None:
        raise BadRequestData(f"{text!r} is not an ISO 8601 date-time with an offset (e.g. …Z)")
    return moment
