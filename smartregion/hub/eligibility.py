"""Funding eligibility: which instruments an initiative, use case or organisation may apply to.

Each instrument carries its rules as data (`FundingRule`: a fact of the applicant, an operator, a
value). Every rule gives an outcome with its reason — passed, failed, or unknown when the hub does
not know the fact — and the instrument is eligible (all passed), possibly eligible (none failed,
some unknown) or not eligible, with the next deadline. The deadlines of many instruments are also
an iCalendar feed (RFC 5545), written by hand: a few properties, exact line folding.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal
from zoneinfo import ZoneInfo

__all__ = [
    "Applicant",
    "EligibilityResult",
    "FundingInstrument",
    "FundingRule",
    "RuleCheck",
    "check_eligibility",
    "deadline_calendar",
    "eligible_instruments",
]

Fact = str | int | float | bool | frozenset[str]
Operator = Literal["in", "not_in", "intersects", "ge", "le", "eq", "true"]
Deadline = dt.date | dt.datetime

BRUSSELS = ZoneInfo("Europe/Brussels")


@dataclass(frozen=True)
class Applicant:
    """What the hub knows of whoever applies: an initiative, a use case or an organisation.

    `org_type` e.g. "municipality", "sme", "large-company", "knowledge-institution", "nonprofit";
    `regions` and `terms` taxonomy term ids (regions with their ancestors); `budget` the project
    budget in euro; `partners` the number of partner organisations. Anything else in `facts`.
    """

    id: str
    kind: Literal["initiative", "usecase", "organisation"]
    name: str
    org_type: str | None = None
    regions: frozenset[str] = frozenset()
    terms: frozenset[str] = frozenset()
    budget: float | None = None
    partners: int | None = None
    facts: Mapping[str, Fact] = field(default_factory=dict)

    def fact(self, name: str) -> Fact | None:
        """A fact by name: a field of the record, else an entry of `facts` (None: unknown)."""
        if name in ("org_type", "regions", "terms", "budget", "partners"):
            value: Fact | None = getattr(self, name)
            if isinstance(value, frozenset) and not value:
                return None  # an empty set of regions or terms means "not stated"
            return value
        return self.facts.get(name)


@dataclass(frozen=True)
class FundingRule:
    """One eligibility condition: `fact` `op` `value`, with a label for people."""

    fact: str
    op: Operator
    value: Fact
    label: str


@dataclass(frozen=True)
class RuleCheck:
    """A rule applied to an applicant."""

    rule: FundingRule
    status: Literal["passed", "failed", "unknown"]
    reason: str


@dataclass(frozen=True)
class FundingInstrument:
    """A grant, subsidy or call, with its rules and deadlines (dates are local, Europe/Brussels)."""

    id: str
    name: str
    funder: str
    rules: tuple[FundingRule, ...] = ()
    deadlines: tuple[Deadline, ...] = ()
    url: str | None = None
    max_amount: float | None = None
    description: str = ""


@dataclass(frozen=True)
class EligibilityResult:
    """An instrument for an applicant: verdict, every rule's outcome and the next deadline."""

    instrument: FundingInstrument
    status: Literal["eligible", "possibly", "not_eligible"]
    checks: tuple[RuleCheck, ...]
    next_deadline: Deadline | None

    @property
    def failed(self) -> tuple[RuleCheck, ...]:
        """The rules that fail."""
        return tuple(c for c in self.checks if c.status == "failed")


def _show(value: Fact) -> str:
    if isinstance(value, frozenset):
        return ", ".join(sorted(value))
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float) and float(value).is_integer():
        return f"{value:,.0f}".replace(",", ".")  # Belgian thousands separator
    return str(value)


def _values(value: Fact) -> frozenset[str]:
    return value if isinstance(value, frozenset) else frozenset({str(value)})


def _check(rule: FundingRule, applicant: Applicant) -> RuleCheck:
    actual = applicant.fact(rule.fact)
    if actual is None:
        return RuleCheck(rule, "unknown", f"{rule.label}: {rule.fact} not known")
    ok: bool
    if rule.op in ("in", "not_in", "intersects"):
        shared = _values(actual) & _values(rule.value)
        ok = bool(shared) if rule.op != "not_in" else not shared
    elif rule.op in ("ge", "le"):
        if isinstance(actual, frozenset | str) or isinstance(rule.value, frozenset | str):
            return RuleCheck(rule, "unknown", f"{rule.label}: {rule.fact} is not a number")
        ok = actual >= rule.value if rule.op == "ge" else actual <= rule.value
    elif rule.op == "eq":
        ok = actual == rule.value
    else:  # "true"
        ok = actual is True
    symbol = {
        "in": ("is one of", "is none of"),
        "not_in": ("is none of", "is one of"),
        "intersects": ("includes one of", "includes none of"),
        "ge": ("≥", "<"),
        "le": ("≤", ">"),
        "eq": ("=", "≠"),
        "true": ("is true", "is not true"),
    }[rule.op][0 if ok else 1]
    target = "" if rule.op == "true" else f" {_show(rule.value)}"
    return RuleCheck(
        rule,
        "passed" if ok else "failed",
        f"{rule.label}: {rule.fact} {_show(actual)} {symbol}{target}",
    )


def _local_date(when: Deadline) -> dt.date:
    return when.astimezone(BRUSSELS).date() if isinstance(when, dt.datetime) else when


def next_deadline(instrument: FundingInstrument, now: dt.datetime) -> Deadline | None:
    """The first deadline not yet passed (a date deadline lasts its whole day, Brussels time)."""
    upcoming: list[tuple[dt.datetime, Deadline]] = []
    for d in instrument.deadlines:
        if isinstance(d, dt.datetime):
            end = d
        else:
            end = dt.datetime.combine(d + dt.timedelta(days=1), dt.time(), BRUSSELS)
        if end > now:
            upcoming.append((end, d))
    return min(upcoming, key=lambda pair: pair[0])[1] if upcoming else None


def check_eligibility(
    applicant: Applicant, instrument: FundingInstrument, *, now: dt.datetime
) -> EligibilityResult:
    """Every rule of one instrument for one applicant, plus whether a deadline is still ahead."""
    checks = [_check(rule, applicant) for rule in instrument.rules]
    upcoming = next_deadline(instrument, now)
    if instrument.deadlines:
        open_rule = FundingRule("deadline", "true", True, "Call open")
        if upcoming is None:
            last = max(_local_date(d) for d in instrument.deadlines)
            checks.append(
                RuleCheck(open_rule, "failed", f"Call open: last deadline {last} has passed")
            )
        else:
            checks.append(
                RuleCheck(open_rule, "passed", f"Call open: next deadline {_local_date(upcoming)}")
            )
    statuses = {c.status for c in checks}
    status: Literal["eligible", "possibly", "not_eligible"] = (
        "not_eligible"
        if "failed" in statuses
        else "possibly"
        if "unknown" in statuses
        else "eligible"
    )
    return EligibilityResult(instrument, status, tuple(checks), upcoming)


def eligible_instruments(
    applicant: Applicant,
    instruments: Iterable[FundingInstrument],
    *,
    now: dt.datetime,
    include_not_eligible: bool = False,
) -> list[EligibilityResult]:
    """Instruments for an applicant: eligible first, then possibly; each by nearest deadline."""
    order = {"eligible": 0, "possibly": 1, "not_eligible": 2}
    far = dt.date.max
    results = [check_eligibility(applicant, i, now=now) for i in instruments]
    if not include_not_eligible:
        results = [r for r in results if r.status != "not_eligible"]
    results.sort(
        key=lambda r: (
            order[r.status],
            _local_date(r.next_deadline) if r.next_deadline is not None else far,
            r.instrument.name,
        )
    )
    return results


# --- iCalendar (RFC 5545) --------------------------------------------------------------------


def _escape(text: str) -> str:
    # RFC 5545 §3.3.11: backslash, semicolon, comma and newlines are escaped in TEXT values
    return (
        text.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
    )


def _fold(line: str) -> str:
    """RFC 5545 §3.1: lines longer than 75 octets continue after CRLF + one space.

    Splits on octet counts without cutting a UTF-8 character in two.
    """
    out: list[str] = []
    current = ""
    size = 0
    limit = 75
    for ch in line:
        n = len(ch.encode("utf-8"))
        if size + n > limit:
            out.append(current)
            current, size, limit = " ", 1, 75
        current += ch
        size += n
    out.append(current)
    return "\r\n".join(out)


def _utc_stamp(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def deadline_calendar(
    instruments: Sequence[FundingInstrument],
    *,
    now: dt.datetime,
    uid_domain: str,
    name: str = "Funding deadlines",
    prodid: str = "-//smartregion//Ecosystem hub funding deadlines//EN",
) -> str:
    """An iCalendar feed with one event per instrument deadline (CRLF line ends, folded lines).

    UIDs are stable (instrument id + deadline + `uid_domain`) so calendar clients update events
    in place when the feed is fetched again; DTSTAMP is `now` (the feed's generation time).
    """
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{prodid}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{_escape(name)}",
    ]
    stamp = _utc_stamp(now)
    events = sorted(
        ((d, i) for i in instruments for d in i.deadlines),
        key=lambda pair: (_local_date(pair[0]), pair[1].id),
    )
    for deadline, instrument in events:
        if isinstance(deadline, dt.datetime):
            start = f"DTSTART:{_utc_stamp(deadline)}"
            key = _utc_stamp(deadline)
        else:
            start = f"DTSTART;VALUE=DATE:{deadline.strftime('%Y%m%d')}"
            key = deadline.strftime("%Y%m%d")
        description = f"{instrument.funder}. {instrument.description}".strip()
        if instrument.url:
            description += f"\n{instrument.url}"
        lines += [
            "BEGIN:VEVENT",
            f"UID:{instrument.id}-{key}@{uid_domain}",
            f"DTSTAMP:{stamp}",
            start,
            f"SUMMARY:{_escape('Deadline: ' + instrument.name)}",
            f"DESCRIPTION:{_escape(description)}",
            "TRANSP:TRANSPARENT",
            "CATEGORIES:FUNDING",
        ]
        if instrument.url:
            lines.append(f"URL:{instrument.url}")
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return "".join(_fold(line) + "\r\n" for line in lines)
