"""The governance service over a real SQLite store: rules, lifecycles, audit."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smartregion.errors import AlreadyExists, BadRequestData, ResourceNotFound, Unauthenticated
from smartregion.governance import DEFAULT_OPEN_LICENSE, Forbidden, Governance, Principal
from smartregion.storage import open_store
from smartregion.storage.governance import GovernanceStore

pytestmark = pytest.mark.anyio

OP = Principal.cli()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def gov(tmp_path: Path, clock: Clock) -> AsyncIterator[Governance]:
    store = open_store(f"sqlite:///{tmp_path / 'gov.db'}")
    assert isinstance(store, GovernanceStore)
    await store.open()
    await store.migrate()
    try:
        g = Governance(store, clock=clock)
        await g.create_organisation(OP, "platform", "Platform", "region")
        await g.create_organisation(
            OP, "ghent", "Stad Gent", "municipality", kbo="0207.451.227", nis="44021"
        )
        await g.create_organisation(OP, "uni", "Universiteit", "knowledge_institution")
        await g.create_organisation(OP, "acme", "Acme", "company")
        yield g
    finally:
        await store.close()


async def admin(g: Governance, org: str, role: str = "admin") -> Principal:
    issued = await g.create_api_key(OP, org, role=role)
    return await g.authenticate_key(issued.key)


async def test_organisation_validation(gov: Governance) -> None:
    org = await gov.get_organisation("ghent")
    assert org.kbo == "0207451227" and org.nis == "44021"
    with pytest.raises(AlreadyExists):
        await gov.create_organisation(OP, "ghent", "Again", "municipality")
    with pytest.raises(AlreadyExists):  # the KBO number is taken
        await gov.create_organisation(OP, "ghent2", "Gent bis", "municipality", kbo="0207451227")
    for args, kw in [
        (("Bad Id", "X", "company"), {}),
        (("x", "X", "alien"), {}),
        (("x", "X", "company"), {"kbo": "0207451228"}),
        (("x", "X", "company"), {"nis": "44021"}),  # companies have no NIS code
        (("x", " ", "company"), {}),
    ]:
        with pytest.raises(BadRequestData):
            await gov.create_organisation(OP, *args, **kw)
    with pytest.raises(ResourceNotFound):
        await gov.get_organisation("nope")


async def test_only_platform_admins_register_organisations(gov: Governance) -> None:
    platform_admin = await admin(gov, "platform")
    await gov.create_organisation(platform_admin, "leuven", "Leuven", "municipality")
    for principal in [await admin(gov, "ghent"), await admin(gov, "platform", "editor")]:
        with pytest.raises(Forbidden):
            await gov.create_organisation(principal, "x", "X", "company")


async def test_keys_expire_and_revoke(gov: Governance, clock: Clock) -> None:
    ghent = await admin(gov, "ghent")
    issued = await gov.create_api_key(
        ghent, "ghent", role="reader", expires_at=clock.now + timedelta(hours=1)
    )
    principal = await gov.authenticate_key(issued.key)
    assert principal == Principal("ghent", "reader", key_id=issued.record.id)
    clock.now += timedelta(hours=2)
    with pytest.raises(Unauthenticated):
        await gov.authenticate_key(issued.key)
    other = await gov.create_api_key(ghent, "ghent")
    await gov.revoke_api_key(ghent, other.record.id)
    with pytest.raises(Unauthenticated):
        await gov.authenticate_key(other.key)
    with pytest.raises(AlreadyExists):
        await gov.revoke_api_key(ghent, other.record.id)
    for bad in ["", "srk_nonsense", other.key[:-1] + ("A" if other.key[-1] != "A" else "B")]:
        with pytest.raises(Unauthenticated):
            await gov.authenticate_key(bad)
    with pytest.raises(BadRequestData):
        await gov.create_api_key(ghent, "ghent", expires_at=clock.now - timedelta(seconds=1))
    with pytest.raises(BadRequestData):
        await gov.create_api_key(ghent, "ghent", role="owner")


async def test_keys_are_managed_by_their_organisations_admins(gov: Governance) -> None:
    ghent_editor = await admin(gov, "ghent", "editor")
    uni = await admin(gov, "uni")
    with pytest.raises(Forbidden):
        await gov.create_api_key(ghent_editor, "ghent")
    with pytest.raises(Forbidden):
        await gov.create_api_key(uni, "ghent")
    issued = await gov.create_api_key(OP, "ghent")
    with pytest.raises(Forbidden):
        await gov.revoke_api_key(uni, issued.record.id)
    with pytest.raises(Forbidden):
        await gov.list_api_keys(uni, "ghent")
    # platform admins may act for any organisation
    await gov.create_api_key(await admin(gov, "platform"), "ghent")


async def test_people_and_memberships(gov: Governance) -> None:
    person = await gov.create_person(
        OP, "alice", "Alice@Example.org", "Alice", "correct horse battery"
    )
    assert person.email == "alice@example.org" and person.password_hash.startswith("$argon2id$")
    ghent = await admin(gov, "ghent")
    await gov.set_membership(ghent, "alice", "ghent", "editor")
    assert [m.role for m in await gov.list_memberships(ghent, "ghent")] == ["editor"]
    with pytest.raises(Forbidden):
        await gov.set_membership(await admin(gov, "uni"), "alice", "ghent", "admin")
    await gov.remove_membership(ghent, "alice", "ghent")
    with pytest.raises(ResourceNotFound):
        await gov.remove_membership(ghent, "alice", "ghent")
    # the audit log names ids, never the e-mail address
    records = await gov.store.audit_records()
    assert not any("example.org" in str(r) for r in records)


async def test_datasets_and_policies(gov: Governance) -> None:
    ghent = await admin(gov, "ghent")
    ds = await gov.create_dataset(
        ghent,
        "ghent-air",
        "ghent",
        {"nl": "Lucht", "en": "Air"},
        ["AirQualityObserved"],
        theme="environment",
        policy="open",
    )
    assert ds.license == DEFAULT_OPEN_LICENSE
    assert ds.entity_types == ["https://uri.etsi.org/ngsi-ld/default-context/AirQualityObserved"]
    assert await gov.may_read(None, ds)
    private = await gov.create_dataset(ghent, "ghent-cams", "ghent", "Camera's", ["Camera"])
    assert private.policy_kind == "private"
    assert await gov.may_read("ghent", private)
    assert not await gov.may_read("uni", private)
    restricted = await gov.create_dataset(
        ghent,
        "ghent-parking",
        "ghent",
        "Parkeren",
        ["ParkingSpot"],
        policy="restricted",
        permissions=[{"action": "read", "assignee": {"kind": "municipality"}}],
    )
    await gov.create_organisation(OP, "leuven", "Leuven", "municipality")
    assert await gov.may_read("leuven", restricted)
    assert not await gov.may_read("uni", restricted)
    changed = await gov.set_dataset_policy(ghent, "ghent-parking", "private")
    assert not await gov.may_read("leuven", changed)
    for kwargs in [
        {"theme": "sports"},
        {"license": "not a uri"},
        {"scope": "Ghent"},
        {"policy": "secret"},
        {"permissions": [{"action": "read"}]},
        {"policy": "restricted", "permissions": [{"action": "use"}]},
    ]:
        with pytest.raises(BadRequestData):
            await gov.create_dataset(ghent, "x", "ghent", "X", ["T"], **kwargs)  # type: ignore[arg-type]
    with pytest.raises(Forbidden):
        await gov.create_dataset(await admin(gov, "uni"), "x", "ghent", "X", ["T"])
    with pytest.raises(AlreadyExists):
        await gov.create_dataset(ghent, "ghent-air", "ghent", "X", ["T"])


async def test_access_request_approval_grant_and_revocation(gov: Governance, clock: Clock) -> None:
    ghent = await admin(gov, "ghent")
    uni = await admin(gov, "uni", "editor")
    ds = await gov.create_dataset(
        ghent, "ghent-cams", "ghent", "Camera's", ["Camera"], policy="restricted"
    )
    assert not await gov.may_read("uni", ds, purpose="research")
    request = await gov.request_access(uni, ds.id, "research", end=clock.now + timedelta(days=30))
    assert request.status == "pending" and request.requester_org == "uni"
    # only the owner's admins decide; strangers do not even see it
    with pytest.raises(Forbidden):
        await gov.approve_access_request(uni, request.id)
    with pytest.raises(ResourceNotFound):
        await gov.get_access_request(await admin(gov, "acme"), request.id)
    agreement, grant = await gov.approve_access_request(ghent, request.id)
    assert agreement.consumer_org == "uni" and agreement.policy["@type"] == "Agreement"
    assert grant.expires_at == request.end
    with pytest.raises(AlreadyExists):
        await gov.approve_access_request(ghent, request.id)
    assert await gov.may_read("uni", ds, purpose="research")
    assert await gov.may_read("uni", ds)  # the grant's purpose
    assert not await gov.may_read("uni", ds, purpose="marketing")
    assert not await gov.may_read("acme", ds)
    # the agreement is frozen: a later policy change does not alter it
    await gov.set_dataset_policy(
        ghent, ds.id, "restricted", [{"action": "read", "assignee": "acme"}]
    )
    assert (await gov.get_agreement(uni, agreement.id)).policy == agreement.policy
    # expiry
    clock.now += timedelta(days=31)
    assert not await gov.may_read("uni", ds, purpose="research")
    clock.now -= timedelta(days=31)
    # revocation: refused from the next decision on
    await gov.revoke_grant(ghent, grant.id)
    assert not await gov.may_read("uni", ds, purpose="research")
    with pytest.raises(Forbidden):  # the grantee sees its grant but cannot revoke it
        await gov.revoke_grant(uni, grant.id)
    assert [g.id for g in await gov.list_grants(uni, "uni")] == [grant.id]


async def test_access_request_rules(gov: Governance, clock: Clock) -> None:
    ghent = await admin(gov, "ghent")
    uni = await admin(gov, "uni", "editor")
    await gov.create_dataset(ghent, "open", "ghent", "Open", ["T"], policy="open")
    await gov.create_dataset(ghent, "closed", "ghent", "Closed", ["T"], policy="restricted")
    await gov.create_dataset(ghent, "secret", "ghent", "Secret", ["T"], policy="private")
    # a private data set is not revealed to others: as if it did not exist
    with pytest.raises(ResourceNotFound):
        await gov.request_access(uni, "secret", "research")
    with pytest.raises(ResourceNotFound):
        await gov.visible_dataset(uni, "secret")
    assert [d.id for d in await gov.visible_datasets(uni)] == ["open", "closed"]
    assert [d.id for d in await gov.visible_datasets(ghent)] == ["open", "closed", "secret"]
    assert (await gov.visible_dataset(ghent, "secret")).id == "secret"
    with pytest.raises(BadRequestData):
        await gov.request_access(uni, "open", "research")
    with pytest.raises(BadRequestData):
        await gov.request_access(ghent, "closed", "own data")
    with pytest.raises(BadRequestData):
        await gov.request_access(uni, "closed", "  ")
    with pytest.raises(BadRequestData):
        await gov.request_access(
            uni, "closed", "r", start=clock.now, end=clock.now - timedelta(days=1)
        )
    with pytest.raises(Forbidden):
        await gov.request_access(await admin(gov, "uni", "reader"), "closed", "research")
    request = await gov.request_access(uni, "closed", "research")
    refused = await gov.refuse_access_request(ghent, request.id)
    assert refused.status == "refused"
    with pytest.raises(AlreadyExists):
        await gov.approve_access_request(ghent, request.id)


async def test_mandates(gov: Governance) -> None:
    ghent = await admin(gov, "ghent")
    mandate = await gov.create_mandate(ghent, "ghent", "acme")
    assert await gov.mandated_owners("acme") == ["ghent"]
    assert [m.id for m in await gov.list_mandates(await admin(gov, "acme", "reader"), "acme")] == [
        mandate.id
    ]
    with pytest.raises(Forbidden):
        await gov.create_mandate(await admin(gov, "acme"), "ghent", "acme")
    with pytest.raises(BadRequestData):
        await gov.create_mandate(ghent, "ghent", "ghent")
    await gov.revoke_mandate(ghent, mandate.id)
    assert await gov.mandated_owners("acme") == []
    with pytest.raises(AlreadyExists):
        await gov.revoke_mandate(ghent, mandate.id)


async def test_changes_are_audited_and_tampering_is_detected(
    gov: Governance, tmp_path: Path
) -> None:
    ghent = await admin(gov, "ghent")
    issued = await gov.create_api_key(ghent, "ghent")
    await gov.revoke_api_key(ghent, issued.record.id)
    count, problems = await gov.verify_audit()
    assert problems == [] and count >= 6
    actions = [r.action for r in await gov.store.audit_records()]
    assert actions[:4] == ["organisation.create"] * 4
    assert actions[-2:] == ["key.create", "key.revoke"]
    # no key material in the log
    assert not any(issued.key in str(r) for r in await gov.store.audit_records())
    with sqlite3.connect(tmp_path / "gov.db") as conn:
        conn.execute("UPDATE audit_log SET actor = 'someone' WHERE seq = 2")
    count, problems = await gov.verify_audit()
    assert any("row 2" in p for p in problems)
