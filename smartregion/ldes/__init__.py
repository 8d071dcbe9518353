"""LDES: event streams, fragmentation, RDF serialisation, and the replication client."""
