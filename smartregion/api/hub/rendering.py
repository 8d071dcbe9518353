"""How hub objects leave the API: response bodies, facets with labels, CSV rows, the printable
portfolio report."""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import io
from typing import Any

import orjson

from smartregion.api.hub.models import OUT_MODELS, FacetValue
from smartregion.core.taxonomy import Taxonomy, scheme_of
from smartregion.hub import Kind
from smartregion.hub.initiatives import PortfolioReport
from smartregion.storage.hub import HubObject

__all__ = ["REPORT_CSP", "csv_of", "facets_of", "out", "report_html"]

#: cells a spreadsheet would run as a formula (OWASP "CSV injection"): prefixed with '
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def out(obj: HubObject) -> dict[str, Any]:
    """The response body of an object."""
    body = {
        **obj.doc,
        "id": obj.id,
        "kind": obj.kind,
        "owner": obj.owner,
        "created_at": obj.created_at,
        "updated_at": obj.updated_at,
    }
    if obj.kind == "usecase":
        body["endorsements"] = obj.endorsements
    return OUT_MODELS[obj.kind].model_validate(body).model_dump(mode="json", exclude_none=True)


def facets_of(
    kind: Kind, taxonomy: Taxonomy, counts: dict[str, dict[str, int]]
) -> dict[str, list[FacetValue]]:
    """Facets by name: one per taxonomy scheme, per extra key prefix, status, owner, owner kind."""
    grouped: dict[str, list[FacetValue]] = {}
    for key, count in counts.get("key", {}).items():
        scheme = scheme_of(key)
        name = scheme or key.partition(":")[0]
        label = taxonomy.terms[key].labels if scheme and key in taxonomy.terms else None
        grouped.setdefault(name, []).append(FacetValue(value=key, count=count, label=label))
    for column, name in (
        ("status", kind.status_field),
        ("owner_kind", "owner_kind"),
        ("owner", "owner"),
    ):
        grouped[name] = [FacetValue(value=v, count=n) for v, n in counts.get(column, {}).items()]
    for values in grouped.values():
        values.sort(key=lambda f: (-f.count, f.value))
    return grouped


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = value
    elif isinstance(value, int | float):
        text = repr(value) if isinstance(value, float) else str(value)
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        text = "; ".join(value)
    else:
        text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return "'" + text if text.startswith(_FORMULA) else text


def csv_of(kind: Kind, rows: list[dict[str, Any]]) -> str:
    """A CSV document of response bodies: one column per field, texts as `<field>_nl`/`_en`,
    lists of names joined with `; `, nested values as JSON."""
    fields = list(OUT_MODELS[kind.name].model_fields)
    first = ["id", "kind", "owner", kind.status_field]
    order = first + [f for f in fields if f not in first]
    header: list[str] = []
    text_fields = set()
    for name in order:
        sample = next((r[name] for r in rows if isinstance(r.get(name), dict)), None)
        if isinstance(sample, dict) and set(sample) <= {"nl", "en"}:
            text_fields.add(name)
            header += [f"{name}_nl", f"{name}_en"]
        else:
            header.append(name)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180
    writer.writerow(header)
    for row in rows:
        cells: list[str] = []
        for name in order:
            value = row.get(name)
            if name in text_fields:
                texts = value if isinstance(value, dict) else {}
                cells += [_cell(texts.get("nl")), _cell(texts.get("en"))]
            else:
                cells.append(_cell(value))
        writer.writerow(cells)
    return buffer.getvalue()


_STYLE = """
@page { size: A4 landscape; margin: 15mm; }
body { font: 10pt/1.4 system-ui, sans-serif; color: #111; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top; }
td.n { text-align: right; white-space: nowrap; }
section { display: inline-block; vertical-align: top; margin-right: 3em; }
tr { break-inside: avoid; }
"""
#: the report page's own policy: nothing but its one inline style sheet (by hash)
REPORT_CSP = (
    "default-src 'none'; style-src 'sha256-"
    + base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
    + "'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _euro(amount: float) -> str:
    return f"€ {amount:,.0f}".replace(",", ".")


def report_html(report: PortfolioReport, taxonomy: Taxonomy, lang: str, title: str) -> str:
    """A printable, self-contained HTML page of the portfolio report (A4, no scripts)."""
    e = html.escape

    def text(texts: dict[str, str]) -> str:
        return e(texts.get(lang) or next(iter(texts.values()), ""))

    nl = lang == "nl"
    rows = "".join(
        f"<tr><td>{text(line.title)}</td><td>{e(line.owner)}</td><td>{e(line.status)}</td>"
        f"<td>{e(line.start or '')} – {e(line.end or '')}</td><td class=n>{_euro(line.budget)}</td>"
        f"<td class=n>{_euro(line.funded)}</td><td>"
        + (
            f"{text(line.next_milestone['title'])} ({e(str(line.next_milestone['due']))})"
            if line.next_milestone
            else ""
        )
        + "</td></tr>"
        for line in report.lines
    )
    statuses = "".join(f"<li>{e(s)}: {n}</li>" for s, n in report.by_status.items())
    funders = "".join(f"<li>{e(f)}: {_euro(a)}</li>" for f, a in report.by_funder.items())
    terms = "".join(
        f"<li>{e(taxonomy.label(t, lang))}: {n}</li>"
        for t, n in report.by_term.items()
        if t.startswith("domain:")
    )
    head = [
        "Initiatief",
        "Trekker",
        "Status",
        "Looptijd",
        "Budget",
        "Financiering",
        "Volgende mijlpaal",
    ]
    if not nl:
        head = ["Initiative", "Lead", "Status", "Period", "Budget", "Funding", "Next milestone"]
    return f"""<!doctype html>
<html lang="{e(lang)}"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>{_STYLE}</style></head><body>
<h1>{e(title)}</h1>
<p>{report.count} {"initiatieven" if nl else "initiatives"} · budget {_euro(report.budget)} ·
{"financiering" if nl else "funding"} {_euro(report.funded)}</p>
<section><h2>Status</h2><ul>{statuses}</ul></section>
<section><h2>{"Financiers" if nl else "Funders"}</h2><ul>{funders}</ul></section>
<section><h2>{"Domeinen" if nl else "Domains"}</h2><ul>{terms}</ul></section>
<table><thead><tr>{"".join(f"<th>{h}</th>" for h in head)}</tr></thead><tbody>{rows}</tbody></table>
</body></html>
"""
