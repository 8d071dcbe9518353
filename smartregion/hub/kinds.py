"""The seven kinds of hub object: their status vocabularies, searched texts, references and the
extra filter keys each one files itself under (beside its taxonomy terms).

An object's fields arrive validated in shape (the API's pydantic models); what a kind adds here is
what needs the rest of the platform: which organisations, objects, data sets and terms a record
names (checked to exist by the service) and which keys make it findable (`funder:…`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["KINDS", "MATURITY", "Kind", "References", "slug"]

#: maturity of use cases and solutions, from first idea to scaled across municipalities
MATURITY = ("idea", "pilot", "proof_of_concept", "implemented", "scaled")
#: the quadruple helix
HELIX_ROLES = ("government", "industry", "knowledge", "civil_society")
#: how far a municipality has taken up a use case
ADOPTION_STAGES = ("interested", "piloting", "rolled_out")
FUNDING_LEVELS = ("flemish", "belgian", "european")

_SLUG = re.compile(r"[^a-z0-9]+")


def slug(text: str) -> str:
    """A key-safe form of a name (`Europese Commissie` → `europese-commissie`)."""
    return _SLUG.sub("-", text.casefold()).strip("-")[:80]


@dataclass(slots=True)
class References:
    """What a record names elsewhere: all must exist."""

    orgs: set[str] = field(default_factory=set)
    #: organisations that must be municipalities or provinces (a challenge's co-owners)
    local_governments: set[str] = field(default_factory=set)
    #: object kind -> ids
    objects: dict[str, set[str]] = field(default_factory=dict)
    datasets: set[str] = field(default_factory=set)
    terms: set[str] = field(default_factory=set)

    def object(self, kind: str, ids: Any) -> None:
        """Note references to objects of `kind`."""
        self.objects.setdefault(kind, set()).update(ids or ())


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        yield from (v for v in value.values() if isinstance(v, str))


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of hub object."""

    name: str
    #: the URL segment under /api/v1
    path: str
    #: the field kept in the `status` column (and faceted as such)
    status_field: str
    statuses: tuple[str, ...]
    #: text fields ({nl, en}) searched beside the title and summary
    texts: tuple[str, ...] = ()
    #: prefixes of the extra keys the kind files objects under (filterable as `term`)
    key_prefixes: tuple[str, ...] = ()
    #: the extra keys of a record
    keys: Callable[[dict[str, Any]], list[str]] = lambda fields: []
    #: the references of a record
    references: Callable[[dict[str, Any]], References] = lambda fields: References()

    def words_of(self, fields: dict[str, Any]) -> Iterator[str]:
        """The texts full-text search looks at."""
        for name in ("title", "summary", *self.texts):
            yield from _texts(fields.get(name))


def _initiative_keys(f: dict[str, Any]) -> list[str]:
    keys = [f"partner:{p}" for p in f.get("partners", [])]
    for source in f.get("funding", []):
        keys.append(f"funder:{slug(source['funder'])}")
        if source.get("instrument"):
            keys.append(f"instrument:{source['instrument']}")
    return keys


def _initiative_refs(f: dict[str, Any]) -> References:
    refs = References(orgs=set(f.get("partners", [])), datasets=set(f.get("datasets", [])))
    refs.object("usecase", f.get("use_cases"))
    refs.object("funding", [s["instrument"] for s in f.get("funding", []) if s.get("instrument")])
    return refs


def _usecase_refs(f: dict[str, Any]) -> References:
    refs = References(datasets=set(f.get("datasets", [])))
    refs.object("initiative", f.get("initiatives"))
    return refs


def _challenge_refs(f: dict[str, Any]) -> References:
    return References(local_governments=set(f.get("co_owners", [])))


def _solution_refs(f: dict[str, Any]) -> References:
    refs = References()
    for deployment in f.get("deployments", []):
        if deployment.get("municipality"):
            refs.terms.add(deployment["municipality"])
        if deployment.get("organisation"):
            refs.orgs.add(deployment["organisation"])
    return refs


def _story_refs(f: dict[str, Any]) -> References:
    refs = References()
    refs.object("usecase", f.get("use_cases"))
    refs.object("initiative", f.get("initiatives"))
    return refs


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("actor", "actors", "helix_role", HELIX_ROLES, texts=("offers", "seeks")),
        Kind(
            "initiative",
            "initiatives",
            "status",
            ("planned", "running", "completed", "stopped"),
            key_prefixes=("funder", "instrument", "partner"),
            keys=_initiative_keys,
            references=_initiative_refs,
        ),
        Kind(
            "usecase",
            "use-cases",
            "maturity",
            MATURITY,
            texts=("achievements", "obstacles", "missed_opportunities"),
            references=_usecase_refs,
        ),
        Kind(
            "challenge",
            "challenges",
            "status",
            ("open", "in_progress", "matched", "closed"),
            texts=("problem", "affected_groups"),
            key_prefixes=("coowner",),
            keys=lambda f: [f"coowner:{o}" for o in f.get("co_owners", [])],
            references=_challenge_refs,
        ),
        Kind(
            "solution",
            "solutions",
            "maturity",
            MATURITY,
            texts=("description",),
            key_prefixes=("pricing",),
            keys=lambda f: [f"pricing:{f['pricing_model']}"],
            references=_solution_refs,
        ),
        Kind(
            "funding",
            "funding",
            "level",
            FUNDING_LEVELS,
            texts=("eligibility",),
            key_prefixes=("applicant", "funder", "state_aid"),
            keys=lambda f: [
                *(f"applicant:{k}" for k in f.get("eligible_applicants", [])),
                f"funder:{slug(f['funder'])}",
                *([f"state_aid:{f['state_aid']}"] if f.get("state_aid") else []),
            ],
        ),
        Kind(
            "story",
            "stories",
            "status",
            ("published", "archived"),
            texts=("body",),
            key_prefixes=("usecase", "initiative"),
            keys=lambda f: [
                *(f"usecase:{u}" for u in f.get("use_cases", [])),
                *(f"initiative:{i}" for i in f.get("initiatives", [])),
            ],
            references=_story_refs,
        ),
    )
}
