"""Background jobs: a loop that runs one piece of work every `interval` seconds in the serving
process (the history purge, the hub's digests). Beside the job locks (`locks.py`) that keep
such work to one process per database."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

__all__ = ["PeriodicJob"]

log = logging.getLogger("smartregion.jobs")


class PeriodicJob:
    """Runs `work` at start and then every `interval` seconds (0: never) until stopped; a run
    that raises is logged and retried at the next interval."""

    def __init__(self, work: Callable[[], Awaitable[object]], interval: float, name: str) -> None:
        self.work = work
        self.interval = interval
        self.name = name
        self._task: asyncio.Task[None] | None = None
        #: completed runs (for operators' logs and tests)
        self.runs = 0

    async def start(self) -> None:
        """Start the background loop (nothing when the interval is 0)."""
        if self._task is None and self.interval > 0:
            self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        """Stop the loop (cancelled where the work next awaits)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.work()
            except Exception:  # a failed run is retried at the next interval
                log.exception("background job %s failed", self.name)
            self.runs += 1
            await asyncio.sleep(self.interval)
