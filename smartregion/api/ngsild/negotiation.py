"""Content negotiation and `@context` discovery for the NGSI-LD HTTP binding (NGSI-LD 1.8 §6.3).

Request bodies: `application/json` takes its `@context` from a JSON-LD `Link` header and must not
carry one in the body; `application/ld+json` carries `@context` in the body and must not send the
`Link` header (§6.3.5). Responses: `application/json` names the context in a `Link` header,
`application/ld+json` embeds it, `application/geo+json` embeds it in the FeatureCollection/Feature.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request

from smartregion.errors import (
    BadRequestData,
    InvalidRequest,
    NotAcceptable,
    PayloadTooLarge,
    UnsupportedMediaType,
)

JSON = "application/json"
JSON_LD = "application/ld+json"
GEO_JSON = "application/geo+json"
MERGE_PATCH = "application/merge-patch+json"
CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"


@dataclass(slots=True)
class Body:
    """A parsed request body and the `@context` that governs it."""

    data: Any
    context: Any
    media_type: str


def media_type_of(header: str | None) -> str:
    """The bare media type of a Content-Type header, lower-cased."""
    return (header or "").split(";", 1)[0].strip().lower()


def link_context(request: Request) -> str | None:
    """The context URL of a JSON-LD `Link` header, or None; BadRequestData if malformed or repeated."""
    found: list[str] = []
    for header in request.headers.getlist("link"):
        for part in _split_links(header):
            url, params = _parse_link(part)
            if url is None:
                raise BadRequestData(f"malformed Link header: {part.strip()!r}")
            rel = params.get("rel")
            if rel == CONTEXT_REL:
                found.append(url)
    if len(found) > 1:
        raise BadRequestData("more than one JSON-LD context Link header")
    return found[0] if found else None


def _split_links(header: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    quoted = False
    start = 0
    for i, ch in enumerate(header):
        if ch == '"':
            quoted = not quoted
        elif ch == "<" and not quoted:
            depth += 1
        elif ch == ">" and not quoted:
            depth -= 1
        elif ch == "," and depth == 0 and not quoted:
            parts.append(header[start:i])
            start = i + 1
    parts.append(header[start:])
    return [p for p in parts if p.strip()]


def _parse_link(part: str) -> tuple[str | None, dict[str, str]]:
    text = part.strip()
    if not text.startswith("<") or ">" not in text:
        return None, {}
    url, rest = text[1:].split(">", 1)
    params: dict[str, str] = {}
    for param in rest.split(";"):
        if "=" in param:
            key, value = param.split("=", 1)
            params[key.strip().lower()] = value.strip().strip('"')
    return url.strip(), params


_CONTAINERS = (dict, list)


def check_depth(value: Any, limit: int) -> None:
    """InvalidRequest when the JSON nests deeper than `limit` (a guard against hostile bodies)."""
    # level by level, without a (node, depth) tuple per value: it runs over every batch body
    level: list[Any] = [value]
    depth = 1
    while level:
        if depth > limit:
            raise InvalidRequest(f"the JSON body nests deeper than {limit} levels")
        deeper: list[Any] = []
        add = deeper.append
        for node in level:
            if isinstance(node, dict):
                node = node.values()
            elif not isinstance(node, list):
                continue
            for child in node:
                if isinstance(child, _CONTAINERS):
                    add(child)
        level = deeper
        depth += 1


async def read_body(
    request: Request,
    *,
    max_bytes: int,
    max_depth: int,
    allowed: tuple[str, ...] = (JSON, JSON_LD),
    take_context: bool = True,
) -> Body:
    """Read, size-check, parse and context-check a JSON request body.

    With `take_context=False` the body is returned as sent (the @context management API, whose
    payload *is* a context document).
    """
    media_type = media_type_of(request.headers.get("content-type"))
    if media_type not in allowed:
        raise UnsupportedMediaType(
            f"Content-Type {media_type or '(none)'!r} is not supported here; use one of {', '.join(allowed)}"
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"the body exceeds the limit of {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"the body exceeds the limit of {max_bytes} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise InvalidRequest("the request body is empty; a JSON document is required")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from exc
    check_depth(data, max_depth)
    if not take_context:
        return Body(data=data, context=None, media_type=media_type)
    link = link_context(request)
    context: Any = None
    if media_type == JSON_LD:
        if link is not None:
            raise BadRequestData("a JSON-LD Link header must not be sent with application/ld+json")
        context = _body_context(data, required=True)
    else:
        if _has_body_context(data):
            raise BadRequestData(
                "@context in an application/json body; send it in a Link header or use application/ld+json"
            )
        context = link
    return Body(data=data, context=context, media_type=media_type)


def _has_body_context(data: Any) -> bool:
    if isinstance(data, dict):
        return "@context" in data
    if isinstance(data, list):
        return any(isinstance(item, dict) and "@context" in item for item in data)
    return False


def _body_context(data: Any, *, required: bool) -> Any:
    if isinstance(data, dict):
        if "@context" not in data:
            if required:
                raise BadRequestData("an application/ld+json body must carry @context")
            return None
        return data.pop("@context")
    if isinstance(data, list):
        contexts = []
        for item in data:
            if isinstance(item, dict) and "@context" in item:
                contexts.append(item.pop("@context"))
            elif required and isinstance(item, dict):
                raise BadRequestData(
                    "every entity of an application/ld+json batch must carry @context"
                )
        # NGSI-LD §6.3.5: a batch shares one context; take the first.
        return contexts[0] if contexts else None
    return None


def negotiate(request: Request, offered: tuple[str, ...] = (JSON, JSON_LD)) -> str:
    """The response media type for the request's Accept header; NotAcceptable when none fits."""
    header = request.headers.get("accept")
    if not header or not header.strip():
        return offered[0]
    best: tuple[float, int, str] | None = None
    for position, item in enumerate(header.split(",")):
        fields = [f.strip() for f in item.split(";")]
        media = fields[0].lower()
        quality = 1.0
        for f in fields[1:]:
            if f.startswith("q="):
                try:
                    quality = float(f[2:])
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            continue
        chosen: str | None = None
        if media in offered:
            chosen = media
        elif media in ("*/*", "application/*"):
            chosen = offered[0]
        if chosen is None:
            continue
        specificity = 0 if media.endswith("*") else 1
        key = (quality, specificity, chosen)
        if best is None or (key[0], key[1]) > (best[0], best[1]):
            best = key
        del position
    if best is None:
        raise NotAcceptable(
            f"none of the media types in Accept ({header}) can be produced; offered: {', '.join(offered)}"
        )
    return best[2]
