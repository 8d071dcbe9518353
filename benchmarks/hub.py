"""Hub lists: a page with facets, by term, by full-text word and both, over many objects.

    .venv/bin/python -m benchmarks.hub [--backend sqlite|postgresql] [--objects 20000] [--quick]

Loads `--objects` use cases (nl/en texts of a few dozen words, 3–6 taxonomy terms among the
domains, SDG targets and municipalities) through the hub service into a fresh database, then
times `Hub.search` (the list endpoint's work without HTTP: filters, count, page, facets) for
`--requests` rounds of each query and prints p50/p95 in milliseconds. PostgreSQL needs
SMARTREGION_BENCH_PG (a database it may empty). `--quick`: 1,000 objects, 20 rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from pathlib import Path

from benchmarks.loadgen import percentile
from smartregion.governance import Governance, Principal
from smartregion.hub import Filters, Hub, load_taxonomy
from smartregion.storage import open_store
from smartregion.storage.hub import HubStore

WORDS = [
    "slimme",
    "parkeersensoren",
    "luchtkwaliteit",
    "fietstellers",
    "hittestress",
    "digitale",
    "tweeling",
    "mobiliteit",
    "burgers",
    "meetnet",
    "energie",
    "water",
    "droogte",
    "afval",
    "zorg",
    "onderwijs",
    "participatie",
    "data",
    "platform",
    "smart",
    "parking",
    "air",
    "quality",
    "bike",
    "counters",
    "heat",
    "stress",
    "digital",
    "twin",
    "citizens",
    "sensors",
    "network",
]


async def _load(hub: Hub, objects: int, seed: int) -> None:
    rng = random.Random(seed)
    tax = hub.taxonomy
    domains = [t.id for t in tax.in_scheme("domain")]
    targets = [t.id for t in tax.in_scheme("sdg") if t.parent]
    places = [
        t.id
        for t in tax.in_scheme("region")
        if t.parent not in (None, "nis:02000") and not t.replaced_by
    ]
    op = Principal.cli()
    await hub.governance.create_organisation(op, "bench", "Bench", "municipality")
    for i in range(objects):
        words = " ".join(rng.choice(WORDS) for _ in range(40))
        fields = {
            "title": {"nl": f"Use case {i} {rng.choice(WORDS)}", "en": f"Use case {i}"},
            "summary": {"nl": words, "en": words},
            "maturity": rng.choice(["idea", "pilot", "implemented"]),
            "terms": sorted(
                {rng.choice(domains), rng.choice(targets), *rng.sample(places, rng.randint(1, 4))}
            ),
        }
        await hub.create(op, "usecase", fields, owner="bench")


async def _time(hub: Hub, filters: Filters, rounds: int) -> tuple[float, float]:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        await hub.search("usecase", filters, limit=20, facets=True)
        times.append((time.perf_counter() - start) * 1000)
    return percentile(times, 50), percentile(times, 95)


async def run(url: str, objects: int, rounds: int) -> None:
    store = open_store(url)
    await store.open()
    await store.migrate()
    try:
        assert isinstance(store, HubStore)
        hub = Hub(store, Governance(store), load_taxonomy())  # type: ignore[arg-type]
        start = time.perf_counter()
        await _load(hub, objects, seed=7)
        print(f"loaded {objects} use cases in {time.perf_counter() - start:.1f} s")
        queries = {
            "all, facets": Filters(),
            "term (province)": Filters(terms=["nis:40000"]),
            "word prefix": Filters(q="parkeer"),
            "term + word + status": Filters(
                terms=["domain:mobility"], q="sensor", statuses=["pilot"]
            ),
        }
        for name, filters in queries.items():
            p50, p95 = await _time(hub, filters, rounds)
            print(f"{name:24} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    objects, rounds = (1_000, 20) if args.quick else (args.objects, args.requests)
    if args.backend == "sqlite":
        url = f"sqlite:///{Path(tempfile.mkdtemp()) / 'hub-bench.db'}"
    else:
        url = os.environ.get("SMARTREGION_BENCH_PG", "")
        if not url:
            raise SystemExit(
                "set SMARTREGION_BENCH_PG to a PostgreSQL database the benchmark may fill"
            )
    asyncio.run(run(url, objects, rounds))


if __name__ == "__main__":
    main()
