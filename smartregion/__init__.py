"""smartregion: an NGSI-LD data space and ecosystem hub for Flemish smart regions."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0.dev0"
