"""Payload mappings: from an MQTT topic and a JSON payload to NGSI-LD entities.

A mapping file (YAML or TOML, `docs/ingestion.md`) lists rules. A rule has a topic pattern
(`sensors/{device}/air`: each `{name}` captures part of one topic level; `+` and a final `#`
are MQTT wildcards), an entity `id` and `type` (templates), an optional `observedAt` payload
path (else the receive time) and attributes, each read from a payload path. Templates put
captures (`{device}`) and payload values (`{$.end_device_ids.dev_eui}`) into strings. Payload
paths are dotted, with list indexes as `[0]` or `.0` (`uplink_message.rx_metadata[0].rssi`).

The output is normalized NGSI-LD entities whose names are expanded with the file's optional
`@context` (else the core context), ready for the batch service.
"""

from __future__ import annotations

import contextlib
import re
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from smartregion.core.times import format_datetime
from smartregion.errors import BadRequestData

__all__ = [
    "AttributeRule",
    "Mapping",
    "MappingRule",
    "TopicPattern",
    "load_mapping",
    "parse_mapping",
    "read_path",
]

_TEMPLATE = re.compile(r"\{([^{}]+)\}")
_INDEX = re.compile(r"\[(\d+)\]")
_KINDS = ("Property", "GeoProperty", "Relationship")
_FRACTION = re.compile(r"(\.\d{6})\d+")


class TopicPattern:
    """A topic pattern with `{name}` captures, its MQTT subscription filter and a matcher."""

    def __init__(self, pattern: str) -> None:
        if not pattern or pattern.startswith("$"):
            raise BadRequestData(f"invalid topic pattern {pattern!r}")
        self.pattern = pattern
        levels = pattern.split("/")
        filters: list[str] = []
        regex: list[str] = []
        for index, level in enumerate(levels):
            if level == "#":
                if index != len(levels) - 1:
                    raise BadRequestData(f"'#' must be the last level of {pattern!r}")
                filters.append("#")
                regex.append(".*")
                break
            if level == "+":
                filters.append("+")
                regex.append("[^/]*")
                continue
            if "+" in level or "#" in level:
                raise BadRequestData(f"wildcards must fill a whole level in {pattern!r}")
            parts = _TEMPLATE.split(level)
            # split() alternates literal text and capture names
            out: list[str] = []
            for position, part in enumerate(parts):
                if position % 2:
                    if not part.isidentifier():
                        raise BadRequestData(f"capture {{{part}}} in {pattern!r} is not a name")
                    # lazy: a literal after the capture in the same level bounds it
                    out.append(f"(?P<{part}>[^/]+?)")
                else:
                    out.append(re.escape(part))
            filters.append("+" if len(parts) > 1 else level)
            regex.append("".join(out))
        self.filter = "/".join(filters)
        try:
            self._regex = re.compile("/".join(regex) + r"\Z")
        except re.error as exc:
            raise BadRequestData(f"invalid topic pattern {pattern!r}: {exc}") from exc

    def match(self, topic: str) -> dict[str, str] | None:
        """The captures when `topic` matches, else None."""
        found = self._regex.match(topic)
        return None if found is None else found.groupdict()


def read_path(payload: Any, path: str) -> Any:
    """The value at a dotted payload path (`a.b[0].c` or `a.b.0.c`); KeyError when absent."""
    node = payload
    for part in _INDEX.sub(r".\1", path).split("."):
        if part == "":
            continue
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(path)
    return node


def _fill(template: str, captures: dict[str, str], payload: Any) -> str:
    """Put captures (`{name}`) and payload values (`{$.path}`) into a template."""

    def value(found: re.Match[str]) -> str:
        key = found.group(1)
        if key.startswith("$."):
            try:
                item = read_path(payload, key[2:])
            except KeyError:
                raise BadRequestData(
                    f"the payload has no {key[2:]} (needed by {template!r})"
                ) from None
            if isinstance(item, dict | list) or item is None:
                raise BadRequestData(
                    f"payload value {key[2:]} is not a scalar (needed by {template!r})"
                )
            return str(item)
        if key not in captures:
            raise BadRequestData(f"template {template!r} names unknown capture {{{key}}}")
        return captures[key]

    return _TEMPLATE.sub(value, template)


def normalise_time(raw: Any) -> str:
    """An NGSI-LD DateTime (UTC, `Z`) from an ISO 8601 string or epoch seconds/milliseconds."""
    if isinstance(raw, bool):
        raise BadRequestData(f"{raw!r} is not a time")
    if isinstance(raw, int | float):
        # values past 10^11 cannot be seconds of this era: epoch milliseconds
        seconds = raw / 1000 if raw > 1e11 else raw
        return format_datetime(datetime.fromtimestamp(seconds, UTC))
    if not isinstance(raw, str) or "T" not in raw:
        raise BadRequestData(f"{raw!r} is not an ISO 8601 date-time")
    # TTN writes nanoseconds; Python (and NGSI-LD's µs system times) stop at microseconds
    text = _FRACTION.sub(r"\1", raw.strip())
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise BadRequestData(f"{raw!r} is not an ISO 8601 date-time") from exc
    return format_datetime(value)  # naive values are taken as UTC


@dataclass(slots=True)
class AttributeRule:
    """How one attribute is read from a payload."""

    name: str
    kind: str = "Property"
    value: str | None = None
    lat: str | None = None
    lon: str | None = None
    object: str | None = None
    unit_code: str | None = None
    observed_at: str | None = None

    def build(self, captures: dict[str, str], payload: Any, observed: str) -> dict[str, Any] | None:
        """The attribute in normalized form, or None when the payload lacks its value."""
        attr: dict[str, Any] = {"type": self.kind}
        try:
            if self.kind == "Relationship":
                assert self.object is not None
                attr["object"] = _fill(self.object, captures, payload)
            elif self.lat is not None and self.lon is not None:
                lat, lon = read_path(payload, self.lat), read_path(payload, self.lon)
                if not all(
                    isinstance(c, int | float) and not isinstance(c, bool) for c in (lat, lon)
                ):
                    raise BadRequestData(
                        f"attribute {self.name}: latitude/longitude must be numbers"
                    )
                # GeoJSON orders coordinates longitude first (RFC 7946 §3.1.1)
                attr["value"] = {"type": "Point", "coordinates": [lon, lat]}
            else:
                assert self.value is not None
                attr["value"] = read_path(payload, self.value)
        except KeyError:
            return None
        if attr.get("value", "") is None:
            return None
        if self.unit_code is not None:
            attr["unitCode"] = self.unit_code
        if self.observed_at is not None:
            try:
                attr["observedAt"] = normalise_time(read_path(payload, self.observed_at))
            except KeyError:
                attr["observedAt"] = observed
        else:
            attr["observedAt"] = observed
        return attr


@dataclass(slots=True)
class MappingRule:
    """One topic pattern and how its payloads become one entity."""

    topic: TopicPattern
    id: str
    type: str
    attributes: list[AttributeRule]
    observed_at: str | None = None

    def entity(self, captures: dict[str, str], payload: Any, received_at: str) -> dict[str, Any]:
        """The normalized NGSI-LD entity for one payload (BadRequestData when unmappable)."""
        if not isinstance(payload, dict):
            raise BadRequestData("the payload is not a JSON object")
        observed = received_at
        if self.observed_at is not None:
            # no time in the payload: the receive time
            with contextlib.suppress(KeyError):
                observed = normalise_time(read_path(payload, self.observed_at))
        entity: dict[str, Any] = {
            "id": _fill(self.id, captures, payload),
            "type": _fill(self.type, captures, payload),
        }
        read = 0
        for rule in self.attributes:
            attr = rule.build(captures, payload, observed)
            if attr is not None:
                entity[rule.name] = attr
                read += rule.kind != "Relationship"
        # relationships are mostly built from the topic alone: they do not make a payload mappable
        if read == 0 and (
            len(entity) == 2 or any(r.kind != "Relationship" for r in self.attributes)
        ):
            raise BadRequestData(
                f"no mapped attribute found in the payload (topic pattern {self.topic.pattern!r})"
            )
        return entity


@dataclass(slots=True)
class Mapping:
    """A whole mapping file: its rules and the @context of their names."""

    rules: list[MappingRule]
    context: Any | None = None
    filters: list[str] = field(default_factory=list)

    def match(self, topic: str) -> tuple[MappingRule, dict[str, str]] | None:
        """The first rule whose pattern matches `topic`, with its captures."""
        for rule in self.rules:
            captures = rule.topic.match(topic)
            if captures is not None:
                return rule, captures
        return None


def _text(raw: Any, what: str, *, required: bool = True) -> str | None:
    if raw is None and not required:
        return None
    if not isinstance(raw, str) or not raw:
        raise BadRequestData(f"mapping: {what} must be a non-empty string")
    return raw


def _attribute(name: str, raw: Any) -> AttributeRule:
    if isinstance(raw, str):
        return AttributeRule(name, value=raw)
    if not isinstance(raw, dict):
        raise BadRequestData(f"mapping: attribute {name} must be a payload path or a table")
    unknown = set(raw) - {"kind", "value", "lat", "lon", "object", "unitCode", "observedAt"}
    if unknown:
        raise BadRequestData(f"mapping: attribute {name} has unknown keys {sorted(unknown)}")
    kind = raw.get("kind", "GeoProperty" if "lat" in raw else "Property")
    if kind not in _KINDS:
        raise BadRequestData(f"mapping: attribute {name}: kind must be one of {', '.join(_KINDS)}")
    rule = AttributeRule(
        name,
        kind=kind,
        value=_text(raw.get("value"), f"{name}.value", required=False),
        lat=_text(raw.get("lat"), f"{name}.lat", required=False),
        lon=_text(raw.get("lon"), f"{name}.lon", required=False),
        object=_text(raw.get("object"), f"{name}.object", required=False),
        unit_code=_text(raw.get("unitCode"), f"{name}.unitCode", required=False),
        observed_at=_text(raw.get("observedAt"), f"{name}.observedAt", required=False),
    )
    if kind == "Relationship" and rule.object is None:
        raise BadRequestData(f"mapping: relationship {name} needs an object template")
    if kind != "Relationship" and rule.value is None and (rule.lat is None or rule.lon is None):
        raise BadRequestData(f"mapping: attribute {name} needs a value path (or lat and lon)")
    return rule


def parse_mapping(data: Any) -> Mapping:
    """Check and compile a mapping document (the parsed YAML or TOML)."""
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("mappings"), list)
        or not data["mappings"]
    ):
        raise BadRequestData("mapping: expected a table with a non-empty list `mappings`")
    rules: list[MappingRule] = []
    for index, raw in enumerate(data["mappings"]):
        if not isinstance(raw, dict):
            raise BadRequestData(f"mapping #{index + 1} is not a table")
        attrs = raw.get("attributes")
        if not isinstance(attrs, dict) or not attrs:
            raise BadRequestData(f"mapping #{index + 1}: `attributes` must be a non-empty table")
        rules.append(
            MappingRule(
                topic=TopicPattern(str(_text(raw.get("topic"), f"mapping #{index + 1} topic"))),
                id=str(_text(raw.get("id"), f"mapping #{index + 1} id")),
                type=str(_text(raw.get("type"), f"mapping #{index + 1} type")),
                attributes=[_attribute(str(name), spec) for name, spec in attrs.items()],
                observed_at=_text(raw.get("observedAt"), "observedAt", required=False),
            )
        )
    filters = list(dict.fromkeys(rule.topic.filter for rule in rules))
    return Mapping(rules=rules, context=data.get("@context"), filters=filters)


def load_mapping(path: str | Path) -> Mapping:
    """Read a mapping file: TOML when it ends in `.toml`, YAML otherwise."""
    file = Path(path)
    text = file.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text) if file.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise BadRequestData(f"mapping file {file}: {exc}") from exc
    return parse_mapping(data)
