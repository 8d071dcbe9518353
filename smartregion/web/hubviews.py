"""What the hub's pages show of hub objects: texts in the reader's language, taxonomy labels,
facets as links (repeatable `term` filters), the filters a list page reads from its query, and
map points of region terms.

The rules (who may endorse, which objects exist, how lists are filtered and counted) stay in
`smartregion.hub`; this module only reads its answers for a page.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request

from smartregion.core.taxonomy import Taxonomy, scheme_of
from smartregion.errors import BadRequestData
from smartregion.hub.objects import Filters
from smartregion.hub.places import point_of
from smartregion.storage.hub import HubObject, HubPage

__all__ = [
    "HUB_LABELS",
    "PAGE_SIZE",
    "FacetGroup",
    "FacetLink",
    "ListQuery",
    "facet_groups",
    "features_of",
    "list_query",
    "summary",
    "term_label",
    "text",
]

#: objects per list page
PAGE_SIZE = 20


def N_(text: str) -> str:
    """Marks a message for the catalogues; translated where it is shown (`facet_label`)."""
    return text


#: the words shown for the hub's stored values, translated when shown (merged into the
#: portal's `LABELS`)
HUB_LABELS: dict[str, dict[str, str]] = {
    "maturity": {
        "idea": N_("idea"),
        "pilot": N_("pilot"),
        "proof_of_concept": N_("proof of concept"),
        "implemented": N_("implemented"),
        "scaled": N_("scaled up"),
    },
    "stage": {
        "interested": N_("interested"),
        "piloting": N_("piloting"),
        "rolled_out": N_("rolled out"),
    },
    "helix": {
        "government": N_("government"),
        "industry": N_("company"),
        "knowledge": N_("knowledge institution"),
        "civil_society": N_("civil society"),
    },
    "initiative": {
        "planned": N_("planned"),
        "running": N_("running"),
        "completed": N_("completed"),
        "stopped": N_("stopped"),
    },
    "org_kind": {
        "municipality": N_("municipality"),
        "province": N_("province"),
        "region": N_("region"),
        "company": N_("company"),
        "knowledge_institution": N_("knowledge institution"),
        "citizens_organisation": N_("citizens' organisation"),
    },
    "scheme": {
        "domain": N_("Domain"),
        "sdg": N_("Sustainable Development Goal"),
        "building_block": N_("Building block"),
        "vloca": N_("VLOCA layer"),
        "region": N_("Province or municipality"),
        "status": N_("Status"),
        "owner_kind": N_("Kind of organisation"),
        "funder": N_("Funder"),
        "helix": N_("Role in the quadruple helix"),
        "maturity": N_("Maturity"),
    },
    "kind": {
        "usecase": N_("use case"),
        "story": N_("story"),
        "initiative": N_("initiative"),
        "actor": N_("actor"),
        "challenge": N_("challenge"),
        "solution": N_("solution"),
        "funding": N_("funding"),
    },
    "endorse": {
        "endorsed": N_("Your organisation now endorses this use case."),
    },
}
#: the longest search text a list accepts (longer is cut, as the catalogue does)
MAX_QUERY = 200


def text(value: Any, lang: str) -> str:
    """A {nl, en} text in the reader's language, else in the other one ("" when absent)."""
    if not isinstance(value, dict):
        return ""
    return str(value.get(lang) or value.get("nl") or value.get("en") or "")


def term_label(taxonomy: Taxonomy, term_id: str, lang: str) -> str:
    """A taxonomy term's label in the reader's language (the id when unknown)."""
    term = taxonomy.get(term_id)
    if term is None:
        return term_id
    return term.labels.get(lang) or term.labels.get("nl") or term_id


def summary(obj: HubObject, taxonomy: Taxonomy, lang: str) -> dict[str, Any]:
    """What a list shows of any hub object."""
    return {
        "id": obj.id,
        "kind": obj.kind,
        "title": text(obj.doc.get("title"), lang) or obj.id,
        "summary": text(obj.doc.get("summary"), lang),
        "owner": obj.owner,
        "owner_kind": obj.owner_kind,
        "status": obj.status,
        "updated": obj.updated_at,
        "endorsements": obj.endorsements,
        "terms": [(t, term_label(taxonomy, t, lang)) for t in obj.doc.get("terms", [])],
    }


@dataclass(frozen=True, slots=True)
class ListQuery:
    """The filters of a hub list page: chosen `term`s (repeatable), statuses, owner kinds, text."""

    terms: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    owner_kinds: tuple[str, ...] = ()
    q: str = ""
    page: int = 1

    @property
    def offset(self) -> int:
        """The first row of the page (pages of `PAGE_SIZE`)."""
        return (self.page - 1) * PAGE_SIZE

    def filters(self) -> Filters:
        """The hub service's filters."""
        return Filters(
            terms=self.terms, q=self.q, statuses=self.statuses, owner_kinds=self.owner_kinds
        )


def list_query(
    request: Request, taxonomy: Taxonomy, statuses: Sequence[str], owner_kinds: Sequence[str] = ()
) -> ListQuery:
    """The filters of a list page's query; a 400 names a value the list does not know (an
    unknown taxonomy term too: a link to it would list nothing, without saying why)."""
    q = request.query_params
    chosen_statuses = tuple(dict.fromkeys(q.getlist("status")))
    for status in chosen_statuses:
        if status not in statuses:
            raise BadRequestData(f"status is one of {', '.join(statuses)}")
    chosen_kinds = tuple(dict.fromkeys(q.getlist("owner_kind")))
    for kind in chosen_kinds:
        if kind not in owner_kinds:
            raise BadRequestData(f"owner_kind is one of {', '.join(owner_kinds)}")
    raw_page = q.get("page", "1")
    if not raw_page.isdigit() or not 1 <= int(raw_page) <= 10_000:
        raise BadRequestData("page is a number from 1")
    terms = tuple(dict.fromkeys(t for t in q.getlist("term") if t))
    if len(terms) > 20:
        raise BadRequestData("at most 20 filters at once")
    unknown = [t for t in terms if scheme_of(t) is not None and taxonomy.get(t) is None]
    if unknown:
        raise BadRequestData(f"unknown taxonomy terms: {', '.join(unknown[:5])}")
    return ListQuery(
        terms, chosen_statuses, chosen_kinds, q.get("q", "")[:MAX_QUERY], int(raw_page)
    )


def _url(request: Request, params: list[tuple[str, str]]) -> str:
    query = urlencode(params)
    return request.url.path + ("?" + query if query else "")


def changed_url(
    request: Request, *, add: tuple[str, str] | None = None, remove: tuple[str, str] | None = None
) -> str:
    """This page with one repeatable filter added or removed (and back on the first page)."""
    params = [
        (k, v) for k, v in request.query_params.multi_items() if k != "page" and (k, v) != remove
    ]
    if add is not None and add not in params:
        params.append(add)
    return _url(request, params)


def page_url(request: Request, page: int) -> str:
    """This page's list at another page number."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "page"]
    return _url(request, [*params, ("page", str(page))] if page > 1 else params)


@dataclass(frozen=True, slots=True)
class FacetLink:
    """One value of a facet: its label, count, and the link that adds or removes it."""

    value: str
    label: str
    count: int
    selected: bool
    url: str


@dataclass(frozen=True, slots=True)
class FacetGroup:
    """One facet (a taxonomy scheme, the status field, …) with its values."""

    name: str
    values: list[FacetLink]


def _links(
    request: Request,
    param: str,
    counts: dict[str, int],
    chosen: Iterable[str],
    label: Any,
    limit: int,
) -> list[FacetLink]:
    chosen = set(chosen)
    ordered = sorted(counts.items(), key=lambda kv: (kv[0] not in chosen, -kv[1], kv[0]))[:limit]
    return [
        FacetLink(
            value,
            label(value),
            count,
            value in chosen,
            changed_url(request, remove=(param, value))
            if value in chosen
            else changed_url(request, add=(param, value)),
        )
        for value, count in ordered
    ]


def facet_groups(
    request: Request,
    page: HubPage,
    taxonomy: Taxonomy,
    lang: str,
    query: ListQuery,
    *,
    schemes: Sequence[str],
    status_label: Any = None,
    status_name: str = "status",
    owner_kind_label: Any = None,
    key_labels: dict[str, Any] | None = None,
    limit: int = 12,
) -> dict[str, FacetGroup]:
    """The facets of a list page by name: each taxonomy scheme asked for (region: provinces
    and municipalities, SDGs: the goals), the kind's own keys asked for (`funder:…`, labelled
    by `key_labels[prefix]`), the status field (headed `status_name`) and the owners' kinds."""
    key_labels = key_labels or {}
    by_scheme: dict[str, dict[str, int]] = {scheme: {} for scheme in (*schemes, *key_labels)}
    for key, count in page.facets.get("key", {}).items():
        scheme = scheme_of(key)
        term = taxonomy.get(key)
        prefix = key.partition(":")[0]
        if scheme is None and prefix in key_labels:
            by_scheme[prefix][key] = count
            continue
        if scheme not in by_scheme or term is None:
            continue
        if scheme == "region" and term.parent is None:  # the Flemish Region: every object
            continue
        if scheme == "sdg" and term.parent is not None:  # targets: too many for a facet
            continue
        by_scheme[scheme][key] = count
    groups = {
        scheme: FacetGroup(
            scheme,
            _links(
                request, "term", counts, query.terms, lambda t: term_label(taxonomy, t, lang), limit
            ),
        )
        for scheme, counts in by_scheme.items()
        if scheme not in key_labels
    }
    for prefix, label in key_labels.items():
        groups[prefix] = FacetGroup(
            prefix, _links(request, "term", by_scheme[prefix], query.terms, label, limit)
        )
    if status_label is not None:
        groups["status"] = FacetGroup(
            status_name,
            _links(
                request,
                "status",
                page.facets.get("status", {}),
                query.statuses,
                status_label,
                limit,
            ),
        )
    if owner_kind_label is not None:
        groups["owner_kind"] = FacetGroup(
            "owner_kind",
            _links(
                request,
                "owner_kind",
                page.facets.get("owner_kind", {}),
                query.owner_kinds,
                owner_kind_label,
                limit,
            ),
        )
    return groups


def features_of(taxonomy: Taxonomy, places: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """A GeoJSON FeatureCollection (RFC 7946: longitude first) of region terms with properties;
    terms without a point are left out."""
    features = []
    for term_id, properties in places:
        point = point_of(taxonomy, term_id)
        if point is None:
            continue
        features.append(
            {
                "type": "Feature",
                "id": term_id,
                "geometry": {"type": "Point", "coordinates": [point[1], point[0]]},
                "properties": properties,
            }
        )
    return {"type": "FeatureCollection", "features": features}
