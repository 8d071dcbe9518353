"""The HTTP access log without raw personal identifiers (issue 3, "no raw personal identifiers
in logs"; GDPR recital 30: an IP address is personal data).

uvicorn's access log line is `client_addr - "METHOD path?query HTTP/v" status`. This filter,
installed on the `uvicorn.access` logger by `create_app`, rewrites each record before any
handler formats it: the client address is cut to its network (IPv4 /24, IPv6 /48, no port) —
enough to tell traffic apart, not to single out a person — and the query string is dropped
(`q=name=="…"`, `idPattern`, coordinates). The path stays: operators need it, and entity ids
are ids, not values (docs/security.md).
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Final

__all__ = ["AccessLogPrivacy", "install", "pseudonymise_address"]

_LOGGER: Final = "uvicorn.access"


def pseudonymise_address(client: str) -> str:
    """`203.0.113.7:51234` -> `203.0.113.0/24`; IPv6 to its /48; anything else to `-`."""
    host = client
    if client.startswith("["):  # [v6]:port
        host = client[1:].split("]", 1)[0]
    elif client.count(":") == 1:  # v4:port
        host = client.rsplit(":", 1)[0]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "-"
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


class AccessLogPrivacy(logging.Filter):
    """Rewrites uvicorn's access-log records (see the module docstring); never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            client, method, path, version, status = args
            if isinstance(client, str) and isinstance(path, str):
                record.args = (
                    pseudonymise_address(client),
                    method,
                    path.split("?", 1)[0],
                    version,
                    status,
                )
        return True


def install() -> None:
    """Add the filter to the `uvicorn.access` logger once per process."""
    logger = logging.getLogger(_LOGGER)
    if not any(isinstance(f, AccessLogPrivacy) for f in logger.filters):
        logger.addFilter(AccessLogPrivacy())
