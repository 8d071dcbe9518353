"""ISO 8601 durations (`aggrPeriodDuration`, NGSI-LD 1.8 §4.5.19.1) and calendar arithmetic.

A duration is `P[n]Y[n]M[n]DT[n]H[n]M[n]S` or `P[n]W`; zero elements may be left out and a
fraction is allowed on the last (lowest-order) element, except on years and months, whose
length is not fixed. Durations combining date and time representations
(`P0003-06-04T12:30:05`) are not allowed (§4.5.19.1), nor are negative ones.

Arithmetic is in UTC: a day is 24 hours; years and months move the calendar date and clamp
the day to the end of a shorter month (31 January + P1M = 28/29 February). Period `k` of a
grid always starts at `origin + k × duration`, computed from the origin, so clamping never
accumulates (31 January + 2 × P1M = 31 March, not 28 March).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from smartregion.errors import BadRequestData

__all__ = ["Duration", "add_months", "format_instant", "format_instant_micros", "parse_duration"]

_DURATION = re.compile(
    r"P(?:(?P<weeks>\d+(?:[.,]\d+)?)W"
    r"|(?:(?P<years>\d+(?:[.,]\d+)?)Y)?(?:(?P<months>\d+(?:[.,]\d+)?)M)?(?:(?P<days>\d+(?:[.,]\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:[.,]\d+)?)H)?(?:(?P<minutes>\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:[.,]\d+)?)S)?)?)"
)
_ORDER = ("years", "months", "weeks", "days", "hours", "minutes", "seconds")
_MICROS = {
    "weeks": 7 * 86_400_000_000,
    "days": 86_400_000_000,
    "hours": 3_600_000_000,
    "minutes": 60_000_000,
    "seconds": 1_000_000,
}
#: months and microseconds of a year/month, for estimating how many periods fit in a span
_AVERAGE_MONTH_US = 2_629_746_000_000  # 365.2425 days / 12


@dataclass(frozen=True, slots=True)
class Duration:
    """A non-negative ISO 8601 duration: whole calendar months plus exact microseconds."""

    months: int = 0
    micros: int = 0
    text: str = "PT0S"

    @property
    def is_zero(self) -> bool:
        """Whether the duration is zero (`PT0S`, `P0D`): one period spans the whole range."""
        return self.months == 0 and self.micros == 0

    def shift(self, origin: datetime, k: int) -> datetime:
        """`origin + k × self` (k may be negative), in calendar arithmetic."""
        try:
            moved = add_months(origin, k * self.months) if self.months else origin
            return moved + timedelta(microseconds=k * self.micros)
        except OverflowError as exc:
            raise BadRequestData("the aggregation period runs outside the years 1-9999") from exc

    def index_of(self, origin: datetime, instant: datetime) -> int:
        """The k with `shift(origin, k) <= instant < shift(origin, k + 1)`."""
        if self.is_zero:
            raise ValueError("a zero duration has no periods")
        span = _micros_between(origin, instant)
        if not self.months:
            return span // self.micros
        # estimate with the average month length, then correct: shift() is strictly monotonic
        k = span // (self.months * _AVERAGE_MONTH_US + self.micros)
        while self.shift(origin, k) > instant:
            k -= 1
        while self.shift(origin, k + 1) <= instant:
            k += 1
        return k


def _micros_between(start: datetime, end: datetime) -> int:
    delta = end - start
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def add_months(value: datetime, months: int) -> datetime:
    """Move `value` by whole calendar months, clamping the day to the target month's end."""
    index = value.year * 12 + (value.month - 1) + months
    year, month = divmod(index, 12)
    if not 1 <= year <= 9999:
        raise BadRequestData("the aggregation period runs outside the years 1-9999")
    day = min(value.day, calendar.monthrange(year, month + 1)[1])
    return value.replace(year=year, month=month + 1, day=day)


def parse_duration(text: str, *, what: str = "aggrPeriodDuration") -> Duration:
    """Parse an ISO 8601 duration as NGSI-LD allows it (§4.5.19.1); BadRequestData otherwise."""
    if not isinstance(text, str) or not text:
        raise BadRequestData(f"{what} must be an ISO 8601 duration such as PT1H or P1M")
    match = _DURATION.fullmatch(text)
    if match is None or text.endswith("T") or text == "P":
        raise BadRequestData(
            f"{what} {text!r} is not an ISO 8601 duration of the form "
            "P[n]Y[n]M[n]DT[n]H[n]M[n]S or P[n]W"
        )
    given = [(name, match.group(name)) for name in _ORDER if match.group(name) is not None]
    months = 0
    micros = Decimal(0)
    for position, (name, raw) in enumerate(given):
        try:
            number = Decimal(raw.replace(",", "."))
        except InvalidOperation as exc:  # pragma: no cover - the regex admits only digits
            raise BadRequestData(f"{what} {text!r} has an invalid number {raw!r}") from exc
        fractional = number != number.to_integral_value()
        if fractional and position != len(given) - 1:
            raise BadRequestData(
                f"{what} {text!r}: only the last element of a duration may have a fraction"
            )
        if name in ("years", "months"):
            if fractional:
                raise BadRequestData(
                    f"{what} {text!r}: years and months have no fixed length, "
                    "so they cannot be fractional"
                )
            months += int(number) * (12 if name == "years" else 1)
        else:
            micros += number * _MICROS[name]
    if micros != micros.to_integral_value():
        raise BadRequestData(f"{what} {text!r} is finer than a microsecond")
    if months > 12 * 9999 or micros > 10_000 * 366 * _MICROS["days"]:
        raise BadRequestData(f"{what} {text!r} is longer than 10,000 years")
    return Duration(months=months, micros=int(micros), text=text)


#: the texts of days (by proleptic ordinal) and of times of day (by second) written so far:
#: an aggregated answer writes thousands of bounds that share a few days and clock times
_DAY_TEXTS: dict[int, str] = {}
_CLOCK_TEXTS: dict[int, str] = {}
_MAX_DAY_TEXTS = 50_000


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DAY_MICROS = 86_400_000_000


def format_instant_micros(value: int) -> str:
    """`format_instant` of an instant given in µs since the epoch (UTC): the bounds of a year of
    fixed-length periods, written without a datetime each."""
    days, rest = divmod(value, _DAY_MICROS)
    second, microsecond = divmod(rest, 1_000_000)
    return _written(_EPOCH_ORDINAL + days, second, microsecond)


def _written(ordinal: int, second: int, microsecond: int) -> str:
    """An instant by its day (proleptic ordinal), second of the day and microsecond, as short
    as exact; each day's and clock time's text is made once."""
    day = _DAY_TEXTS.get(ordinal)
    if day is None:
        if len(_DAY_TEXTS) >= _MAX_DAY_TEXTS:
            _DAY_TEXTS.clear()
        on = date.fromordinal(ordinal)
        day = _DAY_TEXTS[ordinal] = f"{on.year:04d}-{on.month:02d}-{on.day:02d}T"
    clock = _CLOCK_TEXTS.get(second)
    if clock is None:
        hours, minutes = divmod(second // 60, 60)
        clock = _CLOCK_TEXTS[second] = f"{hours:02d}:{minutes:02d}:{second % 60:02d}"
    if microsecond:
        fraction = f"{microsecond:06d}"
        return f"{day}{clock}.{fraction[:3] if fraction.endswith('000') else fraction}Z"
    return day + clock + "Z"


def format_instant(value: datetime) -> str:
    """Render a UTC instant as short as exact: `…T12:03:00Z`, `…T12:03:00.250Z`, `…00.000001Z`.

    Period bounds in the aggregated representation are written this way: the ETSI suite
    compares them as strings with the `observedAt` values it sent (020_11, 021_17). A year of
    hourly periods writes 8,760 of them, so the day and clock parts are each written once.
    """
    if value.tzinfo is not None and value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    second = value.hour * 3600 + value.minute * 60 + value.second
    return _written(value.toordinal(), second, value.microsecond)
