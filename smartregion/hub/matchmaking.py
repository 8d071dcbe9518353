"""The hub's matching as a service: the stored objects in, ranked and explained answers out.

- Challenge -> solutions and solution -> challenges (`Matcher`), without the pairs the caller's
  organisation marked "not relevant" (recorded, audited, per organisation; both directions).
- Near-duplicate warnings for a challenge, solution or use case being written.
- Joint-purchase proposals from the open challenges of local governments, with an OCDS tender
  outline whose procuring entity is the platform's central purchasing body.
- Funding eligibility of an initiative, use case or organisation, and the iCalendar feed of the
  call deadlines.

Reading is public, like the hub's lists: every object is visible to everyone.

The records (`hub/matchrecords.py`) are built from one snapshot of the hub's challenges,
solutions and use cases, kept per process and rebuilt when the governance audit chain has moved:
every hub change appends to that chain in its own transaction, so its head is a change counter
that all workers share. The text index is built on the first matching request of a snapshot;
sentence embeddings (the optional extra) are loaded once per process, on first use, and cached
per text; the CPU-bound work runs in a thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from smartregion.core.audit import AuditEvent
from smartregion.errors import BadRequestData, ResourceNotFound
from smartregion.governance import Forbidden, Principal
from smartregion.hub.bundling import BundleProposal, propose_bundles
from smartregion.hub.duplicates import DuplicateWarning, find_near_duplicates
from smartregion.hub.eligibility import (
    Applicant,
    EligibilityResult,
    deadline_calendar,
    eligible_instruments,
)
from smartregion.hub.embeddings import Embedder, default_embedder
from smartregion.hub.matching import MatchDoc, Matcher, MatchResult
from smartregion.hub.matchrecords import (
    CANDIDATE_STATUSES,
    LOCAL_GOVERNMENTS,
    applicant_of_object,
    applicant_of_organisation,
    funding_instrument,
    match_doc,
)
from smartregion.hub.objects import Filters, Hub
from smartregion.storage.governance import Organisation
from smartregion.storage.hub import HubObject
from smartregion.storage.matchfeedback import MatchDismissal, MatchFeedbackStore

__all__ = ["Bundle", "Matchmaking", "Snapshot"]

T = TypeVar("T")
Similar = Literal["challenge", "solution", "usecase"]
ApplicantKind = Literal["initiative", "usecase", "organisation"]


@dataclass
class Snapshot:
    """The hub's matchable objects at one audit-chain position, and what is built from them."""

    version: int
    objects: dict[str, HubObject]
    records: dict[str, MatchDoc]
    embedder: Embedder | None
    lock: threading.Lock = field(default_factory=threading.Lock)
    _matcher: Matcher | None = None
    _bundles: list[BundleProposal] | None = None

    def of_kind(self, kind: str) -> list[MatchDoc]:
        """The records of one kind, in id order."""
        return [r for i, r in sorted(self.records.items()) if r.kind == kind]

    def matcher(self) -> Matcher:
        """The matcher over the candidate challenges and every solution (built once; call with
        the lock held)."""
        if self._matcher is None:
            candidates = [
                r
                for r in self.of_kind("challenge")
                if self.objects[r.id].status in CANDIDATE_STATUSES
            ]
            self._matcher = Matcher(candidates, self.of_kind("solution"), embedder=self.embedder)
        return self._matcher

    def bundles(self) -> list[BundleProposal]:
        """Joint-purchase proposals over the candidate challenges of local governments."""
        if self._bundles is None:
            challenges = [
                r
                for r in self.of_kind("challenge")
                if self.objects[r.id].status in CANDIDATE_STATUSES
                and self.objects[r.id].owner_kind in LOCAL_GOVERNMENTS
            ]
            self._bundles = propose_bundles(
                challenges, matcher=self.matcher(), embedder=self.embedder
            )
        return self._bundles


@dataclass(frozen=True)
class Bundle:
    """A joint-purchase proposal with its OCDS planning release."""

    proposal: BundleProposal
    tender: dict[str, Any]


class Matchmaking:
    """The matching over the hub's stored objects (see the module docstring)."""

    def __init__(
        self,
        hub: Hub,
        *,
        embeddings: bool = True,
        ocid_prefix: str = "ocds-smartregion",
        purchasing_body: str = "smartregion",
        uid_domain: str = "",
        public_base_url: str = "",
        embedder: Callable[[], Embedder | None] = default_embedder,
    ) -> None:
        self.hub = hub
        self.embeddings = embeddings
        self.ocid_prefix = ocid_prefix
        self.purchasing_body = purchasing_body
        #: the host name in calendar event ids ("" : the request's)
        self.uid_domain = uid_domain
        #: where clients reach the platform ("" : the request's scheme and host)
        self.public_base_url = public_base_url.rstrip("/")
        self._embedder = embedder
        self._snapshot: Snapshot | None = None
        self._building = asyncio.Lock()

    @property
    def feedback(self) -> MatchFeedbackStore:
        """The store of "not relevant" feedback."""
        store = self.hub.store
        if not isinstance(store, MatchFeedbackStore):
            raise TypeError(f"{type(store).__name__} keeps no match feedback")
        return store

    def embedder(self) -> Embedder | None:
        """The sentence embedder (None: BM25 alone; the extra is missing or switched off)."""
        return self._embedder() if self.embeddings else None

    # --- the snapshot ----------------------------------------------------------------------

    async def _organisations(self) -> dict[str, Organisation]:
        return {o.id: o for o in await self.hub.governance.store.list_organisations()}

    async def snapshot(self) -> Snapshot:
        """The current snapshot (rebuilt when the audit chain moved since the last one)."""
        head = await self.hub.governance.store.audit_head()
        version = head[0] if head else 0
        current = self._snapshot
        if current is not None and current.version == version:
            return current
        async with self._building:
            current = self._snapshot
            if current is not None and current.version == version:
                return current
            # objects are read after the counter: a snapshot is never older than its version
            objects = {
                o.id: o
                for kind in ("challenge", "solution", "usecase")
                for o in await self.hub.export(kind, Filters())
            }
            orgs = await self._organisations()
            records = {i: match_doc(o, self.hub.taxonomy, orgs) for i, o in objects.items()}
            embedder = await asyncio.to_thread(self.embedder)
            current = Snapshot(version, objects, records, embedder)
            self._snapshot = current
            return current

    @staticmethod
    async def _locked(snapshot: Snapshot, work: Callable[[], T]) -> T:
        def run() -> T:
            with snapshot.lock:
                return work()

        return await asyncio.to_thread(run)

    # --- challenge <-> solution ------------------------------------------------------------

    async def _hidden(self, principal: Principal | None) -> set[tuple[str, str]]:
        if principal is None or not principal.org_id:
            return set()
        return await self._hidden_for(principal.org_id)

    async def _hidden_for(self, org_id: str) -> set[tuple[str, str]]:
        return {
            (d.challenge_id, d.solution_id) for d in await self.feedback.match_dismissals(org_id)
        }

    async def counterparts(self, object_id: str, *, org_id: str, limit: int = 5) -> list[HubObject]:
        """The best-ranked solutions for a challenge, or challenges for a solution, without the
        pairs `org_id` marked "not relevant" ([] for any other object): what a follow of a
        challenge or solution reports beside the object itself."""
        snapshot = await self.snapshot()
        subject = snapshot.records.get(object_id)
        if subject is None or subject.kind not in ("challenge", "solution"):
            return []
        hidden = await self._hidden_for(org_id)

        def rank() -> MatchResult:
            matcher = snapshot.matcher()
            find = matcher.solutions_for if subject.kind == "challenge" else matcher.challenges_for
            return find(subject, hidden=hidden, limit=limit)

        result = await self._locked(snapshot, rank)
        return [snapshot.objects[m.doc.id] for m in result.matches]

    async def solutions_for(
        self, principal: Principal | None, challenge_id: str, *, limit: int = 10
    ) -> tuple[Snapshot, MatchResult]:
        """Solutions for a challenge, best first, without the caller's dismissed pairs."""
        snapshot = await self.snapshot()
        subject = snapshot.records.get(challenge_id)
        if subject is None or subject.kind != "challenge":
            raise ResourceNotFound(f"no challenge {challenge_id!r}")
        hidden = await self._hidden(principal)
        result = await self._locked(
            snapshot, lambda: snapshot.matcher().solutions_for(subject, hidden=hidden, limit=limit)
        )
        return snapshot, result

    async def challenges_for(
        self, principal: Principal | None, solution_id: str, *, limit: int = 10
    ) -> tuple[Snapshot, MatchResult]:
        """Open challenges a solution answers, best first, without the caller's dismissed pairs."""
        snapshot = await self.snapshot()
        subject = snapshot.records.get(solution_id)
        if subject is None or subject.kind != "solution":
            raise ResourceNotFound(f"no solution {solution_id!r}")
        hidden = await self._hidden(principal)
        result = await self._locked(
            snapshot, lambda: snapshot.matcher().challenges_for(subject, hidden=hidden, limit=limit)
        )
        return snapshot, result

    async def _pair(self, principal: Principal, challenge_id: str, solution_id: str) -> str:
        if not principal.org_id:
            raise Forbidden("feedback is recorded for an organisation: act for one")
        await self.hub.get("challenge", challenge_id)
        await self.hub.get("solution", solution_id)
        return principal.org_id

    async def dismiss(self, principal: Principal, challenge_id: str, solution_id: str) -> bool:
        """Mark a match "not relevant" for the caller's organisation; False when it was already."""
        org_id = await self._pair(principal, challenge_id, solution_id)
        dismissal = MatchDismissal(
            org_id, challenge_id, solution_id, self.hub.now(), principal.actor
        )
        audit = AuditEvent(
            principal.actor,
            "hub.match.dismiss",
            challenge_id,
            {"solution": solution_id, "org": org_id},
        )
        return await self.feedback.dismiss_match(dismissal, audit=audit)

    async def undismiss(self, principal: Principal, challenge_id: str, solution_id: str) -> bool:
        """Show a dismissed match to the caller's organisation again; False when it was not."""
        org_id = await self._pair(principal, challenge_id, solution_id)
        audit = AuditEvent(
            principal.actor,
            "hub.match.undismiss",
            challenge_id,
            {"solution": solution_id, "org": org_id},
        )
        return await self.feedback.withdraw_match_dismissal(
            org_id, challenge_id, solution_id, audit=audit
        )

    # --- near-duplicates -------------------------------------------------------------------

    async def similar(
        self, kind: Similar, fields: dict[str, Any], *, object_id: str | None = None
    ) -> list[tuple[HubObject, DuplicateWarning]]:
        """Existing objects of the kind that a new (or changed) one resembles, most similar first
        (by their words and, with the extra, their meaning: docs/hub.md)."""
        snapshot = await self.snapshot()
        draft = HubObject(object_id or "", kind, "", "", "", "", "", "", fields)
        doc = match_doc(draft, self.hub.taxonomy, {})
        if not doc.texts:
            return []
        existing = [r for r in snapshot.of_kind(kind) if r.id != object_id]
        warnings = await self._locked(
            snapshot, lambda: find_near_duplicates(doc, existing, embedder=snapshot.embedder)
        )
        return [(snapshot.objects[w.existing.id], w) for w in warnings]

    # --- joint purchases -------------------------------------------------------------------

    async def joint_purchases(self) -> list[Bundle]:
        """Joint-purchase proposals, each with its OCDS 1.1 planning release (Lots extension)."""
        snapshot = await self.snapshot()
        proposals = await self._locked(snapshot, snapshot.bundles)
        body = await self.hub.governance.store.get_organisation(self.purchasing_body)
        entity = (self.purchasing_body, body.name if body else self.purchasing_body)
        # OCDS `date`: when the information was recorded, i.e. the members' last change (so
        # a release reads the same until a member changes)
        return [
            Bundle(
                p,
                p.tender_outline(
                    ocid_prefix=self.ocid_prefix,
                    procuring_entity=entity,
                    date=max(
                        dt.datetime.fromisoformat(snapshot.objects[c.id].updated_at)
                        for c in p.challenges
                    ),
                ),
            )
            for p in proposals
        ]

    # --- funding ---------------------------------------------------------------------------

    async def applicant(self, kind: ApplicantKind, applicant_id: str) -> Applicant:
        """The facts the hub knows of an initiative, use case or organisation."""
        orgs = await self._organisations()
        if kind == "organisation":
            org = orgs.get(applicant_id)
            if org is None:
                raise ResourceNotFound(f"no organisation {applicant_id!r}")
            profile = await self.hub.store.get_hub_object(f"actor-{applicant_id}")
            return applicant_of_organisation(org, self.hub.taxonomy, profile)
        obj = await self.hub.get(kind, applicant_id)
        return applicant_of_object(obj, self.hub.taxonomy, orgs)

    async def eligibility(
        self,
        kind: ApplicantKind,
        applicant_id: str,
        *,
        include_not_eligible: bool = False,
        lang: str = "nl",
    ) -> tuple[Applicant, list[tuple[HubObject, EligibilityResult]]]:
        """The funding instruments an applicant may apply to, every rule's outcome, the next
        deadline: eligible first, then possibly eligible (then, asked, not eligible)."""
        applicant = await self.applicant(kind, applicant_id)
        objects = {o.id: o for o in await self.hub.export("funding", Filters())}
        instruments = [funding_instrument(o, lang) for o in objects.values()]
        results = eligible_instruments(
            applicant, instruments, now=self.hub.clock(), include_not_eligible=include_not_eligible
        )
        return applicant, [(objects[r.instrument.id], r) for r in results]

    async def deadlines_ics(self, filters: Filters, *, uid_domain: str, lang: str = "nl") -> str:
        """An iCalendar feed (RFC 5545) of the selected instruments' call deadlines."""
        instruments = [
            funding_instrument(o, lang) for o in await self.hub.export("funding", filters)
        ]
        name = "Deadlines van financieringsoproepen" if lang == "nl" else "Funding call deadlines"
        if not uid_domain or any(c in uid_domain for c in "\r\n@"):
            raise BadRequestData("no host name for the calendar's event ids")
        return deadline_calendar(
            instruments, now=self.hub.clock(), uid_domain=uid_domain, name=name
        )
