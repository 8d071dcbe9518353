"""The post and edit forms of challenges and solutions: what a form sends, checked field by field.

A form is written in the reader's language: its texts are stored under that language, and the
other language's texts of an edited object stay. Every problem is a message next to its field
(translated where shown) and the reader's input is kept; only a form without problems becomes the
fields the hub service stores (which checks the rest: terms, references, statuses).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from smartregion.hub.kinds import MATURITY
from smartregion.web.portal import N_

__all__ = ["FORMS", "FormSpec", "Submission", "parse_amount", "read_form", "values_of"]

PRICING = ("one_off", "subscription", "usage_based", "free", "open_source", "other")

TOO_LONG = N_("Use at most %(max)s characters.")
BAD_CHARACTER = N_("The text contains a character that cannot be stored.")
BAD_CHOICE = N_("Choose one of the options.")
BAD_AMOUNT = N_("Enter an amount in euro, like 50000.")
BAD_NUMBER = N_("Enter a number, like 40.")
BAD_DATE = N_("Enter a date, like 2027-03-01.")


@dataclass(frozen=True, slots=True)
class Text:
    """A text field stored as {nl, en}."""

    name: str
    required: str = ""  # the message when it is missing ("" : optional)
    max: int = 20_000


@dataclass(frozen=True, slots=True)
class FormSpec:
    """One kind's form: its texts, choices, amounts, numbers and dates."""

    kind: str
    texts: tuple[Text, ...]
    choices: dict[str, tuple[str, ...]]
    #: choices that may be left empty
    optional_choices: tuple[str, ...] = ()
    amounts: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()
    dates: tuple[str, ...] = ()
    #: (low, high, message) pairs of fields where high may not be below low
    ranges: tuple[tuple[str, str, str], ...] = ()
    defaults: dict[str, str] = field(default_factory=dict)


FORMS: dict[str, FormSpec] = {
    "challenge": FormSpec(
        "challenge",
        texts=(
            Text("title", N_("Give the challenge a short title."), 300),
            Text("problem", N_("Describe the problem in your own words.")),
            Text("summary"),
            Text("affected_groups"),
            Text("unit", max=300),
        ),
        choices={"status": ("open", "in_progress", "matched", "closed"), "min_maturity": MATURITY},
        optional_choices=("min_maturity",),
        amounts=("budget_min", "budget_max"),
        numbers=("quantity",),
        dates=("timeline_start", "timeline_end"),
        ranges=(
            ("budget_min", "budget_max", N_("The highest budget is below the lowest.")),
            ("timeline_start", "timeline_end", N_("The end is before the start.")),
        ),
        defaults={"status": "open"},
    ),
    "solution": FormSpec(
        "solution",
        texts=(
            Text("title", N_("Give the solution a short name."), 300),
            Text("summary", N_("Say in a sentence or two what the solution does.")),
            Text("description"),
        ),
        choices={"maturity": MATURITY, "pricing_model": PRICING},
        amounts=("price_min", "price_max"),
        ranges=(("price_min", "price_max", N_("The highest price is below the lowest.")),),
        defaults={"maturity": "pilot", "pricing_model": "subscription"},
    ),
}


@dataclass(slots=True)
class Submission:
    """A form as sent: the values to show again, the problems per field, the fields to store."""

    values: dict[str, Any]
    errors: dict[str, tuple[str, dict[str, Any]]]
    fields: dict[str, Any]


def parse_amount(raw: str, lang: str) -> float | None:
    """An amount as people type it in their language (`50.000,50`, `50,000.50`, `€ 50 000`)."""
    cleaned = raw.replace("€", "").replace(" ", "").replace("\u00a0", "")
    if lang == "nl":
        cleaned = cleaned.replace(".", "").replace(",", ".")
    else:
        cleaned = cleaned.replace(",", "")
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if math.isfinite(value) and 0 <= value <= 1e12 else None


def values_of(spec: FormSpec, doc: Mapping[str, Any], lang: str) -> dict[str, Any]:
    """A stored object's fields as the form's values (its texts in the reader's language)."""
    values: dict[str, Any] = {}
    for t in spec.texts:
        stored = doc.get(t.name)
        if isinstance(stored, dict):
            values[t.name] = stored.get(lang) or next((v for v in stored.values() if v), "")
        else:
            values[t.name] = stored or ""
    for name in (*spec.choices, *spec.amounts, *spec.numbers, *spec.dates):
        stored = doc.get(name)
        if isinstance(stored, float) and stored.is_integer():
            stored = int(stored)
        values[name] = "" if stored is None else str(stored)
    values["terms"] = [t for t in doc.get("terms", []) if t.startswith("domain:")]
    return values


def read_form(
    spec: FormSpec,
    form: Mapping[str, str],
    terms: Sequence[str],
    lang: str,
    existing: Mapping[str, Any] | None = None,
    known_domains: frozenset[str] = frozenset(),
) -> Submission:
    """Check a sent form (`terms`: the chosen domains) against its kind's spec."""
    values: dict[str, Any] = {}
    errors: dict[str, tuple[str, dict[str, Any]]] = {}
    base = dict(existing or {})
    fields: dict[str, Any] = {k: v for k, v in base.items() if k not in ("terms",)}
    for t in spec.texts:
        raw = str(form.get(t.name, "")).replace("\r\n", "\n")
        values[t.name] = raw
        stored = dict(base.get(t.name) or {}) if t.name != "unit" else {}
        stripped = raw.strip()
        if "\x00" in raw or any(0xD800 <= ord(c) <= 0xDFFF for c in raw):
            errors[t.name] = (BAD_CHARACTER, {})
        elif len(stripped) > t.max:
            errors[t.name] = (TOO_LONG, {"max": f"{t.max:,}"})
        if t.name == "unit":
            if stripped:
                fields["unit"] = stripped
            else:
                fields.pop("unit", None)
            continue
        if stripped:
            stored[lang] = stripped
        else:
            stored.pop(lang, None)
        if t.required and not any((v or "").strip() for v in stored.values()):
            errors.setdefault(t.name, (t.required, {}))
        if stored:
            fields[t.name] = stored
        else:
            fields.pop(t.name, None)
    for name, options in spec.choices.items():
        raw = str(form.get(name, spec.defaults.get(name, ""))).strip()
        values[name] = raw
        if not raw and name in spec.optional_choices:
            fields.pop(name, None)
        elif raw not in options:
            errors[name] = (BAD_CHOICE, {})
        else:
            fields[name] = raw
    # amounts in euro and plain numbers, both written as the reader's language writes them
    numeric = ((spec.amounts, BAD_AMOUNT, math.inf), (spec.numbers, BAD_NUMBER, 1e9))
    for names, message, most in numeric:
        for name in names:
            raw = str(form.get(name, "")).strip()
            values[name] = raw
            if not raw:
                fields.pop(name, None)
                continue
            number = parse_amount(raw, lang)
            if number is None or number > most:
                errors[name] = (message, {})
            else:
                fields[name] = number
    for name in spec.dates:
        raw = str(form.get(name, "")).strip()
        values[name] = raw
        if not raw:
            fields.pop(name, None)
            continue
        try:
            day = dt.date.fromisoformat(raw)
        except ValueError:
            errors[name] = (BAD_DATE, {})
            continue
        if not dt.date(1900, 1, 1) <= day <= dt.date(2200, 12, 31):
            errors[name] = (BAD_DATE, {})
        else:
            fields[name] = day.isoformat()
    for low, high, message in spec.ranges:
        if (
            low in fields
            and high in fields
            and low not in errors
            and high not in errors
            and fields[high] < fields[low]
        ):
            errors[high] = (message, {})
    chosen = list(dict.fromkeys(terms))
    values["terms"] = chosen
    if any(t not in known_domains for t in chosen) or len(chosen) > 50:
        errors["terms"] = (BAD_CHOICE, {})
    # the domains come from the form; other terms (regions, SDGs, …) of an edited object stay
    kept = [t for t in base.get("terms", []) if not t.startswith("domain:")]
    fields["terms"] = [*chosen, *kept]
    return Submission(values, errors, fields)
