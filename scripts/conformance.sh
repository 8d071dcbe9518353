#!/bin/sh
# Run the ETSI NGSI-LD conformance suite against a fresh broker; see docs/conformance.md.
# Thin wrapper: the work is in scripts/conformance.py (stdlib only).
set -eu
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
exec "$PY" scripts/conformance.py "$@"
