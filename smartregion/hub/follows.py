"""Follows: members of an organisation follow a taxonomy term (or a kind's key) or one object and
get a digest of what is new or changed about it; "not relevant" hides an object from that follow
for good and is recorded (the feedback the matching can learn from).

- Any member (reader or more) of an organisation follows, for an e-mail address of their own
  choosing (a service account has none); the organisation's members see, change and delete its
  follows; platform admins see all.
- A term matches every object filed under it (narrower terms included: following East Flanders
  follows Ghent); an object matches itself and the objects that link to it (stories of a use
  case, initiatives of a funding instrument). Given the matching service, a challenge also
  matches the solutions the matcher ranks best for it, and a solution the challenges (without
  the pairs the follower's organisation marked "not relevant").
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from smartregion.core.audit import AuditEvent
from smartregion.core.taxonomy import scheme_of
from smartregion.errors import BadRequestData, ResourceNotFound
from smartregion.governance import Forbidden, Principal
from smartregion.hub.kinds import KINDS
from smartregion.hub.objects import Hub
from smartregion.storage.hub import Dismissal, Follow, HubObject, HubQuery

if TYPE_CHECKING:
    from smartregion.hub.matchmaking import Matchmaking

__all__ = ["FREQUENCIES", "Follows", "Match"]

#: digest frequency -> days between digests (None: no digest e-mail; the follow is only listed)
FREQUENCIES: dict[str, int | None] = {"daily": 1, "weekly": 7, "none": None}
_EMAIL = re.compile(r"[^@\s\x00]{1,64}@[^@\s\x00]{1,255}\.[^@\s\x00]{2,63}")
#: the most objects one digest lists per kind
_PER_KIND = 50


@dataclass(frozen=True, slots=True)
class Match:
    """An object a follow reports, and whether it is new since the last digest (else changed)."""

    object: HubObject
    new: bool
    #: found by the matcher for the followed challenge or solution (not by a link or a term)
    matched: bool = False


class Follows:
    """Follows, their matches and dismissals (see the module docstring)."""

    def __init__(self, hub: Hub, matchmaking: Matchmaking | None = None) -> None:
        self.hub = hub
        self.matchmaking = matchmaking

    async def _member(self, principal: Principal, org_id: str) -> None:
        if principal.org_id != org_id and not await self.hub.governance.is_platform_admin(
            principal
        ):
            raise Forbidden(f"only members of {org_id!r} (or platform admins) manage its follows")

    async def _target_keys(self, target: str) -> list[str]:
        """The keys whose objects match `target` (a term, a kind's key, or an object id)."""
        if scheme_of(target) is not None:
            self.hub.taxonomy.check([target])
            return [target]
        prefix = target.partition(":")[0]
        if ":" in target and any(prefix in k.key_prefixes for k in KINDS.values()):
            return [target]
        obj = await self.hub.store.get_hub_object(target)
        if obj is None:
            raise BadRequestData(f"{target!r} is neither a taxonomy term, a key nor an object id")
        linked = {"usecase": "usecase", "initiative": "initiative", "funding": "instrument"}
        return [f"{linked[obj.kind]}:{obj.id}"] if obj.kind in linked else []

    async def follow(
        self,
        principal: Principal,
        target: str,
        *,
        email: str,
        frequency: str = "weekly",
        lang: str = "nl",
        kinds: list[str] | None = None,
    ) -> Follow:
        """Start following `target` for the caller's organisation."""
        if not _EMAIL.fullmatch(email):
            raise BadRequestData(f"{email!r} is not an e-mail address")
        if frequency not in FREQUENCIES:
            raise BadRequestData(f"frequency must be one of {list(FREQUENCIES)}")
        if lang not in ("nl", "en"):
            raise BadRequestData("lang must be nl or en")
        unknown = [k for k in kinds or [] if k not in KINDS]
        if unknown:
            raise BadRequestData(f"unknown kinds {unknown}; kinds are {list(KINDS)}")
        await self._target_keys(target)
        follow = Follow(
            id=f"follow-{secrets.token_hex(8)}",
            org_id=principal.org_id,
            email=email,
            target=target,
            frequency=frequency,
            lang=lang,
            created_at=self.hub.now(),
            created_by=principal.actor,
            kinds=sorted(set(kinds or [])),
        )
        audit = AuditEvent(principal.actor, "hub.follow.create", follow.id, {"target": target})
        if not await self.hub.store.create_follow(follow, audit=audit):
            raise BadRequestData("could not allocate a follow id; try again")
        return follow

    async def get(self, principal: Principal, follow_id: str) -> Follow:
        """One of the caller's organisation's follows."""
        follow = await self.hub.store.get_follow(follow_id)
        if follow is None:
            raise ResourceNotFound(f"no follow {follow_id!r}")
        await self._member(principal, follow.org_id)
        return follow

    async def of(self, principal: Principal) -> list[Follow]:
        """The caller's organisation's follows."""
        return await self.hub.store.list_follows(principal.org_id)

    async def unfollow(self, principal: Principal, follow_id: str) -> None:
        """Stop a follow."""
        follow = await self.get(principal, follow_id)
        audit = AuditEvent(principal.actor, "hub.follow.delete", follow.id, {})
        if not await self.hub.store.delete_follow(follow.id, audit=audit):
            raise ResourceNotFound(f"no follow {follow_id!r}")

    async def set_frequency(self, principal: Principal, follow_id: str, frequency: str) -> Follow:
        """Change how often a follow's digest is sent (daily, weekly or none)."""
        if frequency not in FREQUENCIES:
            raise BadRequestData(f"frequency must be one of {list(FREQUENCIES)}")
        follow = await self.get(principal, follow_id)
        follow.frequency = frequency
        audit = AuditEvent(
            principal.actor, "hub.follow.update", follow.id, {"frequency": frequency}
        )
        if not await self.hub.store.replace_follow(follow, audit=audit):
            raise ResourceNotFound(f"no follow {follow_id!r}")
        return follow

    async def dismiss(self, principal: Principal, follow_id: str, object_id: str) -> bool:
        """Mark an object "not relevant" for a follow; False when it was already."""
        follow = await self.get(principal, follow_id)
        if await self.hub.store.get_hub_object(object_id) is None:
            raise ResourceNotFound(f"no object {object_id!r}")
        dismissal = Dismissal(follow.id, object_id, self.hub.now(), principal.actor)
        audit = AuditEvent(principal.actor, "hub.follow.dismiss", follow.id, {"object": object_id})
        return await self.hub.store.dismiss(dismissal, audit=audit)

    async def dismissals(self, principal: Principal, follow_id: str) -> list[Dismissal]:
        """What was marked "not relevant" for a follow."""
        follow = await self.get(principal, follow_id)
        return await self.hub.store.list_dismissals(follow.id)

    async def matches(self, follow: Follow, since: str | None = None) -> list[Match]:
        """What is new or changed about the follow's target after `since` (default: its last
        digest, or its creation), without what was dismissed; newest first per kind."""
        since = since if since is not None else (follow.last_sent_at or follow.created_at)
        hidden = {d.object_id for d in await self.hub.store.list_dismissals(follow.id)}
        found: dict[str, Match] = {}
        target = await self.hub.store.get_hub_object(follow.target)
        if target is not None and target.updated_at > since:
            found[target.id] = Match(target, target.created_at > since)
        for kind in follow.kinds or list(KINDS):
            for key in await self._target_keys(follow.target):
                page = await self.hub.store.query_hub_objects(
                    HubQuery(kind, keys=[key], updated_after=since, limit=_PER_KIND)
                )
                for obj in page.items:
                    found.setdefault(obj.id, Match(obj, obj.created_at > since))
        if self.matchmaking is not None and target is not None:
            best = await self.matchmaking.counterparts(target.id, org_id=follow.org_id)
            for obj in best:
                if obj.updated_at > since and (not follow.kinds or obj.kind in follow.kinds):
                    found.setdefault(obj.id, Match(obj, obj.created_at > since, matched=True))
        return [m for m in found.values() if m.object.id not in hidden]
