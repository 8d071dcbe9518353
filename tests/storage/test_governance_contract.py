"""The governance storage contract (`GovernanceStore`): every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from smartregion.core.audit import AuditEvent, verify_chain
from smartregion.storage import Store, open_store
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
)

pytestmark = pytest.mark.anyio


def gov(store: Store) -> GovernanceStore:
    assert isinstance(store, GovernanceStore)
    return store


def ev(action: str, subject: str = "x") -> AuditEvent:
    return AuditEvent("operator", action, subject, {"n": 1})


async def test_organisations_unique_id_kbo_nis(store: Store) -> None:
    g = gov(store)
    ghent = Organisation("ghent", "Stad Gent", "municipality", kbo="0207451227", nis="44021")
    assert await g.create_organisation(ghent, audit=ev("org"))
    assert not await g.create_organisation(ghent, audit=ev("org"))  # id taken
    same_kbo = Organisation("other", "Other", "municipality", kbo="0207451227")
    assert not await g.create_organisation(same_kbo, audit=ev("org"))
    same_nis = Organisation("other", "Other", "municipality", nis="44021")
    assert not await g.create_organisation(same_nis, audit=ev("org"))
    # absent identifiers never collide
    assert await g.create_organisation(Organisation("a", "A", "company"), audit=ev("org"))
    assert await g.create_organisation(Organisation("b", "B", "company"), audit=ev("org"))
    assert await g.get_organisation("ghent") == ghent
    assert await g.get_organisation("nope") is None
    assert [o.id for o in await g.list_organisations()] == ["ghent", "a", "b"]
    # only the three successful creates were audited
    assert [r.action for r in await g.audit_records()] == ["org", "org", "org"]


async def test_people_and_memberships(store: Store) -> None:
    g = gov(store)
    alice = Person("alice", "alice@example.org", "Alice", "$argon2id$...")
    assert await g.create_person(alice, audit=ev("person"))
    assert not await g.create_person(
        Person("alice2", "alice@example.org", "A", "h"), audit=ev("person")
    )  # e-mail taken
    assert await g.get_person_by_email("alice@example.org") == alice
    await g.put_membership(Membership("alice", "ghent", "reader"), audit=ev("m"))
    await g.put_membership(Membership("alice", "ghent", "admin"), audit=ev("m"))  # role change
    await g.put_membership(Membership("alice", "leuven", "editor"), audit=ev("m"))
    assert await g.list_memberships(org_id="ghent") == [Membership("alice", "ghent", "admin")]
    assert len(await g.list_memberships(person_id="alice")) == 2
    assert await g.delete_membership("alice", "ghent", audit=ev("m-"))
    assert not await g.delete_membership("alice", "ghent", audit=ev("m-"))
    assert await g.list_memberships(org_id="ghent") == []


async def test_api_keys_revocation(store: Store) -> None:
    g = gov(store)
    key = ApiKey(
        "0123456789abcdef",
        "ghent",
        "editor",
        "f" * 64,
        created_at="t",
        expires_at="2030-01-01T00:00:00.000000Z",
    )
    assert await g.create_api_key(key, audit=ev("key"))
    assert not await g.create_api_key(key, audit=ev("key"))
    assert await g.get_api_key(key.id) == key
    assert await g.revoke_api_key(key.id, "2026-01-01T00:00:00.000000Z", audit=ev("revoke"))
    assert not await g.revoke_api_key(key.id, "2026-01-02T00:00:00.000000Z", audit=ev("revoke"))
    assert not await g.revoke_api_key("unknown", "2026", audit=ev("revoke"))
    revoked = await g.get_api_key(key.id)
    assert revoked is not None and revoked.revoked_at == "2026-01-01T00:00:00.000000Z"
    assert [k.id for k in await g.list_api_keys("ghent")] == [key.id]
    assert await g.list_api_keys("leuven") == []
    assert [r.action for r in await g.audit_records()] == ["key", "revoke"]


async def test_mandates(store: Store) -> None:
    g = gov(store)
    m = Mandate("m1", "ghent", "supplier", None, "t")
    assert await g.create_mandate(m, audit=ev("mandate"))
    assert [x.id for x in await g.list_mandates("ghent")] == ["m1"]
    assert [x.id for x in await g.list_mandates("supplier")] == ["m1"]
    assert await g.list_mandates("other") == []
    assert await g.revoke_mandate("m1", "t2", audit=ev("mandate-"))
    assert not await g.revoke_mandate("m1", "t3", audit=ev("mandate-"))
    found = await g.get_mandate("m1")
    assert found is not None and found.revoked_at == "t2"


def dataset(n: int = 1, owner: str = "ghent") -> Dataset:
    return Dataset(
        f"ds{n}",
        owner,
        {"nl": "Luchtkwaliteit", "en": "Air quality"},
        entity_types=["https://smartdatamodels.org/AirQualityObserved"],
        policy_kind="restricted",
        policy={"permission": []},
    )


async def test_datasets(store: Store) -> None:
    g = gov(store)
    assert await g.create_dataset(dataset(1), audit=ev("ds"))
    assert not await g.create_dataset(dataset(1), audit=ev("ds"))
    assert await g.create_dataset(dataset(2, "leuven"), audit=ev("ds"))
    assert [d.id for d in await g.list_datasets()] == ["ds1", "ds2"]
    assert [d.id for d in await g.list_datasets(owner_org="leuven")] == ["ds2"]
    changed = dataset(1)
    changed.policy_kind = "open"
    assert await g.replace_dataset(changed, audit=ev("policy"))
    assert not await g.replace_dataset(dataset(9), audit=ev("policy"))
    assert await g.get_dataset("ds1") == changed
    assert [r.action for r in await g.audit_records()] == ["ds", "ds", "policy"]


def approval(n: int = 1) -> tuple[Agreement, Grant]:
    agreement = Agreement(f"ag{n}", "r1", "ds1", "ghent", "uni", "research", {"permission": []})
    grant = Grant(f"g{n}", f"ag{n}", "ds1", "ghent", "uni", "research", expires_at="2030")
    return agreement, grant


async def test_access_request_approval_is_atomic_and_once(store: Store) -> None:
    g = gov(store)
    request = AccessRequest("r1", "ds1", "ghent", "uni", "research")
    assert await g.create_access_request(request, audit=ev("req"))
    assert [r.id for r in await g.list_access_requests("ghent")] == ["r1"]
    assert [r.id for r in await g.list_access_requests("uni")] == ["r1"]
    assert await g.list_access_requests("other") == []
    agreement, grant = approval()
    assert await g.approve_access_request(
        "r1",
        decided_at="t",
        decided_by="key:k",
        agreement=agreement,
        grant=grant,
        audit=ev("approve"),
    )
    # decided once: a second approval or a refusal changes nothing
    agreement2, grant2 = approval(2)
    assert not await g.approve_access_request(
        "r1",
        decided_at="t",
        decided_by="k",
        agreement=agreement2,
        grant=grant2,
        audit=ev("approve"),
    )
    assert not await g.refuse_access_request(
        "r1", decided_at="t", decided_by="k", audit=ev("refuse")
    )
    stored = await g.get_access_request("r1")
    assert stored is not None and stored.status == "approved" and stored.agreement_id == "ag1"
    assert await g.get_agreement("ag1") == agreement
    assert await g.get_agreement("ag2") is None
    assert [x.id for x in await g.list_grants(org_id="uni")] == ["g1"]
    assert [x.id for x in await g.list_grants(org_id="ghent", dataset_id="ds1")] == ["g1"]
    assert await g.list_grants(org_id="uni", dataset_id="ds9") == []
    assert await g.revoke_grant("g1", "t9", audit=ev("grant-"))
    assert not await g.revoke_grant("g1", "t9", audit=ev("grant-"))
    assert [r.action for r in await g.audit_records()] == ["req", "approve", "grant-"]


async def test_a_failed_approval_writes_nothing(store: Store) -> None:
    g = gov(store)
    await g.create_access_request(AccessRequest("r1", "ds1", "ghent", "uni", "p"), audit=ev("req"))
    await g.create_access_request(AccessRequest("r2", "ds1", "ghent", "uni", "p"), audit=ev("req"))
    agreement, grant = approval()
    assert await g.approve_access_request(
        "r1", decided_at="t", decided_by="k", agreement=agreement, grant=grant, audit=ev("approve")
    )
    # the same agreement id again: the transaction fails and r2 stays pending, unaudited
    with pytest.raises(RuntimeError):
        await g.approve_access_request(
            "r2",
            decided_at="t",
            decided_by="k",
            agreement=agreement,
            grant=grant,
            audit=ev("approve"),
        )
    r2 = await g.get_access_request("r2")
    assert r2 is not None and r2.status == "pending"
    assert [r.action for r in await g.audit_records()] == ["req", "req", "approve"]


async def test_refusal(store: Store) -> None:
    g = gov(store)
    await g.create_access_request(AccessRequest("r1", "ds1", "ghent", "uni", "p"), audit=ev("req"))
    assert await g.refuse_access_request("r1", decided_at="t", decided_by="k", audit=ev("refuse"))
    r1 = await g.get_access_request("r1")
    assert r1 is not None and r1.status == "refused" and r1.decided_by == "k"


async def test_audit_chain_is_intact_and_ordered(store: Store) -> None:
    g = gov(store)
    assert await g.audit_head() is None
    for n in range(5):
        await g.append_audit(AuditEvent("operator", "login.failed", f"s{n}", {"n": n}))
    records = await g.audit_records()
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert records[1].prev_hash == records[0].hash
    assert await g.audit_head() == (5, records[-1].hash)
    assert verify_chain(records, await g.audit_head()) == []
    assert [r.seq for r in await g.audit_records(after=3)] == [4, 5]
    assert [r.seq for r in await g.audit_records(limit=2)] == [1, 2]


async def test_concurrent_appends_keep_one_chain(store_url: str) -> None:
    # several connections (PostgreSQL: pool connections) appending at once
    s = open_store(store_url)
    await s.open()
    await s.migrate()
    try:
        g = gov(s)
        await asyncio.gather(*(g.append_audit(ev("a", str(n))) for n in range(40)))
        records = await g.audit_records()
        assert [r.seq for r in records] == list(range(1, 41))
        assert verify_chain(records, await g.audit_head()) == []
    finally:
        await s.close()
