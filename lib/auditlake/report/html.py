"""Render the report as one self-contained HTML page: inline styles, script and SVG charts.

The page declares a Content-Security-Policy that allows no fetch at all (only its own inline
style and script), so even a value that looked like a URL could not make it load anything.
Every value is HTML-escaped; tables sort when a column heading is clicked.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterable
from typing import Any

from auditlake.report import charts
from auditlake.report.data import HTTP_CLASSES, SEVERITIES, ReportData, Table

# (id, heading): the order of the page; the night's runs are part of the header, the day's detection
# findings come first after it. The browser test checks every heading is rendered.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("runs", "Night's runs"),
    ("findings", "Detection findings"),
    ("governance", "Governance changes"),
    ("data-access", "Lake Formation data access"),
    ("athena", "Athena queries from outside the trusted networks"),
    ("access-denied", "Access denied"),
    ("s3", "S3 access"),
    ("crawlers", "Glue crawlers"),
    ("quarantine", "Quarantine"),
)
HEADINGS = dict(SECTIONS)

CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"

STYLE = """
:root { --border: #dde1e6; --muted: #5f6b7a; --red: #c23b3b; --amber: #b7791f; --green: #2f855a; }
* { box-sizing: border-box; }
body { margin: 0; background: #f4f6f8; color: #1f2328;
       font: 14px/1.45 "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 18px 24px 40px; }
header h1 { font-size: 22px; margin: 0 0 4px; }
.meta { color: var(--muted); margin: 0 0 10px; }
.meta b { color: #1f2328; font-weight: 600; }
.banner { border-radius: 6px; padding: 10px 14px; margin: 10px 0; border-left: 6px solid; }
.banner.red { background: #fdecec; border-color: var(--red); }
.banner.amber { background: #fff6e0; border-color: var(--amber); }
.banner.green { background: #e9f6ef; border-color: var(--green); }
.banner strong { display: block; margin-bottom: 2px; }
.banner ul { margin: 4px 0 0 18px; padding: 0; }
.cards { display: grid; grid-template-columns: repeat(6, 1fr); gap: 10px; margin: 12px 0; }
.card { display: block; background: #fff; border: 1px solid var(--border); border-radius: 6px; padding: 8px 12px;
        color: inherit; text-decoration: none; }
.card .n { font-size: 24px; font-weight: 700; }
.card .l { color: var(--muted); font-size: 12px; }
.card.alert .n { color: var(--red); }
nav { font-size: 13px; margin: 6px 0 0; color: var(--muted); }
nav a { color: #2b5d9b; text-decoration: none; margin-right: 12px; white-space: nowrap; }
section { background: #fff; border: 1px solid var(--border); border-radius: 6px; padding: 12px 18px 14px;
          margin: 14px 0; }
section h2 { font-size: 17px; margin: 2px 0 6px; }
section h3 { font-size: 14px; margin: 14px 0 6px; color: #33404d; }
p.lead { margin: 0 0 8px; color: #33404d; }
p.none { color: var(--muted); font-style: italic; margin: 4px 0; }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; }
th, td { padding: 4px 8px; border-bottom: 1px solid #e8eaed; text-align: left; vertical-align: top; }
th { background: #eef1f4; font-weight: 600; white-space: nowrap; cursor: pointer; user-select: none; }
th[data-sort="asc"]::after { content: " \\25B2"; font-size: 9px; }
th[data-sort="desc"]::after { content: " \\25BC"; font-size: 9px; }
tbody tr:nth-child(even) { background: #fafbfc; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.wrap { overflow-wrap: anywhere; min-width: 8em; }
td.code { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: 11.5px; word-break: break-all; }
td.null { color: #a0a7b0; }
td.bad { color: var(--red); font-weight: 600; }
.badge { display: inline-block; border-radius: 10px; padding: 0 8px; font-size: 11px; font-weight: 700;
         color: #fff; text-transform: uppercase; letter-spacing: .3px; }
.sev-critical { background: #9b1c1c; } .sev-high { background: #d64545; }
.sev-medium { background: #dd8a1f; } .sev-low { background: #5b7fa6; } .spike { background: #d64545; }
p.more { margin: 4px 0 0; color: var(--muted); font-size: 12px; }
figure.chart { margin: 6px 0 4px; }
figure.chart svg { display: block; width: 100%; height: auto; }
figure.chart figcaption { color: var(--muted); font-size: 12px; }
footer { color: var(--muted); font-size: 12px; margin-top: 18px; }
@media (max-width: 900px) { .cards { grid-template-columns: repeat(3, 1fr); } }
@media print {
  @page { size: A4 landscape; margin: 10mm; }
  body { background: #fff; font-size: 11px; }
  main { max-width: none; padding: 0; }
  nav { display: none; }
  section { border: none; padding: 4px 0; margin: 8px 0; break-inside: auto; }
  section h2 { break-after: avoid; }
  figure.chart, tr { break-inside: avoid; }
  th { cursor: auto; }
  .banner, .badge, .card, th, tbody tr { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""

SCRIPT = """
document.querySelectorAll('table.data').forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, i) {
    th.title = 'sort';
    th.addEventListener('click', function () {
      var asc = th.dataset.sort !== 'asc';
      Array.prototype.forEach.call(heads, function (h) { delete h.dataset.sort; });
      th.dataset.sort = asc ? 'asc' : 'desc';
      var num = th.classList.contains('num');
      var key = function (tr) {
        var c = tr.cells[i], v = c.dataset.v !== undefined ? c.dataset.v : c.textContent;
        return num ? (parseFloat(v) || 0) : v.toLowerCase();
      };
      var body = table.tBodies[0];
      Array.prototype.slice.call(body.rows)
        .sort(function (a, b) { var x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1); })
        .forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""

_WRAP = {
    "principal",
    "target",
    "table",
    "detail",
    "entity",
    "rule",
    "description",
    "first error",
    "object",
    "top requester",
    "APIs",
    "error codes",
    "permissions",
    "run",
}
_CODE = {"raw text (redacted, cut)"}
_STATUS_BAD = {"failed", "dq_failed", "critical"}


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def _cell(column: str, value: Any, numeric: bool) -> str:
    if value is None or value == "":
        return '<td class="null">—</td>' if not numeric else '<td class="num null">—</td>'
    text = esc(_fmt(value))
    if column == "severity":
        return (
            f'<td data-v="{SEVERITIES.index(value) if value in SEVERITIES else 9}">'
            f'<span class="badge sev-{esc(value)}">{text}</span></td>'
        )
    if column == "spike":
        return f'<td><span class="badge spike">{text}</span></td>'
    if numeric:
        bad = column in ("critical failed", "failed", "denied", "errors") and value
        return f'<td class="num{" bad" if bad else ""}" data-v="{esc(value)}">{text}</td>'
    classes = []
    if column in _WRAP:
        classes.append("wrap")
        # ARNs and dotted names have no spaces: let them break after their separators, not mid-word
        text = re.sub(r"([/:.,])", r"\1<wbr>", text)
    if column in _CODE:
        classes.append("code")
    if column in ("error",) or (
        column in ("last status", "data quality") and value in _STATUS_BAD | {"failed"}
    ):
        classes.append("bad")
    cls = f' class="{" ".join(classes)}"' if classes else ""
    return f"<td{cls}>{text}</td>"


def render_table(table: Table, *, empty: str, noun: str = "rows") -> str:
    """A sortable table, or the ``empty`` sentence; a capped table ends with an "N more" line."""
    if not table.rows:
        return f'<p class="none">{esc(empty)}</p>'
    numeric = [
        all(
            isinstance(r[i], int | float) and not isinstance(r[i], bool)
            for r in table.rows
            if r[i] is not None
        )
        and any(r[i] is not None for r in table.rows)
        for i in range(len(table.columns))
    ]
    num_class = ' class="num"'
    head = "".join(
        f"<th{num_class if n else ''}>{esc(c)}</th>" for c, n in zip(table.columns, numeric, strict=True)
    )
    body = "".join(
        "<tr>"
        + "".join(_cell(c, v, n) for c, v, n in zip(table.columns, row, numeric, strict=True))
        + "</tr>"
        for row in table.rows
    )
    out = f'<table class="data"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    if table.more > 0:
        out += f'<p class="more">{table.more:,} more {esc(noun)} not shown ({table.total:,} in all).</p>'
    return out


def _chart(svg: str, caption: str) -> str:
    return f'<figure class="chart">{svg}<figcaption>{esc(caption)}</figcaption></figure>'


def _section(sid: str, lead: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{esc(HEADINGS[sid])}</h2><p class="lead">{lead}</p>{body}</section>'


def _plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def _sum_col(table: Table, column: str) -> int:
    i = table.columns.index(column)
    return sum(int(r[i] or 0) for r in table.rows)


def _banner(data: ReportData) -> str:
    problems = data.health.problems
    if problems:
        items = "".join(f"<li>{esc(p)}</li>" for p in problems[:10])
        extra = f"<li>… and {len(problems) - 10} more</li>" if len(problems) > 10 else ""
        return (
            f'<div class="banner red" role="alert"><strong>{_plural(len(problems), "problem")} in the '
            f"night's runs: the day's numbers may be incomplete.</strong><ul>{items}{extra}</ul></div>"
        )
    if not data.health.sources.rows:
        return (
            '<div class="banner amber"><strong>No job run is recorded for this day.</strong>'
            "The tables below may not hold the day's logs yet.</div>"
        )
    runs = _sum_col(data.health.sources, "runs")
    return (
        f'<div class="banner green"><strong>All {_plural(runs, "run")} of the night succeeded, '
        "no critical data-quality expectation failed.</strong></div>"
    )


def _cards(data: ReportData) -> str:
    sev = data.findings_by_severity
    serious = sev.get("critical", 0) + sev.get("high", 0)
    denied_today = dict(data.denied_daily).get(data.day, 0)
    failed_crawls = data.crawler_failed.total
    quarantined = _sum_col(data.quarantine_counts, "rows") if data.quarantine_counts.rows else 0
    cards = [
        (
            "findings",
            "—" if data.findings is None else f"{sum(sev.values()):,}",
            "findings" + (f" ({serious} critical/high)" if serious else ""),
            serious > 0,
        ),
        ("governance", f"{data.governance.total:,}", "governance changes", False),
        (
            "athena",
            f"{data.athena_untrusted_queries:,}",
            "untrusted Athena queries",
            data.athena_untrusted.total > 0,
        ),
        ("access-denied", f"{denied_today:,}", "access denied calls", data.day in data.denied_spike_days),
        ("crawlers", f"{failed_crawls:,}", "failed crawler runs", failed_crawls > 0),
        ("quarantine", f"{quarantined:,}", "quarantined records", False),
    ]
    return (
        '<div class="cards">'
        + "".join(
            f'<a class="card{" alert" if alert else ""}" href="#{sid}"><div class="n">{n}</div>'
            f'<div class="l">{esc(label)}</div></a>'
            for sid, n, label, alert in cards
        )
        + "</div>"
    )


def _findings(data: ReportData) -> str:
    if data.findings is None:
        return _section("findings", "No detections run: the lake has no findings table yet.", "")
    sev = data.findings_by_severity
    if not data.findings.total:
        return _section("findings", "Detections ran; no finding for this day.", "")
    counts = ", ".join(f'<span class="badge sev-{s}">{sev[s]} {s}</span>' for s in SEVERITIES if sev.get(s))
    others = sum(v for k, v in sev.items() if k not in SEVERITIES)
    if others:
        counts += f", {others} other"
    lead = f"{_plural(data.findings.total, 'finding')} first seen this day: {counts}."
    return _section("findings", lead, render_table(data.findings, empty="", noun="findings"))


def _governance(data: ReportData) -> str:
    g = data.governance
    lead = (
        f"{_plural(g.total, 'change')} to Glue Data Catalog databases, tables and partitions, Lake Formation "
        "grants and IAM / bucket policies: who made each call, from which IP, and whether it failed."
    )
    return _section(
        "governance", lead, render_table(g, empty="No governance change on this day.", noun="changes")
    )


def _data_access(data: ReportData) -> str:
    t = data.data_access
    lead = (
        f"Lake Formation <code>GetDataAccess</code> credential vending by principal and table: "
        f"{_plural(data.data_access_calls, 'call')} by {_plural(data.data_access_principals, 'principal')} "
        f"({_plural(t.total, 'principal/table pair')})."
    )
    return _section(
        "data-access",
        lead,
        render_table(t, empty="No Lake Formation data access on this day.", noun="principal/table pairs"),
    )


def _athena(data: ReportData) -> str:
    t = data.athena_untrusted
    lead = (
        f"{_plural(data.athena_untrusted_queries, 'query', 'queries')}: Athena <code>StartQueryExecution</code> "
        "calls whose source IP is in none of the trusted networks (conf <code>aggregates.trusted_cidrs</code>); "
        "calls made by AWS services are not counted."
    )
    return _section(
        "athena",
        lead,
        render_table(
            t, empty="No Athena query from outside the trusted networks.", noun="principal/IP pairs"
        ),
    )


def _access_denied(data: ReportData) -> str:
    today = dict(data.denied_daily).get(data.day, 0)
    spike = data.day in data.denied_spike_days
    lead = (
        f"{_plural(today, 'call')} refused for lack of permission on {data.day.isoformat()}"
        f"{' — a spike' if spike else ''}. Red bars are spike days (at least "
        "the spike minimum and several times the median of the other days)."
    )
    chart = _chart(
        charts.access_denied_chart(data.denied_daily, data.denied_spike_days, day=data.day),
        f"AccessDenied-family errors per day, last {data.days} days (report day outlined).",
    )
    table = render_table(data.denied_principals, empty="No access denied on this day.", noun="principals")
    return _section("access-denied", lead, chart + "<h3>By principal on the day</h3>" + table)


def _s3(data: ReportData) -> str:
    window = data.window
    today = sum(v for d, _, v in data.s3_by_status if d == data.day)
    errors = sum(v for d, c, v in data.s3_by_status if d == data.day and c in ("4xx", "5xx"))
    lead = f"{_plural(today, 'request')} in the server access logs on the day, {_plural(errors, 'error')} (4xx/5xx)."
    status = _chart(
        charts.stacked_chart(
            data.s3_by_status,
            window,
            name="s3-status",
            ylabel="requests",
            order=list(HTTP_CLASSES),
            colors=charts.COLORS,
        ),
        f"Requests per day by HTTP status class, last {data.days} days.",
    )
    ops = _chart(
        charts.stacked_chart(data.s3_by_operation, window, name="s3-operation", ylabel="requests"),
        f"Requests per day by operation, last {data.days} days (smaller operations as other).",
    )
    tables = (
        "<h3>Top remote IPs per bucket</h3>"
        + render_table(data.s3_top_ips, empty="No S3 request on this day.", noun="rows")
        + "<h3>Distinct requesters per bucket</h3>"
        + render_table(data.s3_requesters, empty="No S3 request on this day.", noun="buckets")
    )
    return _section("s3", lead, status + ops + tables)


def _crawlers(data: ReportData) -> str:
    failed = data.crawler_failed
    today = sum(v for d, _, v in data.crawler_errors_daily if d == data.day)
    lead = (
        f"{_plural(failed.total, 'failed run')} started on the day; {_plural(today, 'log event')} matched the "
        "CloudWatch metric filter <code>ERROR</code> (CrawlerErrorCount)."
    )
    chart = _chart(
        charts.stacked_chart(
            data.crawler_errors_daily, data.window, name="crawler-errors", ylabel="ERROR events"
        ),
        f"Crawler log events matching ERROR per day and crawler, last {data.days} days.",
    )
    body = (
        "<h3>Failed runs and their first error</h3>"
        + render_table(failed, empty="No crawler run failed on this day.", noun="failed runs")
        + chart
        + "<h3>Crawlers on the day</h3>"
        + render_table(data.crawler_day, empty="No crawler activity on this day.", noun="crawlers")
    )
    return _section("crawlers", lead, body)


def _quarantine(data: ReportData) -> str:
    q = data.quarantine_counts
    total = _sum_col(q, "rows") if q.rows else 0
    lead = (
        f"{_plural(total, 'record')} the night's runs could not parse or validate, by source and reason; "
        "samples are cut and have credentials, keys, e-mail addresses, IPs and account ids masked."
    )
    body = render_table(q, empty="Nothing quarantined by the night's runs.", noun="reasons") + (
        "<h3>Samples</h3>" + render_table(data.quarantine_samples, empty="") if q.rows else ""
    )
    return _section("quarantine", lead, body)


def _runs(data: ReportData) -> str:
    lead = (
        "Per job and source, the runs that wrote into this day or ran in the night after it: records read, "
        "loaded, quarantined and skipped as duplicates, and the worst data-quality outcome."
    )
    return _section("runs", lead, render_table(data.health.sources, empty="No run recorded.", noun="jobs"))


def _join(items: Iterable[str]) -> str:
    items = list(items)
    return ", ".join(esc(i) for i in items) if items else "none"


def render_report(data: ReportData, *, generated_at: dt.datetime, lake: str) -> str:
    """The whole page for one day."""
    first = data.window[0]
    title = f"Daily audit report — {data.day.isoformat()}"
    meta = (
        f"UTC day <b>{data.day:%A %d %B %Y}</b> · accounts <b>{_join(data.accounts)}</b> · "
        f"regions <b>{_join(data.regions)}</b> · {data.cloudtrail_events:,} CloudTrail events · "
        f"charts {first.isoformat()} to {data.day.isoformat()}"
    )
    nav = "<nav>" + " ".join(f'<a href="#{sid}">{esc(h)}</a>' for sid, h in SECTIONS) + "</nav>"
    sections = [
        _findings(data),
        _governance(data),
        _data_access(data),
        _athena(data),
        _access_denied(data),
        _s3(data),
        _crawlers(data),
        _quarantine(data),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body><main>"
        f'<header><h1>{esc(title)}</h1><p class="meta">{meta}</p>{_banner(data)}{_cards(data)}{nav}'
        + _runs(data)
        + "</header>"
        + "".join(sections)
        + f"<footer>auditlake · lake {esc(lake)} · generated {generated_at:%Y-%m-%d %H:%M:%S} UTC</footer>"
        f"</main><script>{SCRIPT}</script></body></html>\n"
    )
