"""The access log keeps no raw client addresses and no query strings (smartregion/api/accesslog.py)."""

from __future__ import annotations

import logging
from pathlib import Path

from smartregion.api.accesslog import AccessLogPrivacy, pseudonymise_address
from smartregion.app import create_app
from smartregion.settings import Settings


def test_addresses_are_cut_to_their_network() -> None:
    assert pseudonymise_address("203.0.113.7:51234") == "203.0.113.0/24"
    assert (
        pseudonymise_address("[2001:db8:85a3:8d3:1319:8a2e:370:7348]:443") == "2001:db8:85a3::/48"
    )
    assert pseudonymise_address("2001:db8::1") == "2001:db8::/48"
    assert pseudonymise_address("") == "-"
    assert pseudonymise_address("unix-socket") == "-"


def test_uvicorns_access_records_are_rewritten(tmp_path: Path) -> None:
    create_app(Settings(database_url=f"sqlite:///{tmp_path}/log.db"))
    logger = logging.getLogger("uvicorn.access")
    assert sum(isinstance(f, AccessLogPrivacy) for f in logger.filters) == 1
    # uvicorn's call: '%s - "%s %s HTTP/%s" %d' with these five arguments
    record = logger.makeRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("198.51.100.23:40000", "GET", '/ngsi-ld/v1/entities?q=name=="Jan Peeters"', "1.1", 200),
        None,
    )
    assert logger.filters[0].filter(record)
    line = record.getMessage()
    assert line == '198.51.100.0/24 - "GET /ngsi-ld/v1/entities HTTP/1.1" 200'
    assert "Peeters" not in line and "198.51.100.23" not in line
    # a second app in the same process does not stack a second filter
    create_app(Settings(database_url=f"sqlite:///{tmp_path}/log2.db"))
    assert sum(isinstance(f, AccessLogPrivacy) for f in logger.filters) == 1


def test_a_served_request_is_logged_with_the_network_and_without_the_query(tmp_path: Path) -> None:
    import httpx
    from test_serve import server

    output: list[str] = []
    with server("--database", f"sqlite:///{tmp_path}/served.db", output=output) as base:
        r = httpx.get(base + '/ngsi-ld/v1/entities?type=Person&q=name=="Jan Peeters"')
        assert r.status_code == 200
    log = output[0]
    assert '127.0.0.0/24 - "GET /ngsi-ld/v1/entities HTTP/1.1" 200' in log
    assert "Peeters" not in log
    requests = [line for line in log.splitlines() if ' - "' in line]
    assert requests and not any("127.0.0.1" in line for line in requests)
