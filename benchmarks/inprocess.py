"""Batch upserts and PATCHes through the broker's ASGI app in one process, without sockets.

For comparisons the machine's swings do not move: run it under `valgrind --tool=callgrind`
(instructions executed) twice — with the operations and with `--count 0` (start-up and the
warm-up batch only) — and subtract; or read the CPU time it prints per operation. Side by side
with another checkout: `PYTHONPATH=/path/to/checkout python -m benchmarks.inprocess …`.

    .venv/bin/python -m benchmarks.inprocess batch --count 10
    .venv/bin/python -m benchmarks.inprocess patch --count 2000 --concurrency 16
    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \\
        .venv/bin/python -m benchmarks.inprocess batch --count 2

Each batch round is `--count` requests of 1,000 new entities (creates), then the same entities
again with new values (updates); a PATCH round loads 1,000 entities, then PATCHes them in turn
from `--concurrency` callers at once (so that the store's group commit works as under wrk).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks import workload
from smartregion.app import create_app
from smartregion.settings import Settings

UPSERT = "/ngsi-ld/v1/entityOperations/upsert"
HEADERS = [(b"content-type", b"application/json")]

Send = Callable[[str, str, bytes], Awaitable[int]]


def caller(app: Any) -> Send:
    """A function sending one request to `app` (ASGI, no server) and returning its status."""

    async def send(method: str, path: str, body: bytes) -> int:
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        status: list[int] = []

        async def receive() -> dict[str, Any]:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def reply(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": HEADERS,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 80),
        }
        await app(scope, receive, reply)
        return status[0]

    return send


async def run(args: argparse.Namespace) -> None:
    url = args.database or f"sqlite:///{tempfile.mkdtemp(prefix='inprocess-')}/bench.db"
    settings = Settings(database_url=url, anonymous_writes=True, record_history=not args.no_history)
    app = create_app(settings)
    send = caller(app)
    async with app.router.lifespan_context(app):
        for batch in workload.make_batches(10_000_000, 1, 1000):  # warm-up
            assert await send("POST", UPSERT, batch.body) in (200, 201, 204)
        if args.what == "batch":
            rounds = {
                "creates": workload.make_batches(0, args.count, 1000),
                "updates": workload.make_batches(0, args.count, 1000, round_no=1),
            }
            for name, batches in rounds.items():
                started = time.process_time()
                for batch in batches:
                    status = await send("POST", UPSERT, batch.body)
                    assert status in (200, 201, 204), status
                cpu = time.process_time() - started
                per = cpu / max(1, args.count * 1000) * 1e6
                print(f"{name}: {cpu:.2f} s of CPU, {per:.0f} µs an entity")
            return
        for batch in workload.make_batches(0, 1, 1000):
            assert await send("POST", UPSERT, batch.body) in (200, 201, 204)
        ids = [workload.entity_id(i) for i in range(1000)]

        async def patcher(first: int) -> None:
            for i in range(first, args.count, args.concurrency):
                path = f"/ngsi-ld/v1/entities/{ids[i % 1000]}/attrs"
                status = await send("PATCH", path, workload.PATCH_BODY)
                assert status == 204, status

        started = time.process_time()
        await asyncio.gather(*(patcher(k) for k in range(args.concurrency)))
        cpu = time.process_time() - started
        print(f"patches: {cpu:.2f} s of CPU, {cpu / max(1, args.count) * 1e6:.0f} µs a PATCH")


def main() -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["batch", "patch"])
    parser.add_argument("--count", type=int, default=10, help="batches per round, or PATCHes")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent PATCH callers")
    parser.add_argument("--database", help="database URL (default: a new SQLite file)")
    parser.add_argument("--no-history", action="store_true", help="record_history=false")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
