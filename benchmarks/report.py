"""Results of one run, rendered as Markdown and written into docs/benchmarks.md between markers.

Each backend's section is self-contained (its date, the machine, and the baselines of the run it
came from), so `--backend sqlite` rewrites only the SQLite section and leaves PostgreSQL's as it
was.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"

#: targets of the benchmark issue
TARGET_BATCH_ATTRS_PER_S = 25_000
TARGET_PATCH_RATIO = 0.30
TARGET_QUERY_P95_MS = 50.0


@dataclass(slots=True)
class QueryFigure:
    """Benchmark 3, one query: latencies without and with count=true."""

    name: str
    path: str
    matches: int | None
    #: what the data set says the query must match
    expected: int
    returned: int
    p50_ms: float
    p95_ms: float
    count_p50_ms: float
    count_p95_ms: float
    samples: int
    count_samples: int
    timed_out: bool = False
    count_timed_out: bool = False


@dataclass(slots=True)
class BackendResult:
    """Everything measured on one backend in one run."""

    backend: str
    date: str
    mode: str
    machine: dict[str, str]
    # benchmark 1 (attr updates/s, request p50 ms)
    create_attrs_per_s: float = math.nan
    create_p50_ms: float = math.nan
    update_attrs_per_s: float = math.nan
    update_p50_ms: float = math.nan
    bare_create_attrs_per_s: float = math.nan
    bare_update_attrs_per_s: float = math.nan
    bare_batch_p50_ms: float = math.nan
    # the same batches against a server that keeps no history of entity writes (issue 4 baseline)
    nohist_create_attrs_per_s: float = math.nan
    nohist_update_attrs_per_s: float = math.nan
    raw: dict[str, float] = field(default_factory=dict)
    batch_entities: int = 0
    batch_requests: int = 0
    # the load of the query data set through the batch API
    load_entities: int = 0
    load_entities_per_s: float = math.nan
    load_seconds: float = math.nan
    total_entities: int = 0
    # benchmark 2
    patch_rps: float = math.nan
    patch_p50_ms: float = math.nan
    patch_p95_ms: float = math.nan
    patch_p99_ms: float = math.nan
    patch_errors: int = 0
    bare_patch_rps: float = math.nan
    bare_patch_p50_ms: float = math.nan
    bare_patch_p95_ms: float = math.nan
    #: the bare handler's PATCH rates just before and just after ours (their mean is the
    #: baseline above); empty when benchmark 2 did not run
    bare_patch_brackets: list[float] = field(default_factory=list)
    wrk_seconds: int = 0
    # benchmark 3
    queries: list[QueryFigure] = field(default_factory=list)
    query_samples_max: int = 0
    notes: list[str] = field(default_factory=list)
    error: str | None = None


def _n(value: float, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


def _brackets(r: BackendResult) -> str:
    if len(r.bare_patch_brackets) != 2:
        return ""
    before, after = r.bare_patch_brackets
    return f", just before and after ours (mean of {_n(before)} and {_n(after)})"


def _ms(value: float) -> str:
    if math.isnan(value):
        return "—"
    if value >= 10_000:
        return f"{value / 1000:.1f} s"
    return f"{value:.1f} ms" if value >= 10 else f"{value:.2f} ms"


def _pct(ours: float, base: float) -> str:
    if math.isnan(ours) or math.isnan(base) or not base:
        return "—"
    return f"{100 * ours / base:.0f} %"


def _lower(timed_out: bool) -> str:
    return "> " if timed_out else ""


def _verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def render_machine(machine: dict[str, str]) -> str:
    """The machine block."""
    lines = [f"- **{k}**: {v}" for k, v in machine.items()]
    return "\n".join(lines)


def render_backend(r: BackendResult) -> str:
    """The Markdown section of one backend."""
    title = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(r.backend, r.backend)
    out: list[str] = [f"### {title} — {r.date} ({r.mode} run)", ""]
    out.append(
        f"Machine: {r.machine.get('CPU', '?')}, {r.machine.get('cores', '?')} cores, "
        f"Python {r.machine.get('Python', '?')}, {r.machine.get('database', '')}."
    )
    out.append("")
    if r.error:
        out += [
            "**Not measured completely**: the run failed with",
            "",
            "```",
            r.error.strip()[-5000:],
            "```",
            "",
        ]
    # --- 1
    out += [
        f"**1. Batch upsert** — POST /entityOperations/upsert, {r.batch_requests} requests of 1,000 "
        "entities x 3 attributes, one client, sequential.",
        "",
        "| | attr updates/s | entities/s | request p50 | ours as % of it |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| **ours, creates** | **{_n(r.create_attrs_per_s)}** | {_n(r.create_attrs_per_s / 3)} | {_ms(r.create_p50_ms)} | |",
        f"| **ours, updates of existing entities** | **{_n(r.update_attrs_per_s)}** | {_n(r.update_attrs_per_s / 3)} | {_ms(r.update_p50_ms)} | |",
        f"| HTTP ceiling: bare handler, same bodies (creates) | {_n(r.bare_create_attrs_per_s)} | {_n(r.bare_create_attrs_per_s / 3)} | {_ms(r.bare_batch_p50_ms)} | {_pct(r.create_attrs_per_s, r.bare_create_attrs_per_s)} |",
        f"| HTTP ceiling: bare handler, same bodies (updates) | {_n(r.bare_update_attrs_per_s)} | {_n(r.bare_update_attrs_per_s / 3)} | | {_pct(r.update_attrs_per_s, r.bare_update_attrs_per_s)} |",
        f"| same broker without history (`record_history=false`), creates | {_n(r.nohist_create_attrs_per_s)} | {_n(r.nohist_create_attrs_per_s / 3)} | | {_pct(r.create_attrs_per_s, r.nohist_create_attrs_per_s)} |",
        f"| same broker without history (`record_history=false`), updates | {_n(r.nohist_update_attrs_per_s)} | {_n(r.nohist_update_attrs_per_s / 3)} | | {_pct(r.update_attrs_per_s, r.nohist_update_attrs_per_s)} |",
    ]
    raw = r.raw
    if raw:
        label = "executemany" if r.backend == "sqlite" else "executemany (pipelined)"
        out.append(
            f"| storage ceiling: raw {label} insert, 1 txn/batch | {_n(raw.get('insert_attrs_per_s', math.nan))} | "
            f"{_n(raw.get('insert_rows_per_s', math.nan))} | | {_pct(r.create_attrs_per_s, raw.get('insert_attrs_per_s', math.nan))} |"
        )
        out.append(
            f"| storage ceiling: raw {label} upsert, 1 txn/batch | {_n(raw.get('upsert_attrs_per_s', math.nan))} | "
            f"{_n(raw.get('upsert_rows_per_s', math.nan))} | | {_pct(r.update_attrs_per_s, raw.get('upsert_attrs_per_s', math.nan))} |"
        )
        if raw.get("copy_rows_per_s"):
            out.append(
                f"| storage ceiling: raw COPY, 1 txn/batch | {_n(raw['copy_attrs_per_s'])} | "
                f"{_n(raw['copy_rows_per_s'])} | | {_pct(r.create_attrs_per_s, raw['copy_attrs_per_s'])} |"
            )
    best = max(
        (v for v in (r.create_attrs_per_s, r.update_attrs_per_s) if not math.isnan(v)),
        default=math.nan,
    )
    worst = min(
        (v for v in (r.create_attrs_per_s, r.update_attrs_per_s) if not math.isnan(v)),
        default=math.nan,
    )
    overheads = [
        base / ours - 1
        for ours, base in (
            (r.create_attrs_per_s, r.nohist_create_attrs_per_s),
            (r.update_attrs_per_s, r.nohist_update_attrs_per_s),
        )
        if not math.isnan(ours) and not math.isnan(base) and ours > 0
    ]
    if overheads:
        out += [
            "",
            "History (every changed attribute instance recorded with its roll-ups, in the write's "
            f"transaction) costs {', '.join(f'{o:.0%}' for o in overheads)} (creates, updates) "
            "against the same load without it; issue 4 target ≤ 30 %: "
            f"{_verdict(max(overheads) <= 0.30)}.",
        ]
    out += [
        "",
        f"Target ≥ {TARGET_BATCH_ATTRS_PER_S:,} attr updates/s: "
        + (
            "—"
            if math.isnan(best)
            else f"creates {_verdict(r.create_attrs_per_s >= TARGET_BATCH_ATTRS_PER_S)}, "
            f"updates {_verdict(r.update_attrs_per_s >= TARGET_BATCH_ATTRS_PER_S)} "
            f"({_n(worst)} to {_n(best)})."
        ),
        "",
    ]
    if r.load_entities:
        out += [
            f"**Loading the query data set** — {r.load_entities:,} more entities through the same batch "
            f"API (1,000 per request) on top of the entities above, up to {r.total_entities:,}: "
            f"{_n(r.load_entities_per_s)} entities/s ({_n(r.load_entities_per_s * 3)} attr updates/s), "
            f"{_n(r.load_seconds, 1)} s.",
            "",
        ]
    # --- 2
    ratio = (
        r.patch_rps / r.bare_patch_rps
        if r.bare_patch_rps and not math.isnan(r.patch_rps)
        else math.nan
    )
    single = raw.get("single_commits_per_s", math.nan) if raw else math.nan
    concurrent = raw.get("concurrent_commits_per_s", 0.0) if raw else 0.0
    out += [
        f"**2. Single-entity PATCH** — PATCH /entities/{{id}}/attrs (2 attributes), wrk -t2 -c16, "
        f"{r.wrk_seconds} s after a warm-up, rotating over {r.total_entities:,} ids.",
        "",
        "| | requests/s | p50 | p95 | p99 | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        f"| **ours** | **{_n(r.patch_rps)}** | {_ms(r.patch_p50_ms)} | {_ms(r.patch_p95_ms)} | {_ms(r.patch_p99_ms)} | {r.patch_errors} |",
        f"| HTTP ceiling: bare handler, same body and wrk settings{_brackets(r)} | {_n(r.bare_patch_rps)} | {_ms(r.bare_patch_p50_ms)} | {_ms(r.bare_patch_p95_ms)} | | |",
        f"| storage ceiling: one-row durable transactions, 1 client | {_n(single)} | | | | |",
    ]
    if concurrent:
        out.append(
            f"| storage ceiling: one-row durable transactions, 16 clients | {_n(concurrent)} | | | | |"
        )
    out += [
        "",
        f"Ours = {_pct(r.patch_rps, r.bare_patch_rps)} of the bare-handler rate; target ≥ "
        f"{TARGET_PATCH_RATIO:.0%}: "
        + ("—" if math.isnan(ratio) else _verdict(ratio >= TARGET_PATCH_RATIO))
        + ".",
        "",
    ]
    # --- 3
    out += [
        f"**3. Queries** — GET /entities over {r.total_entities:,} entities of one type, one client, "
        "sequential, after warm-up; default page size (20); n = timed requests (up to "
        f"{r.query_samples_max}, fewer when a query exceeds its time budget).",
        "",
        "| query | matches (expected) | p50 | p95 | n | p50, count=true | p95, count=true | n | p95 ≤ 50 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: |",
    ]
    for q in r.queries:
        worst_p95 = max(q.p95_ms, q.count_p95_ms)
        out.append(
            f"| `{q.name}` | {_n(q.matches) if q.matches is not None else '—'} ({_n(q.expected)}) | "
            f"{_lower(q.timed_out)}{_ms(q.p50_ms)} | "
            f"{_lower(q.timed_out)}{_ms(q.p95_ms)} | {q.samples} | {_lower(q.count_timed_out)}{_ms(q.count_p50_ms)} | "
            f"{_lower(q.count_timed_out)}{_ms(q.count_p95_ms)} | {q.count_samples} | "
            f"{'yes' if worst_p95 <= TARGET_QUERY_P95_MS else '**no**'} |"
        )
    if r.notes:
        out += ["", *[f"- {n}" for n in r.notes]]
    out.append("")
    return "\n".join(out)


def _marker(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name}:begin -->", f"<!-- bench:{name}:end -->"


def replace_block(text: str, name: str, body: str) -> str:
    """Replace what lies between the `name` markers (appending the block when they are missing)."""
    begin, end = _marker(name)
    block = f"{begin}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        return pattern.sub(lambda _: block, text, count=1)
    return text.rstrip() + "\n\n" + block + "\n"


def write_doc(machine: dict[str, str], results: list[BackendResult], path: Path = DOC) -> None:
    """Write the machine block and each measured backend's section into the document."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    text = replace_block(text, "machine", render_machine(machine))
    for r in results:
        text = replace_block(text, r.backend, render_backend(r))
    path.write_text(text)


def as_json(results: list[BackendResult]) -> list[dict[str, Any]]:
    """The results as JSON-serialisable dicts."""
    from dataclasses import asdict

    return [asdict(r) for r in results]
