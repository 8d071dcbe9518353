#!/bin/sh
# Extract the portal's messages and merge them into the catalogues (smartregion/web/locales).
# Then translate the new or fuzzy entries of nl/LC_MESSAGES/messages.po; English is the source
# text. No compile step: the portal compiles the .po files in memory at start-up.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
pybabel=".venv/bin/pybabel"
$pybabel extract --no-location --sort-output -w 100 -F smartregion/web/locales/babel.cfg \
    -k N_ -k _ -k gettext -k ngettext:1,2 -o smartregion/web/locales/messages.pot .
if [ -f smartregion/web/locales/nl/LC_MESSAGES/messages.po ]; then
    $pybabel update --no-fuzzy-matching -w 100 -i smartregion/web/locales/messages.pot -d smartregion/web/locales -l nl
else
    $pybabel init -i smartregion/web/locales/messages.pot -d smartregion/web/locales -l nl
fi
