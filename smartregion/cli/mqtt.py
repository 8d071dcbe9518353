"""`smartregion mqtt …`: the MQTT ingestion bridge (docs/ingestion.md)."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

from smartregion.app import Runtime
from smartregion.broker.mqtt import MqttRefused, TlsFiles
from smartregion.errors import SmartRegionError
from smartregion.ingestion.bridge import BridgeConfig, MqttBridge
from smartregion.ingestion.mapping import load_mapping
from smartregion.settings import Settings

mqtt_app = typer.Typer(help="MQTT commands.", no_args_is_help=True)


async def run_bridge(settings: Settings, config: BridgeConfig) -> None:
    """Open the store, build the broker and run the bridge until SIGINT or SIGTERM."""
    runtime = Runtime.build(settings)
    await runtime.start()
    try:
        bridge = MqttBridge(runtime.broker, config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, bridge.stop)
        await bridge.run()
    finally:
        await runtime.stop()


@mqtt_app.command("bridge")
def bridge(
    broker: Annotated[
        str,
        typer.Option("--broker", help="MQTT broker, mqtt://HOST[:PORT] or mqtts://HOST[:PORT]."),
    ],
    org: Annotated[
        str, typer.Option("--org", help="Organisation that owns what the bridge writes.")
    ],
    mapping: Annotated[
        Path | None, typer.Option("--mapping", help="Mapping file (YAML, or TOML when *.toml).")
    ] = None,
    tenant: Annotated[str, typer.Option("--tenant", help="NGSI-LD tenant to write to.")] = "",
    prefix: Annotated[
        str, typer.Option("--prefix", help="Without a mapping: read {prefix}/entities.")
    ] = "smartregion",
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            help="Database URL (default sqlite:///./smartregion.db; env SMARTREGION_DATABASE_URL).",
        ),
    ] = None,
    client_id: Annotated[
        str | None,
        typer.Option("--client-id", help="Stable MQTT client id (the persistent session's key)."),
    ] = None,
    shared_group: Annotated[
        str | None,
        typer.Option("--shared-group", help="Share the topics with other bridges ($share/NAME/…)."),
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="Most messages written in one transaction.")
    ] = 500,
    protocol: Annotated[
        str, typer.Option("--protocol", help="MQTT protocol version: 5 or 3.1.1.")
    ] = "5",
    username: Annotated[
        str | None,
        typer.Option("--username", help="MQTT user name (env SMARTREGION_MQTT_USERNAME)."),
    ] = None,
    password_file: Annotated[
        str | None,
        typer.Option(
            "--password-file",
            help="File whose first line is the MQTT password (or env SMARTREGION_MQTT_PASSWORD; never on the command line).",
        ),
    ] = None,
    ca_file: Annotated[
        str | None,
        typer.Option("--ca-file", help="PEM CAs to trust for mqtts:// (default: the system's)."),
    ] = None,
    cert_file: Annotated[
        str | None, typer.Option("--cert-file", help="PEM client certificate for mqtts://.")
    ] = None,
    key_file: Annotated[
        str | None, typer.Option("--key-file", help="PEM private key of --cert-file.")
    ] = None,
    config: Annotated[str | None, typer.Option(help="TOML config file.")] = None,
) -> None:
    """Ingest MQTT messages as NGSI-LD entities (QoS 1, acknowledged after commit)."""
    settings = Settings.load(
        {
            "database_url": database,
            "mqtt_username": username,
            "mqtt_password_file": password_file,
            "mqtt_ca_file": ca_file,
            "mqtt_cert_file": cert_file,
            "mqtt_key_file": key_file,
        },
        config_file=config,
    )
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        rules = load_mapping(mapping) if mapping is not None else None
        bridge_config = BridgeConfig(
            broker_url=broker,
            org=org,
            tenant=tenant,
            prefix=prefix,
            mapping=rules,
            client_id=client_id,
            shared_group=shared_group,
            batch_size=batch_size,
            protocol=protocol,
            username=settings.mqtt_username or None,
            password=mqtt_password(settings),
            tls=TlsFiles.of(settings.mqtt_ca_file, settings.mqtt_cert_file, settings.mqtt_key_file),
        )
    except SmartRegionError as exc:
        raise typer.BadParameter(exc.detail) from None
    try:
        asyncio.run(run_bridge(settings, bridge_config))
    except MqttRefused as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def mqtt_password(settings: Settings) -> str | None:
    """The bridge's MQTT password: `mqtt_password`, else the first line of `mqtt_password_file`."""
    if settings.mqtt_password:
        return settings.mqtt_password
    if not settings.mqtt_password_file:
        return None
    try:
        with open(settings.mqtt_password_file, encoding="utf-8") as fh:
            return fh.readline().rstrip("\r\n")
    except OSError as exc:
        raise typer.BadParameter(f"the MQTT password file cannot be read: {exc}") from None
