"""Interoperability proof (issue 6): an independent, standard LDES client — the TREE community's
`ldes-client` (npm, TypeScript; not written by us) — replicates every member of our stream, in
one shot and in follow mode while new members arrive: 0 lost, 0 duplicated.

The ground truth is the database itself: every attribute instance of the demo data set is a
member `{stream}/members/{series}.{t}.{seq}` (docs/ldes.md). The client is installed by
`make test` (`npm ci` in tests/interop); without Node.js it is skipped — except in CI.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from test_serve import server

CLIENT = Path(__file__).resolve().parent.parent / "interop" / "node_modules" / "ldes-client"
CLI = CLIENT / "dist" / "bin" / "cli.js"
SETTLE = 1.0
_SUBJECT = re.compile(r"^<([^>]+)> ", re.M)


@pytest.fixture(scope="module")
def node() -> str:
    found = shutil.which("node")
    if found is None or not CLI.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("the interoperability test needs Node.js and tests/interop (make test)")
        pytest.skip("Node.js or the ldes-client package is missing (make test installs it)")
    return found


def published(db: Path, stream: str) -> set[str]:
    """Every member the stream holds: one per attribute instance of the demo data set's
    entities (its owner's entities of its types; other data sets' are not in this stream) — the
    history of their scopes is not published."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT i.series_key, i.t, i.seq FROM instance i"
            " JOIN series s ON s.series_key = i.series_key"
            " JOIN iri a ON a.iri_key = s.attr_key AND a.iri <> 'scope'"
            " JOIN entity e ON e.tenant_key = s.tenant_key AND e.entity_id = s.entity_id"
            " JOIN organisation o ON o.org_key = e.owner_key"
            " JOIN gov_dataset d ON d.id = 'demo'"
            " WHERE o.name = json_extract(d.doc, '$.owner_org')"
            " AND EXISTS (SELECT 1 FROM json_each(e.doc, '$.type') t"
            "            JOIN json_each(d.doc, '$.entity_types') w ON w.value = t.value)"
        ).fetchall()
    return {f"{stream}/members/{s}.{t}.{q}" for s, t, q in rows}


def members(output: str) -> Counter[str]:
    """Member IRI -> how many times the client emitted it (its N-Triples blocks, one each)."""
    blocks = [b for b in output.split("\n\n") if b.strip()]
    return Counter(_SUBJECT.match(b.strip()).group(1) for b in blocks)  # type: ignore[union-attr]


def test_an_independent_client_replicates_every_member_once(node: str, tmp_path: Path) -> None:
    db = tmp_path / "interop.db"
    env = {"SMARTREGION_LDES_SETTLE_SECONDS": str(SETTLE)}
    os.environ.update(env)
    try:
        with server("--database", f"sqlite:///{db}", "--demo", "--anonymous-writes") as base:
            stream = f"{base}/ldes/demo"
            time.sleep(SETTLE + 1)
            # one shot
            shot = subprocess.run(
                [node, str(CLI), stream], capture_output=True, text=True, timeout=300, check=True
            )
            got = members(shot.stdout)
            expected = published(db, stream)
            assert len(expected) > 50
            assert set(got) == expected, (len(got), len(expected))
            assert max(got.values()) == 1
            # follow mode while new members arrive
            out = tmp_path / "follow.nt"
            with out.open("w") as sink:
                follower = subprocess.Popen(
                    [node, str(CLI), "--follow", "--poll-interval", "500", stream],
                    stdout=sink,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
                try:
                    entity = "urn:ngsi-ld:AirQualityObserved:12025-001"
                    for n in range(40):
                        r = httpx.patch(
                            f"{base}/ngsi-ld/v1/entities/{entity}/attrs",
                            json={
                                "no2": {
                                    "type": "Property",
                                    "value": 10 + n,
                                    "unitCode": "GQ",
                                    "observedAt": f"2026-01-01T00:{n:02d}:00Z",
                                }
                            },
                        )
                        assert r.status_code == 204, r.text
                        time.sleep(0.1)
                    expected = published(db, stream)
                    deadline = time.monotonic() + 120
                    while time.monotonic() < deadline:
                        time.sleep(1)
                        if set(members(out.read_text())) >= expected:
                            break
                    time.sleep(2)  # a duplicate would arrive with the next polls
                finally:
                    os.killpg(follower.pid, signal.SIGTERM)
                    follower.wait(timeout=30)
            followed = members(out.read_text())
            assert set(followed) == expected, len(expected - set(followed))
            assert max(followed.values()) == 1
    finally:
        for key in env:
            os.environ.pop(key, None)
