"""`kill -9` of the bridge, and of the server, in the middle of an ingest (issue 5).

A small version of `python -m benchmarks.trials` (docs/ingestion.md, "Reliability trials"):
2 trials of 2,000 messages per target and backend, each on a Mosquitto of its own with
persistence on. After the kill, the restart and the redelivery (bridge) or the client's re-sends
(server), every acknowledged message is in history exactly once.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path

import pytest

from benchmarks import trials

MESSAGES = 2000


@pytest.fixture
def mosquitto_binary() -> None:
    if not Path(trials.MOSQUITTO).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("Mosquitto is required in CI but not installed")
        pytest.skip("Mosquitto is not installed")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'trial.db'}"
        trials._migrate(url)
        return "sqlite", url
    # the session's throwaway database; each trial writes a tenant of its own
    url = str(request.getfixturevalue("postgres_url"))
    trials._migrate(url)
    return "postgresql", url


@pytest.mark.parametrize("target", ["bridge", "server"])
@pytest.mark.usefixtures("mosquitto_binary")
def test_nothing_acknowledged_is_lost_or_doubled_by_a_kill(
    target: str, database: tuple[str, str], tmp_path: Path
) -> None:
    backend, url = database
    for trial, seed in enumerate((11, 12), start=1):
        workdir = tmp_path / f"trial{trial}"
        workdir.mkdir()
        outcome = asyncio.run(
            trials.run_trial(
                target, trial, seed, MESSAGES, url, backend, workdir,
                sensors=50, tenant=f"kill9{secrets.token_hex(4)}",
            )
        )  # fmt: skip
        row = trials.table_row(outcome)
        assert outcome.finished, row
        # everything sent was acknowledged in the end (the client re-sends; Mosquitto stayed up)
        assert outcome.acknowledged == MESSAGES, row
        assert outcome.lost == 0, row
        assert outcome.duplicates == 0, row
        assert outcome.stored == MESSAGES, row
        assert outcome.dead_letters == 0, row


def test_the_judge_counts_lost_and_doubled_instances() -> None:
    outcome = trials.Outcome(1, 1, "bridge", "sqlite", kill_at=2)
    sensor = "urn:ngsi-ld:TrialSensor:{}".format
    rows = [
        (sensor(0), 100, 0.0),
        (sensor(1), 101, 1.0),
        (sensor(1), 101, 1.0),  # a redelivery recorded twice
        (sensor(1), 103, 3.0),
    ]
    trials.judge(outcome, rows, acknowledged={0, 1, 2, 3}, sensors=2)
    assert (outcome.stored, outcome.lost, outcome.duplicates) == (3, 1, 1)
    assert not outcome.ok
