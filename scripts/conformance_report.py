#!/usr/bin/env python3
"""Turn Robot Framework's output.xml from the ETSI NGSI-LD suite into a markdown results section.

Usage::

    scripts/conformance_report.py .conformance/results/output.xml \
        [--doc docs/conformance.md] [--markdown report.md] [--json summary.json] \
        [--meta key=value ...]

With ``--doc`` the text between ``<!-- conformance-results:begin -->`` and
``<!-- conformance-results:end -->`` in that file is replaced; everything else, in particular the
hand-written notes between ``<!-- conformance-notes:begin -->`` and
``<!-- conformance-notes:end -->``, is left alone. Each note line has the form
``- `PATTERN`: explanation`` where PATTERN is a test id (``019_01_01``), a full test name or an
``fnmatch`` glob (``045_*``); its explanation is shown next to every failing test it matches.

Stdlib only: it runs under any Python 3.11+, including the suite's own venv.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path

# The target areas (label, folder of the suite). Order is the order of the tables.
AREAS: tuple[tuple[str, str], ...] = (
    ("CommonBehaviours", "TP/NGSI-LD/CommonBehaviours"),
    ("Provision/Entities", "TP/NGSI-LD/ContextInformation/Provision/Entities"),
    ("Provision/EntityAttributes", "TP/NGSI-LD/ContextInformation/Provision/EntityAttributes"),
    ("Provision/BatchEntities", "TP/NGSI-LD/ContextInformation/Provision/BatchEntities"),
    ("Provision/PurgeEntities", "TP/NGSI-LD/ContextInformation/Provision/PurgeEntities"),
    ("Consumption/Entity", "TP/NGSI-LD/ContextInformation/Consumption/Entity"),
    ("Consumption/Discovery", "TP/NGSI-LD/ContextInformation/Consumption/Discovery"),
    ("jsonldContext", "TP/NGSI-LD/jsonldContext"),
    ("Provision/TemporalEntity", "TP/NGSI-LD/ContextInformation/Provision/TemporalEntity"),
    (
        "Provision/TemporalEntityAttributes",
        "TP/NGSI-LD/ContextInformation/Provision/TemporalEntityAttributes",
    ),
    ("Consumption/TemporalEntity", "TP/NGSI-LD/ContextInformation/Consumption/TemporalEntity"),
    # create/update/retrieve/query/delete subscriptions and the notification behaviour tests
    # (HTTP and, in SubscriptionNotificationBehaviour/MQTT, MQTT endpoints)
    ("Subscription", "TP/NGSI-LD/ContextInformation/Subscription"),
)

RESULTS_BEGIN = "<!-- conformance-results:begin -->"
RESULTS_END = "<!-- conformance-results:end -->"
NOTES_BEGIN = "<!-- conformance-notes:begin -->"
NOTES_END = "<!-- conformance-notes:end -->"

_NOTE_LINE = re.compile(r"^\s*[-*]\s+`(?P<pattern>[^`]+)`\s*:?\s*(?P<text>.*)$")
_MESSAGE_CHARS = 180


@dataclass
class TestResult:
    """One executed test case."""

    test_id: str
    name: str
    area: str
    path: str
    status: str
    message: str


@dataclass
class AreaSummary:
    """Pass/fail counts of one area."""

    area: str
    total: int = 0
    passed: int = 0
    failed: int = 0
    skipped: int = 0

    @property
    def pass_pct(self) -> float:
        """Passed tests as a percentage of the executed (non-skipped) ones."""
        executed = self.total - self.skipped
        return 100.0 * self.passed / executed if executed else 0.0


@dataclass
class Report:
    """Everything the markdown and JSON renderings need."""

    tests: list[TestResult]
    areas: list[AreaSummary]
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def overall(self) -> AreaSummary:
        """The sum over all areas."""
        total = AreaSummary("**Total**")
        for a in self.areas:
            total.total += a.total
            total.passed += a.passed
            total.failed += a.failed
            total.skipped += a.skipped
        return total


def area_of(path: str) -> tuple[str, str]:
    """Return (area label, path relative to the suite root) for a .robot file path."""
    norm = path.replace("\\", "/")
    idx = norm.find("TP/NGSI-LD/")
    rel = norm[idx:] if idx >= 0 else norm
    for label, folder in AREAS:
        if rel == folder or rel.startswith(folder + "/"):
            return label, rel
    parts = rel.split("/")
    # Outside the target list: label by up to three folders below TP/NGSI-LD.
    label = "/".join(parts[2:-1][:3]) if len(parts) > 3 else rel
    return label or rel, rel


def _final_status(test: ET.Element) -> tuple[str, str]:
    status = test.find("status")  # the test's own status is its direct <status> child
    if status is None:
        return "FAIL", "no status recorded"
    return status.get("status", "FAIL"), (status.text or "").strip()


def parse_output(output_xml: Path) -> list[TestResult]:
    """Read every test case of a Robot output.xml (RF 4+ schema)."""
    root = ET.parse(output_xml).getroot()
    results: list[TestResult] = []

    def walk(suite: ET.Element, source: str) -> None:
        src = suite.get("source") or source
        for child in suite:
            if child.tag == "suite":
                walk(child, src)
            elif child.tag == "test":
                name = child.get("name", "")
                status, message = _final_status(child)
                test_src = child.get("source") or src
                area, rel = area_of(test_src)
                results.append(
                    TestResult(
                        test_id=name.split()[0] if name.split() else name,
                        name=name,
                        area=area,
                        path=rel,
                        status=status,
                        message=message,
                    )
                )

    for suite in root.findall("suite"):
        walk(suite, "")
    return results


def summarize(tests: list[TestResult]) -> list[AreaSummary]:
    """Count per area: the known areas in their fixed order, then any others alphabetically."""
    by_area: dict[str, AreaSummary] = {}
    for t in tests:
        s = by_area.setdefault(t.area, AreaSummary(t.area))
        s.total += 1
        if t.status == "PASS":
            s.passed += 1
        elif t.status == "SKIP":
            s.skipped += 1
        else:
            s.failed += 1
    known = [label for label, _ in AREAS]
    ordered = [by_area[a] for a in known if a in by_area]
    ordered += [by_area[a] for a in sorted(by_area) if a not in known]
    return ordered


def read_notes(doc_text: str) -> list[tuple[str, str]]:
    """Parse the hand-written notes section: a list of (pattern, explanation)."""
    begin, end = doc_text.find(NOTES_BEGIN), doc_text.find(NOTES_END)
    if begin < 0 or end < begin:
        return []
    notes: list[tuple[str, str]] = []
    for line in doc_text[begin + len(NOTES_BEGIN) : end].splitlines():
        m = _NOTE_LINE.match(line)
        if m and m.group("text").strip():
            notes.append((m.group("pattern").strip(), m.group("text").strip()))
    return notes


def explain(test: TestResult, notes: list[tuple[str, str]]) -> str:
    """Join the explanations of every note whose pattern matches the test id or name."""
    hits = [
        text
        for pattern, text in notes
        if fnmatch.fnmatchcase(test.test_id, pattern) or fnmatch.fnmatchcase(test.name, pattern)
    ]
    return " ".join(hits)


def _cell(text: str, limit: int | None = None) -> str:
    text = " ".join(text.split())  # one line: robot messages span several
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("|", "\\|")


def render_markdown(report: Report, notes: list[tuple[str, str]]) -> str:
    """Render the results section (summary table, then the per-test failure list)."""
    lines: list[str] = []
    if report.meta:
        lines.append("Run: " + "; ".join(f"{k} `{v}`" for k, v in report.meta.items() if v) + ".")
        lines.append("")
    lines.append("| Area | Total | Passed | Failed | Skipped | Pass % |")
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    for a in [*report.areas, report.overall]:
        lines.append(
            f"| {a.area} | {a.total} | {a.passed} | {a.failed} | {a.skipped} | {a.pass_pct:.1f} |"
        )
    lines.append("")
    failures = [t for t in report.tests if t.status not in ("PASS", "SKIP")]
    lines.append(f"### Failing tests ({len(failures)})")
    lines.append("")
    if not failures:
        lines.append("None.")
    else:
        lines.append("| Test | Area | Robot message | Explanation |")
        lines.append("| --- | --- | --- | --- |")
        for t in sorted(failures, key=lambda t: (t.area, t.name)):
            lines.append(
                f"| {_cell(t.name, 90)} | {t.area} | {_cell(t.message, _MESSAGE_CHARS)} "
                f"| {_cell(explain(t, notes))} |"
            )
    return "\n".join(lines) + "\n"


def update_doc(doc: Path, section: str) -> None:
    """Replace the results section of ``doc`` between its markers, nothing else."""
    text = doc.read_text(encoding="utf-8")
    begin, end = text.find(RESULTS_BEGIN), text.find(RESULTS_END)
    if begin < 0 or end < begin:
        raise SystemExit(f"{doc}: markers {RESULTS_BEGIN} ... {RESULTS_END} not found")
    new = text[: begin + len(RESULTS_BEGIN)] + "\n" + section + text[end:]
    doc.write_text(new, encoding="utf-8")


def build_report(output_xml: Path, meta: dict[str, str]) -> Report:
    """Parse and summarise one output.xml."""
    tests = parse_output(output_xml)
    return Report(tests=tests, areas=summarize(tests), meta=meta)


def to_json(report: Report) -> str:
    """A machine-readable summary (areas, every test)."""
    data = {
        "meta": report.meta,
        "areas": [{**asdict(a), "pass_pct": round(a.pass_pct, 1)} for a in report.areas],
        "total": {**asdict(report.overall), "area": "total"},
        "tests": [asdict(t) for t in report.tests],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("output_xml", type=Path)
    parser.add_argument("--doc", type=Path, help="markdown file whose results section to replace")
    parser.add_argument("--markdown", type=Path, help="also write the section to this file")
    parser.add_argument("--json", type=Path, help="write a JSON summary here")
    parser.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--quiet", action="store_true", help="do not print the summary table")
    args = parser.parse_args(argv)

    meta = dict(item.split("=", 1) for item in args.meta if "=" in item)
    report = build_report(args.output_xml, meta)
    notes_source = args.doc.read_text(encoding="utf-8") if args.doc and args.doc.exists() else ""
    section = render_markdown(report, read_notes(notes_source))
    if args.doc:
        update_doc(args.doc, section)
    if args.markdown:
        args.markdown.write_text(section, encoding="utf-8")
    if args.json:
        args.json.write_text(to_json(report), encoding="utf-8")
    if not args.quiet:
        head = section.split("### Failing tests")[0]
        sys.stdout.write(head)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
