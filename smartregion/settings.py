"""The one settings registry.

Every setting is declared once in `SETTINGS` (name, type, default, help). Values are resolved with
the precedence CLI flag > `SMARTREGION_<NAME>` environment variable > config file (TOML, given by
`--config` or `SMARTREGION_CONFIG`) > default. `docs/operations.md` lists every setting; a test
fails when one is undocumented.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

ENV_PREFIX = "SMARTREGION_"

#: the default Content-Security-Policy of HTML pages: our own origin only, no inline script
HTML_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


@dataclass(frozen=True, slots=True)
class Setting:
    """One declared setting."""

    name: str
    type: type
    default: Any
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "database_url",
        str,
        "sqlite:///./smartregion.db",
        "Database URL: sqlite:///PATH or postgresql://…",
    ),
    Setting("host", str, "127.0.0.1", "Interface the HTTP server listens on."),
    Setting("port", int, 8000, "Port the HTTP server listens on."),
    Setting("workers", int, 1, "Number of HTTP worker processes."),
    Setting("demo", bool, False, "Load demo content into an empty database at start-up."),
    Setting(
        "anonymous_writes",
        bool,
        False,
        "Let unauthenticated clients write (trials, conformance runs).",
    ),
    Setting(
        "default_org", str, "smartregion", "Organisation that owns what anonymous clients write."
    ),
    Setting(
        "public_base_url",
        str,
        "",
        "External base URL (e.g. https://data.example.org); empty: derived from each request.",
    ),
    Setting(
        "max_body_bytes",
        int,
        8 * 1024 * 1024,
        "Largest accepted request body in bytes (413 beyond).",
    ),
    Setting("max_json_depth", int, 64, "Deepest accepted JSON nesting in a request body."),
    Setting("default_limit", int, 20, "Page size of NGSI-LD queries when `limit` is not given."),
    Setting("max_limit", int, 1000, "Largest `limit` an NGSI-LD query may ask for."),
    Setting("max_batch_size", int, 10000, "Most entities in one NGSI-LD batch operation."),
    Setting(
        "record_history",
        bool,
        True,
        "Keep every entity write's changed attribute instances as history (the temporal API's data); off: only what the temporal API writes.",
    ),
    Setting(
        "history_retention_days",
        int,
        0,
        "Days of attribute history kept for entities outside a data set with its own retention; 0: forever.",
    ),
    Setting(
        "history_rollup_retention_days",
        int,
        0,
        "Days roll-ups are kept for those entities, at least history_retention_days; 0: as long as the raw history.",
    ),
    Setting(
        "history_purge_interval",
        float,
        3600.0,
        "Seconds between runs of the history purge job in `smartregion serve`; 0: no job.",
    ),
    Setting(
        "history_purge_batch",
        int,
        10000,
        "Most instances one purge transaction deletes (ingestion goes on between them).",
    ),
    Setting(
        "notification_max_attempts",
        int,
        200,
        "Attempts to deliver one notification before it is given up (counted as failed).",
    ),
    Setting(
        "notification_retry_max_delay",
        float,
        30.0,
        "Longest wait in seconds between two attempts to deliver a notification (the back-off doubles from 1 s up to it): a receiver that returns gets what it missed within this time.",
    ),
    Setting(
        "temporal_max_instances",
        int,
        10000,
        "Most attribute instances in one temporal API answer; more answer 206 with Content-Range.",
    ),
    Setting("ldes_page_size", int, 250, "Members per event-stream page (LDES, /ldes)."),
    Setting(
        "ldes_settle_seconds",
        float,
        10.0,
        "Seconds a recorded member waits before it is published in an event stream (longer than any write transaction takes).",
    ),
    Setting(
        "ldes_max_age",
        int,
        10,
        "Seconds event-stream pages that may still change (and the catalogue) may be cached.",
    ),
    Setting(
        "ldes_immutable_max_age",
        int,
        31_536_000,
        "Seconds immutable event-stream pages may be cached.",
    ),
    Setting(
        "ldes_max_concurrent_pages",
        int,
        16,
        "Event-stream pages rendered at once per worker; more answer 429.",
    ),
    Setting(
        "ldes_cache_bytes",
        int,
        64 * 1024 * 1024,
        "Bytes of rendered immutable event-stream pages kept in memory per worker (0: none).",
    ),
    Setting(
        "catalog_title",
        str,
        "Smartregion datacatalogus",
        "Title (Dutch) of the DCAT-AP Vlaanderen catalogue at /catalog.",
    ),
    Setting(
        "catalog_description",
        str,
        "Datasets van het smartregion-platform, elk als Linked Data Event Stream.",
        "Description (Dutch) of the catalogue.",
    ),
    Setting(
        "catalog_license",
        str,
        "https://data.vlaanderen.be/id/licentie/modellicentie-gratis-hergebruik/v1.0",
        "Licence of the catalogue, and of data sets that name none.",
    ),
    Setting(
        "catalog_contact_email",
        str,
        "",
        "E-mail address of the catalogue's contact point; empty: none.",
    ),
    Setting("context_fetch_timeout", float, 5.0, "Seconds to wait for a remote @context."),
    Setting("context_max_bytes", int, 1_000_000, "Largest remote @context document in bytes."),
    Setting(
        "context_preload_dir",
        str,
        "",
        "Directory of @context documents served offline (index.json maps URL to file).",
    ),
    Setting(
        "allow_remote_contexts", bool, True, "Fetch unknown remote @context URLs over the network."
    ),
    Setting(
        "oidc_issuer",
        str,
        "",
        "OIDC issuer URL whose bearer JWTs are accepted (exactly the `iss` claim); empty: API keys only.",
    ),
    Setting(
        "oidc_audience",
        str,
        "",
        "The audience (`aud`) a token must be issued for; required with oidc_issuer.",
    ),
    Setting(
        "oidc_jwks_url",
        str,
        "",
        "URL of the issuer's JWKS; empty: `jwks_uri` of {issuer}/.well-known/openid-configuration.",
    ),
    Setting(
        "oidc_algorithms",
        str,
        "RS256,ES256",
        "Comma-separated signature algorithms accepted (asymmetric only: RS*, PS*, ES*, EdDSA).",
    ),
    Setting(
        "oidc_org_claim",
        str,
        "smartregion_org",
        "Token claim that names the caller's organisation (its id here).",
    ),
    Setting(
        "oidc_role_claim",
        str,
        "smartregion_role",
        "Token claim that names the caller's role: reader, editor or admin.",
    ),
    Setting("oidc_timeout", float, 5.0, "Seconds to wait for the OIDC discovery document or JWKS."),
    Setting("log_level", str, "info", "Log level: debug, info, warning, error."),
    Setting("access_log", bool, True, "Log every HTTP request (uvicorn's access log)."),
    Setting(
        "rate_limit_address_rate",
        float,
        10000.0,
        "Requests per second per client address, sustained, per worker (0: no limit).",
    ),
    Setting(
        "rate_limit_address_burst",
        int,
        20000,
        "Requests a client address may send at once before the rate applies (0: no limit).",
    ),
    Setting(
        "rate_limit_key_rate",
        float,
        10000.0,
        "Requests per second per bearer credential, sustained, per worker (0: no limit).",
    ),
    Setting(
        "rate_limit_key_burst",
        int,
        20000,
        "Requests a bearer credential may send at once before the rate applies (0: no limit).",
    ),
    Setting(
        "trusted_proxies",
        str,
        "",
        "Comma-separated proxy addresses/networks whose X-Forwarded-For is believed; empty: none.",
    ),
    Setting(
        "strict_transport_security",
        str,
        "max-age=31536000; includeSubDomains",
        "Strict-Transport-Security value, sent on HTTPS responses only; empty: none.",
    ),
    Setting(
        "content_security_policy",
        str,
        HTML_CSP,
        "Content-Security-Policy of HTML responses; empty: none.",
    ),
    Setting(
        "map_tiles_url",
        str,
        "",
        "Tile URL template of the portal's maps, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png (its origin is added to the pages' img-src); empty: no base map, no third-party requests.",
    ),
    Setting(
        "secret_key",
        str,
        "",
        "Secret (>= 32 characters) signing CSRF tokens; empty: read from secret_key_file.",
    ),
    Setting(
        "secret_key_file",
        str,
        "smartregion.secret",
        "File holding the secret when secret_key is empty; created (mode 0600) on first use.",
    ),
    Setting(
        "smtp_host",
        str,
        "",
        "SMTP server that sends the hub's digest e-mails; empty: no digests are sent.",
    ),
    Setting("smtp_port", int, 25, "Port of the SMTP server."),
    Setting("smtp_sender", str, "smartregion@localhost", "From address of digest e-mails."),
    Setting(
        "smtp_starttls",
        bool,
        False,
        "Upgrade the SMTP connection with STARTTLS (certificate verified).",
    ),
    Setting("smtp_username", str, "", "SMTP login name; empty: no login."),
    Setting("smtp_password", str, "", "SMTP login password."),
    Setting(
        "mqtt_username",
        str,
        "",
        "User name the MQTT bridge logs in to its broker with; empty: no login.",
    ),
    Setting(
        "mqtt_password",
        str,
        "",
        "Password of mqtt_username (environment or config file only, never a command-line flag).",
    ),
    Setting(
        "mqtt_password_file",
        str,
        "",
        "File whose first line is the MQTT bridge's password (used when mqtt_password is empty).",
    ),
    Setting(
        "mqtt_ca_file",
        str,
        "",
        "PEM file of the CAs trusted for mqtts:// (the bridge's broker, MQTT notification endpoints); empty: the system's.",
    ),
    Setting(
        "mqtt_cert_file",
        str,
        "",
        "PEM client certificate presented to mqtts:// brokers (the bridge's, MQTT notification endpoints); empty: none.",
    ),
    Setting(
        "mqtt_key_file",
        str,
        "",
        "PEM private key of mqtt_cert_file; empty: in the certificate file.",
    ),
    Setting(
        "digest_interval",
        float,
        900.0,
        "Seconds between runs of the digest job (sends the follows that are due); 0: no job.",
    ),
    Setting(
        "hub_embeddings",
        bool,
        True,
        "Rank hub matches with multilingual sentence embeddings too when the `embeddings` extra is installed; off: BM25 alone.",
    ),
    Setting(
        "hub_ocid_prefix",
        str,
        "ocds-smartregion",
        "OCDS prefix of the ids of joint-purchase tender outlines (register your own with the OCDS Data Support team).",
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}


@dataclass(frozen=True, slots=True)
class Settings:
    """Resolved settings; construct with `Settings.load(...)` or directly in tests."""

    database_url: str = "sqlite:///./smartregion.db"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    demo: bool = False
    anonymous_writes: bool = False
    default_org: str = "smartregion"
    public_base_url: str = ""
    max_body_bytes: int = 8 * 1024 * 1024
    max_json_depth: int = 64
    default_limit: int = 20
    max_limit: int = 1000
    max_batch_size: int = 10000
    record_history: bool = True
    history_retention_days: int = 0
    history_rollup_retention_days: int = 0
    history_purge_interval: float = 3600.0
    history_purge_batch: int = 10000
    notification_max_attempts: int = 200
    notification_retry_max_delay: float = 30.0
    temporal_max_instances: int = 10000
    ldes_page_size: int = 250
    ldes_settle_seconds: float = 10.0
    ldes_max_age: int = 10
    ldes_immutable_max_age: int = 31_536_000
    ldes_max_concurrent_pages: int = 16
    ldes_cache_bytes: int = 64 * 1024 * 1024
    catalog_title: str = "Smartregion datacatalogus"
    catalog_description: str = (
        "Datasets van het smartregion-platform, elk als Linked Data Event Stream."
    )
    catalog_license: str = (
        "https://data.vlaanderen.be/id/licentie/modellicentie-gratis-hergebruik/v1.0"
    )
    catalog_contact_email: str = ""
    context_fetch_timeout: float = 5.0
    context_max_bytes: int = 1_000_000
    context_preload_dir: str = ""
    allow_remote_contexts: bool = True
    oidc_issuer: str = ""
    oidc_audience: str = ""
    oidc_jwks_url: str = ""
    oidc_algorithms: str = "RS256,ES256"
    oidc_org_claim: str = "smartregion_org"
    oidc_role_claim: str = "smartregion_role"
    oidc_timeout: float = 5.0
    log_level: str = "info"
    access_log: bool = True
    rate_limit_address_rate: float = 10000.0
    rate_limit_address_burst: int = 20000
    rate_limit_key_rate: float = 10000.0
    rate_limit_key_burst: int = 20000
    trusted_proxies: str = ""
    strict_transport_security: str = "max-age=31536000; includeSubDomains"
    content_security_policy: str = HTML_CSP
    map_tiles_url: str = ""
    secret_key: str = field(default="", repr=False)  # never in logs or tracebacks
    secret_key_file: str = "smartregion.secret"
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_sender: str = "smartregion@localhost"
    smtp_starttls: bool = False
    smtp_username: str = ""
    smtp_password: str = field(default="", repr=False)  # never in logs or tracebacks
    mqtt_username: str = ""
    mqtt_password: str = field(default="", repr=False)  # never in logs or tracebacks
    mqtt_password_file: str = ""
    mqtt_ca_file: str = ""
    mqtt_cert_file: str = ""
    mqtt_key_file: str = ""
    digest_interval: float = 900.0
    hub_embeddings: bool = True
    hub_ocid_prefix: str = "ocds-smartregion"
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.secret_key and len(self.secret_key) < 32:
            raise ValueError("setting secret_key: at least 32 characters are needed")

    @classmethod
    def load(
        cls,
        overrides: Mapping[str, Any] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        config_file: str | Path | None = None,
    ) -> Settings:
        """Resolve every setting: overrides > environment > config file > default."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {s.name: s.default for s in SETTINGS}
        path = config_file or env.get(ENV_PREFIX + "CONFIG")
        if path:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
            for key, raw in data.items():
                values[key] = _coerce(_known(key), raw)
        for setting in SETTINGS:
            raw = env.get(ENV_PREFIX + setting.name.upper())
            if raw is not None:
                values[setting.name] = _coerce(setting, raw)
        for key, raw in (overrides or {}).items():
            if raw is not None:
                values[key] = _coerce(_known(key), raw)
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (without `extra`)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}


def _known(key: str) -> Setting:
    if key not in _BY_NAME:
        raise ValueError(f"unknown setting {key!r}")
    return _BY_NAME[key]


def _coerce(setting: Setting, raw: Any) -> Any:
    if setting.type is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off", ""}:
            return False
        raise ValueError(f"setting {setting.name}: {raw!r} is not a boolean")
    try:
        return setting.type(raw)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"setting {setting.name}: {raw!r} is not a {setting.type.__name__}"
        ) from exc
