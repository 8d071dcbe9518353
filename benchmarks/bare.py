"""The HTTP ceiling: a bare Starlette app that parses the body with orjson and answers 204.

Served exactly as `smartregion serve` serves the broker (`uvicorn.run(app, host=, port=,
log_level=)`: uvicorn's defaults pick uvloop and httptools, one worker), so the gap between the
two is what the broker itself costs. Run: `python -m benchmarks.bare --port 8100`.
"""

from __future__ import annotations

import argparse

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def parse_and_accept(request: Request) -> Response:
    """Parse the JSON body (what every NGSI-LD write must do at least) and answer 204."""
    orjson.loads(await request.body())
    return Response(status_code=204)


async def healthz(request: Request) -> Response:
    """GET /healthz, as the broker has it."""
    return JSONResponse({"status": "ok"})


def create_app() -> Starlette:
    """The bare app: the same paths and methods as the benchmarked broker operations."""
    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/ngsi-ld/v1/entityOperations/upsert", parse_and_accept, methods=["POST"]),
            Route(
                "/ngsi-ld/v1/entities/{entity_id:path}/attrs", parse_and_accept, methods=["PATCH"]
            ),
        ]
    )


def main() -> None:
    """Serve the bare app with the options `smartregion serve` uses."""
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args()
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
