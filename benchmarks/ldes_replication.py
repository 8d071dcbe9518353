"""`smartregion ldes replicate`: members per second replicating a static stream (issue 6).

    .venv/bin/python -m benchmarks.ldes_replication [--backend sqlite|postgresql|both]
        [--members 50000] [--page-size 250] [--format nt|nq|ttl|trig|jsonld] [--quick]

A generated event stream of `members` SOSA observations (`sensors` features of interest, one
value a minute each, a QUDT result with a unit) in pages of `page-size` members, each page
immutable and linked to the next by a `tree:GreaterThanOrEqualToRelation`, is served by a
static HTTP server in a process of its own (so it does not share this one's interpreter). The
client replicates it into a fresh database, in process, as the command does (fetch, parse with
pyoxigraph, map, one transaction per page with entities, history and the members seen):
members written per second over the whole run, pages included.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from rich.console import Console

from benchmarks import servers
from benchmarks.history import _database
from smartregion.app import Runtime
from smartregion.cli.ldes import run_replication
from smartregion.governance import Governance, GovernanceStore, Principal
from smartregion.settings import Settings

MEDIA = {
    "nt": "application/n-triples",
    "nq": "application/n-quads",
    "ttl": "text/turtle",
    "trig": "application/trig",
    "jsonld": "application/ld+json",
}
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


@dataclass(slots=True)
class ReplicationFigures:
    """What one backend measured."""

    backend: str
    members: int
    pages: int
    members_per_s: float = 0.0
    seconds: float = 0.0


def _iso(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _observation(base: str, n: int, sensors: int) -> tuple[str, str, str]:
    """(member IRI, its N-Triples lines without the graph, its timestamp)."""
    sensor = n % sensors
    at = _iso(T0 + (n // sensors) * 60)
    m = f"<{base}/obs/{n}>"
    r = f"<{base}/obs/{n}#result>"
    x = "http://www.w3.org/2001/XMLSchema#"
    lines = (
        f"{m} <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <http://www.w3.org/ns/sosa/Observation>",
        f"{m} <http://www.w3.org/ns/sosa/hasFeatureOfInterest> <urn:ngsi-ld:Site:s{sensor}>",
        f"{m} <http://www.w3.org/ns/sosa/observedProperty> <https://example.org/property/airTemperature>",
        f"{m} <http://www.w3.org/ns/sosa/hasResult> {r}",
        f'{r} <http://qudt.org/schema/qudt/numericValue> "{10 + (n % 200) / 10}"^^<{x}double>',
        f"{r} <http://qudt.org/schema/qudt/unit> <http://qudt.org/vocab/unit/DEG_C>",
        f'{m} <http://www.w3.org/ns/sosa/resultTime> "{at}"^^<{x}dateTime>',
        f'{m} <http://www.w3.org/ns/prov#generatedAtTime> "{at}"^^<{x}dateTime>',
    )
    return m, "\n".join(lines), at


def write_stream(
    directory: Path, base: str, members: int, page_size: int, fmt: str, sensors: int
) -> int:
    """The pages as files `page-<i>.<fmt>`; the number of pages."""
    import pyoxigraph as ox

    formats = {
        "nt": ox.RdfFormat.N_TRIPLES,
        "nq": ox.RdfFormat.N_QUADS,
        "ttl": ox.RdfFormat.TURTLE,
        "trig": ox.RdfFormat.TRIG,
        "jsonld": ox.RdfFormat.JSON_LD,
    }
    stream = f"<{base}/stream>"
    pages = (members + page_size - 1) // page_size
    for p in range(pages):
        lines = [
            f"{stream} <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <https://w3id.org/ldes#EventStream>",
            f"{stream} <https://w3id.org/ldes#timestampPath> <http://www.w3.org/ns/prov#generatedAtTime>",
        ]
        last = ""
        for n in range(p * page_size, min(members, (p + 1) * page_size)):
            iri, body, last = _observation(base, n, sensors)
            lines.append(f"{stream} <https://w3id.org/tree#member> {iri}")
            lines.append(body)
        if p + 1 < pages:
            rel = f"<{base}/page-{p}.{fmt}#next>"
            lines += [
                f"<{base}/page-{p}.{fmt}> <https://w3id.org/tree#relation> {rel}",
                f"{rel} <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <https://w3id.org/tree#GreaterThanOrEqualToRelation>",
                f"{rel} <https://w3id.org/tree#path> <http://www.w3.org/ns/prov#generatedAtTime>",
                f'{rel} <https://w3id.org/tree#value> "{last}"^^<http://www.w3.org/2001/XMLSchema#dateTime>',
                f"{rel} <https://w3id.org/tree#node> <{base}/page-{p + 1}.{fmt}>",
            ]
        text = "".join(line + " .\n" for line in "\n".join(lines).split("\n"))
        path = directory / f"page-{p}.{fmt}"
        if fmt == "nt":
            path.write_text(text)
        else:
            quads = ox.parse(text, format=ox.RdfFormat.N_TRIPLES)
            path.write_bytes(ox.serialize(quads, format=formats[fmt]) or b"")
    return pages


def serve(directory: str, port: int) -> None:
    """The static server (run in its own process by `--serve`)."""

    class Handler(SimpleHTTPRequestHandler):
        extensions_map = {f".{k}": v for k, v in MEDIA.items()}

        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=directory, **kwargs)  # type: ignore[arg-type]

        def end_headers(self) -> None:
            self.send_header("Cache-Control", "public, max-age=604800, immutable")
            super().end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


async def _dataset(url: str) -> str:
    runtime = Runtime.build(Settings(database_url=url))
    await runtime.start()
    try:
        assert isinstance(runtime.store, GovernanceStore)
        gov = Governance(runtime.store)
        await gov.create_organisation(Principal.cli(), "bench", "Bench", "municipality")
        await gov.create_dataset(Principal.cli(), "air", "bench", "Air", ["Site"])
        return "air"
    finally:
        await runtime.stop()


def run_benchmark(
    backend: str, *, members: int, page_size: int, fmt: str, sensors: int = 500
) -> ReplicationFigures:
    """Replicate the generated stream into a fresh database on `backend`."""
    port = servers.free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="bench-ldes-") as tmpdir:
        tmp = Path(tmpdir)
        site = tmp / "site"
        site.mkdir()
        pages = write_stream(site, base, members, page_size, fmt, sensors)
        proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.ldes_replication", "--serve", str(site), str(port)],
            cwd=Path(__file__).parent.parent,
            env=os.environ.copy(),
        )
        try:
            deadline = time.monotonic() + 20
            import httpx

            while True:
                try:
                    httpx.get(f"{base}/page-0.{fmt}", timeout=1)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            with _database(backend, tmp, "ildes_") as url, open(os.devnull, "w") as null:
                dataset = asyncio.run(_dataset(url))
                settings = Settings(database_url=url)
                t0 = time.perf_counter()
                report = asyncio.run(
                    run_replication(
                        settings,
                        f"{base}/page-0.{fmt}",
                        dataset_id=dataset,
                        tenant="",
                        follow=False,
                        since=None,
                        entity_type=None,
                        poll_interval=60.0,
                        console=Console(file=null),
                    )
                )
                seconds = time.perf_counter() - t0
            assert report.written == members and report.rejected == 0, report
            assert report.pages == pages, report
        finally:
            proc.terminate()
            proc.wait()
    return ReplicationFigures(backend, members, pages, members / seconds, seconds)


def describe(f: ReplicationFigures) -> str:
    """The figures as a Markdown line."""
    return (
        f"- ldes replicate ({f.backend}): {f.members_per_s:,.0f} members/s"
        f" ({f.members:,} members, {f.pages:,} pages, {f.seconds:,.1f} s)"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the replication benchmark and print the figures."""
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--serve"]:
        serve(argv[1], int(argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--members", type=int, default=50_000)
    parser.add_argument("--page-size", type=int, default=250)
    parser.add_argument("--format", choices=tuple(MEDIA), default="nt")
    parser.add_argument("--quick", action="store_true", help="2,000 members: a smoke check")
    args = parser.parse_args(argv)
    members = 2_000 if args.quick else args.members
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        if backend == "postgresql" and not servers.pg_admin_available():
            print("PostgreSQL unreachable: skipped")
            continue
        figures = run_benchmark(backend, members=members, page_size=args.page_size, fmt=args.format)
        print(describe(figures), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
