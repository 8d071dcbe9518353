"""Live streams (Server-Sent Events) across real sockets: a change written by ANOTHER server
process on the same database reaches a stream, on SQLite and on PostgreSQL, and a stream shows
only what its caller may read."""

from __future__ import annotations

import secrets
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from test_serve import server

SENSOR = "urn:ngsi-ld:Sensor:live1"


def _events(response: httpx.Response, want: int, seen: list[tuple[str, Any]]) -> None:
    """Read SSE events into `seen` until `want` of them arrived."""
    name = None
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: ") and name is not None:
            seen.append((name, orjson.loads(line[len("data: ") :])))
            name = None
            if len(seen) >= want:
                return


def _stream_while(
    url: str, headers: dict[str, str], want: int, write: Any
) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []
    with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(20.0)) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = threading.Thread(target=_events, args=(response, want, seen), daemon=True)
        reader.start()
        time.sleep(0.5)  # the stream is open: what is written from now on is news
        write()
        reader.join(timeout=15)
    return seen


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_write_by_another_process_reaches_the_stream(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path}/live.db"
    else:
        url = request.getfixturevalue("postgres_url")
    tenant = f"live{secrets.token_hex(3)}"
    headers = {"NGSILD-Tenant": tenant}
    with (
        server("--database", url, "--anonymous-writes") as a,
        server("--database", url, "--anonymous-writes") as b,
    ):
        # a first entity, so the tenant exists
        first = {"id": "urn:ngsi-ld:Sensor:other", "type": "Other"}
        assert (
            httpx.post(f"{b}/ngsi-ld/v1/entities", json=first, headers=headers).status_code == 201
        )

        def write() -> None:
            entity = {
                "id": SENSOR,
                "type": "Sensor",
                "temperature": {"type": "Property", "value": 21},
            }
            r = httpx.post(f"{b}/ngsi-ld/v1/entities", json=entity, headers=headers)
            assert r.status_code == 201
            # not of the streamed type: not sent
            r = httpx.post(
                f"{b}/ngsi-ld/v1/entities", json={"id": "urn:x:2", "type": "Other"}, headers=headers
            )
            assert r.status_code == 201
            # a stream sends an entity as it is when it reads the change: let it read this one
            time.sleep(1.0)
            r = httpx.delete(f"{b}/ngsi-ld/v1/entities/{SENSOR}", headers=headers)
            assert r.status_code == 204

        seen = _stream_while(f"{a}/live/entities?type=Sensor&options=keyValues", headers, 2, write)
    assert seen[0] == ("entity", {"id": SENSOR, "type": "Sensor", "temperature": 21})
    assert seen[1] == ("gone", {"id": SENSOR})


def test_a_stream_shows_only_what_its_caller_may_read(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/live-owned.db"
    with server("--database", url) as base:
        # organisations and keys through the CLI's admin commands would need a second process;
        # the admin API bootstraps them with the operator's key instead
        import subprocess
        import sys

        def admin(*args: str) -> str:
            out = subprocess.run(
                [sys.executable, "-m", "smartregion", "admin", *args, "--database", url],
                capture_output=True,
                text=True,
                check=True,
            )
            return out.stdout.strip()

        admin("create-org", "--id", "org-a", "--name", "A", "--kind", "municipality")
        admin("create-org", "--id", "org-b", "--name", "B", "--kind", "company")
        key_a = admin("create-key", "--org", "org-a", "--role", "editor")
        key_b = admin("create-key", "--org", "org-b", "--role", "editor")
        a = {"Authorization": f"Bearer {key_a}"}
        b = {"Authorization": f"Bearer {key_b}"}

        def write() -> None:
            mine = {"id": "urn:x:b1", "type": "Sensor", "n": {"type": "Property", "value": 1}}
            theirs = {"id": "urn:x:a1", "type": "Sensor", "n": {"type": "Property", "value": 2}}
            assert (
                httpx.post(f"{base}/ngsi-ld/v1/entities", json=theirs, headers=a).status_code == 201
            )
            assert (
                httpx.post(f"{base}/ngsi-ld/v1/entities", json=mine, headers=b).status_code == 201
            )

        seen = _stream_while(f"{base}/live/entities?type=Sensor&options=keyValues", b, 1, write)
        assert seen == [("entity", {"id": "urn:x:b1", "type": "Sensor", "n": 1})]
        # without credentials, no stream of private data: an anonymous caller gets open data only
        r = httpx.get(f"{base}/live/entities", params={"dataset": "nope"}, timeout=5)
        assert r.status_code == 404
        r = httpx.get(f"{base}/live/entities", timeout=5)
        assert r.status_code == 400
