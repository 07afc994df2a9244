"""The audit report job: ``--lake URI --date YYYY-MM-DD [--days N] --out report.html``.

Reads the lake (see ``auditlake.report.data``), renders one self-contained HTML page and writes
it to ``--out``: a local path, or any URI Hadoop can write (``s3://`` on EMR and Glue).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import re
import sys
import time
from pathlib import Path

from auditlake import hadoop_fs
from auditlake.cli import parse_date, run_job
from auditlake.context import JobContext
from auditlake.errors import UsageError
from auditlake.ingest.objects import is_local, normalize_uri
from auditlake.report.data import Options, collect_report
from auditlake.report.html import render_report

log = logging.getLogger(__name__)
JOB_NAME = "audit_report"
MAX_DAYS = 92


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--date", type=parse_date, required=True, help="the UTC day the report is about, YYYY-MM-DD"
    )
    parser.add_argument(
        "--days", type=int, default=7, help=f"days the charts cover, ending with --date (1..{MAX_DAYS})"
    )
    parser.add_argument("--out", help="where to write the HTML page (default audit-report-<date>.html)")


def redact_uri(uri: str) -> str:
    """A URI without its user info (``s3a://key:secret@bucket`` -> ``s3a://bucket``)."""
    return re.sub(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", r"\1", uri)


def write_text(spark, uri: str, text: str) -> str:
    """Write ``text`` (UTF-8) to a local path or a Hadoop URI; return where it went."""
    if is_local(uri):
        path = Path(uri.removeprefix("file:")).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return str(path)
    hadoop_fs.write_bytes(spark, uri, text.encode("utf-8"))
    return uri


def build_report(ctx: JobContext) -> str:
    """Collect the day's data, render the page, write it; return where it was written."""
    args = ctx.args
    if not 1 <= args.days <= MAX_DAYS:
        raise UsageError(f"{JOB_NAME}: --days must be between 1 and {MAX_DAYS}, got {args.days}")
    try:
        options = Options.from_conf(ctx.cfg)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{JOB_NAME}: {exc}") from exc
    lake = normalize_uri(args.lake)
    out = args.out or f"audit-report-{args.date.isoformat()}.html"
    started = time.monotonic()
    data = collect_report(ctx.spark, lake, day=args.date, days=args.days, options=options)
    page = render_report(
        data, generated_at=dt.datetime.now(dt.UTC).replace(tzinfo=None), lake=redact_uri(lake)
    )
    where = write_text(ctx.spark, out, page)
    log.info(
        "audit report for %s (%d days) written to %s: %d bytes in %.1fs",
        args.date,
        args.days,
        redact_uri(where),
        len(page.encode("utf-8")),
        time.monotonic() - started,
    )
    print(where, flush=True)
    return where


def main(argv: list[str] | None = None) -> int:
    """Console entry point ``auditlake-audit-report``."""
    return run_job(JOB_NAME, build_report, argv=argv, add_arguments=add_arguments, needs_source=False)


if __name__ == "__main__":
    sys.exit(main())
