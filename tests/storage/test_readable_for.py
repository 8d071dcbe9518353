"""`Governance.readable_for`: what a principal may read, decided on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from storage_docs import NS

from smartregion.governance import Governance, GovernanceStore, Principal
from smartregion.storage import Readable, Store
from smartregion.storage.base import Slice

pytestmark = pytest.mark.anyio

OP = Principal.cli()


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def member(org: str, role: str = "reader") -> Principal:
    return Principal(org_id=org, role=role)


async def governance(store: Store, clock: Clock) -> Governance:
    assert isinstance(store, GovernanceStore)
    gov = Governance(store, clock=clock)
    await gov.create_organisation(OP, "platform", "Platform", "region")
    await gov.create_organisation(OP, "ghent", "Stad Gent", "municipality")
    await gov.create_organisation(OP, "leuven", "Leuven", "municipality")
    await gov.create_organisation(OP, "uni", "Universiteit", "knowledge_institution")
    await gov.create_organisation(OP, "acme", "Acme", "company")
    g = member("ghent", "admin")
    await gov.create_dataset(g, "air", "ghent", "Lucht", ["Air"], policy="open")
    await gov.create_dataset(g, "cams", "ghent", "Camera's", ["Camera"], policy="restricted")
    await gov.create_dataset(g, "secret", "ghent", "Geheim", ["Secret"], policy="private")
    await gov.create_dataset(
        g,
        "parking",
        "ghent",
        "Parkeren",
        ["Parking", "Garage"],
        policy="restricted",
        permissions=[{"action": "read", "assignee": {"kind": "municipality"}}],
    )
    await gov.create_dataset(
        g, "scoped", "ghent", "Centrum", ["Bench"], policy="open", scope="/Ghent/Centre"
    )
    return gov


def sliced(*pairs: tuple[str, list[str]] | tuple[str, list[str], str]) -> tuple[Slice, ...]:
    return tuple(
        Slice(p[0], frozenset(NS + t for t in p[1]), p[2] if len(p) > 2 else None)  # type: ignore[misc]
        for p in pairs
    )


#: the open, scoped data set: only Ghent's benches within /Ghent/Centre
BENCHES = ("ghent", ["Bench"], "/Ghent/Centre")


async def test_operator_reads_everything_and_anonymous_open_data(store: Store) -> None:
    gov = await governance(store, Clock())
    assert await gov.readable_for(OP) is None
    # open data sets; the scoped one as a slice with its scope
    assert await gov.readable_for(None) == Readable(slices=sliced(("ghent", ["Air"]), BENCHES))


async def test_members_read_their_own_and_what_policies_allow(store: Store) -> None:
    gov = await governance(store, Clock())
    for role in ("reader", "editor", "admin"):
        own = await gov.readable_for(member("ghent", role))
        # the owner reads all of its entities, scoped data sets and entities outside any data
        # set included
        assert own == Readable(owners=frozenset({"ghent"}))
    # another municipality: open data and the restricted data set its kind may read
    assert await gov.readable_for(member("leuven")) == Readable(
        owners=frozenset({"leuven"}),
        slices=sliced(("ghent", ["Air"]), BENCHES, ("ghent", ["Garage", "Parking"])),
    )
    # a company: open data only
    assert await gov.readable_for(member("acme")) == Readable(
        owners=frozenset({"acme"}), slices=sliced(("ghent", ["Air"]), BENCHES)
    )
    # an organisation unknown to governance (e.g. a trial's default organisation)
    assert await gov.readable_for(member("nobody")) == Readable(
        owners=frozenset({"nobody"}), slices=sliced(("ghent", ["Air"]), BENCHES)
    )


async def test_grants_count_while_active_and_stop_on_the_next_request(store: Store) -> None:
    clock = Clock()
    gov = await governance(store, clock)
    uni = member("uni", "editor")
    open_only = Readable(owners=frozenset({"uni"}), slices=sliced(("ghent", ["Air"]), BENCHES))
    with_cams = Readable(
        owners=frozenset({"uni"}), slices=sliced(("ghent", ["Air"]), BENCHES, ("ghent", ["Camera"]))
    )
    assert await gov.readable_for(uni) == open_only
    request = await gov.request_access(uni, "cams", "research", end=clock.now + timedelta(days=30))
    assert await gov.readable_for(uni) == open_only  # pending: nothing yet
    _, grant = await gov.approve_access_request(member("ghent", "admin"), request.id)
    assert await gov.readable_for(uni) == with_cams
    assert await gov.readable_for(member("uni", "reader")) == with_cams  # any role reads
    assert await gov.readable_for(member("acme")) == Readable(
        owners=frozenset({"acme"}), slices=sliced(("ghent", ["Air"]), BENCHES)
    )
    # expired
    clock.now += timedelta(days=31)
    assert await gov.readable_for(uni) == open_only
    clock.now -= timedelta(days=31)
    assert await gov.readable_for(uni) == with_cams
    # revoked: no longer from the very next decision on
    await gov.revoke_grant(member("ghent", "admin"), grant.id)
    assert await gov.readable_for(uni) == open_only


async def test_policy_changes_apply_at_once(store: Store) -> None:
    gov = await governance(store, Clock())
    ghent = member("ghent", "admin")
    await gov.set_dataset_policy(ghent, "air", "private")
    assert await gov.readable_for(None) == Readable(slices=sliced(BENCHES))
    await gov.set_dataset_policy(ghent, "scoped", "private")
    assert await gov.readable_for(None) == Readable()
    await gov.set_dataset_policy(ghent, "cams", "open")
    assert await gov.readable_for(None) == Readable(slices=sliced(("ghent", ["Camera"])))


async def test_mandates(store: Store) -> None:
    gov = await governance(store, Clock())
    ghent = member("ghent", "admin")
    # a mandate for one data set reads that data set (also a private one)
    one = await gov.create_mandate(ghent, "ghent", "acme", dataset_id="secret")
    assert await gov.readable_for(member("acme")) == Readable(
        owners=frozenset({"acme"}),
        slices=sliced(("ghent", ["Air"]), BENCHES, ("ghent", ["Secret"])),
    )
    await gov.revoke_mandate(ghent, one.id)
    # a mandate for all data sets reads everything the owner owns
    everything = await gov.create_mandate(ghent, "ghent", "acme")
    assert await gov.readable_for(member("acme")) == Readable(owners=frozenset({"acme", "ghent"}))
    await gov.revoke_mandate(ghent, everything.id)
    assert await gov.readable_for(member("acme")) == Readable(
        owners=frozenset({"acme"}), slices=sliced(("ghent", ["Air"]), BENCHES)
    )
    # the mandating owner gains nothing of the mandated organisation's
    await gov.create_mandate(ghent, "ghent", "acme")
    assert await gov.readable_for(member("ghent")) == Readable(owners=frozenset({"ghent"}))
