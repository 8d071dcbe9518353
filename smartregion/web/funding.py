"""Funding on the portal: the finder (a few questions, then the instruments that fit with every
rule and the next deadline), an instrument's page, and the deadline calendar (a month view that
reads without JavaScript, with the iCalendar feed to subscribe to).

The answers go to the hub's finder (`hub.finder`, over the eligibility matcher); the calendar
lists the instruments' calls (`hub.funding`).
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any

from babel.dates import format_date, get_day_names
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from smartregion.core.policies import ORGANISATION_KINDS
from smartregion.errors import BadRequestData
from smartregion.hub.eligibility import BRUSSELS
from smartregion.hub.finder import FinderAnswers, find_funding
from smartregion.hub.funding import upcoming_deadlines
from smartregion.hub.objects import Filters
from smartregion.web.hubpages import HubPages, text
from smartregion.web.i18n import Formats
from smartregion.web.portal import Portal, Reader
from smartregion.web.postforms import BAD_AMOUNT, BAD_CHOICE, BAD_DATE, parse_amount

__all__ = ["routes"]


def _month(raw: str, today: dt.date) -> dt.date:
    if not raw:
        return today.replace(day=1)
    try:
        first = dt.date.fromisoformat(raw + "-01")
    except ValueError:
        raise BadRequestData("month is a year and month, like 2027-03") from None
    if not 2000 <= first.year <= 2100:
        raise BadRequestData("month is between 2000-01 and 2100-12")
    return first


def _shift(first: dt.date, months: int) -> dt.date:
    index = first.year * 12 + first.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def routes(portal: Portal) -> list[BaseRoute]:
    """The funding pages' routes."""
    pages = HubPages(portal)

    async def default_kind(reader: Reader) -> str:
        if reader.principal is None:
            return ""
        org = await pages.hub.governance.store.get_organisation(reader.principal.org_id)
        return org.kind if org is not None and org.kind in ORGANISATION_KINDS else ""

    async def finder(request: Request) -> Response:
        reader = await portal.reader(request)
        hub = pages.hub
        q = request.query_params
        asked = "kind" in q
        values = {
            "kind": q.get("kind", "") if asked else await default_kind(reader),
            "domain": q.get("domain", "")[:100],
            "amount": q.get("amount", "")[:40],
            "when": q.get("when", "")[:20],
        }
        errors: dict[str, tuple[str, dict[str, Any]]] = {}
        results: list[dict[str, Any]] = []
        domains = pages.domains(reader.lang)
        if asked:
            if values["kind"] not in ORGANISATION_KINDS:
                errors["kind"] = (BAD_CHOICE, {})
            if values["domain"] and values["domain"] not in dict(domains):
                errors["domain"] = (BAD_CHOICE, {})
            amount = parse_amount(values["amount"], reader.lang) if values["amount"] else None
            if values["amount"] and amount is None:
                errors["amount"] = (BAD_AMOUNT, {})
            when = None
            if values["when"]:
                try:
                    when = dt.date.fromisoformat(values["when"])
                except ValueError:
                    errors["when"] = (BAD_DATE, {})
            if not errors:
                answers = FinderAnswers(values["kind"], values["domain"], amount, when)
                for found in await find_funding(hub, answers, lang=reader.lang):
                    obj, r = found.instrument, found.result
                    results.append(
                        {
                            "id": obj.id,
                            "title": text(obj.doc.get("title"), reader.lang),
                            "summary": text(obj.doc.get("summary"), reader.lang),
                            "funder": obj.doc.get("funder", ""),
                            "status": r.status,
                            "checks": [
                                {
                                    "status": c.status,
                                    "fact": c.rule.fact,
                                    "label": c.rule.label,
                                    "values": sorted(c.rule.value)
                                    if isinstance(c.rule.value, frozenset)
                                    else [],
                                    "reason": c.reason,
                                }
                                for c in r.checks
                            ],
                            "deadline": r.next_deadline.isoformat() if r.next_deadline else "",
                            "max_amount": obj.doc.get("max_amount"),
                            "covers": found.covers,
                            "in_domain": found.in_domain,
                        }
                    )
        return await portal.render(
            request,
            "funding.html",
            {
                "values": values,
                "errors": errors,
                "asked": asked and not errors,
                "results": results,
                "kinds": ORGANISATION_KINDS,
                "domains": domains,
            },
            status=400 if errors else 200,
        )

    async def instrument(request: Request) -> Response:
        reader = await portal.reader(request)
        obj = await pages.hub.get("funding", request.path_params["object_id"])
        today = dt.datetime.now(BRUSSELS).date()
        calls = sorted(obj.doc.get("calls", []), key=lambda c: c["deadline"])
        follows = await pages.my_follows(reader)
        return await portal.render(
            request,
            "instrument.html",
            {
                "obj": obj,
                "doc": obj.doc,
                "today": today.isoformat(),
                "calls": [{**c, "open": c["deadline"] >= today.isoformat()} for c in calls],
                "domains": pages.labels(obj.doc.get("terms"), reader.lang, "domain"),
                "following": follows.get(obj.id, ""),
            },
        )

    async def calendar_page(request: Request) -> Response:
        reader = await portal.reader(request)
        today = dt.datetime.now(BRUSSELS).date()
        first = _month(request.query_params.get("month", ""), today)
        last = _shift(first, 1) - dt.timedelta(days=1)
        instruments = await pages.hub.export("funding", Filters())
        deadlines = [
            d for d in upcoming_deadlines(instruments, first, limit=10_000) if d.deadline <= last
        ]
        by_day: dict[int, list[dict[str, str]]] = {}
        for d in deadlines:
            by_day.setdefault(d.deadline.day, []).append(
                {
                    "id": d.instrument.id,
                    "title": text(d.instrument.doc.get("title"), reader.lang),
                    "note": text(d.note, reader.lang),
                }
            )
        weeks = calendar.Calendar(firstweekday=0).monthdayscalendar(first.year, first.month)
        locale = Formats(reader.lang).locale
        days = get_day_names("wide", locale=locale)
        short = get_day_names("abbreviated", locale=locale)
        return await portal.render(
            request,
            "calendar.html",
            {
                "first": first,
                "weeks": weeks,
                "by_day": by_day,
                "today": today,
                "previous": _shift(first, -1).strftime("%Y-%m"),
                "next": _shift(first, 1).strftime("%Y-%m"),
                "deadlines": [
                    {
                        "day": d.deadline.isoformat(),
                        "id": d.instrument.id,
                        "title": text(d.instrument.doc.get("title"), reader.lang),
                        "note": text(d.note, reader.lang),
                    }
                    for d in deadlines
                ],
                "month_label": format_date(first, "LLLL y", locale=locale),
                "weekdays": [(days[i], short[i]) for i in range(7)],
            },
        )

    return [
        Route("/funding", finder, methods=["GET"]),
        Route("/funding/calendar", calendar_page, methods=["GET"]),
        Route("/funding/{object_id}", instrument, methods=["GET"]),
    ]
