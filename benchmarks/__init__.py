"""Performance benchmarks of the NGSI-LD broker: `python -m benchmarks.run` (results in docs/benchmarks.md)."""
