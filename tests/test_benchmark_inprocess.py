"""`benchmarks/inprocess.py` (the in-process load for instruction counts) keeps working: every
request it sends is answered as the benchmark expects, and it reports per operation."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import pytest

from benchmarks import inprocess


@pytest.mark.parametrize(
    ("what", "count", "lines"),
    [("batch", 1, ["creates:", "updates:"]), ("patch", 40, ["patches:"])],
)
def test_the_in_process_load_runs(
    what: str, count: int, lines: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = argparse.Namespace(
        what=what,
        count=count,
        concurrency=16,
        database=f"sqlite:///{tmp_path / 'bench.db'}",
        no_history=False,
    )
    asyncio.run(inprocess.run(args))
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == lines
    assert all("µs" in line for line in out)
