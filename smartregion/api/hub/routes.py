"""The hub API's endpoints under /api/v1: parse, call the hub service, render.

For each kind of object (`hub.KINDS`): a list with facets, full-text search and paging, CSV and
JSON export of the same selection, retrieve, create, replace and delete. Reading is public;
writing needs credentials (`Authorization: Bearer …`) and the rules of `hub/objects.py`.

This module does not use `from __future__ import annotations`: the endpoints are made per kind in
a function, and FastAPI must see their body and response types as objects, not as names it
would look up in the module's globals.
"""

import functools
from enum import Enum
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field, create_model

from smartregion.api.admin.auth import INTERFACE, authenticate
from smartregion.api.auth import Authenticator
from smartregion.api.hub.feeds import feeds_router
from smartregion.api.hub.matchbodies import SimilarOut, similar_out
from smartregion.api.hub.models import (
    IN_MODELS,
    OUT_MODELS,
    AdoptionEventOut,
    AdoptionIn,
    AdoptionOut,
    AdoptionsOut,
    DismissalIn,
    DismissalOut,
    EndorsementOut,
    FacetValue,
    FollowIn,
    FollowOut,
    MatchOut,
    OrganisationKind,
    SchemeOut,
    TermOut,
)
from smartregion.api.hub.rendering import REPORT_CSP, csv_of, facets_of, out, report_html
from smartregion.core.taxonomy import SCHEMES
from smartregion.errors import BadRequestData, ResourceNotFound
from smartregion.governance import Principal
from smartregion.hub import KINDS, Filters, Hub, Kind
from smartregion.hub.follows import Follows
from smartregion.hub.initiatives import PortfolioReport, portfolio_report
from smartregion.hub.matchmaking import Matchmaking
from smartregion.hub.objects import EXPORT_LIMIT
from smartregion.hub.usecases import UseCases
from smartregion.storage.hub import Follow

__all__ = ["hub_router"]

Caller = Annotated[Principal, Depends(authenticate)]
Sort = Literal["-updated", "updated", "-created", "title", "-endorsements"]
ObjectIdPath = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{1,99}$")]
#: at most this many values of one repeatable filter
_MAX_VALUES = 20
#: kinds whose create answer lists the existing objects the new one resembles
SIMILAR_KINDS = ("challenge", "solution", "usecase")


async def reader(request: Request) -> Principal | None:
    """The caller, or None for an anonymous one (reading the hub is public)."""
    authenticator: Authenticator = request.app.state.authenticator
    return await authenticator.authenticate(request, interface=INTERFACE)


def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


HubDep = Annotated[Hub, Depends(_hub)]
Reader = Annotated[Principal | None, Depends(reader)]


class _Selection(BaseModel):
    """The filters of a list, as query parameters."""

    q: str
    term: list[str]
    status: list[str]
    owner: list[str]
    owner_kind: list[str]


def _selection(
    q: Annotated[
        str,
        Query(
            max_length=200,
            pattern=r"^[^\x00]*$",
            description="full text: every word must occur (as a word's start)",
        ),
    ] = "",
    term: Annotated[
        list[Annotated[str, Query(pattern=r"^[a-z_]+:[a-z0-9._-]{1,80}$")]],
        Query(
            description="taxonomy terms (domain:…, sdg:…, block:…, vloca:…, nis:<NIS code>) or this"
            " kind's keys (e.g. funder:…): all must hold; a term also selects what is"
            " tagged with its narrower terms"
        ),
    ] = [],  # noqa: B006 (FastAPI copies it)
    status: Annotated[
        list[Annotated[str, Query(pattern=r"^[a-z_]{1,40}$")]],
        Query(description="status (or maturity, helix role, level): any of"),
    ] = [],  # noqa: B006
    owner: Annotated[
        list[Annotated[str, Query(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]],
        Query(description="owning organisations: any of"),
    ] = [],  # noqa: B006
    owner_kind: Annotated[
        list[OrganisationKind], Query(description="kinds of owning organisation: any of")
    ] = [],  # noqa: B006
) -> _Selection:
    for name, values in (
        ("term", term),
        ("status", status),
        ("owner", owner),
        ("owner_kind", owner_kind),
    ):
        if len(values) > _MAX_VALUES:
            raise BadRequestData(f"at most {_MAX_VALUES} values of {name}")
    return _Selection(q=q, term=term, status=status, owner=owner, owner_kind=list(owner_kind))


Selection = Annotated[_Selection, Depends(_selection)]


def _filters(selection: _Selection) -> Filters:
    return Filters(
        terms=selection.term,
        q=selection.q,
        statuses=selection.status,
        owners=selection.owner,
        owner_kinds=selection.owner_kind,
    )


def _kind_routes(router: APIRouter, kind: Kind) -> None:
    """The list, export and item endpoints of one kind."""
    new_model, replace_model = IN_MODELS[kind.name]
    out_model = OUT_MODELS[kind.name]
    name = out_model.__name__.removesuffix("Out")
    page_model = create_model(
        f"{name}Page",
        total=(int, ...),
        limit=(int, ...),
        offset=(int, ...),
        items=(list[out_model], ...),  # type: ignore[valid-type]
        facets=(dict[str, list[FacetValue]], ...),
    )
    base = f"/{kind.path}"
    tags: list[str | Enum] = [kind.path]

    async def list_objects(
        hub: HubDep,
        selection: Selection,
        sort: Sort = "-updated",
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
        facets: bool = True,
    ) -> Any:
        page = await hub.search(
            kind.name, _filters(selection), sort=sort, limit=limit, offset=offset, facets=facets
        )
        return {
            "total": page.total,
            "limit": limit,
            "offset": offset,
            "items": [out(o) for o in page.items],
            "facets": facets_of(kind, hub.taxonomy, page.facets) if facets else {},
        }

    async def export_csv(hub: HubDep, selection: Selection, sort: Sort = "-updated") -> Response:
        rows = [out(o) for o in await hub.export(kind.name, _filters(selection), sort=sort)]
        return Response(
            csv_of(kind, rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{kind.path}.csv"'},
        )

    async def export_json(hub: HubDep, selection: Selection, sort: Sort = "-updated") -> Any:
        rows = [out(o) for o in await hub.export(kind.name, _filters(selection), sort=sort)]
        return Response(
            orjson.dumps(rows),
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{kind.path}.json"'},
        )

    async def create_object(body: Any, caller: Caller, hub: HubDep, request: Request) -> Any:
        fields = body.model_dump(mode="json", exclude={"id", "owner"}, exclude_none=True)
        obj = await hub.create(caller, kind.name, fields, object_id=body.id, owner=body.owner)
        if kind.name not in SIMILAR_KINDS:
            return out(obj)
        # a warning, never a refusal: the author may join the existing one instead (docs/hub.md)
        matchmaking: Matchmaking = request.app.state.matchmaking
        similar = await matchmaking.similar(kind.name, obj.doc, object_id=obj.id)  # type: ignore[arg-type]
        return {**out(obj), "similar": [s.model_dump(mode="json") for s in similar_out(similar)]}

    async def get_object(object_id: ObjectIdPath, hub: HubDep, caller: Reader) -> Any:
        return out(await hub.get(kind.name, object_id))

    async def replace_object(
        object_id: ObjectIdPath, body: Any, caller: Caller, hub: HubDep
    ) -> Any:
        return out(
            await hub.replace(
                caller, kind.name, object_id, body.model_dump(mode="json", exclude_none=True)
            )
        )

    async def delete_object(object_id: ObjectIdPath, caller: Caller, hub: HubDep) -> Response:
        await hub.delete(caller, kind.name, object_id)
        return Response(status_code=204)

    create_object.__annotations__["body"] = new_model
    replace_object.__annotations__["body"] = replace_model
    router.add_api_route(
        base,
        list_objects,
        methods=["GET"],
        tags=tags,
        response_model=page_model,
        summary=f"List {kind.path} (facets, full-text search, paging)",
    )
    router.add_api_route(
        f"{base}/export.csv",
        export_csv,
        methods=["GET"],
        tags=tags,
        summary=f"Export the selected {kind.path} as CSV (at most {EXPORT_LIMIT})",
        response_class=Response,
        responses={200: {"content": {"text/csv": {}}}},
    )
    router.add_api_route(
        f"{base}/export.json",
        export_json,
        methods=["GET"],
        tags=tags,
        summary=f"Export the selected {kind.path} as JSON (at most {EXPORT_LIMIT})",
        response_model=list[out_model],  # type: ignore[valid-type]
    )
    created_model = out_model
    if kind.name in SIMILAR_KINDS:
        created_model = create_model(
            f"{name}Created",
            __base__=out_model,
            similar=(
                list[SimilarOut],
                Field(default_factory=list, description="existing ones it resembles (a warning)"),
            ),
        )
    router.add_api_route(
        base,
        create_object,
        methods=["POST"],
        status_code=201,
        tags=tags,
        response_model=created_model,
        summary=f"Create one of the {kind.path}",
    )
    router.add_api_route(
        f"{base}/{{object_id}}",
        get_object,
        methods=["GET"],
        tags=tags,
        response_model=out_model,
        summary=f"One of the {kind.path}",
    )
    router.add_api_route(
        f"{base}/{{object_id}}",
        replace_object,
        methods=["PUT"],
        tags=tags,
        response_model=out_model,
        summary=f"Replace one of the {kind.path}",
    )
    router.add_api_route(
        f"{base}/{{object_id}}",
        delete_object,
        methods=["DELETE"],
        status_code=204,
        tags=tags,
        response_class=Response,
        summary=f"Delete one of the {kind.path}",
    )


def _usecase_routes(router: APIRouter) -> None:
    tags: list[str | Enum] = ["use-cases"]
    municipality_path = Annotated[
        str, Path(pattern=r"^nis:[0-9]{5}$", description="nis:<NIS code>")
    ]

    @router.get("/use-cases/{object_id}/endorsements", tags=tags)
    async def list_endorsements(
        object_id: ObjectIdPath, hub: HubDep, caller: Reader
    ) -> list[EndorsementOut]:
        """The local governments that endorse a use case."""
        return [
            EndorsementOut(org_id=e.org_id, at=e.at)
            for e in await UseCases(hub).endorsements(object_id)
        ]

    @router.post("/use-cases/{object_id}/endorsements", status_code=201, tags=tags)
    async def endorse(object_id: ObjectIdPath, caller: Caller, hub: HubDep) -> EndorsementOut:
        """The caller's municipality or province endorses the use case (once)."""
        e = await UseCases(hub).endorse(caller, object_id)
        return EndorsementOut(org_id=e.org_id, at=e.at)

    @router.delete(
        "/use-cases/{object_id}/endorsements/{org_id}",
        status_code=204,
        tags=tags,
        response_class=Response,
    )
    async def withdraw(
        object_id: ObjectIdPath,
        org_id: Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")],
        caller: Caller,
        hub: HubDep,
    ) -> Response:
        """Withdraw an organisation's endorsement."""
        await UseCases(hub).withdraw(caller, object_id, org_id)
        return Response(status_code=204)

    @router.get("/use-cases/{object_id}/adoptions", tags=tags)
    async def adoptions(object_id: ObjectIdPath, hub: HubDep, caller: Reader) -> AdoptionsOut:
        """Which municipalities took the use case up, how far, and since when (scale-up)."""
        record = await UseCases(hub).adoptions(object_id)
        return AdoptionsOut(
            current=[
                AdoptionOut(
                    municipality=a.municipality,
                    stage=a.stage,
                    updated_at=a.updated_at,
                    label=hub.taxonomy.terms[a.municipality].labels,
                )
                for a in record.current
            ],
            history=[
                AdoptionEventOut(municipality=h.municipality, stage=h.stage, at=h.at, note=h.note)
                for h in record.history
            ],
        )

    @router.put("/use-cases/{object_id}/adoptions/{municipality}", tags=tags)
    async def set_adoption(
        object_id: ObjectIdPath,
        municipality: municipality_path,
        body: AdoptionIn,
        caller: Caller,
        hub: HubDep,
    ) -> AdoptionsOut:
        """Record how far a municipality has taken the use case up."""
        await UseCases(hub).set_adoption(caller, object_id, municipality, body.stage, body.note)
        return await adoptions(object_id, hub, caller)

    @router.delete(
        "/use-cases/{object_id}/adoptions/{municipality}",
        status_code=204,
        tags=tags,
        response_class=Response,
    )
    async def withdraw_adoption(
        object_id: ObjectIdPath, municipality: municipality_path, caller: Caller, hub: HubDep
    ) -> Response:
        """Record that a municipality no longer uses the use case."""
        if not await UseCases(hub).set_adoption(caller, object_id, municipality, None):
            raise ResourceNotFound(f"{municipality!r} has not adopted {object_id!r}")
        return Response(status_code=204)


class PortfolioLineOut(BaseModel):
    """One initiative of the report."""

    id: str
    title: dict[str, str]
    owner: str
    status: str
    start: str | None
    end: str | None
    budget: float
    funded: float
    next_milestone: dict[str, Any] | None


class PortfolioReportOut(BaseModel):
    """Totals of the selected initiatives for a steering group."""

    count: int
    budget: float
    funded: float
    by_status: dict[str, int]
    by_funder: dict[str, float]
    by_term: dict[str, int]
    lines: list[PortfolioLineOut]


def _report_routes(router: APIRouter) -> None:
    tags: list[str | Enum] = ["initiatives"]

    async def build(hub: Hub, selection: _Selection, sort: str) -> PortfolioReport:
        return portfolio_report(await hub.export("initiative", _filters(selection), sort=sort))

    @router.get("/initiatives/report", tags=tags)
    async def report(hub: HubDep, selection: Selection, sort: Sort = "title") -> PortfolioReportOut:
        """The portfolio overview of the selected initiatives: totals by status, funder, domain."""
        r = await build(hub, selection, sort)
        return PortfolioReportOut.model_validate(r, from_attributes=True)

    @router.get(
        "/initiatives/report.html",
        tags=tags,
        response_class=Response,
        responses={200: {"content": {"text/html": {}}}},
    )
    async def report_page(
        hub: HubDep, selection: Selection, sort: Sort = "title", lang: Literal["nl", "en"] = "nl"
    ) -> Response:
        """The same report as a printable page (for the steering group's meeting)."""
        r = await build(hub, selection, sort)
        title = "Portfolio: stand van zaken" if lang == "nl" else "Portfolio: progress report"
        return Response(
            report_html(r, hub.taxonomy, lang, title),
            media_type="text/html; charset=utf-8",
            headers={"Content-Security-Policy": REPORT_CSP},
        )


def _taxonomy_routes(router: APIRouter) -> None:
    tags: list[str | Enum] = ["taxonomy"]
    SchemeName = Literal["domain", "sdg", "building_block", "vloca", "region"]

    def term_out(hub: Hub, term_id: str) -> TermOut:
        term = hub.taxonomy.terms[term_id]
        return TermOut(
            id=term.id,
            scheme=term.scheme,
            label=term.labels,
            parent=term.parent,
            replaced_by=term.replaced_by,
            children=hub.taxonomy.children.get(term.id, []),
        )

    @router.get("/taxonomy", tags=tags)
    async def schemes(hub: HubDep, caller: Reader) -> list[SchemeOut]:
        """The schemes of the taxonomy."""
        return [
            SchemeOut(
                scheme=s,
                prefix=p,
                terms=len(hub.taxonomy.in_scheme(s)),
                roots=[t.id for t in hub.taxonomy.roots(s)],
            )
            for s, p in SCHEMES.items()
        ]

    @router.get("/taxonomy/terms/{term_id}", tags=tags)
    async def term(
        term_id: Annotated[str, Path(pattern=r"^[a-z_]+:[a-z0-9._-]{1,80}$")],
        hub: HubDep,
        caller: Reader,
    ) -> TermOut:
        """One term with its children."""
        if term_id not in hub.taxonomy.terms:
            raise ResourceNotFound(f"no term {term_id!r}")
        return term_out(hub, term_id)

    @router.get("/taxonomy/{scheme}", tags=tags)
    async def scheme_terms(
        scheme: SchemeName,
        hub: HubDep,
        caller: Reader,
        q: Annotated[
            str,
            Query(
                max_length=100,
                pattern=r"^[^\x00]*$",
                description="words the nl or en label contains",
            ),
        ] = "",
        current: Annotated[bool, Query(description="leave out retired terms")] = False,
    ) -> list[TermOut]:
        """Every term of a scheme (in file order), optionally those whose label matches."""
        needle = q.casefold().strip()
        return [
            term_out(hub, t.id)
            for t in hub.taxonomy.in_scheme(scheme)
            if (not current or t.replaced_by is None)
            and (not needle or any(needle in label.casefold() for label in t.labels.values()))
        ]


def _follow_routes(router: APIRouter) -> None:
    tags: list[str | Enum] = ["follows"]
    FollowIdPath = Annotated[str, Path(pattern=r"^follow-[0-9a-f]{16}$")]

    def follow_out(f: Follow) -> FollowOut:
        return FollowOut(
            id=f.id,
            org_id=f.org_id,
            email=f.email,
            target=f.target,
            frequency=f.frequency,
            lang=f.lang,
            kinds=f.kinds,
            created_at=f.created_at,
            last_sent_at=f.last_sent_at,
        )

    @router.get("/follows", tags=tags)
    async def list_follows(caller: Caller, hub: HubDep) -> list[FollowOut]:
        """The follows of the caller's organisation."""
        return [follow_out(f) for f in await Follows(hub).of(caller)]

    @router.post("/follows", status_code=201, tags=tags)
    async def follow(body: FollowIn, caller: Caller, hub: HubDep) -> FollowOut:
        """Follow a term, key or object: its news comes in a daily or weekly digest e-mail."""
        return follow_out(
            await Follows(hub).follow(
                caller,
                body.target,
                email=body.email,
                frequency=body.frequency,
                lang=body.lang,
                kinds=list(body.kinds),
            )
        )

    @router.get("/follows/{follow_id}", tags=tags)
    async def get_follow(follow_id: FollowIdPath, caller: Caller, hub: HubDep) -> FollowOut:
        """One follow of the caller's organisation."""
        return follow_out(await Follows(hub).get(caller, follow_id))

    @router.delete("/follows/{follow_id}", status_code=204, tags=tags, response_class=Response)
    async def unfollow(follow_id: FollowIdPath, caller: Caller, hub: HubDep) -> Response:
        """Stop following."""
        await Follows(hub).unfollow(caller, follow_id)
        return Response(status_code=204)

    @router.get("/follows/{follow_id}/matches", tags=tags)
    async def matches(
        request: Request, follow_id: FollowIdPath, caller: Caller, hub: HubDep
    ) -> list[MatchOut]:
        """What the follow's next digest reports (new or changed since the last one)."""
        follows = Follows(hub, getattr(request.app.state, "matchmaking", None))
        found = await follows.matches(await follows.get(caller, follow_id))
        return [
            MatchOut(
                id=m.object.id,
                kind=m.object.kind,
                owner=m.object.owner,
                title=m.object.doc.get("title", {}),
                updated_at=m.object.updated_at,
                new=m.new,
                matched=m.matched,
            )
            for m in found
        ]

    @router.get("/follows/{follow_id}/dismissals", tags=tags)
    async def dismissals(
        follow_id: FollowIdPath, caller: Caller, hub: HubDep
    ) -> list[DismissalOut]:
        """What was marked "not relevant" for the follow."""
        return [
            DismissalOut(object_id=d.object_id, at=d.at)
            for d in await Follows(hub).dismissals(caller, follow_id)
        ]

    @router.post("/follows/{follow_id}/dismissals", status_code=201, tags=tags)
    async def dismiss(
        follow_id: FollowIdPath, body: DismissalIn, caller: Caller, hub: HubDep, response: Response
    ) -> list[DismissalOut]:
        """Mark an object "not relevant": the follow never reports it again (200 when it was)."""
        if not await Follows(hub).dismiss(caller, follow_id, body.object_id):
            response.status_code = 200
        return await dismissals(follow_id, caller, hub)


@functools.cache
def hub_router() -> APIRouter:
    """Every hub endpoint.

    Built once per process and included into every app's admin API (`api/admin`): its routes
    hold no app of their own (they find the services in `request.app.state`), and building
    them — FastAPI analyses every route's parameters with pydantic — cost ~150 ms, which
    every app paid (every test builds one); including them costs ~2 ms."""
    router = APIRouter()
    router.include_router(feeds_router())
    _taxonomy_routes(router)
    _report_routes(router)  # before /initiatives/{object_id}
    _usecase_routes(router)
    _follow_routes(router)
    for kind in KINDS.values():
        _kind_routes(router, kind)
    return router
