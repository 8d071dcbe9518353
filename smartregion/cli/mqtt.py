"""`smartregion mqtt …`: the MQTT ingestion bridge (docs/ingestion.md)."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

from smartregion.app import Runtime
from smartregion.errors import SmartRegionError
from smartregion.ingestion.bridge import BridgeConfig, MqttBridge, parse_broker_url
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
    broker: Annotated[str, typer.Option("--broker", help="MQTT broker, mqtt://HOST:PORT.")],
    org: Annotated[str, typer.Option("--org", help="Organisation that owns what the bridge writes.")],
    mapping: Annotated[
        Path | None, typer.Option("--mapping", help="Mapping file (YAML, or TOML when *.toml).")
    ] = None,
    tenant: Annotated[str, typer.Option("--tenant", help="NGSI-LD tenant to write to.")] = "",
    prefix: Annotated[
        str, typer.Option("--prefix", help="Without a mapping: read {prefix}/entities.")
    ] = "smartregion",
    database: Annotated[
        str | None,
        typer.Option("--database", help="Database URL (default sqlite:///./smartregion.db; env SMARTREGION_DATABASE_URL)."),
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
    config: Annotated[str | None, typer.Option(help="TOML config file.")] = None,
) -> None:
    """Ingest MQTT messages as NGSI-LD entities (QoS 1, acknowledged after commit)."""
    settings = Settings.load({"database_url": database}, config_file=config)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        parse_broker_url(broker)
        rules = load_mapping(mapping) if mapping is not None else None
        bridge_config = BridgeConfig(
            broker_url=broker, org=org, tenant=tenant, prefix=prefix, mapping=rules,
            client_id=client_id, shared_group=shared_group, batch_size=batch_size,
            protocol=protocol,
        )
    except SmartRegionError as exc:
        raise typer.BadParameter(exc.detail) from None
    asyncio.run(run_bridge(settings, bridge_config))
