"""Language choice and the completeness of the Dutch catalogue."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from smartregion.web import i18n

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "smartregion" / "web"


def test_choose_follows_query_then_cookie_then_accept_language() -> None:
    assert i18n.choose("en", None, "nl") == ("en", True)
    assert i18n.choose("en", "en", None) == ("en", False)  # already remembered
    assert i18n.choose(None, "en", "nl") == ("en", False)
    assert i18n.choose(None, None, "de-DE, en;q=0.7, nl;q=0.9") == ("nl", False)
    assert i18n.choose(None, None, "en-GB,en;q=0.9") == ("en", False)
    assert i18n.choose(None, None, "fr, de") == ("nl", False)
    assert i18n.choose(None, None, "en;q=0, *") == ("nl", False)
    assert i18n.choose("xx", "yy", "garbage;;q=abc") == ("nl", False)


def test_formats() -> None:
    nl, en = i18n.Formats("nl"), i18n.Formats("en")
    assert nl.number(1234.5) == "1.234,5" and en.number(1234.5) == "1,234.5"
    assert nl.date("2026-11-27T23:30:00Z") == "28 november 2026"  # Belgian day, not UTC's
    assert en.date("2026-11-27T08:00:00Z") == "27 November 2026"
    assert nl.datetime("2026-07-01T08:00:00Z").endswith("10:00:00")  # summer time


def test_every_message_has_a_dutch_translation() -> None:
    method_map = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
    options = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(WEB), method_map, options_map=options, keywords=keywords
    ):
        found.add(message[0] if isinstance(message, tuple) else message)
    assert len(found) > 100
    with (WEB / "locales" / "nl" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalog = read_po(fh, locale="nl")
    translated = {
        (m.id[0] if isinstance(m.id, tuple) else m.id)
        for m in catalog
        if m.id and all(m.string if isinstance(m.string, tuple) else [m.string]) and not m.fuzzy
    }
    missing = sorted(found - translated)
    assert not missing, f"untranslated (run scripts/update_messages.sh, then translate): {missing}"
