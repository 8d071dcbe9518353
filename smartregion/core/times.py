"""Time stamps as NGSI-LD writes them: ISO 8601, UTC, microsecond precision, `Z` suffix."""

from __future__ import annotations

from datetime import UTC, datetime

from smartregion.errors import BadRequestData


def utc_now() -> str:
    """The current time as an NGSI-LD DateTime string (UTC, microseconds, `Z`)."""
    # a naive UTC datetime's isoformat() with timespec="microseconds" is exactly
    # `YYYY-MM-DDTHH:MM:SS.ffffff` and several times cheaper than strftime (every write pays it)
    return datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def format_datetime(value: datetime) -> str:
    """Render an aware datetime as `YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    if value.year < 1000:
        # isoformat() pads years to 4 digits as well, but keep strftime's exact rendering here
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_datetime(text: str, *, what: str = "DateTime") -> datetime:
    """Parse an ISO 8601 date-time (NGSI-LD §4.6.3); naive values are taken as UTC."""
    if not isinstance(text, str) or "T" not in text:
        raise BadRequestData(f"{what} {text!r} is not an ISO 8601 date-time")
    candidate = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        value = datetime.fromisoformat(candidate)
    except ValueError as exc:
        raise BadRequestData(f"{what} {text!r} is not an ISO 8601 date-time") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value
