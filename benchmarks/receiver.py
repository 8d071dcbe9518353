"""The notification receiver of the real-time benchmark: records when each notification arrived.

A bare Starlette app served as `benchmarks/bare.py` serves its baseline (uvicorn's defaults:
uvloop, httptools, one worker), in a process of its own:

- `POST /notify` — reads the body and records `(time.time(), body)`, then answers 204. The wall
  clock, not a monotonic one: the arrival is compared with time stamps the benchmark client took
  in another process on the same machine (`time.time()` there too).
- `GET /arrivals` — every recorded arrival as JSON `[[t, body], …]` (bodies parsed);
  `GET /arrivals?count=1` — only `{"count": n}`, cheap enough to poll.
- `POST /reset` — forget every arrival.

Run: `python -m benchmarks.receiver --port 8200`.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

#: (arrival wall-clock time, raw body) of every notification since the last reset
ARRIVALS: list[tuple[float, bytes]] = []


async def notify(request: Request) -> Response:
    """Take one notification: the time is taken once the whole body has arrived."""
    body = await request.body()
    ARRIVALS.append((time.time(), body))
    return Response(status_code=204)


async def arrivals(request: Request) -> Response:
    """What arrived so far (or only how much, with `?count=1`)."""
    if request.query_params.get("count"):
        return JSONResponse({"count": len(ARRIVALS)})
    return Response(
        b"[" + b",".join(b"[%r,%s]" % (t, body) for t, body in ARRIVALS) + b"]",
        media_type="application/json",
    )


async def reset(request: Request) -> Response:
    """Forget every arrival."""
    ARRIVALS.clear()
    return Response(status_code=204)


async def healthz(request: Request) -> Response:
    """GET /healthz, as the broker has it (the benchmark waits for it)."""
    return JSONResponse({"status": "ok"})


def create_app() -> Starlette:
    """The receiver app."""
    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/notify", notify, methods=["POST"]),
            Route("/arrivals", arrivals, methods=["GET"]),
            Route("/reset", reset, methods=["POST"]),
        ]
    )


def parse_arrivals(text: bytes) -> list[tuple[float, dict[str, Any]]]:
    """The answer of `GET /arrivals` as (time, notification) pairs."""
    return [(float(t), body) for t, body in orjson.loads(text)]


def main() -> None:
    """Serve the receiver with the options `smartregion serve` uses."""
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8200)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args()
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
