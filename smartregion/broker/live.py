"""The change feed fanned out to live streams (api/live.py): one poller per process.

Every entity transaction commits one change-feed entry naming the entities it wrote
(`Store.change_feed`), whichever process wrote it — an HTTP worker, the MQTT bridge, an
import. While at least one stream is open, `LiveFeed` polls the feed (every `interval`
seconds) and hands each new entry to every open stream's queue; with no stream open it reads
nothing. On PostgreSQL, concurrent transactions may commit out of number order, so each poll
re-reads a span behind the highest number seen (`LAG`) and skips the entries it has handed out
already. Entries older than `retention` seconds are pruned now and then, by any process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from smartregion.storage.base import FeedEntry, Store

__all__ = ["LiveFeed"]

log = logging.getLogger("smartregion.live")

#: how far behind the highest number seen each poll looks again (out-of-order commits)
LAG = 200
#: a stream that falls this far behind is cut (it reconnects and resumes)
QUEUE_SIZE = 1000


class LiveFeed:
    """Polls the change feed while streams are open and fans entries out to them."""

    def __init__(self, store: Store, *, interval: float = 0.25, retention: float = 600.0) -> None:
        self.store = store
        self.interval = interval
        self.retention = retention
        self._queues: set[asyncio.Queue[FeedEntry | None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._position = 0
        self._seen: set[int] = set()
        self._pruned_at = 0.0

    async def subscribe(self, after: int | None = None) -> asyncio.Queue[FeedEntry | None]:
        """A queue of the entries committed from now on (or after `after`, a resumed stream's
        Last-Event-ID, while the feed still holds them). A None in it: the stream fell behind."""
        queue: asyncio.Queue[FeedEntry | None] = asyncio.Queue(QUEUE_SIZE)
        if not self._queues:
            # start at the head; what is already committed there is not news
            self._position = await self.store.change_feed_head()
            behind = await self.store.change_feed(max(0, self._position - LAG), limit=5000)
            self._seen = {entry.seq for entry in behind}
        if after is not None and after < self._position:
            for entry in await self.store.change_feed(after, limit=QUEUE_SIZE - 1):
                if entry.seq <= self._position:
                    queue.put_nowait(entry)
        self._queues.add(queue)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        return queue

    def unsubscribe(self, queue: asyncio.Queue[FeedEntry | None]) -> None:
        """Stop handing entries to `queue` (the poller stops when none is left)."""
        self._queues.discard(queue)

    async def close(self) -> None:
        """Stop polling."""
        self._queues.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while self._queues:
            try:
                await self._poll()
            except Exception:  # a database hiccup must not end every stream
                log.exception("reading the change feed failed; trying again")
            await asyncio.sleep(self.interval)

    async def _poll(self) -> None:
        entries = await self.store.change_feed(max(0, self._position - LAG), limit=5000)
        for entry in entries:
            if entry.seq in self._seen:
                continue
            self._seen.add(entry.seq)
            self._position = max(self._position, entry.seq)
            for queue in list(self._queues):
                try:
                    queue.put_nowait(entry)
                except asyncio.QueueFull:
                    # a stream too slow to keep up is cut rather than holding the feed back
                    self._queues.discard(queue)
                    with contextlib.suppress(asyncio.QueueFull):
                        queue.get_nowait()
                        queue.put_nowait(None)
        floor = self._position - LAG
        self._seen = {seq for seq in self._seen if seq > floor}
        now = time.time()
        if now - self._pruned_at > 60:
            self._pruned_at = now
            await self.store.prune_change_feed(now - self.retention)
