"""Challenges and solutions on the portal: browse (facets, search), their pages with the ranked
matches and why, "not relevant", and the post and edit forms with the near-duplicate warning.

Thin over the hub services (`Hub`, `Matchmaking`): the matching, duplicate check and every rule
of who may write live there; this module reads the form, calls them and renders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from smartregion.errors import BadRequestData
from smartregion.governance import Forbidden
from smartregion.hub.matching import MatchDoc, MatchResult, RuleOutcome
from smartregion.hub.objects import Filters
from smartregion.storage.hub import HubObject
from smartregion.web.hubpages import HubPages, text
from smartregion.web.portal import Portal, Reader
from smartregion.web.postforms import FORMS, read_form, values_of

__all__ = ["KIND_PAGES", "KindPages", "routes", "rule_view"]

PAGE_SIZE = 20
#: how many matches a page shows
MATCHES = 10


@dataclass(frozen=True, slots=True)
class KindPages:
    """The pages of one kind: its name, URL segment and the kind it is matched with."""

    kind: Literal["challenge", "solution"]
    path: str
    other: str
    other_path: str


KIND_PAGES = (
    KindPages("challenge", "challenges", "solution", "solutions"),
    KindPages("solution", "solutions", "challenge", "challenges"),
)


def rule_view(rule: RuleOutcome, challenge: MatchDoc, solution: MatchDoc) -> dict[str, Any]:
    """A rule's outcome as the facts a sentence in the reader's language needs."""
    view: dict[str, Any] = {"rule": rule.rule, "passed": rule.passed}
    if rule.rule == "domain":
        shared = sorted(challenge.domains & solution.domains)
        view["case"] = (
            "unchecked"
            if not challenge.domains or not solution.domains
            else "shared"
            if shared
            else "none"
        )
        view["terms"] = shared
    elif rule.rule == "region":
        shared = sorted(t for t in challenge.regions & solution.regions if t.startswith("nis:"))
        view["case"] = (
            "everywhere"
            if not solution.regions
            else "unchecked"
            if not challenge.regions
            else "offered"
            if rule.passed
            else "elsewhere"
        )
        view["terms"] = shared[:3]
    elif rule.rule == "budget":
        view["case"] = (
            "unchecked"
            if challenge.budget_max is None or solution.budget_min is None
            else "within"
            if rule.passed
            else "over"
        )
        view["price"], view["budget"] = solution.budget_min, challenge.budget_max
    else:
        view["case"] = (
            "unchecked"
            if challenge.maturity is None or solution.maturity is None
            else "meets"
            if rule.passed
            else "below"
        )
        view["have"], view["need"] = solution.maturity, challenge.maturity
    return view


def routes(portal: Portal) -> list[BaseRoute]:
    """The challenge and solution pages' routes."""
    pages = HubPages(portal)
    out: list[BaseRoute] = []
    for kp in KIND_PAGES:
        out.extend(_kind_routes(portal, pages, kp))
    return out


def _kind_routes(portal: Portal, pages: HubPages, kp: KindPages) -> list[BaseRoute]:
    spec = FORMS[kp.kind]

    async def browse(request: Request) -> Response:
        reader = await portal.reader(request)
        hub = pages.hub
        kind = hub.kind(kp.kind)
        q = request.query_params
        chosen = {name: q.get(name, "")[:100] for name in ("domain", "region", "status", "owner")}
        words = q.get("q", "")[:200]
        if "\x00" in words:
            raise BadRequestData("the search text contains a NUL character")
        if chosen["status"] and chosen["status"] not in kind.statuses:
            raise BadRequestData(f"status is one of {', '.join(kind.statuses)}")
        for name, prefix in (("domain", "domain:"), ("region", "nis:")):
            if chosen[name] and (
                not chosen[name].startswith(prefix) or hub.taxonomy.get(chosen[name]) is None
            ):
                raise BadRequestData(f"{chosen[name]!r} is not a {name} of the taxonomy")
        try:
            number = max(1, min(int(q.get("page", "1")), 1000))
        except ValueError:
            raise BadRequestData("page is a number") from None
        filters = Filters(
            terms=[t for t in (chosen["domain"], chosen["region"]) if t],
            q=words,
            statuses=[chosen["status"]] if chosen["status"] else [],
            owners=[chosen["owner"]] if chosen["owner"] else [],
        )
        found = await hub.search(kp.kind, filters, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
        names = await pages.org_names()
        keys = found.facets.get("key", {})
        lang = reader.lang
        facets = {
            "domain": pages.facet(
                {k: n for k, n in keys.items() if k.startswith("domain:")},
                chosen["domain"],
                lambda v: pages.label(v, lang),
            ),
            "status": pages.facet(found.facets.get("status", {}), chosen["status"], lambda v: v),
            "owner": pages.facet(
                found.facets.get("owner", {}), chosen["owner"], lambda v: names.get(v, v)
            ),
        }
        if kp.kind == "challenge":
            facets["region"] = pages.facet(
                {k: n for k, n in keys.items() if k.startswith("nis:")},
                chosen["region"],
                lambda v: pages.label(v, lang),
            )
        follows = await pages.my_follows(reader)
        following = chosen["domain"] and follows.get(chosen["domain"])
        return await portal.render(
            request,
            "hub_list.html",
            {
                "kp": kp,
                "items": [_summary(pages, o, lang, names) for o in found.items],
                "total": found.total,
                "facets": facets,
                "chosen": chosen,
                "text": words,
                "page": number,
                "pages": max(1, math.ceil(found.total / PAGE_SIZE)),
                "follow_term": chosen["domain"],
                "follow_label": pages.label(chosen["domain"], lang) if chosen["domain"] else "",
                "following": following or "",
                "may_post": reader.principal is not None and reader.principal.has_role("editor"),
            },
        )

    async def show(request: Request) -> Response:
        reader = await portal.reader(request)
        obj = await pages.hub.get(kp.kind, request.path_params["object_id"])
        return await _object_page(request, portal, pages, kp, reader, obj)

    async def new_form(request: Request) -> Response:
        reader = await portal.reader(request)
        principal = await pages.signed_in(reader)
        if not await pages.hub.may_edit(principal, principal.org_id):
            raise Forbidden("posting needs the editor role in your organisation")
        values = values_of(spec, {**spec.defaults}, reader.lang)
        return await _form_page(request, portal, pages, kp, reader, values, {}, None)

    async def edit_form(request: Request) -> Response:
        reader = await portal.reader(request)
        await pages.signed_in(reader)
        obj = await pages.hub.get(kp.kind, request.path_params["object_id"])
        if not await pages.may_edit(reader, obj):
            raise Forbidden("only the owner organisation's editors change this")
        return await _form_page(
            request, portal, pages, kp, reader, values_of(spec, obj.doc, reader.lang), {}, obj
        )

    async def save(request: Request) -> Response:
        reader = await portal.reader(request)
        principal = await pages.signed_in(reader)
        hub = pages.hub
        object_id = request.path_params.get("object_id")
        obj = await hub.get(kp.kind, object_id) if object_id else None
        owner = obj.owner if obj is not None else principal.org_id
        if not await hub.may_edit(principal, owner):
            raise Forbidden(
                "only the owner organisation's editors change this"
                if obj
                else "posting needs the editor role in your organisation"
            )
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        terms = [t for t in form.getlist("terms") if isinstance(t, str)]
        known = frozenset(t for t, _ in pages.domains(reader.lang))
        sent = read_form(spec, fields, terms, reader.lang, obj.doc if obj else None, known)
        if sent.errors:
            return await _form_page(
                request, portal, pages, kp, reader, sent.values, sent.errors, obj, status=400
            )
        if fields.get("confirm") != "yes":
            similar = await pages.matchmaking.similar(
                kp.kind, sent.fields, object_id=obj.id if obj else None
            )
            if similar:
                names = await pages.org_names()
                return await _form_page(
                    request,
                    portal,
                    pages,
                    kp,
                    reader,
                    sent.values,
                    {},
                    obj,
                    similar=[
                        {
                            **_summary(pages, o, reader.lang, names),
                            "shared": list(w.shared_words[:8]),
                        }
                        for o, w in similar
                    ],
                )
        if obj is None:
            saved = await hub.create(principal, kp.kind, sent.fields)
            done = "posted"
        else:
            saved = await hub.replace(principal, kp.kind, obj.id, sent.fields)
            done = "saved"
        return RedirectResponse(f"/{kp.path}/{saved.id}?done={done}", status_code=303)

    async def not_relevant(request: Request) -> Response:
        reader = await portal.reader(request)
        principal = await pages.signed_in(reader)
        object_id, other_id = request.path_params["object_id"], request.path_params["other_id"]
        pair = (object_id, other_id) if kp.kind == "challenge" else (other_id, object_id)
        await pages.matchmaking.dismiss(principal, *pair)
        return RedirectResponse(f"/{kp.path}/{object_id}?done=dismissed#matches", status_code=303)

    base = f"/{kp.path}"
    return [
        Route(base, browse, methods=["GET"]),
        Route(f"{base}/new", new_form, methods=["GET"]),
        Route(f"{base}/new", save, methods=["POST"]),
        Route(f"{base}/{{object_id}}", show, methods=["GET"]),
        Route(f"{base}/{{object_id}}/edit", edit_form, methods=["GET"]),
        Route(f"{base}/{{object_id}}/edit", save, methods=["POST"]),
        Route(
            f"{base}/{{object_id}}/matches/{{other_id}}/not-relevant",
            not_relevant,
            methods=["POST"],
        ),
    ]


def _summary(pages: HubPages, obj: HubObject, lang: str, names: dict[str, str]) -> dict[str, Any]:
    """What a listing shows of a challenge or solution."""
    doc = obj.doc
    return {
        "id": obj.id,
        "kind": obj.kind,
        "title": text(doc.get("title"), lang),
        "summary": text(doc.get("summary"), lang) or text(doc.get("problem"), lang),
        "owner": names.get(obj.owner, obj.owner),
        "status": obj.status,
        "domains": pages.labels(doc.get("terms"), lang, "domain"),
        "updated": obj.updated_at,
    }


async def _object_page(
    request: Request, portal: Portal, pages: HubPages, kp: KindPages, reader: Reader, obj: HubObject
) -> Response:
    lang = reader.lang
    names = await pages.org_names()
    mm = pages.matchmaking
    result: MatchResult
    if kp.kind == "challenge":
        snapshot, result = await mm.solutions_for(reader.principal, obj.id, limit=MATCHES)
    else:
        snapshot, result = await mm.challenges_for(reader.principal, obj.id, limit=MATCHES)
    subject = result.subject

    def pair(doc: MatchDoc) -> tuple[MatchDoc, MatchDoc]:
        return (subject, doc) if kp.kind == "challenge" else (doc, subject)

    def labelled(view: dict[str, Any]) -> dict[str, Any]:
        view["labels"] = ", ".join(pages.label(t, lang) for t in view.get("terms", []))
        return view

    matches = []
    for m in result.matches:
        other = snapshot.objects[m.doc.id]
        e = m.explanation
        matches.append(
            {
                **_summary(pages, other, lang, names),
                "rank": m.rank,
                "words": sorted({w for t in e.shared_terms[:6] for w in t.doc_words}),
                "taxonomy": [
                    pages.label(t, lang) for t in e.shared_taxonomy if not t.startswith("nis:")
                ][:6],
                "rules": [labelled(rule_view(r, *pair(m.doc))) for r in e.rules],
                "meaning": e.semantic_similarity,
            }
        )
    excluded = []
    for x in result.excluded:
        left_out = snapshot.objects.get(x.doc_id)
        if left_out is None:
            continue
        doc = snapshot.records[x.doc_id]
        excluded.append(
            {
                **_summary(pages, left_out, lang, names),
                "rules": [labelled(rule_view(r, *pair(doc))) for r in x.failed],
            }
        )
    follows = await pages.my_follows(reader)
    return await portal.render(
        request,
        f"{kp.kind}.html",
        {
            "kp": kp,
            "obj": obj,
            "doc": obj.doc,
            "owner": names.get(obj.owner, obj.owner),
            "co_owners": [names.get(o, o) for o in obj.doc.get("co_owners", [])],
            "domains": pages.labels(obj.doc.get("terms"), lang, "domain"),
            "regions": pages.labels(obj.doc.get("terms"), lang, "nis"),
            "matches": matches,
            "excluded": excluded,
            "hidden": len(result.hidden),
            "may_edit": await pages.may_edit(reader, obj),
            "following": follows.get(obj.id, ""),
            "done": request.query_params.get("done", ""),
            "label": pages.label,
        },
    )


async def _form_page(
    request: Request,
    portal: Portal,
    pages: HubPages,
    kp: KindPages,
    reader: Reader,
    values: dict[str, Any],
    errors: dict[str, tuple[str, dict[str, Any]]],
    obj: HubObject | None,
    *,
    similar: list[dict[str, Any]] | None = None,
    status: int = 200,
) -> Response:
    spec = FORMS[kp.kind]
    action = f"/{kp.path}/{obj.id}/edit" if obj is not None else f"/{kp.path}/new"
    return await portal.render(
        request,
        "hub_form.html",
        {
            "kp": kp,
            "obj": obj,
            "values": values,
            "errors": errors,
            "action": action,
            "title": text(obj.doc.get("title"), reader.lang) if obj is not None else "",
            "domains": pages.domains(reader.lang),
            "choices": spec.choices,
            "similar": similar or [],
        },
        status=status,
    )
