"""HubStore contract: hub objects, their keys and words, endorsements and adoptions (both backends)."""

from __future__ import annotations

import pytest

from smartregion.core.audit import AuditEvent, verify_chain
from smartregion.storage import Store
from smartregion.storage.governance import GovernanceStore
from smartregion.storage.hub import AdoptionEvent, Endorsement, HubObject, HubQuery, HubStore

pytestmark = pytest.mark.anyio

AUDIT = AuditEvent("test", "hub.test", "x", {})


def obj(
    object_id: str,
    *,
    kind: str = "usecase",
    owner: str = "ghent",
    status: str = "pilot",
    title: str = "",
    at: str = "2026-01-01T00:00:00.000000Z",
) -> HubObject:
    return HubObject(
        object_id,
        kind,
        owner,
        "municipality",
        status,
        title or object_id,
        at,
        at,
        {"title": {"nl": title or object_id}},
    )


def hub(store: Store) -> HubStore:
    assert isinstance(store, HubStore)
    return store


async def test_create_get_replace_delete(store: Store) -> None:
    s = hub(store)
    assert await s.create_hub_object(obj("a"), ["domain:mobility"], ["parkeren"], audit=AUDIT)
    assert not await s.create_hub_object(obj("a"), [], [], audit=AUDIT)  # id taken
    got = await s.get_hub_object("a")
    assert got is not None and got.doc == {"title": {"nl": "a"}} and got.endorsements == 0
    changed = obj("a", status="implemented", at="2026-02-01T00:00:00.000000Z")
    changed.doc = {"title": {"nl": "b"}}
    assert await s.replace_hub_object(changed, ["domain:economy"], ["winkel"], audit=AUDIT)
    got = await s.get_hub_object("a")
    assert got is not None and got.status == "implemented" and got.doc == {"title": {"nl": "b"}}
    assert got.created_at == "2026-01-01T00:00:00.000000Z"
    # the index was replaced with the row
    assert (await s.query_hub_objects(HubQuery("usecase", keys=["domain:mobility"]))).total == 0
    assert (await s.query_hub_objects(HubQuery("usecase", keys=["domain:economy"]))).total == 1
    assert (await s.query_hub_objects(HubQuery("usecase", words=["parkeer"]))).total == 0
    assert (await s.query_hub_objects(HubQuery("usecase", words=["win"]))).total == 1
    assert not await s.replace_hub_object(obj("missing"), [], [], audit=AUDIT)
    assert await s.delete_hub_object("a", audit=AUDIT)
    assert not await s.delete_hub_object("a", audit=AUDIT)
    assert await s.get_hub_object("a") is None
    assert (await s.query_hub_objects(HubQuery("usecase", keys=["domain:economy"]))).total == 0


async def test_replace_with_expected_version_refuses_a_stale_write(store: Store) -> None:
    s = hub(store)
    await s.create_hub_object(obj("a"), [], [], audit=AUDIT)
    newer = obj("a", at="2026-03-01T00:00:00.000000Z")
    assert not await s.replace_hub_object(
        newer, [], [], expected_updated_at="2025-12-31T00:00:00.000000Z", audit=AUDIT
    )
    assert await s.replace_hub_object(
        newer, [], [], expected_updated_at="2026-01-01T00:00:00.000000Z", audit=AUDIT
    )


async def test_query_filters_pages_sorts_and_counts_facets(store: Store) -> None:
    s = hub(store)
    specs = [
        (
            "u1",
            "ghent",
            "pilot",
            ["domain:mobility", "nis:44021", "nis:40000"],
            ["slimme", "parkeersensoren"],
        ),
        (
            "u2",
            "ghent",
            "implemented",
            ["domain:mobility", "nis:44021", "nis:40000"],
            ["fietstellers"],
        ),
        (
            "u3",
            "leuven",
            "pilot",
            ["domain:environment", "nis:24062"],
            ["luchtkwaliteit", "sensoren"],
        ),
    ]
    for i, (oid, owner, status, keys, words) in enumerate(specs):
        at = f"2026-01-0{i + 1}T00:00:00.000000Z"
        await s.create_hub_object(
            obj(oid, owner=owner, status=status, title=f"t{3 - i}", at=at), keys, words, audit=AUDIT
        )
    await s.create_hub_object(
        obj("c1", kind="challenge"), ["domain:mobility"], ["slimme"], audit=AUDIT
    )

    everything = await s.query_hub_objects(HubQuery("usecase", facets=True))
    assert everything.total == 3
    assert [o.id for o in everything.items] == ["u3", "u2", "u1"]  # newest first
    assert everything.facets["key"]["domain:mobility"] == 2
    assert everything.facets["key"]["nis:40000"] == 2
    assert everything.facets["status"] == {"pilot": 2, "implemented": 1}
    assert everything.facets["owner"] == {"ghent": 2, "leuven": 1}
    assert everything.facets["owner_kind"] == {"municipality": 3}

    both = await s.query_hub_objects(
        HubQuery("usecase", keys=["domain:mobility", "nis:44021"], statuses=["pilot"], facets=True)
    )
    assert [o.id for o in both.items] == ["u1"] and both.facets["status"] == {"pilot": 1}
    # every facet counts over the same filters (keys, word prefixes, owners), none is left out
    sensors = await s.query_hub_objects(
        HubQuery("usecase", words=["sensor"], owners=["leuven", "ghent"], facets=True)
    )
    assert sensors.facets == {
        "key": {"domain:environment": 1, "nis:24062": 1},
        "status": {"pilot": 1},
        "owner_kind": {"municipality": 1},
        "owner": {"leuven": 1},
    }
    nothing = await s.query_hub_objects(HubQuery("usecase", keys=["domain:economy"], facets=True))
    assert nothing.total == 0 and nothing.items == []
    assert nothing.facets == {"key": {}, "status": {}, "owner_kind": {}, "owner": {}}
    assert (await s.query_hub_objects(HubQuery("usecase"))).facets == {}
    assert [
        o.id for o in (await s.query_hub_objects(HubQuery("usecase", words=["sensor"]))).items
    ] == ["u3"]
    prefix = await s.query_hub_objects(HubQuery("usecase", words=["parkeer"]))
    assert [o.id for o in prefix.items] == ["u1"]
    assert (await s.query_hub_objects(HubQuery("usecase", words=["slimme", "fiets"]))).total == 0
    assert (await s.query_hub_objects(HubQuery("usecase", owners=["leuven"]))).total == 1
    assert (await s.query_hub_objects(HubQuery("usecase", owner_kinds=["company"]))).total == 0

    page = await s.query_hub_objects(HubQuery("usecase", sort="title", limit=2, offset=1))
    assert page.total == 3 and [o.id for o in page.items] == ["u2", "u1"]
    oldest = await s.query_hub_objects(HubQuery("usecase", sort="updated", limit=1))
    assert [o.id for o in oldest.items] == ["u1"]
    with pytest.raises(ValueError):
        await s.query_hub_objects(HubQuery("usecase", sort="nonsense"))


async def test_one_endorsement_per_organisation_ranks_objects(store: Store) -> None:
    s = hub(store)
    await s.create_hub_object(obj("a", at="2026-01-02T00:00:00.000000Z"), [], [], audit=AUDIT)
    await s.create_hub_object(obj("b"), [], [], audit=AUDIT)
    at = "2026-01-05T00:00:00.000000Z"
    assert await s.endorse_hub_object(Endorsement("b", "ghent", at, "key:1"), audit=AUDIT)
    assert not await s.endorse_hub_object(Endorsement("b", "ghent", at, "key:2"), audit=AUDIT)
    assert await s.endorse_hub_object(Endorsement("b", "leuven", at, "key:3"), audit=AUDIT)
    assert not await s.endorse_hub_object(Endorsement("missing", "ghent", at, "k"), audit=AUDIT)
    ranked = await s.query_hub_objects(HubQuery("usecase", sort="-endorsements"))
    assert [(o.id, o.endorsements) for o in ranked.items] == [("b", 2), ("a", 0)]
    assert [e.org_id for e in await s.list_endorsements("b")] == ["ghent", "leuven"]
    assert await s.withdraw_endorsement("b", "ghent", audit=AUDIT)
    assert not await s.withdraw_endorsement("b", "ghent", audit=AUDIT)
    got = await s.get_hub_object("b")
    assert got is not None and got.endorsements == 1


async def test_adoptions_keep_their_history(store: Store) -> None:
    s = hub(store)
    await s.create_hub_object(obj("a"), [], [], audit=AUDIT)

    def event(stage: str | None, day: int) -> AdoptionEvent:
        return AdoptionEvent(0, "a", "nis:24062", stage, f"2026-0{day}-01T00:00:00.000000Z", "k")

    assert await s.set_adoption(event("interested", 1), audit=AUDIT)
    assert not await s.set_adoption(event("interested", 2), audit=AUDIT)  # no change
    assert await s.set_adoption(event("piloting", 3), audit=AUDIT)
    assert await s.set_adoption(event("rolled_out", 4), audit=AUDIT)
    now = await s.list_adoptions("a")
    assert [(a.municipality, a.stage, a.updated_at[:7]) for a in now] == [
        ("nis:24062", "rolled_out", "2026-04")
    ]
    history = await s.adoption_history("a")
    assert [h.stage for h in history] == ["interested", "piloting", "rolled_out"]
    assert await s.set_adoption(event(None, 5), audit=AUDIT)
    assert not await s.set_adoption(event(None, 6), audit=AUDIT)
    assert await s.list_adoptions("a") == []
    assert [h.stage for h in await s.adoption_history("a")] == [
        "interested",
        "piloting",
        "rolled_out",
        None,
    ]


async def test_every_change_is_audited_in_the_chain(store: Store) -> None:
    s = hub(store)
    assert isinstance(store, GovernanceStore)
    await s.create_hub_object(obj("a"), [], [], audit=AuditEvent("k", "hub.create", "a", {}))
    await s.create_hub_object(
        obj("a"), [], [], audit=AuditEvent("k", "hub.create", "a", {})
    )  # refused
    await s.delete_hub_object("a", audit=AuditEvent("k", "hub.delete", "a", {}))
    records = await store.audit_records()
    assert [r.action for r in records] == ["hub.create", "hub.delete"]
    assert verify_chain(records, await store.audit_head()) == []


async def test_follows_claims_and_dismissals(store: Store) -> None:
    from smartregion.storage.hub import Dismissal, Follow

    s = hub(store)
    follow = Follow(
        "f1",
        "ghent",
        "a@b.be",
        "domain:mobility",
        "weekly",
        "nl",
        "2026-01-01T00:00:00.000000Z",
        "key:1",
        ["usecase"],
    )
    assert await s.create_follow(follow, audit=AUDIT)
    assert not await s.create_follow(follow, audit=AUDIT)
    assert await s.get_follow("f1") == follow
    assert [f.id for f in await s.list_follows("ghent")] == ["f1"]
    assert await s.list_follows("leuven") == []
    # compare-and-set: only one of two claimants over the same previous time wins
    assert await s.claim_digest("f1", "", "2026-01-08T00:00:00.000000Z")
    assert not await s.claim_digest("f1", "", "2026-01-08T00:00:01.000000Z")
    got = await s.get_follow("f1")
    assert got is not None and got.last_sent_at == "2026-01-08T00:00:00.000000Z"
    d = Dismissal("f1", "uc", "2026-01-09T00:00:00.000000Z", "key:1")
    assert await s.dismiss(d, audit=AUDIT)
    assert not await s.dismiss(d, audit=AUDIT)
    assert await s.list_dismissals("f1") == [d]
    assert await s.delete_follow("f1", audit=AUDIT)
    assert not await s.delete_follow("f1", audit=AUDIT)
    assert await s.list_dismissals("f1") == []


async def test_query_by_change_time(store: Store) -> None:
    s = hub(store)
    await s.create_hub_object(obj("old", at="2026-01-01T00:00:00.000000Z"), [], [], audit=AUDIT)
    await s.create_hub_object(obj("new", at="2026-02-01T00:00:00.000000Z"), [], [], audit=AUDIT)
    page = await s.query_hub_objects(
        HubQuery("usecase", updated_after="2026-01-01T00:00:00.000000Z")
    )
    assert [o.id for o in page.items] == ["new"]


async def test_word_prefixes_are_exact_ranges(store: Store) -> None:
    s = hub(store)
    for oid, found in (("o1", ["az", "zz9"]), ("o2", ["a9x", "b"]), ("o3", ["aa"]), ("o4", ["a"])):
        await s.create_hub_object(obj(oid), [], found, audit=AUDIT)

    async def ids(*words: str) -> list[str]:
        page = await s.query_hub_objects(HubQuery("usecase", words=words, sort="title"))
        return [o.id for o in page.items]

    assert await ids("a") == ["o1", "o2", "o3", "o4"]
    assert await ids("az") == ["o1"]
    assert await ids("a9") == ["o2"]
    assert await ids("zz") == ["o1"]
    assert await ids("zz9") == ["o1"]
    assert await ids("zz99") == []
    assert await ids("b", "a9") == ["o2"]


async def test_match_dismissals_one_per_pair_audited_and_gone_with_the_object(store: Store) -> None:
    from smartregion.storage.matchfeedback import MatchDismissal, MatchFeedbackStore

    assert isinstance(store, MatchFeedbackStore) and isinstance(store, GovernanceStore)
    s = hub(store)
    await s.create_hub_object(obj("c1", kind="challenge"), [], [], audit=AUDIT)
    await s.create_hub_object(obj("s1", kind="solution", owner="acme"), [], [], audit=AUDIT)
    await s.create_hub_object(obj("s2", kind="solution", owner="acme"), [], [], audit=AUDIT)
    head = await store.audit_head()
    assert head is not None
    first = MatchDismissal("ghent", "c1", "s1", "2026-01-01T00:00:00.000000Z", "key:k1")
    audit = AuditEvent("key:k1", "hub.match.dismiss", "c1", {"solution": "s1"})
    assert await store.dismiss_match(first, audit=audit)
    assert not await store.dismiss_match(first, audit=audit)  # once per pair and organisation
    assert await store.dismiss_match(
        MatchDismissal("acme", "c1", "s1", "2026-01-02T00:00:00.000000Z", "key:k2"), audit=audit
    )
    assert await store.dismiss_match(
        MatchDismissal("ghent", "c1", "s2", "2026-01-03T00:00:00.000000Z", "key:k1"), audit=audit
    )
    after = await store.audit_head()
    assert after is not None and after[0] == head[0] + 3  # the refused duplicate wrote nothing
    assert [d.solution_id for d in await store.match_dismissals("ghent")] == ["s1", "s2"]
    assert [d.org_id for d in await store.match_dismissals(solution_id="s1")] == ["ghent", "acme"]
    assert await store.match_dismissals("ghent", challenge_id="c1", solution_id="s1") == [first]
    assert await store.withdraw_match_dismissal("ghent", "c1", "s2", audit=audit)
    assert not await store.withdraw_match_dismissal("ghent", "c1", "s2", audit=audit)
    assert [d.solution_id for d in await store.match_dismissals("ghent")] == ["s1"]
    # deleting an object deletes the feedback naming it
    assert await s.delete_hub_object("s1", audit=AUDIT)
    assert await store.match_dismissals() == []
    assert verify_chain(await store.audit_records(), await store.audit_head()) == []
