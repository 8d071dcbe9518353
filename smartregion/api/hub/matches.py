"""The hub's matching endpoints under /api/v1: parse, call `hub.matchmaking`, render.

Challenge <-> solution matches with their explanations and the excluded candidates, "not
relevant" feedback, near-duplicate checks, joint-purchase proposals with an OCDS tender outline,
funding eligibility and the deadline calendar (docs/hub.md, "Matching"). Reading is public, like
the lists; feedback needs credentials. Included before the objects' routes, so that
`/funding/eligibility` is not read as an object id.
"""

from __future__ import annotations

import functools
from enum import Enum
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response

from smartregion.api.hub.matchbodies import (
    ApplicantOut,
    ChallengeDraft,
    Draft,
    EligibilityOut,
    JointPurchaseOut,
    MatchDismissalOut,
    MatchesOut,
    SimilarOut,
    SolutionDraft,
    UseCaseDraft,
    bundle_out,
    fact_out,
    instrument_out,
    matches_out,
    similar_out,
)
from smartregion.api.hub.models import ObjectId
from smartregion.api.hub.routes import Caller, HubDep, ObjectIdPath, Reader, Selection, _filters
from smartregion.errors import BadRequestData, Conflict, ResourceNotFound
from smartregion.hub.bundling import release_package
from smartregion.hub.matchmaking import Matchmaking

__all__ = ["matchmaking_router"]

ICAL = "text/calendar"
Lang = Literal["nl", "en"]


def _matchmaking(request: Request) -> Matchmaking:
    matchmaking: Matchmaking = request.app.state.matchmaking
    return matchmaking


MatchmakingDep = Annotated[Matchmaking, Depends(_matchmaking)]
Limit = Annotated[int, Query(ge=1, le=50, description="at most this many matches")]
OtherPath = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{1,99}$")]


# --- endpoints -----------------------------------------------------------------------------


def _pair_routes(router: APIRouter, subject: Literal["challenge", "solution"]) -> None:
    path = "challenges" if subject == "challenge" else "solutions"
    other = "solution" if subject == "challenge" else "challenge"
    tags: list[str | Enum] = [path]

    def pair(object_id: str, other_id: str) -> tuple[str, str]:
        return (object_id, other_id) if subject == "challenge" else (other_id, object_id)

    async def matches(
        object_id: ObjectIdPath,
        caller: Reader,
        hub: HubDep,
        matchmaking: MatchmakingDep,
        limit: Limit = 10,
    ) -> MatchesOut:
        if subject == "challenge":
            snapshot, result = await matchmaking.solutions_for(caller, object_id, limit=limit)
        else:
            snapshot, result = await matchmaking.challenges_for(caller, object_id, limit=limit)
        return matches_out(snapshot, result, hub.taxonomy)

    async def not_relevant(
        object_id: ObjectIdPath,
        other_id: OtherPath,
        caller: Caller,
        matchmaking: MatchmakingDep,
        response: Response,
    ) -> MatchDismissalOut:
        challenge_id, solution_id = pair(object_id, other_id)
        if not await matchmaking.dismiss(caller, challenge_id, solution_id):
            response.status_code = 200
        found = await matchmaking.feedback.match_dismissals(
            caller.org_id, challenge_id=challenge_id, solution_id=solution_id
        )
        if not found:  # withdrawn by a concurrent request between the two
            raise Conflict("the mark was withdrawn meanwhile; try again")
        d = found[0]
        return MatchDismissalOut(
            challenge_id=d.challenge_id, solution_id=d.solution_id, org_id=d.org_id, at=d.at
        )

    async def relevant_again(
        object_id: ObjectIdPath, other_id: OtherPath, caller: Caller, matchmaking: MatchmakingDep
    ) -> Response:
        challenge_id, solution_id = pair(object_id, other_id)
        if not await matchmaking.undismiss(caller, challenge_id, solution_id):
            raise ResourceNotFound(f"{other_id!r} was not marked not relevant for {object_id!r}")
        return Response(status_code=204)

    router.add_api_route(
        f"/{path}/{{object_id}}/matches",
        matches,
        methods=["GET"],
        tags=tags,
        summary=f"Ranked {other}s for one of the {path}, each with why; the excluded ones with the rule",
    )
    router.add_api_route(
        f"/{path}/{{object_id}}/matches/{{other_id}}/not-relevant",
        not_relevant,
        methods=["POST"],
        status_code=201,
        tags=tags,
        summary=f"Mark a {other} not relevant: the caller's organisation no longer sees the match"
        " (200 when it was already)",
    )
    router.add_api_route(
        f"/{path}/{{object_id}}/matches/{{other_id}}/not-relevant",
        relevant_again,
        methods=["DELETE"],
        status_code=204,
        tags=tags,
        response_class=Response,
        summary='Withdraw a "not relevant" mark',
    )


def _similar_routes(router: APIRouter) -> None:
    async def check(
        kind: Literal["challenge", "solution", "usecase"], draft: Draft, matchmaking: Matchmaking
    ) -> list[SimilarOut]:
        fields = draft.model_dump(mode="json", exclude={"id"}, exclude_none=True)
        if not any(
            isinstance(v, dict) and any((t or "").strip() for t in v.values())
            for v in fields.values()
        ):
            raise BadRequestData("give at least one text (title, summary, …)")
        return similar_out(await matchmaking.similar(kind, fields, object_id=draft.id))

    @router.post("/challenges/similar", tags=["challenges"])
    async def similar_challenges(
        body: ChallengeDraft, caller: Reader, matchmaking: MatchmakingDep
    ) -> list[SimilarOut]:
        """Existing challenges that resemble one being written (check before submitting)."""
        return await check("challenge", body, matchmaking)

    @router.post("/solutions/similar", tags=["solutions"])
    async def similar_solutions(
        body: SolutionDraft, caller: Reader, matchmaking: MatchmakingDep
    ) -> list[SimilarOut]:
        """Existing solutions that resemble one being written (check before submitting)."""
        return await check("solution", body, matchmaking)

    @router.post("/use-cases/similar", tags=["use-cases"])
    async def similar_use_cases(
        body: UseCaseDraft, caller: Reader, matchmaking: MatchmakingDep
    ) -> list[SimilarOut]:
        """Existing use cases that resemble one being written (check before submitting)."""
        return await check("usecase", body, matchmaking)


def _joint_purchase_routes(router: APIRouter) -> None:
    tags: list[str | Enum] = ["joint-purchases"]

    async def bundles(hub: HubDep, matchmaking: MatchmakingDep) -> list[JointPurchaseOut]:
        snapshot = await matchmaking.snapshot()
        return [
            bundle_out(b, snapshot.objects, hub.taxonomy)
            for b in await matchmaking.joint_purchases()
        ]

    @router.get("/joint-purchases", tags=tags)
    async def joint_purchases(
        hub: HubDep, caller: Reader, matchmaking: MatchmakingDep
    ) -> list[JointPurchaseOut]:
        """Similar open challenges of different municipalities, grouped into joint-purchase
        proposals (largest and most cohesive first), each with an OCDS tender outline."""
        return await bundles(hub, matchmaking)

    @router.get("/joint-purchases/{bundle_id}", tags=tags)
    async def joint_purchase(
        bundle_id: Annotated[str, Path(pattern=r"^bundle-[0-9a-f]{12}$")],
        hub: HubDep,
        caller: Reader,
        matchmaking: MatchmakingDep,
    ) -> JointPurchaseOut:
        """One joint-purchase proposal (its id names its members: it lasts while they do)."""
        for bundle in await bundles(hub, matchmaking):
            if bundle.id == bundle_id:
                return bundle
        raise ResourceNotFound(f"no joint-purchase proposal {bundle_id!r}")

    @router.get(
        "/joint-purchases/{bundle_id}/ocds.json",
        tags=tags,
        response_class=Response,
        responses={200: {"content": {"application/json": {}}}},
    )
    async def joint_purchase_ocds(
        request: Request,
        bundle_id: Annotated[str, Path(pattern=r"^bundle-[0-9a-f]{12}$")],
        caller: Reader,
        matchmaking: MatchmakingDep,
    ) -> Response:
        """The proposal's tender outline as an OCDS 1.1 release package (declaring the Lots and
        Techniques extensions), for OCDS tools."""
        for bundle in await matchmaking.joint_purchases():
            if bundle.proposal.id == bundle_id:
                base = matchmaking.public_base_url
                uri = f"{base}{request.url.path}" if base else str(request.url.replace(query=None))
                package = release_package(
                    [bundle.tender],
                    uri=uri,
                    publisher=bundle.tender["tender"]["procuringEntity"]["name"],
                )
                return Response(orjson.dumps(package), media_type="application/json")
        raise ResourceNotFound(f"no joint-purchase proposal {bundle_id!r}")


def _funding_routes(router: APIRouter) -> None:
    tags: list[str | Enum] = ["funding"]

    @router.get("/funding/eligibility", tags=tags)
    async def eligibility(
        caller: Reader,
        matchmaking: MatchmakingDep,
        initiative: Annotated[ObjectId | None, Query(description="an initiative's id")] = None,
        usecase: Annotated[ObjectId | None, Query(description="a use case's id")] = None,
        organisation: Annotated[
            str | None,
            Query(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$", description="an organisation's id"),
        ] = None,
        all: Annotated[
            bool, Query(description="also the instruments it is not eligible for")
        ] = False,
        lang: Lang = "nl",
    ) -> EligibilityOut:
        """The funding instruments an initiative, use case or organisation may apply to: each
        with every rule passed, failed or unknown, and the next deadline."""
        given = [
            (k, v)
            for k, v in (
                ("initiative", initiative),
                ("usecase", usecase),
                ("organisation", organisation),
            )
            if v is not None
        ]
        if len(given) != 1:
            raise BadRequestData("give exactly one of initiative, usecase and organisation")
        kind, applicant_id = given[0]
        applicant, results = await matchmaking.eligibility(
            kind,  # type: ignore[arg-type]
            applicant_id,
            include_not_eligible=all,
            lang=lang,
        )
        return EligibilityOut(
            applicant=ApplicantOut(
                id=applicant.id,
                kind=applicant.kind,
                name=applicant.name,
                org_type=applicant.org_type,
                regions=sorted(applicant.regions),
                terms=sorted(applicant.terms),
                budget=applicant.budget,
                partners=applicant.partners,
                facts={k: fact_out(v) for k, v in sorted(applicant.facts.items())},
            ),
            instruments=[instrument_out(obj, r) for obj, r in results],
        )

    @router.get(
        "/funding/deadlines.ics",
        tags=tags,
        response_class=Response,
        responses={200: {"content": {ICAL: {}}}},
    )
    async def deadlines(
        request: Request, selection: Selection, matchmaking: MatchmakingDep, lang: Lang = "nl"
    ) -> Response:
        """The call deadlines of the selected funding instruments as an iCalendar feed (RFC 5545)
        to subscribe to; same filters as the list (`term=applicant:municipality`, …)."""
        domain = matchmaking.uid_domain or request.url.hostname or "localhost"
        body = await matchmaking.deadlines_ics(_filters(selection), uid_domain=domain, lang=lang)
        return Response(
            body,
            media_type=f"{ICAL}; charset=utf-8",
            headers={"Content-Disposition": 'inline; filename="funding-deadlines.ics"'},
        )


@functools.cache
def matchmaking_router() -> APIRouter:
    """Every matching endpoint (include before the objects' routes); built once per process,
    as `api.hub.routes.hub_router` (which says why)."""
    router = APIRouter()
    _funding_routes(router)
    _joint_purchase_routes(router)
    _similar_routes(router)
    for subject in ("challenge", "solution"):
        _pair_routes(router, subject)  # type: ignore[arg-type]
    return router
