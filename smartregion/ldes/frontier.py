"""The pages of a replication: which are known, which to fetch next, what each one's caching
said (the `pages` of the client's saved state; pure, no I/O).

A page's status: `new` (to read), `mutable` (read; read again by every run, and when following
once `due`), `immutable` (read; never again), `gone` (410), `pruned` (left out by `--since`: a
relation bounds its members below it), `partial` (immutable, but members were left out by
`--since`). A run with an earlier (or no) `--since` turns `pruned` and `partial` pages back into
`new` ones. Discovery order is kept (`order`): unread pages are read breadth-first.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from smartregion.ldes.fetching import Page

__all__ = ["Frontier"]


class Frontier:
    """The pages of `state` (a JSON-able dict the client saves), for one run."""

    def __init__(self, state: dict[str, Any], *, since: int | None, poll_interval: float) -> None:
        self.state = state
        self.pages: dict[str, dict[str, Any]] = state.setdefault("pages", {})
        state.setdefault("next", 0)
        self.since = since
        self.poll_interval = poll_interval
        #: pages fetched in this run
        self.visited: set[str] = set()
        for page in self.pages.values():
            status = page["status"]
            pruned = status == "pruned" and not self.prunes(page.get("bound"), page.get("value"))
            partial = status == "partial" and (since is None or since < page["since"])
            if pruned or partial:
                page["status"] = "new"

    def prunes(self, bound: str | None, value: int | None) -> bool:
        """Whether a relation bounding its members by (kind, µs) leads only to older members
        than `since` (TREE: `lt` LessThan, `le` LessThanOrEqualTo, `eq` EqualTo)."""
        if self.since is None or bound is None or value is None:
            return False
        if bound == "lt":
            return value <= self.since
        return value < self.since

    def known(self) -> set[str]:
        """Every page URL known, and the final URL of every page that redirected."""
        return set(self.pages) | {p["final"] for p in self.pages.values() if "final" in p}

    def discover(self, url: str, bound: str | None = None, value: int | None = None) -> bool:
        """Add a page (pruned, given the relation's bound); False when it was pruned."""
        if url in self.pages:
            return True
        order = self.state["next"]
        self.state["next"] += 1
        if self.prunes(bound, value):
            self.pages[url] = {"status": "pruned", "bound": bound, "value": value, "order": order}
            return False
        self.pages[url] = {"status": "new", "order": order}
        return True

    def next(self, follow: bool) -> str | None:
        """The page to fetch now: unread pages first (in discovery order), then mutable pages
        not yet read in this run, then (following) mutable pages whose freshness ran out and
        failed pages, when due."""
        now = time.time()
        best: tuple[int, int] | None = None
        chosen = None
        for url, page in self.pages.items():
            status = page["status"]
            if status not in ("new", "mutable"):
                continue
            if url not in self.visited:
                rank = 0 if status == "new" else 1
            elif follow and page.get("due", 0) <= now:
                rank = 2
            else:
                continue
            candidate = (rank, page.get("order", 0))
            if best is None or candidate < best:
                best, chosen = candidate, url
        return chosen

    def next_due(self) -> float | None:
        """When the earliest page to poll again is due (epoch seconds), if any."""
        dues = [p.get("due", 0.0) for p in self.pages.values() if p["status"] in ("new", "mutable")]
        return min(dues) if dues else None

    def validators(self, url: str) -> tuple[str | None, str | None]:
        """(ETag, Last-Modified) to revalidate a mutable page with."""
        page = self.pages[url]
        if page["status"] != "mutable":
            return None, None
        return page.get("etag"), page.get("lastModified")

    def failed(self, url: str) -> None:
        """The page could not be fetched: try again after the poll interval (or next run)."""
        self.pages[url]["due"] = time.time() + self.poll_interval

    def gone(self, url: str) -> None:
        """410: the page is no more (kept, so that links to it are not followed again)."""
        self.pages[url] = {"status": "gone", "order": self.pages[url].get("order", 0)}

    def fetched(self, url: str, page: Page, *, left_out: bool = False) -> None:
        """Record what the response said of the page (200 or 304)."""
        entry = self.pages[url]
        if page.status == "ok":
            entry["final"] = page.final_url
        entry["etag"] = page.etag
        entry["lastModified"] = page.last_modified
        if page.immutable:
            entry.pop("due", None)
            if left_out:
                # members left out by --since: a later run with an earlier one reads it again
                # (a mutable page is read again by every run anyway)
                entry["status"], entry["since"] = "partial", self.since
            else:
                entry["status"] = "immutable"
        else:
            entry["status"] = "mutable"
            fresh = page.max_age if page.max_age is not None else self.poll_interval
            entry["due"] = time.time() + fresh

    def unread(self, url: str) -> dict[str, Any]:
        """A copy of the state with `url` still to be read (saved with a page's first chunks)."""
        state: dict[str, Any] = orjson.loads(orjson.dumps(self.state))
        entry = state["pages"][url]
        # read whole again after a crash, not revalidated: a 304 would skip the rest
        entry.pop("etag", None)
        entry.pop("lastModified", None)
        if entry["status"] in ("immutable", "partial"):
            entry["status"] = "new"
        else:
            entry["due"] = 0.0
        return state
