"""entity_activity_daily: principal normalisation and the daily rollup, against rows counted by hand."""

from __future__ import annotations

import datetime as dt

import pyspark.sql.functions as F
from chispa import assert_df_equality

from auditlake import entities
from auditlake.aggregate_job import SPECS, build_aggregate
from auditlake.tables import load_contract

D1 = dt.date(2024, 3, 4)
ACCT = "111122223333"
OTHER = "444455556666"
ALICE = f"arn:aws:iam::{ACCT}:user/alice"
SESSION = f"arn:aws:sts::{ACCT}:assumed-role/DataEngineer/bob"
ROLE_WITH_PATH = f"arn:aws:iam::{ACCT}:role/etl/DataEngineer"
CANONICAL = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"


def ts(hh: int, mm: int = 0) -> dt.datetime:
    return dt.datetime(D1.year, D1.month, D1.day, hh, mm)


def rows_of(spark, table: str, rows: list[dict]):
    contract = load_contract(table)
    return spark.createDataFrame(
        [tuple(r.get(c) for c in contract.column_names) for r in rows], contract.schema
    )


def ct(n: int, t: dt.datetime, source: str, name: str, **kw) -> dict:
    row = {
        "event_id": f"ev-{n}",
        "event_time": t,
        "event_date": t.date(),
        "event_source": source,
        "event_name": name,
        "recipient_account_id": ACCT,
        "source_object": "file:/raw/ct.json.gz",
    }
    row.update(kw)
    return row


def s3(n: int, t: dt.datetime, op: str, **kw) -> dict:
    row = {
        "bucket": "datalake-raw",
        "request_time": t,
        "request_date": t.date(),
        "operation": op,
        "source_object": "file:/raw/s3.log",
        "line_hash": f"h{n}",
    }
    row.update(kw)
    return row


def test_principal_entities_normalise_each_kind(spark):
    df = spark.createDataFrame(
        [
            (SESSION,),
            (ALICE,),
            (f"arn:aws:iam::{ACCT}:root",),
            (f"arn:aws:sts::{ACCT}:federated-user/dev",),
            ("svc:logging.s3.amazonaws.com",),
            (CANONICAL,),
            ("AIDAEXAMPLE",),
            (None,),
        ],
        "p string",
    )
    got = {
        r["p"]: [tuple(e) for e in r["e"]]
        for r in df.select("p", entities.principal_entities(F.col("p")).alias("e")).collect()
    }
    assert got == {
        SESSION: [("assumed_role_session", SESSION), ("iam_role", f"arn:aws:iam::{ACCT}:role/DataEngineer")],
        ALICE: [("iam_user", ALICE)],
        f"arn:aws:iam::{ACCT}:root": [("root", f"arn:aws:iam::{ACCT}:root")],
        f"arn:aws:sts::{ACCT}:federated-user/dev": [
            ("federated_user", f"arn:aws:sts::{ACCT}:federated-user/dev")
        ],
        "svc:logging.s3.amazonaws.com": [("aws_service", "logging.s3.amazonaws.com")],
        CANONICAL: [("canonical_user", CANONICAL)],
        "AIDAEXAMPLE": [("other", "AIDAEXAMPLE")],
        None: [],
    }


def test_ip_kind_only_for_addresses(spark):
    df = spark.createDataFrame(
        [
            ("203.0.113.7",),
            ("2001:db8::1",),
            ("athena.amazonaws.com",),
            ("AWS Internal",),
            ("999.1.1.1",),
            (None,),
        ],
        "ip string",
    )
    got = [r[0] for r in df.select(entities.ip_kind(F.col("ip"))).collect()]
    assert got == ["ipv4", "ipv6", None, None, None, None]


def test_aggregate_entity_activity_daily(spark):
    events = rows_of(
        spark,
        "cloudtrail_events",
        [
            # bob's session, issued by a role with a path: the role row takes the issuer's ARN.
            ct(
                1,
                ts(9),
                "s3.amazonaws.com",
                "GetObject",
                user_arn=SESSION,
                user_type="AssumedRole",
                user_account_id=ACCT,
                session_issuer_type="Role",
                session_issuer_arn=ROLE_WITH_PATH,
                source_ip_address="192.0.2.44",
                resources=[
                    ("arn:aws:s3:::datalake-raw/a.csv", None, "AWS::S3::Object"),
                    ("arn:aws:s3:::datalake-raw", ACCT, "AWS::S3::Bucket"),
                ],
            ),
            ct(
                2,
                ts(10),
                "s3.amazonaws.com",
                "GetObject",
                user_arn=SESSION,
                user_type="AssumedRole",
                user_account_id=ACCT,
                session_issuer_type="Role",
                session_issuer_arn=ROLE_WITH_PATH,
                source_ip_address="192.0.2.45",
                error_code="AccessDenied",
                resources=[("arn:aws:s3:::datalake-raw/b.csv", None, "AWS::S3::Object")],
            ),
            # a service call: no ARN, the service in invokedBy, a host name instead of an IP.
            ct(
                3,
                ts(11),
                "lakeformation.amazonaws.com",
                "GetDataAccess",
                user_type="AWSService",
                invoked_by="athena.amazonaws.com",
                source_ip_address="athena.amazonaws.com",
            ),
            # a cross-account caller: both accounts involved.
            ct(
                4,
                ts(12),
                "glue.amazonaws.com",
                "GetTable",
                user_arn=f"arn:aws:iam::{OTHER}:user/eve",
                user_type="IAMUser",
                user_account_id=OTHER,
                source_ip_address="192.0.2.44",
            ),
            # another day: outside the window the test builds.
            ct(
                5,
                dt.datetime(2024, 3, 5, 1),
                "glue.amazonaws.com",
                "GetTable",
                user_arn=ALICE,
                user_type="IAMUser",
                source_ip_address="192.0.2.44",
            ),
        ],
    )
    logs = rows_of(
        spark,
        "s3_access_logs",
        [
            s3(
                1,
                ts(9, 5),
                "REST.GET.OBJECT",
                key="a.csv",
                requester=SESSION,
                remote_ip="192.0.2.44",
                http_status=200,
            ),
            s3(
                2,
                ts(9, 6),
                "REST.GET.OBJECT",
                key="a.csv",
                requester=SESSION,
                remote_ip="192.0.2.44",
                http_status=200,
            ),
            s3(
                3,
                ts(9, 7),
                "REST.GET.OBJECT",
                key="c.csv",
                requester=SESSION,
                remote_ip="192.0.2.44",
                http_status=403,
                error_code="AccessDenied",
            ),
            s3(4, ts(13), "REST.GET.BUCKET", requester=None, remote_ip="198.51.100.23", http_status=403),
            s3(
                5,
                ts(14),
                "REST.PUT.OBJECT",
                key="d.csv",
                requester=CANONICAL,
                remote_ip="198.51.100.23",
                http_status=None,
            ),
        ],
    )
    actual = events.where(F.col("event_date") == D1).transform(
        entities.aggregate_entity_activity_daily, s3_access_logs=logs.where(F.col("request_date") == D1)
    )
    contract = load_contract("entity_activity_daily")
    assert actual.columns == contract.column_names
    role = ROLE_WITH_PATH
    svc = "athena.amazonaws.com"
    eve = f"arn:aws:iam::{OTHER}:user/eve"
    rows = [
        # (kind, type, value, source, action, count, errors, resources, counterparts, accounts, raw, first, last)
        (
            "principal",
            "assumed_role_session",
            SESSION,
            "cloudtrail",
            "s3:GetObject",
            2,
            1,
            3,
            2,
            [ACCT],
            [SESSION],
            ts(9),
            ts(10),
        ),
        (
            "principal",
            "iam_role",
            role,
            "cloudtrail",
            "s3:GetObject",
            2,
            1,
            3,
            2,
            [ACCT],
            [SESSION],
            ts(9),
            ts(10),
        ),
        ("ip", "ipv4", "192.0.2.44", "cloudtrail", "s3:GetObject", 1, 0, 2, 1, [ACCT], None, ts(9), ts(9)),
        ("ip", "ipv4", "192.0.2.45", "cloudtrail", "s3:GetObject", 1, 1, 1, 1, [ACCT], None, ts(10), ts(10)),
        (
            "principal",
            "aws_service",
            svc,
            "cloudtrail",
            "lakeformation:GetDataAccess",
            1,
            0,
            0,
            0,
            [ACCT],
            [f"svc:{svc}"],
            ts(11),
            ts(11),
        ),
        (
            "principal",
            "iam_user",
            eve,
            "cloudtrail",
            "glue:GetTable",
            1,
            0,
            0,
            1,
            [ACCT, OTHER],
            [eve],
            ts(12),
            ts(12),
        ),
        (
            "ip",
            "ipv4",
            "192.0.2.44",
            "cloudtrail",
            "glue:GetTable",
            1,
            0,
            0,
            1,
            [ACCT, OTHER],
            None,
            ts(12),
            ts(12),
        ),
        # S3 access logs: the session's role derived from the session ARN (no issuer in the log).
        (
            "principal",
            "assumed_role_session",
            SESSION,
            "s3_access",
            "REST.GET.OBJECT",
            3,
            1,
            2,
            1,
            [ACCT],
            [SESSION],
            ts(9, 5),
            ts(9, 7),
        ),
        (
            "principal",
            "iam_role",
            f"arn:aws:iam::{ACCT}:role/DataEngineer",
            "s3_access",
            "REST.GET.OBJECT",
            3,
            1,
            2,
            1,
            [ACCT],
            [SESSION],
            ts(9, 5),
            ts(9, 7),
        ),
        (
            "ip",
            "ipv4",
            "192.0.2.44",
            "s3_access",
            "REST.GET.OBJECT",
            3,
            1,
            2,
            1,
            [ACCT],
            None,
            ts(9, 5),
            ts(9, 7),
        ),
        (
            "principal",
            "anonymous",
            "anonymous",
            "s3_access",
            "REST.GET.BUCKET",
            1,
            1,
            1,
            1,
            [],
            [],
            ts(13),
            ts(13),
        ),
        ("ip", "ipv4", "198.51.100.23", "s3_access", "REST.GET.BUCKET", 1, 1, 1, 1, [], None, ts(13), ts(13)),
        (
            "principal",
            "canonical_user",
            CANONICAL,
            "s3_access",
            "REST.PUT.OBJECT",
            1,
            0,
            1,
            1,
            [],
            [CANONICAL],
            ts(14),
            ts(14),
        ),
        ("ip", "ipv4", "198.51.100.23", "s3_access", "REST.PUT.OBJECT", 1, 0, 1, 1, [], None, ts(14), ts(14)),
    ]
    expected = spark.createDataFrame([(*r, D1) for r in rows], contract.schema)
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_entity_spec_reads_both_sources_of_the_touched_days(spark, tmp_path):
    from auditlake import lake as lake_mod

    spec = next(s for s in SPECS if s.table == "entity_activity_daily")
    assert dict(spec.inputs) == {"cloudtrail_events": "event_date", "s3_access_logs": "request_date"}
    lake = str(tmp_path / "lake")
    lake_mod.append_rows(
        spark,
        rows_of(
            spark,
            "cloudtrail_events",
            [
                ct(
                    1,
                    ts(9),
                    "glue.amazonaws.com",
                    "DeleteTable",
                    user_arn=ALICE,
                    user_type="IAMUser",
                    source_ip_address="203.0.113.7",
                ),
                ct(
                    2,
                    dt.datetime(2024, 3, 6, 9),
                    "glue.amazonaws.com",
                    "DeleteTable",
                    user_arn=ALICE,
                    user_type="IAMUser",
                    source_ip_address="203.0.113.7",
                ),
            ],
        ),
        lake,
        "cloudtrail_events",
    )
    lake_mod.append_rows(
        spark,
        rows_of(
            spark,
            "s3_access_logs",
            [
                s3(
                    1,
                    ts(10),
                    "REST.GET.OBJECT",
                    key="a.csv",
                    requester=ALICE,
                    remote_ip="203.0.113.7",
                    http_status=200,
                ),
            ],
        ),
        lake,
        "s3_access_logs",
    )
    built = build_aggregate(spark, lake, spec, [D1], {})
    got = sorted(
        (r["entity_kind"], r["entity_value"], r["source"], r["action"], r["event_count"], r["dt"])
        for r in built.collect()
    )
    assert got == [
        ("ip", "203.0.113.7", "cloudtrail", "glue:DeleteTable", 1, D1),
        ("ip", "203.0.113.7", "s3_access", "REST.GET.OBJECT", 1, D1),
        ("principal", ALICE, "cloudtrail", "glue:DeleteTable", 1, D1),
        ("principal", ALICE, "s3_access", "REST.GET.OBJECT", 1, D1),
    ]
