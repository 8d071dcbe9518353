"""Use cases beyond their record: endorsements by local governments and scale-up (adoptions).

- Endorsement: a municipality or province vouches for a use case (Decidim's "endorse", the
  good-practice validation of the strategy); one per organisation, given by its editors; lists
  rank use cases by how many endorse them. The organisation's editors (or platform admins)
  withdraw it.
- Adoption: how far a municipality has taken a use case up (interested, piloting, rolled out).
  The use case's owner, the municipality itself (the organisation with that NIS code) or a
  platform admin records it; every change is kept, so scale-up can be followed over time.
"""

from __future__ import annotations

from dataclasses import dataclass

from smartregion.core.audit import AuditEvent
from smartregion.errors import AlreadyExists, BadRequestData, ResourceNotFound
from smartregion.governance import Forbidden, Principal
from smartregion.hub.kinds import ADOPTION_STAGES
from smartregion.hub.objects import Hub
from smartregion.storage.hub import Adoption, AdoptionEvent, Endorsement

__all__ = ["ENDORSING_KINDS", "AdoptionRecord", "UseCases"]

#: the organisations that endorse: local governments
ENDORSING_KINDS = ("municipality", "province")


@dataclass(slots=True)
class AdoptionRecord:
    """A use case's adoptions now and every change that led there."""

    current: list[Adoption]
    history: list[AdoptionEvent]


class UseCases:
    """Endorsements and adoptions of use cases (see the module docstring)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def endorse(self, principal: Principal, usecase_id: str) -> Endorsement:
        """The caller's organisation endorses the use case (once)."""
        await self.hub.get("usecase", usecase_id)
        org = await self.hub.governance.store.get_organisation(principal.org_id)
        if org is None or org.kind not in ENDORSING_KINDS or not principal.has_role("editor"):
            raise Forbidden("only editors of a municipality or province endorse use cases")
        endorsement = Endorsement(usecase_id, org.id, self.hub.now(), principal.actor)
        audit = AuditEvent(principal.actor, "hub.usecase.endorse", usecase_id, {"org": org.id})
        if not await self.hub.store.endorse_hub_object(endorsement, audit=audit):
            await self.hub.get("usecase", usecase_id)  # deleted meanwhile: 404
            raise AlreadyExists(f"{org.id!r} has endorsed {usecase_id!r} already")
        return endorsement

    async def withdraw(self, principal: Principal, usecase_id: str, org_id: str) -> None:
        """Withdraw an organisation's endorsement (its editors, platform admins)."""
        await self.hub.get("usecase", usecase_id)
        if not await self.hub.may_edit(principal, org_id):
            raise Forbidden(f"needs the editor role in organisation {org_id!r} (or platform admin)")
        audit = AuditEvent(principal.actor, "hub.usecase.unendorse", usecase_id, {"org": org_id})
        if not await self.hub.store.withdraw_endorsement(usecase_id, org_id, audit=audit):
            raise ResourceNotFound(f"{org_id!r} has not endorsed {usecase_id!r}")

    async def endorsements(self, usecase_id: str) -> list[Endorsement]:
        """Who endorses the use case, oldest first."""
        await self.hub.get("usecase", usecase_id)
        return await self.hub.store.list_endorsements(usecase_id)

    def _municipality(self, term_id: str) -> str:
        term = self.hub.taxonomy.get(term_id)
        parent = self.hub.taxonomy.get(term.parent) if term and term.parent else None
        # a municipality is a region term under a province (which is under the region)
        if term is None or term.scheme != "region" or parent is None or parent.parent is None:
            raise BadRequestData(f"{term_id!r} is not a municipality (nis:<NIS code>)")
        if term.replaced_by is not None:
            raise BadRequestData(f"{term_id!r} merged into {term.replaced_by!r}; use that")
        return term.id

    async def set_adoption(
        self,
        principal: Principal,
        usecase_id: str,
        municipality: str,
        stage: str | None,
        note: str = "",
    ) -> bool:
        """Record a municipality's stage (None: it withdrew); whether anything changed."""
        usecase = await self.hub.get("usecase", usecase_id)
        municipality = self._municipality(municipality)
        if stage is not None and stage not in ADOPTION_STAGES:
            raise BadRequestData(f"stage must be one of {list(ADOPTION_STAGES)}")
        if not await self.hub.may_edit(principal, usecase.owner):
            org = await self.hub.governance.store.get_organisation(principal.org_id)
            itself = org is not None and org.nis is not None and f"nis:{org.nis}" == municipality
            if not (itself and principal.has_role("editor")):
                raise Forbidden(
                    "the use case's owner, the municipality itself or a platform admin records adoptions"
                )
        event = AdoptionEvent(
            0, usecase_id, municipality, stage, self.hub.now(), principal.actor, note
        )
        audit = AuditEvent(
            principal.actor,
            "hub.usecase.adoption",
            usecase_id,
            {"municipality": municipality, "stage": stage},
        )
        return await self.hub.store.set_adoption(event, audit=audit)

    async def adoptions(self, usecase_id: str) -> AdoptionRecord:
        """The use case's adoptions and their history."""
        await self.hub.get("usecase", usecase_id)
        return AdoptionRecord(
            await self.hub.store.list_adoptions(usecase_id),
            await self.hub.store.adoption_history(usecase_id),
        )
