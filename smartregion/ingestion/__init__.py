"""Ingestion: the MQTT bridge and its payload mappings."""
