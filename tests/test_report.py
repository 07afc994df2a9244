"""The daily audit report: its numbers on a small lake built here, and the page in a real headless Chromium."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

from auditlake import lake as lake_mod
from auditlake.cli import run_job
from auditlake.report.data import Options, collect_report, redact, spike_days
from auditlake.report.html import render_report
from auditlake.report.job import add_arguments, build_report
from auditlake.tables import load_contract

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "build" / "report-test"

D = dt.date(2024, 3, 10)
D1 = dt.date(2024, 3, 9)
D2 = dt.date(2024, 3, 8)
ACCT = "111122223333"
ALICE = f"arn:aws:iam::{ACCT}:user/alice"
BOB = f"arn:aws:iam::{ACCT}:user/bob"
ANALYST = f"arn:aws:sts::{ACCT}:assumed-role/analyst/s1"
ANALYST_ROLE = f"arn:aws:iam::{ACCT}:role/analyst"
ORDERS_ARN = f"arn:aws:glue:us-east-1:{ACCT}:table/sales/orders"
GLUE, LF, ATHENA, IAM, S3 = (f"{s}.amazonaws.com" for s in ("glue", "lakeformation", "athena", "iam", "s3"))

# Every heading the page must render, in order (the night's runs sit in the header).
HEADINGS = [
    "Night's runs",
    "Detection findings",
    "Governance changes",
    "Lake Formation data access",
    "Athena queries from outside the trusted networks",
    "Access denied",
    "S3 access",
    "Glue crawlers",
    "Quarantine",
]

FINDINGS_SCHEMA = (
    "finding_id string, rule_id string, rule_name string, severity string, description string, "
    "mitre_technique string, entity_kind string, entity string, account_id string, region string, "
    "first_seen timestamp, last_seen timestamp, event_count bigint, evidence_event_ids array<string>, "
    "run_id string, detected_at timestamp, dt date"
)


def ts(day: dt.date, hh: int, mm: int = 0, ss: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hh, mm, ss)


def write(spark, lake: str, table: str, rows: list[dict]) -> None:
    contract = load_contract(table)
    df = spark.createDataFrame(
        [tuple(r.get(c) for c in contract.column_names) for r in rows], contract.schema
    )
    lake_mod.append_rows(spark, df, lake, table)


_seq = iter(range(1, 100_000))


def ct(t, source, name, *, user=ALICE, ip="10.0.0.5", error=None, params=None, region="us-east-1") -> dict:
    return {
        "event_id": f"ev-{next(_seq):05d}",
        "event_time": t,
        "event_date": t.date(),
        "event_source": source,
        "event_name": name,
        "aws_region": region,
        "recipient_account_id": ACCT,
        "source_ip_address": ip,
        "user_agent": "aws-cli/2",
        "error_code": error,
        "read_only": False,
        "user_arn": user,
        "user_type": "IAMUser" if user else "AWSService",
        "request_parameters": None if params is None else json.dumps(params),
        "source_object": "file:/raw/ct.json.gz",
    }


def s3(
    t,
    *,
    bucket="lake-raw",
    op="REST.GET.OBJECT",
    status=200,
    requester=ALICE,
    ip="198.51.100.20",
    bytes_sent=100,
    error=None,
) -> dict:
    return {
        "bucket": bucket,
        "request_time": t,
        "request_date": t.date(),
        "remote_ip": ip,
        "requester": requester,
        "operation": op,
        "key": "data/a.csv",
        "http_status": status,
        "error_code": error,
        "bytes_sent": bytes_sent,
        "total_time_ms": 10,
        "source_object": "file:/raw/s3.log",
        "line_hash": f"h{next(_seq)}",
    }


def crawl_event(crawler, t, level, message) -> dict:
    return {
        "crawler_name": crawler,
        "event_time": t,
        "event_date": t.date(),
        "level": level,
        "message": message,
        "error_filter_match": "ERROR" in message,
        "source_object": "file:/raw/c.gz",
        "event_key": f"k{next(_seq)}",
    }


def run(
    run_id,
    job,
    source,
    status,
    started,
    *,
    read=0,
    loaded=0,
    quarantined=0,
    duplicate=0,
    touched=(),
    dq="passed",
    error=None,
) -> dict:
    return {
        "run_id": run_id,
        "job": job,
        "source": source,
        "source_uri": "file:/raw",
        "env": "local",
        "status": status,
        "error": error,
        "started_at": started,
        "ended_at": started + dt.timedelta(minutes=2),
        "duration_seconds": 120.0,
        "records_read": read,
        "records_loaded": loaded,
        "records_quarantined": quarantined,
        "records_duplicate": duplicate,
        "touched_dates": list(touched),
        "dq_status": dq,
    }


def build_lake(spark, lake: str) -> None:
    """Three days of every source, the night's run records, and the aggregates built by the real job."""
    grant = {
        "principal": {"dataLakePrincipalIdentifier": ANALYST_ROLE},
        "resource": {"table": {"databaseName": "sales", "name": "customers"}},
        "permissions": ["SELECT"],
    }
    events = [
        ct(
            ts(D, 9, 15),
            GLUE,
            "DeleteTable",
            ip="203.0.113.9",
            params={"databaseName": "sales", "name": "orders"},
        ),
        ct(ts(D, 9, 30), LF, "GrantPermissions", params=grant),
        ct(
            ts(D, 11),
            IAM,
            "PutRolePolicy",
            user=BOB,
            ip="198.51.100.7",
            params={"roleName": "etl", "policyName": "inline-admin"},
        ),
        ct(
            ts(D, 12),
            GLUE,
            "CreateTable",
            user=BOB,
            error="AccessDeniedException",
            params={"databaseName": "hr", "tableInput": {"name": "salaries"}},
        ),
        ct(
            ts(D, 8),
            LF,
            "GetDataAccess",
            user=ANALYST,
            params={"tableArn": ORDERS_ARN, "permissions": ["SELECT"]},
        ),
        ct(
            ts(D, 8, 5),
            LF,
            "GetDataAccess",
            user=ANALYST,
            params={"tableArn": ORDERS_ARN, "permissions": ["SELECT"]},
        ),
        ct(
            ts(D, 13),
            LF,
            "GetDataAccess",
            user=ANALYST,
            params={"tableArn": ORDERS_ARN, "permissions": ["SELECT", "DESCRIBE"]},
        ),
        ct(
            ts(D, 15),
            ATHENA,
            "StartQueryExecution",
            user=BOB,
            ip="198.51.100.7",
            params={"workGroup": "primary"},
        ),
        ct(
            ts(D, 15, 30),
            ATHENA,
            "StartQueryExecution",
            user=BOB,
            ip="198.51.100.7",
            params={"workGroup": "primary"},
        ),
        ct(ts(D, 16), ATHENA, "StartQueryExecution", ip="10.1.2.3", params={"workGroup": "primary"}),
        ct(
            ts(D, 17), ATHENA, "StartQueryExecution", user=None, ip="athena.amazonaws.com", region="eu-west-1"
        ),
        *[ct(ts(D, 18, i), S3, "GetObject", error="AccessDenied") for i in range(10)],
        ct(ts(D1, 10), S3, "GetObject", user=BOB, error="AccessDenied"),
        ct(ts(D2, 10), S3, "GetObject", user=BOB, error="AccessDenied"),
        # outside the 3-day window of the charts
        ct(ts(D2 - dt.timedelta(days=1), 10), S3, "GetObject", user=BOB, error="AccessDenied"),
    ]
    write(spark, lake, "cloudtrail_events", events)
    write(
        spark,
        lake,
        "s3_access_logs",
        [
            *[s3(ts(D, 1, i)) for i in range(3)],
            s3(ts(D, 2), status=403, requester=None, ip="10.0.0.5", bytes_sent=243, error="AccessDenied"),
            s3(
                ts(D, 3),
                bucket="lake-curated",
                op="REST.PUT.OBJECT",
                requester=BOB,
                ip="10.0.0.6",
                bytes_sent=0,
            ),
            s3(ts(D1, 1)),
            s3(ts(D1, 2)),
        ],
    )
    write(
        spark,
        lake,
        "crawler_runs",
        [
            {
                "crawler_name": "sales",
                "run_id": "r1",
                "run_date": D,
                "started_at": ts(D, 1),
                "finished_at": ts(D, 1, 10),
                "status": "failed",
                "error_count": 2,
                "first_error_message": "[r1] ERROR : Table sales.orders not found\n  at com.amazonaws.Crawler.run",
            },
            {
                "crawler_name": "hr",
                "run_id": "r2",
                "run_date": D,
                "started_at": ts(D, 2),
                "finished_at": ts(D, 2, 5),
                "status": "succeeded",
                "error_count": 0,
                "tables_created": 1,
            },
            {
                "crawler_name": "sales",
                "run_id": "r0",
                "run_date": D1,
                "started_at": ts(D1, 1),
                "finished_at": ts(D1, 1, 5),
                "status": "succeeded",
                "error_count": 0,
            },
        ],
    )
    write(
        spark,
        lake,
        "crawler_log_events",
        [
            crawl_event("sales", ts(D, 1, 1), "ERROR", "[r1] ERROR : Table sales.orders not found"),
            crawl_event("sales", ts(D, 1, 2), "ERROR", "[r1] ERROR : retry failed"),
            crawl_event("sales", ts(D, 1, 9), "INFO", "[r1] Exiting with ERRORCODE: -1"),
            crawl_event("hr", ts(D, 2, 1), "WARN", "[r2] WARN : slow listing"),
            crawl_event("sales", ts(D1, 1, 1), "ERROR", "[r0] ERROR : transient"),
        ],
    )
    night = ts(D + dt.timedelta(days=1), 2)
    write(
        spark,
        lake,
        "job_runs",
        [
            run(
                "ct-1",
                "ingest_cloudtrail",
                "cloudtrail",
                "succeeded",
                night,
                read=25,
                loaded=23,
                quarantined=1,
                duplicate=1,
                touched=[D2, D1, D],
            ),
            run(
                "s3-1",
                "ingest_s3_access",
                "s3_access",
                "dq_failed",
                night + dt.timedelta(minutes=10),
                read=10,
                dq="failed",
                error="critical data-quality expectation failed on s3_access_logs",
            ),
            run(
                "s3-2",
                "ingest_s3_access",
                "s3_access",
                "succeeded",
                night + dt.timedelta(hours=1),
                read=10,
                loaded=8,
                quarantined=2,
                touched=[D1, D],
                dq="warning",
            ),
            run(
                "ct-0",
                "ingest_cloudtrail",
                "cloudtrail",
                "failed",
                ts(D - dt.timedelta(days=5), 2),
                read=1,
                error="an old failure",
                touched=[D - dt.timedelta(days=5)],
            ),
        ],
    )
    evaluated = night + dt.timedelta(minutes=11)

    def dq(run_id, expectation, severity, success):
        return {
            "run_id": run_id,
            "table_name": "s3_access_logs",
            "expectation": expectation,
            "severity": severity,
            "success": success,
            "evaluated_at": evaluated,
            "evaluated_date": evaluated.date(),
        }

    write(
        spark,
        lake,
        "dq_results",
        [
            dq("s3-1", "request_time_not_null", "critical", False),
            dq("s3-2", "request_time_not_null", "critical", True),
            dq("s3-2", "status_in_range", "warning", False),
        ],
    )
    quarantined = evaluated + dt.timedelta(hours=1)
    write(
        spark,
        lake,
        "quarantine",
        [
            {
                "source": "s3_access",
                "source_object": "file:/raw/s3/2024-03-10-01",
                "record_index": 7,
                "raw_text": "owner lake-raw [10/Mar/2024:01:00:00 +0000] 198.51.100.20 AKIAIOSFODNN7EXAMPLE REST.GET",
                "raw_length": 84,
                "reason": "malformed_line",
                "run_id": "s3-2",
                "quarantined_at": quarantined,
            },
            {
                "source": "s3_access",
                "source_object": "file:/raw/s3/2024-03-10-01",
                "record_index": 9,
                "raw_text": "truncated",
                "raw_length": 9,
                "reason": "malformed_line",
                "run_id": "s3-2",
                "quarantined_at": quarantined,
            },
            {
                "source": "cloudtrail",
                "source_object": "file:/raw/ct/1.json.gz",
                "record_index": 3,
                "raw_text": '{"eventID": "e1", "recipientAccountId": "111122223333", "sessionToken": "abc123"',
                "raw_length": 77,
                "reason": "invalid_json",
                "run_id": "ct-1",
                "quarantined_at": quarantined,
            },
            {
                "source": "cloudtrail",
                "source_object": "file:/raw/ct/0.json.gz",
                "record_index": 1,
                "raw_text": "x",
                "raw_length": 1,
                "reason": "invalid_json",
                "run_id": "ct-0",
                "quarantined_at": quarantined,
            },
        ],
    )
    from auditlake.aggregate_job import JOB_NAME, build_daily_aggregates

    code = run_job(
        JOB_NAME,
        build_daily_aggregates,
        needs_source=False,
        session_factory=lambda c, n: spark,
        argv=[
            "--lake",
            lake,
            "--since",
            "2024-03-07",
            "--until",
            "2024-03-10",
            "--conf",
            "quality.enabled=false",
        ],
    )
    assert code == 0


@pytest.fixture(scope="module")
def small_lake(spark, tmp_path_factory) -> str:
    lake = str(tmp_path_factory.mktemp("report") / "lake")
    build_lake(spark, lake)
    return lake_mod.table_uri(lake, "").rstrip("/")


@pytest.fixture(scope="module")
def report(spark, small_lake):
    return collect_report(spark, small_lake, day=D, days=3, options=Options())


@pytest.fixture(scope="module")
def report_file(spark, small_lake) -> Path:
    out = ARTIFACTS / "audit-report.html"
    code = run_job(
        "audit_report",
        build_report,
        add_arguments=add_arguments,
        needs_source=False,
        session_factory=lambda c, n: spark,
        argv=["--lake", small_lake, "--date", D.isoformat(), "--days", "3", "--out", str(out)],
    )
    assert code == 0
    return out


# --- the numbers ----------------------------------------------------------------------------


def test_header_scope_and_run_health(report):
    assert report.accounts == [ACCT]
    assert report.regions == ["eu-west-1", "us-east-1"]
    assert report.cloudtrail_events == 21
    ingest = [r for r in report.health.sources.rows if r[0].startswith("ingest_")]
    assert ingest == [
        ("ingest_cloudtrail", "cloudtrail", 1, "succeeded", 25, 23, 1, 1, "passed", 0),
        ("ingest_s3_access", "s3_access", 2, "succeeded", 20, 8, 2, 0, "failed", 1),
    ]
    assert report.health.problems == [
        "ingest_s3_access run s3-1 dq_failed: critical data-quality expectation failed on s3_access_logs",
        "ingest_s3_access run s3-1: critical expectation failed on s3_access_logs: request_time_not_null",
    ]


def test_governance_changes_of_the_day(report):
    assert report.governance.total == 4
    assert report.governance.rows == [
        ("09:15:00", "glue", "DeleteTable", "sales.orders", None, ALICE, "203.0.113.9", None),
        (
            "09:30:00",
            "lakeformation",
            "GrantPermissions",
            "sales.customers",
            f"to {ANALYST_ROLE} [SELECT]",
            ALICE,
            "10.0.0.5",
            None,
        ),
        ("11:00:00", "iam", "PutRolePolicy", "etl", "inline-admin", BOB, "198.51.100.7", None),
        ("12:00:00", "glue", "CreateTable", "hr.salaries", None, BOB, "10.0.0.5", "AccessDeniedException"),
    ]


def test_data_access_and_untrusted_athena_match_the_query_pack(report):
    # data_access_by_principal.sql for the day: (analyst, orders) 3 calls, 08:00 .. 13:00
    assert report.data_access.rows == [
        (ANALYST, "sales.orders", "DESCRIBE, SELECT", 3, 0, "08:00:00", "13:00:00")
    ]
    # queries_from_untrusted_networks.sql: bob's two queries from 198.51.100.7; the 10.1.2.3 and the
    # service-made (host name) calls are not outside
    assert (report.data_access_calls, report.data_access_principals) == (3, 1)
    assert report.athena_untrusted_queries == 2
    assert report.athena_untrusted.rows == [(BOB, "198.51.100.7", "primary", 2, 0, "15:00:00", "15:30:00")]


def test_access_denied_chart_data_spikes_and_principals(report):
    assert report.denied_daily == [(D2, 1), (D1, 1), (D, 11)]
    assert report.denied_spike_days == [D]
    # access_denied_spikes.sql with min_denied 10: alice on the day with 10
    assert report.denied_principals.rows == [
        (ALICE, 10, "GetObject", "AccessDenied", "spike"),
        (BOB, 1, "CreateTable", "AccessDeniedException", ""),
    ]


def test_s3_sections_match_the_query_pack(report):
    assert [r for r in report.s3_by_status if r[0] == D] == [(D, "2xx", 4), (D, "4xx", 1)]
    assert report.s3_by_operation == [
        (D1, "REST.GET.OBJECT", 2),
        (D, "REST.GET.OBJECT", 4),
        (D, "REST.PUT.OBJECT", 1),
    ]
    # top_remote_ips.sql per bucket: requests and bytes
    assert report.s3_top_ips.rows == [
        ("lake-curated", 1, "10.0.0.6", 1, 0, 0),
        ("lake-raw", 1, "198.51.100.20", 3, 0, 300),
        ("lake-raw", 2, "10.0.0.5", 1, 1, 243),
    ]
    # distinct_requesters.sql: alice and the anonymous requester on lake-raw
    assert report.s3_requesters.rows == [
        ("lake-raw", 2, 4, 1, ALICE, 3),
        ("lake-curated", 1, 1, 0, BOB, 1),
    ]


def test_crawler_failures_and_error_counts(report):
    assert report.crawler_failed.rows == [
        ("sales", "r1", "01:00:00", "01:10:00", 2, "[r1] ERROR : Table sales.orders not found"),
    ]
    # crawler_error_count_daily.sql: the CloudWatch ERROR filter counts the ERRORCODE line too
    assert report.crawler_errors_daily == [(D1, "sales", 1), (D, "hr", 0), (D, "sales", 3)]
    assert [r[:6] for r in report.crawler_day.rows] == [("sales", 1, 1, 0, 3, 0), ("hr", 1, 0, 1, 0, 1)]


def test_quarantine_counts_and_redacted_samples(report):
    assert report.quarantine_counts.rows == [
        ("s3_access", "malformed_line", 2),
        ("cloudtrail", "invalid_json", 1),
    ]
    assert report.quarantine_samples.rows == [
        (
            "cloudtrail",
            "invalid_json",
            "file:/raw/ct/1.json.gz",
            3,
            '{"eventID": "e1", "recipientAccountId": "«account»", "sessionToken": «redacted»',
            77,
        ),
        (
            "s3_access",
            "malformed_line",
            "file:/raw/s3/2024-03-10-01",
            7,
            "owner lake-raw [10/Mar/2024:01:00:00 +0000] «ip» «access-key» REST.GET",
            84,
        ),
        ("s3_access", "malformed_line", "file:/raw/s3/2024-03-10-01", 9, "truncated", 9),
    ]


def test_no_findings_table_says_no_detections_run(report):
    assert report.findings is None
    page = render_report(report, generated_at=dt.datetime(2024, 3, 11, 6), lake="file:/lake")
    assert "No detections run" in page


def test_findings_come_first_most_severe_first(spark, tmp_path):
    lake = str(tmp_path / "lake")
    schema = spark.createDataFrame([], FINDINGS_SCHEMA).schema

    def finding(fid, rule, severity, entity, day, count):
        return (
            fid,
            rule,
            rule.replace("_", " "),
            severity,
            f"{rule} by {entity}",
            "T1078.004",
            "principal",
            entity,
            ACCT,
            "us-east-1",
            ts(day, 3),
            ts(day, 4),
            count,
            [f"ev-{fid}"],
            "det-1",
            ts(day, 6),
            day,
        )

    rows = [
        finding("f1", "root_account_use", "critical", "root", D, 2),
        finding("f2", "mass_delete", "high", ALICE, D, 40),
        finding("f3", "new_region", "low", BOB, D, 1),
        finding("f0", "mass_delete", "high", BOB, D1, 9),
    ]
    spark.createDataFrame(rows, schema).write.format("delta").partitionBy("dt").save(f"{lake}/findings")
    data = collect_report(spark, lake, day=D, days=3, options=Options(max_rows=2))
    assert data.findings_by_severity == {"critical": 1, "high": 1, "low": 1}
    assert data.findings.total == 3 and data.findings.more == 1
    assert [r[:3] for r in data.findings.rows] == [
        ("critical", "root account use", "principal: root"),
        ("high", "mass delete", f"principal: {ALICE}"),
    ]
    page = render_report(data, generated_at=dt.datetime(2024, 3, 11, 6), lake="file:/lake")
    assert "1 more findings not shown (3 in all)" in page
    positions = [page.index(f"<h2>{h.replace(chr(39), '&#x27;')}</h2>") for h in HEADINGS]
    assert positions == sorted(positions)
    # an empty lake otherwise: every other section says so instead of failing
    assert "No governance change on this day." in page and "No job run is recorded for this day." in page


def test_redact_masks_credentials_and_cuts():
    text = "GET /x?X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F&X-Amz-Signature=abc from 203.0.113.5 by a@b.io"
    assert (
        redact(text, max_chars=200)
        == "GET /x?X-Amz-Credential=«redacted»&X-Amz-Signature=«redacted» from «ip» by «email»"
    )
    assert redact("x" * 50, max_chars=10) == "x" * 9 + "…"
    assert redact("203.0.113.5", max_chars=20, enabled=False) == "203.0.113.5"


def test_spike_days_need_the_minimum_and_the_factor():
    daily = [(D2, 2), (D1, 4), (D, 12)]
    assert spike_days(daily, factor=3.0, minimum=10) == [D]
    assert spike_days(daily, factor=3.0, minimum=20) == []
    assert spike_days([(D1, 5), (D, 12)], factor=3.0, minimum=10) == []


def test_job_rejects_bad_arguments(spark, small_lake, tmp_path):
    def call(*argv):
        return run_job(
            "audit_report",
            build_report,
            add_arguments=add_arguments,
            needs_source=False,
            session_factory=lambda c, n: spark,
            argv=["--lake", small_lake, *argv],
        )

    assert call("--date", "2024-02-30", "--out", str(tmp_path / "r.html")) == 2
    assert call("--date", "2024-03-10", "--days", "0", "--out", str(tmp_path / "r.html")) == 2
    assert call("--date", "2024-03-10", "--conf", "report.max_rowz=3", "--out", str(tmp_path / "r.html")) == 2
    assert not (tmp_path / "r.html").exists()


# --- the page in a real browser -------------------------------------------------------------


def test_page_in_headless_chromium(report_file):
    from PIL import Image, ImageStat

    from headless_chromium import Chromium

    html = report_file.read_text()
    # no reference to anything outside the file (SVG namespaces are names, not fetches)
    assert not re.search(r"""\b(?:src|href|url)\s*[=(]\s*["']?(?:[a-z]+:)?//""", html)
    url = report_file.resolve().as_uri()
    with Chromium(width=1280, height=900) as browser:
        browser.open(url)
        headings = browser.evaluate("Array.from(document.querySelectorAll('h2')).map(h => h.textContent)")
        charts = browser.evaluate(
            "Array.from(document.querySelectorAll('figure.chart svg')).map(s => {"
            " const r = s.getBoundingClientRect();"
            " return [s.dataset.chart, Math.round(r.width), Math.round(r.height), s.querySelectorAll('path').length]; })"
        )
        page_width = browser.evaluate("document.documentElement.scrollWidth")
        overflowing = browser.evaluate(
            "Array.from(document.querySelectorAll('section table'))"
            ".filter(t => t.getBoundingClientRect().right > t.closest('section').getBoundingClientRect().right)"
            ".map(t => t.closest('section').id)"
        )
        banner = browser.evaluate("getComputedStyle(document.querySelector('.banner.red')).backgroundColor")
        first_change = browser.evaluate(
            "Array.from(document.querySelectorAll('#governance tbody tr:first-child td')).map(td => td.textContent)"
        )
        # a click on "time" sorts ascending, a second click descending
        sorted_times = browser.evaluate(
            "(() => { const th = document.querySelector('#governance th');"
            " th.click(); th.click();"
            " return Array.from(document.querySelectorAll('#governance tbody tr td:first-child'))"
            ".map(td => td.textContent); })()"
        )
        shot = browser.screenshot(ARTIFACTS / "audit-report.png")
        pdf = browser.pdf(ARTIFACTS / "audit-report.pdf")
        requests = browser.requests()

    assert requests == [url], f"the page made requests beyond itself: {requests}"
    assert headings == HEADINGS
    assert [c[0] for c in charts] == ["access-denied", "s3-status", "s3-operation", "crawler-errors"]
    for name, width, height, paths in charts:
        assert width > 900 and height > 150 and paths > 20, (name, width, height, paths)
    assert page_width <= 1280 and overflowing == [], overflowing
    assert banner == "rgb(253, 236, 236)"
    assert first_change == ["09:15:00", "glue", "DeleteTable", "sales.orders", "—", ALICE, "203.0.113.9", "—"]
    assert sorted_times == ["12:00:00", "11:00:00", "09:30:00", "09:15:00"]

    image = Image.open(shot).convert("L")
    assert image.size[0] == 1280 and image.size[1] > 2000
    stats = ImageStat.Stat(image)
    assert stats.stddev[0] > 20, f"screenshot looks blank (stddev {stats.stddev[0]:.1f})"
    dark = sum(image.histogram()[:128]) / (image.size[0] * image.size[1])
    assert dark > 0.01, f"screenshot has almost no text or chart ink ({dark:.3%} dark pixels)"
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page\b(?!s)", data)) >= 2, (
        "the printed page should run over several pages"
    )


def test_browser_check_sees_a_network_request(tmp_path):
    """The request check above can fail: a page that loads an image from loopback is caught."""
    import socket

    from headless_chromium import Chromium

    with socket.socket() as s:  # a loopback port nothing listens on: the attempt is what counts
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    page = tmp_path / "leaky.html"
    page.write_text(f'<html><body><h2>x</h2><img src="http://127.0.0.1:{port}/pixel.png"></body></html>')
    with Chromium() as browser:
        browser.open(page.as_uri())
        requests = browser.requests()
    assert requests == [page.as_uri(), f"http://127.0.0.1:{port}/pixel.png"]
