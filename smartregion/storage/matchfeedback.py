""" "Not relevant" feedback on hub matches in storage: the `MatchFeedbackStore` interface.

Contract (every backend; `tests/storage/test_hub_contract.py`):

- One dismissal per (organisation, challenge, solution): a second one changes nothing and
  returns False; withdrawing one that does not exist returns False.
- A dismissal and its audit record commit in one transaction (the governance audit chain).
- Deleting a hub object deletes the dismissals that name it (`HubStore.delete_hub_object`), so a
  later object with the same id starts without them.

The SQL is the same on both backends and runs through the governance store's driver, like the
rest of the hub's records (storage/hub.py).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TypeVar

from smartregion.core.audit import AuditEvent
from smartregion.storage.governance import Program, Sql, _append

__all__ = ["MatchDismissal", "MatchFeedbackStore"]

R = TypeVar("R")

_COLUMNS = "org_id, challenge_id, solution_id, at, actor"


@dataclass(frozen=True, slots=True)
class MatchDismissal:
    """An organisation marked the match of a challenge and a solution "not relevant"."""

    org_id: str
    challenge_id: str
    solution_id: str
    at: str
    actor: str


class MatchFeedbackStore(abc.ABC):
    """Where "not relevant" feedback on matches lives (see the module docstring)."""

    @abc.abstractmethod
    async def _run_governance(self, program: Program[R], *, write: bool) -> R:
        """Drive `program` to completion inside one transaction (GovernanceStore)."""

    async def dismiss_match(self, dismissal: MatchDismissal, *, audit: AuditEvent) -> bool:
        """Record "not relevant" for a pair; False when the organisation had already."""

        def run() -> Program[bool]:
            result = yield Sql(
                f"INSERT INTO hub_match_dismissal ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (
                    dismissal.org_id,
                    dismissal.challenge_id,
                    dismissal.solution_id,
                    dismissal.at,
                    dismissal.actor,
                ),
            )
            if result.rowcount <= 0:
                return False
            yield from _append(audit)
            return True

        return await self._run_governance(run(), write=True)

    async def withdraw_match_dismissal(
        self, org_id: str, challenge_id: str, solution_id: str, *, audit: AuditEvent
    ) -> bool:
        """Show the pair to the organisation again; False when it was not dismissed."""

        def run() -> Program[bool]:
            result = yield Sql(
                "DELETE FROM hub_match_dismissal"
                " WHERE org_id = ? AND challenge_id = ? AND solution_id = ?",
                (org_id, challenge_id, solution_id),
            )
            if result.rowcount <= 0:
                return False
            yield from _append(audit)
            return True

        return await self._run_governance(run(), write=True)

    async def match_dismissals(
        self,
        org_id: str | None = None,
        *,
        challenge_id: str | None = None,
        solution_id: str | None = None,
    ) -> list[MatchDismissal]:
        """Dismissals, oldest first: of one organisation (None: all), optionally of one
        challenge or solution."""

        def run() -> Program[list[MatchDismissal]]:
            clauses: list[str] = []
            params: list[str] = []
            for column, value in (
                ("org_id", org_id),
                ("challenge_id", challenge_id),
                ("solution_id", solution_id),
            ):
                if value is not None:
                    clauses.append(f"{column} = ?")
                    params.append(value)
            where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
            result = yield Sql(
                f"SELECT {_COLUMNS} FROM hub_match_dismissal{where}"
                " ORDER BY at, challenge_id, solution_id, org_id",
                tuple(params),
            )
            return [MatchDismissal(*r) for r in result.rows]

        return await self._run_governance(run(), write=False)
