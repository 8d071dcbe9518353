"""The replication frontier (`ldes/frontier.py`): order, pruning, caching state."""

from __future__ import annotations

from typing import Any

from smartregion.ldes.fetching import Page
from smartregion.ldes.frontier import Frontier

DAY = 86_400_000_000


def test_pruning_by_upper_bounds() -> None:
    f = Frontier({}, since=10 * DAY, poll_interval=60)
    assert f.prunes("lt", 10 * DAY) and not f.prunes("lt", 10 * DAY + 1)
    assert f.prunes("le", 10 * DAY - 1) and not f.prunes("le", 10 * DAY)
    assert f.prunes("eq", 9 * DAY) and not f.prunes("eq", 10 * DAY)
    assert not f.prunes(None, None) and not Frontier({}, since=None, poll_interval=60).prunes(
        "lt", 0
    )


def test_breadth_first_then_mutable_pages_then_due_ones() -> None:
    state: dict[str, Any] = {}
    f = Frontier(state, since=None, poll_interval=60)
    for url in ("a", "b", "c"):
        assert f.discover(url)
    assert f.next(follow=False) == "a"
    f.visited.add("a")
    f.fetched("a", Page("a", "ok", final_url="a", max_age=0.0))  # mutable, due at once
    assert f.next(follow=False) == "b"  # unread pages first
    for url in ("b", "c"):
        f.visited.add(url)
        f.fetched(url, Page(url, "ok", final_url=url, immutable=True))
    assert f.next(follow=False) is None  # each mutable page once per run
    assert f.next(follow=True) == "a"  # following: again when due
    # a later run reads the mutable page again, never the immutable ones
    again = Frontier(state, since=None, poll_interval=60)
    assert again.next(follow=False) == "a"
    again.visited.add("a")
    assert again.next(follow=False) is None


def test_pruned_and_partial_pages_come_back_without_since() -> None:
    state: dict[str, Any] = {}
    f = Frontier(state, since=10 * DAY, poll_interval=60)
    assert f.discover("root")
    assert not f.discover("old", "lt", 5 * DAY)
    f.fetched("root", Page("root", "ok", final_url="root", immutable=True), left_out=True)
    assert state["pages"]["old"]["status"] == "pruned"
    assert state["pages"]["root"]["status"] == "partial"
    assert Frontier(state, since=10 * DAY, poll_interval=60).next(follow=False) is None
    later = Frontier(state, since=None, poll_interval=60)
    assert {u for u, p in state["pages"].items() if p["status"] == "new"} == {"root", "old"}
    assert later.next(follow=False) == "root"


def test_gone_failed_and_the_state_saved_mid_page() -> None:
    state: dict[str, Any] = {}
    f = Frontier(state, since=None, poll_interval=60)
    f.discover("a")
    f.discover("b")
    f.gone("a")
    assert state["pages"]["a"]["status"] == "gone" and f.discover("a")  # known: not re-added
    f.visited.add("b")
    f.failed("b")
    assert f.next(follow=False) is None and f.next_due() is not None
    f.fetched("b", Page("b", "ok", final_url="b2", etag='"1"', max_age=30.0))
    assert f.validators("b") == ('"1"', None) and "b2" in f.known()
    unread = f.unread("b")
    assert unread["pages"]["b"]["due"] == 0.0 and "etag" not in unread["pages"]["b"]
    assert state["pages"]["b"]["etag"] == '"1"'  # a copy
