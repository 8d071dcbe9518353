#!/bin/sh
# Copy the portal's browser libraries from their npm packages into the repository.
#
# The copies are committed: the platform serves them itself and runs offline (no CDN), and the
# portal's Content-Security-Policy allows scripts and styles from its own origin only.
# Run again to upgrade (change a version below), then commit the result. Needs `npm` (only
# `npm pack`: nothing is installed, no package scripts run).
#
#   htmx.org 2.0.x  — the maintained 2.x line (4.x changes attribute inheritance and events)
#   leaflet         — maps, with its CSS and marker images
#   uplot           — small, fast time-series charts
#   axe-core        — accessibility checks, for the browser tests only (tests/fixtures/vendor)
set -eu

HTMX=2.0.11
LEAFLET=1.9.4
UPLOT=1.6.32
AXE=4.11.4

root=$(cd "$(dirname "$0")/.." && pwd)
static="$root/smartregion/web/static/vendor"
testonly="$root/tests/fixtures/vendor"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

unpack() { # name version -> directory of the unpacked package
    (cd "$work" && npm pack --silent "$1@$2" >/dev/null)
    tarball=$(ls "$work"/*.tgz)
    mkdir -p "$work/$1"
    tar -xzf "$tarball" -C "$work/$1"
    rm "$tarball"
    echo "$work/$1/package"
}

rm -rf "$static" "$testonly"
mkdir -p "$static/htmx" "$static/leaflet/images" "$static/uplot" "$testonly/axe-core"

pkg=$(unpack htmx.org "$HTMX")
cp "$pkg/dist/htmx.min.js" "$static/htmx/"
cp "$pkg/LICENSE" "$static/htmx/LICENSE"

pkg=$(unpack leaflet "$LEAFLET")
cp "$pkg/dist/leaflet.js" "$pkg/dist/leaflet.css" "$static/leaflet/"
cp "$pkg/dist/images/"*.png "$static/leaflet/images/"
cp "$pkg/LICENSE" "$static/leaflet/LICENSE"

pkg=$(unpack uplot "$UPLOT")
cp "$pkg/dist/uPlot.iife.min.js" "$pkg/dist/uPlot.min.css" "$static/uplot/"
cp "$pkg/LICENSE" "$static/uplot/LICENSE"

pkg=$(unpack axe-core "$AXE")
cp "$pkg/axe.min.js" "$testonly/axe-core/"
cp "$pkg/LICENSE" "$testonly/axe-core/LICENSE"

cat > "$static/VERSIONS.md" <<END
# Vendored browser libraries

Copied from their npm packages by \`scripts/vendor_assets.sh\`; do not edit by hand.

| package | version | licence | files |
| --- | --- | --- | --- |
| htmx.org | $HTMX | BSD-0-Clause | htmx/htmx.min.js |
| leaflet | $LEAFLET | BSD-2-Clause | leaflet/leaflet.js, leaflet.css, images/ |
| uplot | $UPLOT | MIT | uplot/uPlot.iife.min.js, uPlot.min.css |

Test-only (not served): axe-core $AXE (MPL-2.0), tests/fixtures/vendor/axe-core/axe.min.js.
END
cp "$static/VERSIONS.md" "$testonly/VERSIONS.md"
echo "vendored into $static and $testonly"
