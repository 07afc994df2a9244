"""Daily aggregates: each transform against rows counted by hand, and the rebuild job."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from argparse import Namespace
from pathlib import Path

import pyspark.sql.functions as F
import pytest
from chispa import assert_df_equality

from auditlake import aggregates as agg
from auditlake import commits
from auditlake import lake as lake_mod
from auditlake.aggregate_job import _threads, build_daily_aggregates, in_threads
from auditlake.config import load_config
from auditlake.context import JobContext
from auditlake.errors import ConfigError
from auditlake.tables import load_contract

D1 = dt.date(2024, 3, 1)
D2 = dt.date(2024, 3, 2)
ACCT = "111122223333"
ALICE = f"arn:aws:iam::{ACCT}:user/alice"
BOB = f"arn:aws:iam::{ACCT}:user/bob"
ANALYST = f"arn:aws:sts::{ACCT}:assumed-role/analyst/s1"
GLUE = "glue.amazonaws.com"
LF = "lakeformation.amazonaws.com"
MALFORMED = '{"databaseName": "sales", "tablesToDelete": ["a", '


def ts(day: dt.date, hh: int, mm: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hh, mm)


def rows_of(spark, table: str, rows: list[dict]):
    """A frame with the contract's schema; unspecified columns are null."""
    contract = load_contract(table)
    return spark.createDataFrame(
        [tuple(r.get(c) for c in contract.column_names) for r in rows], contract.schema
    )


_seq = iter(range(1, 10_000))


def ct(
    event_time: dt.datetime,
    source: str,
    name: str,
    *,
    user_arn: str | None = ALICE,
    ip: str | None = "10.0.0.5",
    error_code: str | None = None,
    read_only: bool | None = False,
    params: dict | str | None = None,
    region: str = "us-east-1",
    user_agent: str | None = "aws-cli/2",
    **extra,
) -> dict:
    """One cloudtrail_events row."""
    row = {
        "event_id": f"ev-{next(_seq):04d}",
        "event_time": event_time,
        "event_date": event_time.date(),
        "event_source": source,
        "event_name": name,
        "aws_region": region,
        "recipient_account_id": ACCT,
        "source_ip_address": ip,
        "user_agent": user_agent,
        "error_code": error_code,
        "read_only": read_only,
        "user_arn": user_arn,
        "user_type": "IAMUser" if user_arn else "AWSService",
        "request_parameters": params if isinstance(params, str) or params is None else json.dumps(params),
        "source_object": "file:/raw/ct.json.gz",
    }
    row.update(extra)
    return row


def expected(spark, table: str, rows: list[tuple]):
    return spark.createDataFrame(rows, load_contract(table).schema)


def check(actual, expected_df):
    assert actual.columns == expected_df.columns
    assert_df_equality(actual, expected_df, ignore_row_order=True, ignore_nullable=True)


# --- transforms -----------------------------------------------------------------------------


def test_cloudtrail_daily_groups_and_counts(spark):
    events = rows_of(
        spark,
        "cloudtrail_events",
        [
            ct(ts(D1, 11), GLUE, "GetTable", ip="10.0.0.6", read_only=True),
            ct(ts(D1, 12), GLUE, "GetTable", ip="10.0.0.5", read_only=True),
            ct(ts(D1, 13), GLUE, "GetTable", ip="10.0.0.5", read_only=True),
            ct(ts(D1, 14), GLUE, "DeleteTable", user_arn=BOB, error_code="AccessDeniedException"),
            # AWS service call: no principal ARN, a host name as source
            ct(ts(D1, 15), GLUE, "GetTable", user_arn=None, ip="athena.amazonaws.com", read_only=True),
            ct(ts(D1, 16), GLUE, "GetTable", user_arn=None, ip=None, read_only=True),
            ct(ts(D2, 1), GLUE, "GetTable", read_only=True),
        ],
    )
    actual = events.transform(agg.aggregate_cloudtrail_daily)
    exp = expected(
        spark,
        "agg_cloudtrail_daily",
        [
            (ACCT, "us-east-1", GLUE, "GetTable", ALICE, None, True, 3, 2, ts(D1, 11), ts(D1, 13), D1),
            (
                ACCT,
                "us-east-1",
                GLUE,
                "DeleteTable",
                BOB,
                "AccessDeniedException",
                False,
                1,
                1,
                ts(D1, 14),
                ts(D1, 14),
                D1,
            ),
            (ACCT, "us-east-1", GLUE, "GetTable", None, None, True, 2, 1, ts(D1, 15), ts(D1, 16), D1),
            (ACCT, "us-east-1", GLUE, "GetTable", ALICE, None, True, 1, 1, ts(D2, 1), ts(D2, 1), D2),
        ],
    )
    check(actual, exp)


def test_governance_changes_reads_each_api_shape(spark):
    grant = {
        "catalogId": ACCT,
        "principal": {"dataLakePrincipalIdentifier": ANALYST},
        "resource": {"table": {"catalogId": ACCT, "databaseName": "sales", "name": "orders"}},
        "permissions": ["SELECT", "DESCRIBE"],
        "permissionsWithGrantOption": [],
    }
    batch_revoke = {
        "catalogId": ACCT,
        "entries": [
            {
                "id": "1",
                "principal": {"dataLakePrincipalIdentifier": ANALYST},
                "resource": {"table": {"databaseName": "sales", "name": "orders"}},
                "permissions": ["SELECT"],
            },
            {
                "id": "2",
                "principal": {"dataLakePrincipalIdentifier": BOB},
                "resource": {
                    "tableWithColumns": {"databaseName": "sales", "name": "customers", "columnNames": ["id"]}
                },
                "permissions": ["SELECT", "ALTER"],
                "permissionsWithGrantOption": ["SELECT"],
            },
        ],
    }
    rows = [
        ct(
            ts(D1, 1), GLUE, "CreateTable", params={"databaseName": "sales", "tableInput": {"name": "orders"}}
        ),
        ct(
            ts(D1, 2),
            GLUE,
            "DeleteTable",
            user_arn=BOB,
            error_code="AccessDeniedException",
            params={"databaseName": "sales", "name": "orders"},
        ),
        ct(ts(D1, 3), GLUE, "BatchDeleteTable", user_arn=None, ip="glue.amazonaws.com", params=MALFORMED),
        ct(
            ts(D1, 4),
            GLUE,
            "BatchCreatePartition",
            params={
                "databaseName": "sales",
                "tableName": "orders",
                "partitionInputList": [{"values": ["2024", "03"]}, {"values": ["2024", "04"]}],
            },
        ),
        ct(
            ts(D1, 5),
            GLUE,
            "DeletePartition",
            params={"databaseName": "sales", "tableName": "orders", "partitionValues": ["2024", "03"]},
        ),
        ct(ts(D1, 6), GLUE, "DeleteDatabase", params={"name": "scratch"}),
        ct(ts(D1, 7), LF, "GrantPermissions", params=grant),
        ct(ts(D1, 8), LF, "BatchRevokePermissions", params=batch_revoke),
        ct(
            ts(D1, 9),
            GLUE,
            "BatchDeleteTable",
            params={"databaseName": "sales", "tablesToDelete": ["t1", "t2"]},
        ),
        # not governance writes: reads, and a GrantPermissions name from another service
        ct(ts(D1, 10), GLUE, "GetTable", read_only=True, params={"databaseName": "sales", "name": "orders"}),
        ct(ts(D1, 11), "ram.amazonaws.com", "GrantPermissions", params={}),
    ]
    events = rows_of(spark, "cloudtrail_events", rows)
    actual = events.transform(agg.aggregate_governance_changes_daily)
    ids = [r["event_id"] for r in rows]

    def base(i, source=GLUE, user=ALICE, utype="IAMUser", ip="10.0.0.5"):
        r = rows[i]
        return (
            r["event_time"],
            ids[i],
            ACCT,
            "us-east-1",
            source,
            r["event_name"],
            user,
            utype,
            None,
            ip,
            "aws-cli/2",
        )

    exp = expected(
        spark,
        "agg_governance_changes_daily",
        [
            base(0)
            + (
                "sales",
                "orders",
                ["orders"],
                None,
                None,
                None,
                None,
                None,
                None,
                rows[0]["request_parameters"],
                D1,
            ),
            base(1, user=BOB)
            + (
                "sales",
                "orders",
                ["orders"],
                None,
                None,
                None,
                None,
                "AccessDeniedException",
                None,
                rows[1]["request_parameters"],
                D1,
            ),
            base(2, user=None, utype="AWSService", ip="glue.amazonaws.com")
            + (None, None, None, None, None, None, None, None, None, MALFORMED, D1),
            base(3)
            + (
                "sales",
                "orders",
                ["orders"],
                [["2024", "03"], ["2024", "04"]],
                None,
                None,
                None,
                None,
                None,
                rows[3]["request_parameters"],
                D1,
            ),
            base(4)
            + (
                "sales",
                "orders",
                ["orders"],
                [["2024", "03"]],
                None,
                None,
                None,
                None,
                None,
                rows[4]["request_parameters"],
                D1,
            ),
            base(5)
            + ("scratch", None, None, None, None, None, None, None, None, rows[5]["request_parameters"], D1),
            base(6, source=LF)
            + (
                "sales",
                "orders",
                ["orders"],
                None,
                [ANALYST],
                ["DESCRIBE", "SELECT"],
                [],
                None,
                None,
                rows[6]["request_parameters"],
                D1,
            ),
            base(7, source=LF)
            + (
                "sales",
                None,
                ["orders", "customers"],
                None,
                sorted([ANALYST, BOB]),
                ["ALTER", "SELECT"],
                ["SELECT"],
                None,
                None,
                rows[7]["request_parameters"],
                D1,
            ),
            base(8)
            + (
                "sales",
                None,
                ["t1", "t2"],
                None,
                None,
                None,
                None,
                None,
                None,
                rows[8]["request_parameters"],
                D1,
            ),
        ],
    )
    check(actual, exp)


def test_data_access_by_principal_table_and_permissions(spark):
    arn_orders = f"arn:aws:glue:us-east-1:{ACCT}:table/sales/orders"
    rows = [
        ct(
            ts(D1, 9),
            LF,
            "GetDataAccess",
            user_arn=ANALYST,
            ip="athena.amazonaws.com",
            read_only=True,
            params={
                "tableArn": arn_orders,
                "durationSeconds": 3600,
                "permissions": ["SELECT"],
                "auditContext": {"additionalAuditContext": "{queryId: q1}"},
            },
        ),
        ct(
            ts(D1, 10),
            LF,
            "GetDataAccess",
            user_arn=ANALYST,
            ip="athena.amazonaws.com",
            read_only=True,
            params={"tableArn": arn_orders, "permissions": ["SELECT"]},
        ),
        ct(
            ts(D1, 11),
            LF,
            "GetDataAccess",
            user_arn=ANALYST,
            error_code="AccessDeniedException",
            read_only=True,
            params={"tableArn": arn_orders, "permissions": ["SELECT", "ALTER"]},
        ),
        ct(ts(D1, 12), LF, "GetDataAccess", user_arn=None, read_only=True, params="{not json"),
        ct(ts(D1, 13), LF, "GetDataLakeSettings", user_arn=ANALYST, read_only=True, params={}),
    ]
    actual = rows_of(spark, "cloudtrail_events", rows).transform(agg.aggregate_data_access_daily)
    exp = expected(
        spark,
        "agg_data_access_daily",
        [
            (ACCT, ANALYST, arn_orders, ["SELECT"], 2, 0, ts(D1, 9), ts(D1, 10), D1),
            (ACCT, ANALYST, arn_orders, ["ALTER", "SELECT"], 1, 1, ts(D1, 11), ts(D1, 11), D1),
            (ACCT, None, None, None, 1, 0, ts(D1, 12), ts(D1, 12), D1),
        ],
    )
    check(actual, exp)


def test_athena_queries_flag_untrusted_sources(spark):
    athena = "athena.amazonaws.com"
    rows = [
        ct(
            ts(D1, 9),
            athena,
            "StartQueryExecution",
            user_arn=ANALYST,
            ip="10.1.2.3",
            params={"queryString": "select 1", "workGroup": "primary"},
        ),
        ct(
            ts(D1, 10),
            athena,
            "StartQueryExecution",
            user_arn=ANALYST,
            ip="10.1.2.3",
            error_code="InvalidRequestException",
            params={"queryString": "selec 1", "workGroup": "primary"},
        ),
        ct(
            ts(D1, 11),
            athena,
            "StartQueryExecution",
            user_arn=ANALYST,
            ip="203.0.113.9",
            params={"queryString": "select 2", "workGroup": "adhoc"},
        ),
        ct(ts(D1, 12), athena, "StartQueryExecution", user_arn=ANALYST, ip="2001:db8::1", params="{oops"),
        ct(
            ts(D1, 13),
            athena,
            "StartQueryExecution",
            user_arn=None,
            ip="quicksight.amazonaws.com",
            user_agent="quicksight.amazonaws.com",
            params={"queryString": "select 3"},
        ),
        ct(ts(D1, 14), athena, "GetQueryExecution", user_arn=ANALYST, ip="8.8.8.8", read_only=True),
    ]
    actual = rows_of(spark, "cloudtrail_events", rows).transform(
        agg.aggregate_athena_queries_daily, trusted_cidrs=["10.0.0.0/8", "192.168.0.0/16"]
    )
    exp = expected(
        spark,
        "agg_athena_queries_daily",
        [
            (
                ACCT,
                "us-east-1",
                ANALYST,
                "10.1.2.3",
                "aws-cli/2",
                "primary",
                2,
                1,
                False,
                ts(D1, 9),
                ts(D1, 10),
                D1,
            ),
            (
                ACCT,
                "us-east-1",
                ANALYST,
                "203.0.113.9",
                "aws-cli/2",
                "adhoc",
                1,
                0,
                True,
                ts(D1, 11),
                ts(D1, 11),
                D1,
            ),
            (
                ACCT,
                "us-east-1",
                ANALYST,
                "2001:db8::1",
                "aws-cli/2",
                None,
                1,
                0,
                True,
                ts(D1, 12),
                ts(D1, 12),
                D1,
            ),
            (
                ACCT,
                "us-east-1",
                None,
                "quicksight.amazonaws.com",
                "quicksight.amazonaws.com",
                None,
                1,
                0,
                None,
                ts(D1, 13),
                ts(D1, 13),
                D1,
            ),
        ],
    )
    check(actual, exp)


def test_outside_cidrs_ipv4_ipv6_and_non_addresses(spark):
    ips = [
        "10.1.2.3",
        "8.8.8.8",
        "172.31.255.255",
        "172.32.0.0",
        "256.1.1.1",
        "athena.amazonaws.com",
        "AWS Internal",
        None,
        "2001:db8::1",
        "2001:db9::1",
        "::ffff:10.0.0.1",
        "fe80::1%eth0",
        "::",
        "1:2:3",
    ]
    df = spark.createDataFrame([(ip,) for ip in ips], "ip string")
    actual = df.select(
        "ip",
        agg.outside_cidrs(F.col("ip"), ["10.0.0.0/8", "172.16.0.0/12", "2001:db8::/32"]).alias("outside"),
    )
    exp = spark.createDataFrame(
        [
            ("10.1.2.3", False),
            ("8.8.8.8", True),
            ("172.31.255.255", False),
            ("172.32.0.0", True),
            ("256.1.1.1", None),
            ("athena.amazonaws.com", None),
            ("AWS Internal", None),
            (None, None),
            ("2001:db8::1", False),
            ("2001:db9::1", True),
            ("::ffff:10.0.0.1", False),
            ("fe80::1%eth0", None),
            ("::", True),
            ("1:2:3", None),
        ],
        "ip string, outside boolean",
    )
    assert_df_equality(actual, exp, ignore_row_order=True, ignore_nullable=True)
    with pytest.raises(ValueError, match="not a CIDR"):
        agg.parse_cidrs(["10.0.0.0/33"])


def test_glue_jobs_by_principal_and_resource(spark):
    rows = [
        ct(ts(D1, 1), GLUE, "StartJobRun", params={"jobName": "etl-orders"}),
        ct(ts(D1, 2), GLUE, "StartJobRun", params={"jobName": "etl-orders", "arguments": {"--x": "1"}}),
        ct(ts(D1, 3), GLUE, "CreateJob", user_arn=BOB, params={"name": "etl-new", "role": "r"}),
        ct(
            ts(D1, 4),
            GLUE,
            "DeleteJob",
            user_arn=BOB,
            error_code="AccessDeniedException",
            params={"jobName": "etl-orders"},
        ),
        ct(
            ts(D1, 5),
            GLUE,
            "StartCrawler",
            user_arn=None,
            ip="glue.amazonaws.com",
            params={"name": "sales-crawler"},
        ),
        ct(ts(D1, 6), GLUE, "UpdateCrawler", params="[broken"),
        ct(ts(D1, 7), GLUE, "GetJobRun", read_only=True, params={"jobName": "etl-orders"}),
    ]
    actual = rows_of(spark, "cloudtrail_events", rows).transform(agg.aggregate_glue_jobs_daily)
    exp = expected(
        spark,
        "agg_glue_jobs_daily",
        [
            (ACCT, "us-east-1", ALICE, "job", "etl-orders", "StartJobRun", 2, 0, ts(D1, 1), ts(D1, 2), D1),
            (ACCT, "us-east-1", BOB, "job", "etl-new", "CreateJob", 1, 0, ts(D1, 3), ts(D1, 3), D1),
            (ACCT, "us-east-1", BOB, "job", "etl-orders", "DeleteJob", 1, 1, ts(D1, 4), ts(D1, 4), D1),
            (
                ACCT,
                "us-east-1",
                None,
                "crawler",
                "sales-crawler",
                "StartCrawler",
                1,
                0,
                ts(D1, 5),
                ts(D1, 5),
                D1,
            ),
            (ACCT, "us-east-1", ALICE, "crawler", None, "UpdateCrawler", 1, 0, ts(D1, 6), ts(D1, 6), D1),
        ],
    )
    check(actual, exp)


def test_access_denied_family(spark):
    rows = [
        ct(
            ts(D1, 1),
            "s3.amazonaws.com",
            "GetObject",
            user_arn=BOB,
            ip="198.51.100.1",
            error_code="AccessDenied",
        ),
        ct(
            ts(D1, 2),
            "s3.amazonaws.com",
            "GetObject",
            user_arn=BOB,
            ip="198.51.100.2",
            error_code="AccessDenied",
        ),
        ct(
            ts(D1, 3),
            "ec2.amazonaws.com",
            "RunInstances",
            user_arn=None,
            error_code="Client.UnauthorizedOperation",
        ),
        ct(ts(D1, 4), LF, "GetDataAccess", user_arn=ANALYST, error_code="AccessDeniedException"),
        ct(ts(D1, 5), "sns.amazonaws.com", "Publish", error_code="AuthorizationErrorException"),
        ct(ts(D1, 6), GLUE, "GetTable", error_code="EntityNotFoundException"),
        ct(ts(D1, 7), GLUE, "GetTable", error_code=None),
    ]
    actual = rows_of(spark, "cloudtrail_events", rows).transform(agg.aggregate_access_denied_daily)
    exp = expected(
        spark,
        "agg_access_denied_daily",
        [
            (ACCT, BOB, "s3.amazonaws.com", "GetObject", "AccessDenied", 2, 2, ts(D1, 1), ts(D1, 2), D1),
            (
                ACCT,
                None,
                "ec2.amazonaws.com",
                "RunInstances",
                "Client.UnauthorizedOperation",
                1,
                1,
                ts(D1, 3),
                ts(D1, 3),
                D1,
            ),
            (ACCT, ANALYST, LF, "GetDataAccess", "AccessDeniedException", 1, 1, ts(D1, 4), ts(D1, 4), D1),
            (
                ACCT,
                ALICE,
                "sns.amazonaws.com",
                "Publish",
                "AuthorizationErrorException",
                1,
                1,
                ts(D1, 5),
                ts(D1, 5),
                D1,
            ),
        ],
    )
    check(actual, exp)


def s3(
    t: dt.datetime,
    *,
    bucket="lake-raw",
    op="REST.GET.OBJECT",
    status=200,
    requester=ALICE,
    ip="10.0.0.5",
    key="data/a.csv",
    bytes_sent=100,
    total=10,
    error_code=None,
) -> dict:
    return {
        "bucket": bucket,
        "request_time": t,
        "request_date": t.date(),
        "remote_ip": ip,
        "requester": requester,
        "operation": op,
        "key": key,
        "http_status": status,
        "error_code": error_code,
        "bytes_sent": bytes_sent,
        "total_time_ms": total,
        "source_object": "file:/raw/s3.log",
        "line_hash": f"h{next(_seq)}",
    }


def test_s3_requests_counts_bytes_errors_percentiles(spark):
    logs = rows_of(
        spark,
        "s3_access_logs",
        [
            *[s3(ts(D1, 1, i), total=t) for i, t in enumerate([40, 10, 30, 20, 50, 60, 70, 80, 90, 100])],
            s3(
                ts(D1, 2),
                status=403,
                error_code="AccessDenied",
                bytes_sent=None,
                total=None,
                requester=None,
                ip="1.2.3.4",
            ),
            s3(
                ts(D1, 3),
                status=403,
                error_code="AccessDenied",
                bytes_sent=243,
                total=5,
                requester=None,
                ip="1.2.3.4",
            ),
            s3(ts(D1, 4), op="REST.GET.BUCKET", key=None, bytes_sent=1000, total=7),
            s3(ts(D2, 1), bytes_sent=5, total=3),
        ],
    )
    actual = logs.transform(agg.aggregate_s3_requests_daily)
    exp = expected(
        spark,
        "agg_s3_requests_daily",
        [
            ("lake-raw", "REST.GET.OBJECT", 200, ALICE, "10.0.0.5", 10, 1000, 0, 50, 100, D1),
            ("lake-raw", "REST.GET.OBJECT", 403, None, "1.2.3.4", 2, 243, 2, 5, 5, D1),
            ("lake-raw", "REST.GET.BUCKET", 200, ALICE, "10.0.0.5", 1, 1000, 0, 7, 7, D1),
            ("lake-raw", "REST.GET.OBJECT", 200, ALICE, "10.0.0.5", 1, 5, 0, 3, 3, D2),
        ],
    )
    check(actual, exp)


def test_s3_object_access_counts_requesters(spark):
    logs = rows_of(
        spark,
        "s3_access_logs",
        [
            s3(ts(D1, 1), requester=ALICE, bytes_sent=10),
            s3(ts(D1, 2), requester=BOB, bytes_sent=20),
            s3(ts(D1, 3), requester=BOB, bytes_sent=None),
            s3(ts(D1, 4), requester=None, bytes_sent=5),
            s3(ts(D1, 5), op="REST.PUT.OBJECT", key="data/b.csv", bytes_sent=None),
            s3(ts(D1, 6), op="REST.GET.BUCKET", key=None),
        ],
    )
    actual = logs.transform(agg.aggregate_s3_object_access_daily)
    exp = expected(
        spark,
        "agg_s3_object_access_daily",
        [
            ("lake-raw", "data/a.csv", "REST.GET.OBJECT", 4, 3, 35, D1),
            ("lake-raw", "data/b.csv", "REST.PUT.OBJECT", 1, 1, 0, D1),
        ],
    )
    check(actual, exp)


def run_row(crawler, run_id, day, status, *, dur=None, tc=0, pa=0, tu=None, pu=None, errors=0) -> dict:
    return {
        "crawler_name": crawler,
        "run_id": run_id,
        "run_date": day,
        "started_at": ts(day, 1),
        "status": status,
        "duration_seconds": dur,
        "tables_created": tc,
        "partitions_added": pa,
        "tables_updated": tu,
        "partitions_updated": pu,
        "error_count": errors,
    }


def log_row(crawler, t, level, message="m") -> dict:
    return {
        "crawler_name": crawler,
        "event_time": t,
        "event_date": t.date(),
        "level": level,
        "message": message,
        "error_filter_match": "ERROR" in message or level == "ERROR",
        "source_object": "file:/raw/c.gz",
        "event_key": f"k{next(_seq)}",
    }


def test_crawler_daily_joins_runs_and_log_levels(spark):
    runs = rows_of(
        spark,
        "crawler_runs",
        [
            run_row("sales", "r1", D1, "succeeded", dur=60.0, tc=2, pa=10, tu=1),
            run_row("sales", "r2", D1, "failed", dur=30.5, errors=2),
            run_row("sales", "r3", D1, "incomplete"),
            run_row("hr", "r4", D2, "succeeded", dur=5.0, pu=3),
        ],
    )
    logs = rows_of(
        spark,
        "crawler_log_events",
        [
            log_row("sales", ts(D1, 1), "INFO"),
            log_row("sales", ts(D1, 2), "ERROR"),
            log_row("sales", ts(D1, 2, 1), "ERROR"),
            log_row("sales", ts(D1, 3), "WARN"),
            log_row("sales", ts(D1, 4), None),
            # The metric filter matches the term in an INFO line too (Exiting with ERRORCODE).
            log_row("sales", ts(D1, 5), "INFO", "Exiting with ERRORCODE: -1"),
            log_row("orphan", ts(D2, 1), "ERROR"),
        ],
    )
    actual = runs.transform(agg.aggregate_crawler_daily, log_events=logs)
    exp = expected(
        spark,
        "agg_crawler_daily",
        [
            ("sales", 3, 1, 1, 3, 1, 2, 1, 10, 0, 90.5, D1),
            ("hr", 1, 0, 1, 0, 0, 0, 0, 0, 3, 5.0, D2),
            ("orphan", 0, 0, 0, 1, 0, 0, 0, 0, 0, 0.0, D2),
        ],
    )
    check(actual, exp)


# --- the job --------------------------------------------------------------------------------


def _files(root: Path) -> dict[str, float]:
    """Data files under a table folder -> mtime (metadata folders excluded)."""
    return (
        {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*.parquet")}
        if root.exists()
        else {}
    )


def _commit_as(spark, lake: str, run_id: str, job: str, table: str, rows: list[dict]) -> None:
    """Append rows to an input table as a commit of the given ingest run (no job_runs row at all)."""
    commits.tag_commits(spark, run_id, job)
    lake_mod.append_rows(spark, rows_of(spark, table, rows), lake, table)


def _run_job(spark, lake: str, run_id: str, *, since=None, until=None, fmt="parquet"):
    cfg = load_config("local", {"aggregates": {"format": fmt}, "quality": {"enabled": False}})
    args = Namespace(
        lake=lake,
        since=since,
        until=until,
        source=None,
        env="local",
        reprocess=False,
        run_id=run_id,
        conf=[],
        verbose=False,
    )
    ctx = JobContext(
        job="build_daily_aggregates",
        args=args,
        cfg=cfg,
        spark=spark,
        run_id=run_id,
        started_at=dt.datetime.now(dt.UTC),
    )
    return build_daily_aggregates(ctx)


def _read(spark, lake, table):
    return lake_mod.read_table(spark, lake, table)


def test_job_rebuilds_touched_days_and_is_idempotent(spark, tmp_path):
    lake = str(tmp_path / "lake")
    ct_rows = [
        ct(ts(D1, 1), GLUE, "DeleteTable", params={"databaseName": "sales", "name": "orders"}),
        ct(ts(D1, 2), GLUE, "GetTable", read_only=True),
        ct(ts(D2, 1), GLUE, "GetTable", read_only=True, user_arn=None, params="{bad"),
    ]
    # Two ingest runs that were killed after their commits: no job_runs row, the commits decide.
    _commit_as(spark, lake, "ct-1", "ingest_cloudtrail", "cloudtrail_events", ct_rows)
    _commit_as(spark, lake, "s3-1", "ingest_s3_access", "s3_access_logs", [s3(ts(D1, 5)), s3(ts(D1, 6))])

    rec = _run_job(spark, lake, "agg-1")
    assert rec.status == "succeeded"
    assert rec.counters["ingest_runs"] == 2
    assert rec.touched_dates == [D1, D2]

    check(
        _read(spark, lake, "agg_cloudtrail_daily"),
        expected(
            spark,
            "agg_cloudtrail_daily",
            [
                (ACCT, "us-east-1", GLUE, "DeleteTable", ALICE, None, False, 1, 1, ts(D1, 1), ts(D1, 1), D1),
                (ACCT, "us-east-1", GLUE, "GetTable", ALICE, None, True, 1, 1, ts(D1, 2), ts(D1, 2), D1),
                (ACCT, "us-east-1", GLUE, "GetTable", None, None, True, 1, 1, ts(D2, 1), ts(D2, 1), D2),
            ],
        ),
    )
    check(
        _read(spark, lake, "agg_s3_requests_daily"),
        expected(
            spark,
            "agg_s3_requests_daily",
            [
                ("lake-raw", "REST.GET.OBJECT", 200, ALICE, "10.0.0.5", 2, 200, 0, 10, 10, D1),
            ],
        ),
    )
    gov = _read(spark, lake, "agg_governance_changes_daily").select(
        "event_name", "database_name", "table_name", "dt"
    )
    assert [tuple(r) for r in gov.collect()] == [("DeleteTable", "sales", "orders", D1)]
    agg_root = tmp_path / "lake" / "agg_cloudtrail_daily"
    assert sorted(p.name for p in agg_root.iterdir() if p.is_dir()) == ["dt=2024-03-01", "dt=2024-03-02"]
    # crawler inputs were not touched: no crawler aggregate
    assert not (tmp_path / "lake" / "agg_crawler_daily").exists()

    before = {t: _files(tmp_path / "lake" / t) for t in ("agg_cloudtrail_daily", "agg_s3_requests_daily")}
    rec2 = _run_job(spark, lake, "agg-2")
    assert rec2.counters["ingest_runs"] == 0 and rec2.touched_dates == []
    assert {t: _files(tmp_path / "lake" / t) for t in before} == before

    # a window rebuild over unchanged inputs rewrites nothing either
    rec3 = _run_job(spark, lake, "agg-3", since=D1, until=D2)
    assert rec3.touched_dates == []
    assert {t: _files(tmp_path / "lake" / t) for t in before} == before

    # a late file: one more D1 event; only D1's partition changes
    late = [ct(ts(D1, 3), GLUE, "GetTable", read_only=True, ip="10.9.9.9")]
    _commit_as(spark, lake, "ct-late", "ingest_cloudtrail", "cloudtrail_events", late)
    rec4 = _run_job(spark, lake, "agg-4")
    assert rec4.counters["ingest_runs"] == 1
    assert rec4.touched_dates == [D1]
    after = _files(agg_root)
    d1_before = {k: v for k, v in before["agg_cloudtrail_daily"].items() if k.startswith("dt=2024-03-01")}
    d2_before = {k: v for k, v in before["agg_cloudtrail_daily"].items() if k.startswith("dt=2024-03-02")}
    assert {k: v for k, v in after.items() if k.startswith("dt=2024-03-02")} == d2_before
    assert not set(d1_before) & set(after)
    assert _files(tmp_path / "lake" / "agg_s3_requests_daily") == before["agg_s3_requests_daily"]
    check(
        _read(spark, lake, "agg_cloudtrail_daily").where(F.col("dt") == D1),
        expected(
            spark,
            "agg_cloudtrail_daily",
            [
                (ACCT, "us-east-1", GLUE, "DeleteTable", ALICE, None, False, 1, 1, ts(D1, 1), ts(D1, 1), D1),
                (ACCT, "us-east-1", GLUE, "GetTable", ALICE, None, True, 2, 2, ts(D1, 2), ts(D1, 3), D1),
            ],
        ),
    )
    runs = _read(spark, lake, "job_runs").where(F.col("job") == "build_daily_aggregates")
    assert runs.where(F.col("status") == "succeeded").count() == 4
    # the scheduled runs recorded the input versions they read; the window run (agg-3) none
    versions = {r.run_id: r.table_versions for r in runs.collect()}
    assert versions["agg-3"] is None
    assert versions["agg-4"]["cloudtrail_events"] == versions["agg-1"]["cloudtrail_events"] + 1
    assert versions["agg-4"]["s3_access_logs"] == versions["agg-1"]["s3_access_logs"]
    assert versions["agg-4"]["crawler_runs"] == -1


def test_job_empties_a_day_whose_rows_are_gone(spark, tmp_path):
    lake = str(tmp_path / "lake")
    lake_mod.append_rows(
        spark, rows_of(spark, "s3_access_logs", [s3(ts(D1, 1)), s3(ts(D2, 1))]), lake, "s3_access_logs"
    )
    _run_job(spark, lake, "w-1", since=D1, until=D2)
    root = tmp_path / "lake" / "agg_s3_object_access_daily"
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["dt=2024-03-01", "dt=2024-03-02"]
    d1_files = {k: v for k, v in _files(root).items() if k.startswith("dt=2024-03-01")}
    # D2's normalized rows disappear (e.g. rebuilt upstream): the window rebuild empties D2 only
    from delta.tables import DeltaTable

    DeltaTable.forPath(spark, lake_mod.table_uri(lake, "s3_access_logs")).delete(F.col("request_date") == D2)
    rec = _run_job(spark, lake, "w-2", since=D1, until=D2)
    assert rec.touched_dates == [D2]
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["dt=2024-03-01"]
    assert _files(root) == d1_files
    assert _read(spark, lake, "agg_s3_object_access_daily").count() == 1


def test_job_writes_delta_when_configured(spark, tmp_path):
    lake = str(tmp_path / "lake")
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    d0 = D1 - dt.timedelta(days=1)
    # r0 crossed midnight: the late events of D1 updated a run that started on d0
    runs = [
        run_row("sales", "r1", D1, "failed", dur=3.0),
        {**run_row("sales", "r0", d0, "succeeded"), "updated_at": now},
    ]
    lake_mod.append_rows(spark, rows_of(spark, "crawler_runs", runs), lake, "crawler_runs")
    # the commit added files to d0 and D1: both days are rebuilt, whatever the ingest run recorded
    rec = _run_job(spark, lake, "d-1", fmt="delta")
    assert rec.touched_dates == [d0, D1]
    assert (tmp_path / "lake" / "agg_crawler_daily" / "_delta_log").is_dir()
    assert not (tmp_path / "lake" / "agg_cloudtrail_daily").exists()
    check(
        _read(spark, lake, "agg_crawler_daily"),
        expected(
            spark,
            "agg_crawler_daily",
            [
                ("sales", 1, 1, 0, 0, 0, 0, 0, 0, 0, 3.0, D1),
                ("sales", 1, 0, 1, 0, 0, 0, 0, 0, 0, 0.0, d0),
            ],
        ),
    )


def test_scheduled_run_follows_commits_of_a_killed_run_and_a_later_upsert(spark, tmp_path):
    lake = str(tmp_path / "lake")
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    d0 = D1 - dt.timedelta(days=1)
    _commit_as(
        spark, lake, "cr-1", "ingest_crawler_logs", "crawler_runs", [run_row("sales", "r1", D1, "failed")]
    )
    rec = _run_job(spark, lake, "p-1")
    assert (rec.touched_dates, rec.counters["ingest_runs"]) == ([D1], 1)
    # a later run updates the D1 row in place (a MERGE: remove + add in D1) and adds a d0 run
    commits.tag_commits(spark, "cr-2", "ingest_crawler_logs")
    upd = [
        {**run_row("sales", "r1", D1, "succeeded"), "updated_at": now},
        run_row("hr", "r0", d0, "succeeded"),
    ]
    lake_mod.upsert_rows(spark, rows_of(spark, "crawler_runs", upd), lake, "crawler_runs")
    rec = _run_job(spark, lake, "p-2")
    assert (rec.touched_dates, rec.counters["ingest_runs"]) == ([d0, D1], 1)
    check(
        _read(spark, lake, "agg_crawler_daily").select(
            "crawler_name", "runs", "failed_runs", "succeeded_runs", "dt"
        ),
        spark.createDataFrame(
            [("sales", 1, 0, 1, D1), ("hr", 1, 0, 1, d0)],
            "crawler_name string, runs bigint, failed_runs bigint, succeeded_runs bigint, dt date",
        ),
    )
    assert _run_job(spark, lake, "p-3").touched_dates == []


def test_job_script_runs_from_the_command_line(spark, tmp_path):
    from auditlake.cli import run_job

    lake = str(tmp_path / "lake")
    code = run_job(
        "build_daily_aggregates",
        build_daily_aggregates,
        argv=["--lake", lake, "--until", "2024-03-01"],
        needs_source=False,
        session_factory=lambda cfg, name: spark,
    )
    assert code == 2
    code = run_job(
        "build_daily_aggregates",
        build_daily_aggregates,
        argv=["--lake", lake, "--conf", "aggregates.format=csv"],
        needs_source=False,
        session_factory=lambda cfg, name: spark,
    )
    assert code == 2
    assert os.path.exists(os.path.join(os.path.dirname(__file__), "..", "jobs", "build_daily_aggregates.py"))


def test_in_threads_keeps_order_and_raises_the_first_error_once_all_finished(spark):
    finished = []

    def work(x: int) -> int:
        threading.Event().wait(0.05 * (3 - x))  # the later items finish first
        finished.append(x)
        if x in (1, 2):
            raise ValueError(f"bad {x}")
        return 10 * x

    assert in_threads(lambda x: 10 * x, [1, 2, 3], threads=3) == [10, 20, 30]
    with pytest.raises(ValueError, match="bad 1"):
        in_threads(work, [0, 1, 2], threads=3)
    assert sorted(finished) == [0, 1, 2]


@pytest.mark.parametrize("value, message", [(0, "at least 1, not 0"), ("many", "a whole number, not 'many'")])
def test_aggregate_threads_setting_is_checked(value, message):
    with pytest.raises(ConfigError, match=message):
        _threads({"aggregates": {"threads": value}})
