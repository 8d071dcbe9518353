"""Languages of the portal: Dutch (default) and English; choosing one, translating, formatting.

The reader's language is, in order: `?lang=nl|en` on any URL (then remembered in a cookie), the
cookie, the best match in `Accept-Language` (RFC 9110 §12.5.4), Dutch. Message catalogues are
the `.po` files under `locales/`, compiled in memory at start-up (no build step: a fresh clone
runs with `make run`). Dates and numbers are formatted with Babel's CLDR data for the locale,
dates in Belgian time.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

__all__ = [
    "COOKIE",
    "DEFAULT",
    "LANGUAGES",
    "Formats",
    "choose",
    "load_translations",
]

LANGUAGES = ("nl", "en")
DEFAULT = "nl"
COOKIE = "smartregion_lang"
#: where the readers are: dates are shown in their clock
ZONE = ZoneInfo("Europe/Brussels")
LOCALES_DIR = Path(__file__).parent / "locales"


def _accepted(header: str) -> list[tuple[float, str]]:
    """`Accept-Language` ranges with their weights, best first (RFC 9110 §12.4.2)."""
    out: list[tuple[float, str]] = []
    for position, item in enumerate(header.split(",")):
        tag, _, params = item.strip().partition(";")
        tag = tag.strip().lower()
        if not tag:
            continue
        weight = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                weight = float(params[2:])
            except ValueError:
                continue
        out.append((weight - position * 1e-6, tag))  # ties: the order sent
    return sorted(out, reverse=True)


def choose(query: str | None, cookie: str | None, accept_language: str | None) -> tuple[str, bool]:
    """The reader's language and whether to remember it in the cookie (see the module docstring)."""
    if query in LANGUAGES:
        return query, query != cookie
    if cookie in LANGUAGES:
        return cookie, False
    for weight, tag in _accepted(accept_language or ""):
        if weight <= 0:
            continue
        primary = tag.split("-", 1)[0]
        if primary in LANGUAGES:
            return primary, False
        if tag == "*":
            return DEFAULT, False
    return DEFAULT, False


def load_translations(directory: Path = LOCALES_DIR) -> dict[str, NullTranslations]:
    """Each language's catalogue, compiled from its `.po` file (English is the source text)."""
    out: dict[str, NullTranslations] = {"en": NullTranslations()}
    for lang in LANGUAGES:
        po = directory / lang / "LC_MESSAGES" / "messages.po"
        if lang == "en" or not po.exists():
            continue
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=lang)
        buffer = io.BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        out[lang] = Translations(buffer)
    return out


class Formats:
    """Dates and numbers in one locale's conventions."""

    def __init__(self, lang: str) -> None:
        self.locale = Locale.parse("nl_BE" if lang == "nl" else "en_GB")

    def datetime(self, value: str | dt.datetime | None) -> str:
        """A moment, e.g. `27 nov. 2026 09:00` / `27 Nov 2026, 09:00`, in Belgian time."""
        if value is None or value == "":
            return ""
        moment = value if isinstance(value, dt.datetime) else _parse(value)
        if moment is None:
            return str(value)
        return format_datetime(moment, "medium", tzinfo=ZONE, locale=self.locale)

    def date(self, value: str | dt.datetime | None) -> str:
        """A day in the long form, e.g. `27 november 2026`."""
        if value is None or value == "":
            return ""
        moment = value if isinstance(value, dt.datetime) else _parse(value)
        if moment is None:
            return str(value)
        return format_date(moment.astimezone(ZONE), "long", locale=self.locale)

    def number(self, value: float | int | None, digits: int = 1) -> str:
        """A number with the locale's decimal sign and grouping, at most `digits` decimals."""
        if value is None:
            return ""
        if isinstance(value, bool):
            return str(value)
        pattern = "#,##0" + ("." + "#" * digits if digits else "")
        return format_decimal(value, format=pattern, locale=self.locale)


def _parse(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
