"""`make demo`: the main jobs on the bundled sample logs into a local lake, then a summary.

The sample logs in ``demo/raw`` were written by the development generator ``dev/synth`` (seed 7, scale 0.02): three
days of CloudTrail, S3 server access and Glue crawler logs with the awkward cases real logs
have, a few malformed records, late files and duplicate deliveries. Every job runs for real, in
one local SparkSession, exactly as ``python jobs/<job>.py`` would run it.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from auditlake import lake as lake_mod
from auditlake.cli import configure_logging, run_job
from auditlake.config import load_config
from auditlake.ingest.objects import normalize_uri
from auditlake.ingest.runner import run_ingest
from auditlake.tables import list_contracts, load_contract

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[2]


def _jobs():
    from auditlake.aggregate_job import JOB_NAME, build_daily_aggregates
    from auditlake.detect import JOB_NAME as DETECT_JOB
    from auditlake.detect import detect
    from auditlake.sources.cloudtrail import CloudTrailSource
    from auditlake.sources.crawler_logs import CrawlerLogsSource
    from auditlake.sources.s3_access import S3AccessSource

    return [
        ("ingest_cloudtrail", "cloudtrail", lambda ctx: run_ingest(ctx, CloudTrailSource())),
        ("ingest_s3_access", "s3access", lambda ctx: run_ingest(ctx, S3AccessSource())),
        ("ingest_crawler_logs", "crawler", lambda ctx: run_ingest(ctx, CrawlerLogsSource())),
        (JOB_NAME, None, build_daily_aggregates),
        (DETECT_JOB, None, detect),
    ]


def _summary(spark, lake: str) -> list[str]:
    lines = [f"{'table':34} {'rows':>9} {'partitions':>10}", "-" * 55]
    for table in list_contracts():
        contract = load_contract(table)
        uri = lake_mod.table_uri(lake, table)
        if contract.format == "delta" and not lake_mod.delta_exists(spark, uri):
            if not Path(uri.removeprefix("file:")).exists():
                continue
        df = lake_mod.read_table(spark, lake, table)
        rows = df.count()
        if rows == 0 and not Path(uri.removeprefix("file:")).exists():
            continue
        parts = df.select(*contract.partition_by).distinct().count() if contract.partition_by else 1
        lines.append(f"{table:34} {rows:>9} {parts:>10}")
    return lines


def _answers(spark, lake: str) -> list[str]:
    """A few audit answers straight from the lake, the way the query pack asks them."""
    out: list[str] = []
    for title, table, sql in [
        (
            "Findings of the detection pack",
            "findings",
            "SELECT dt, severity, rule_id, entity_kind, entity, event_count FROM t "
            "ORDER BY dt DESC, CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END, "
            "rule_id, entity LIMIT 10",
        ),
        (
            "Who deleted tables",
            "agg_governance_changes_daily",
            "SELECT dt, event_name, user_arn, source_ip_address, database_name, table_name FROM t "
            "WHERE event_name IN ('DeleteTable','BatchDeleteTable') ORDER BY event_time LIMIT 5",
        ),
        (
            "Crawlers that failed",
            "crawler_runs",
            "SELECT run_date, crawler_name, error_count, substr(first_error_message, 1, 60) AS first_error "
            "FROM t WHERE status = 'failed' ORDER BY run_date, crawler_name LIMIT 5",
        ),
        (
            "Athena queries from outside the trusted networks",
            "agg_athena_queries_daily",
            "SELECT dt, user_arn, source_ip_address, workgroup, query_count FROM t "
            "WHERE outside_trusted_networks ORDER BY query_count DESC, dt LIMIT 5",
        ),
    ]:
        try:
            df = lake_mod.read_table(spark, lake, table)
            df.createOrReplaceTempView("t")
            rows = spark.sql(sql).collect()
        except Exception as exc:  # noqa: BLE001 - the summary must not hide the tables above
            out.append(f"{title}: (not available: {type(exc).__name__}: {str(exc).splitlines()[0][:120]})")
            continue
        out.append(f"{title}:")
        out.extend("  " + " | ".join("" if v is None else str(v) for v in r) for r in rows)
        if not rows:
            out.append("  (none)")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="auditlake-demo")
    parser.add_argument("--lake", default=str(REPO / "build" / "demo-lake"))
    parser.add_argument("--raw", default=str(REPO / "demo" / "raw"))
    args = parser.parse_args(argv)
    configure_logging()
    from auditlake.session import build_session

    cfg = load_config("local", {"spark": {"conf": {"spark.sql.shuffle.partitions": 4}}})
    spark = build_session(cfg, "auditlake-demo")
    lake = normalize_uri(args.lake)
    started = time.monotonic()
    for job, sub, fn in _jobs():
        argv_job = ["--lake", args.lake] + (["--source", str(Path(args.raw) / sub)] if sub else [])
        print(f"\n=== {job} ===", flush=True)
        code = run_job(
            job, fn, argv=argv_job, needs_source=sub is not None, session_factory=lambda c, n: spark
        )
        if code != 0:
            print(f"demo: {job} failed with exit code {code}", file=sys.stderr)
            return code
    from auditlake.athena import ddl

    ddl_path = Path(args.lake) / "athena_ddl.sql"
    ddl_path.write_text(ddl.render_ddl(ddl.all_table_specs("s3://my-audit-bucket/lake", "auditlake")))
    print(f"\n=== lake {lake} ({time.monotonic() - started:.0f}s) ===")
    print("\n".join(_summary(spark, lake)))
    print()
    print("\n".join(_answers(spark, lake)))
    print(f"\nAthena DDL for every table: {ddl_path}   audit queries: {REPO / 'queries'}")
    return _report(spark, args.lake)


def _report(spark, lake: str) -> int:
    """The daily HTML audit report of the demo lake's last day."""
    from auditlake.report.data import latest_day
    from auditlake.report.job import JOB_NAME, add_arguments, build_report

    day = latest_day(spark, normalize_uri(lake))
    if day is None:
        print("demo: no CloudTrail day in the lake, no audit report", file=sys.stderr)
        return 1
    out = Path(lake) / f"audit-report-{day.isoformat()}.html"
    print(f"\n=== {JOB_NAME} ===", flush=True)
    code = run_job(
        JOB_NAME,
        build_report,
        argv=["--lake", lake, "--date", day.isoformat(), "--out", str(out)],
        add_arguments=add_arguments,
        needs_source=False,
        session_factory=lambda c, n: spark,
    )
    if code == 0:
        print(f"Daily audit report for {day}: {out.resolve()}")
    return code


if __name__ == "__main__":
    sys.exit(main())
