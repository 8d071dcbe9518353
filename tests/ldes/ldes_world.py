"""The world of the event-stream and catalogue tests (fixtures in conftest.py).

Organisations: the platform, `a` (owner of the data sets, writes through the NGSI-LD API with
an editor key) and `c` (another organisation, reader key). Data sets of `a`: `open` (Sensor,
open, no retention), `restricted` (Building, restricted) and `short` (Lamp, open, 1 day of
history). The streams' clock is the test's (`World.at`): members are recorded at the real
time, and the test moves "now" past them to close pages or pass retention.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from smartregion.governance import Governance, Principal
from smartregion.ldes.streams import EventStreams
from smartregion.storage.history import now_micros
from smartregion.storage.rollups import format_observed

OP = Principal.cli()
HOUR = 3_600_000_000
PAGE_SIZE = 5


@dataclass
class World:
    """The app, a client, the governance service, the ids and keys of the test."""

    app: Any
    client: httpx.AsyncClient
    gov: Governance
    a: str
    c: str
    keys: dict[str, str]
    suffix: str
    now: int = 0

    @property
    def streams(self) -> EventStreams:
        streams: EventStreams = self.app.state.streams
        return streams

    def at(self, micros: int) -> None:
        """Make `micros` the streams' "now"."""
        self.now = micros
        self.streams.clock = lambda: self.now

    def ds(self, name: str) -> str:
        """The id of data set `name` of this world."""
        return f"{self.a}-{name}"

    def auth(self, who: str | None) -> dict[str, str]:
        return {} if who is None else {"Authorization": f"Bearer {self.keys[who]}"}

    async def write(self, type_: str, count: int, rounds: int, *, start: int = 0) -> None:
        """`rounds` upserts of `count` entities of `type_` by `a`'s editor, each changing the
        temperature (one member per entity and round)."""
        for r in range(rounds):
            observed = format_observed(now_micros() // 1000 * 1000)
            entities = [
                {
                    "id": f"urn:ngsi-ld:{type_}:{self.suffix}-{k}",
                    "type": type_,
                    "temperature": {
                        "type": "Property",
                        "value": start + r * 100 + k + 0.5,
                        "observedAt": observed,
                        "unitCode": "CEL",
                    },
                    "status": {"type": "Property", "value": f"round {start + r}"},
                }
                for k in range(count)
            ]
            response = await self.client.post(
                "/ngsi-ld/v1/entityOperations/upsert", json=entities, headers=self.auth("a.editor")
            )
            assert response.status_code in (201, 204), response.text
