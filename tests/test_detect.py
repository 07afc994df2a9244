"""Detection pack: each rule against a planted positive and a planted near-miss, in one lake.

One module-scoped lake holds every planted row (built through the table contracts); one detect
run through the job entrypoint covers all rules; the tests then assert the exact findings per
rule (entity, evidence ids, counts), the rerun behaviour and the errors.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest

from auditlake import detect as det
from auditlake import lake as lake_mod
from auditlake.cli import run_job
from auditlake.runs import RunRecord, write_run_record
from auditlake.tables import load_contract

ACCT = "111122223333"
EXT = "444455556666"
PARTNER = "777788889999"
D1, D2, D3, D4, D5 = (dt.date(2024, 3, d) for d in range(1, 6))
ALICE = f"arn:aws:iam::{ACCT}:user/alice"
BOB = f"arn:aws:iam::{ACCT}:user/bob"
MALLORY = f"arn:aws:iam::{ACCT}:user/mallory"
EVE = f"arn:aws:iam::{ACCT}:user/eve"
FRANK = f"arn:aws:iam::{ACCT}:user/frank"
ROOT = f"arn:aws:iam::{ACCT}:root"
ANALYST_SESSION = f"arn:aws:sts::{ACCT}:assumed-role/analyst/s1"
DEPLOY_SESSION = f"arn:aws:sts::{ACCT}:assumed-role/deploy-pipeline/s2"
KEY = f"arn:aws:kms:us-east-1:{ACCT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OTHER_KEY = f"arn:aws:kms:us-east-1:{ACCT}:key/0000abcd-12ab-34cd-56ef-1234567890ab"

CONF = [
    "detections.parameters.access_denied_spike.threshold=3",
    "detections.parameters.s3_get_burst_from_new_ip.sensitive_buckets=[pii-bucket]",
    "detections.parameters.s3_get_burst_from_new_ip.burst_threshold=3",
    f"detections.parameters.lakeformation_broad_grant.trusted_account_ids=['{PARTNER}']",
]


def ts(day: dt.date, hh: int, mm: int = 0, ss: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hh, mm, ss)


def rows_of(spark, table: str, rows: list[dict]):
    """A frame with the contract's schema; unspecified columns are null."""
    contract = load_contract(table)
    return spark.createDataFrame(
        [tuple(r.get(c) for c in contract.column_names) for r in rows], contract.schema
    )


def ct(
    event_id: str,
    at: dt.datetime,
    source: str,
    name: str,
    *,
    user_arn: str | None = ALICE,
    user_type: str = "IAMUser",
    params: dict | None = None,
    **extra,
) -> dict:
    """One cloudtrail_events row with plausible defaults."""
    row = {
        "event_id": event_id,
        "event_time": at,
        "event_date": at.date(),
        "event_version": "1.09",
        "event_source": source,
        "event_name": name,
        "event_type": "AwsApiCall",
        "event_category": "Management",
        "aws_region": "us-east-1",
        "recipient_account_id": ACCT,
        "source_ip_address": "10.0.0.5",
        "user_agent": "aws-cli/2",
        "read_only": False,
        "management_event": True,
        "user_type": user_type,
        "user_arn": user_arn,
        "user_account_id": ACCT,
        "request_parameters": json.dumps(params) if params is not None else None,
        "source_object": "file:/raw/ct.json.gz",
    }
    row.update(extra)
    return row


def login(event_id: str, at: dt.datetime, user_arn: str, mfa: str, user_type: str = "IAMUser") -> dict:
    return ct(
        event_id,
        at,
        "signin.amazonaws.com",
        "ConsoleLogin",
        user_arn=user_arn,
        user_type=user_type,
        event_type="AwsConsoleSignIn",
        response_elements='{"ConsoleLogin":"Success"}',
        additional_event_data=json.dumps({"LoginTo": "https://console.aws.amazon.com/", "MFAUsed": mfa}),
    )


def public_statement(principal, condition: dict | None = None) -> dict:
    st = {"Effect": "Allow", "Principal": principal, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}
    if condition:
        st["Condition"] = condition
    return st


def lf_grant(event_id: str, grantee: str, perms: list[str], at: dt.datetime | None = None) -> dict:
    return ct(
        event_id,
        at or ts(D4, 9),
        "lakeformation.amazonaws.com",
        "GrantPermissions",
        params={
            "principal": {"dataLakePrincipalIdentifier": grantee},
            "resource": {"table": {"databaseName": "sales", "name": "orders"}},
            "permissions": perms,
            "permissionsWithGrantOption": [],
        },
    )


def denied(event_id: str, at: dt.datetime, user_arn: str) -> dict:
    return ct(event_id, at, "s3.amazonaws.com", "ListBuckets", user_arn=user_arn, error_code="AccessDenied")


def athena(event_id: str, ip: str) -> dict:
    return ct(
        event_id,
        ts(D4, 15),
        "athena.amazonaws.com",
        "StartQueryExecution",
        source_ip_address=ip,
        params={"queryString": "SELECT 1", "workGroup": "primary"},
    )


CLOUDTRAIL = [
    # root_account_use: a console-less root API call; near-miss: a call a service made for root.
    ct("ct-root-1", ts(D4, 8), "s3.amazonaws.com", "ListBuckets", user_arn=ROOT, user_type="Root"),
    ct(
        "ct-root-nm",
        ts(D4, 8, 5),
        "s3.amazonaws.com",
        "ListBuckets",
        user_arn=ROOT,
        user_type="Root",
        invoked_by="support.amazonaws.com",
    ),
    # outside the window (D2): no finding
    ct("ct-root-old", ts(D2, 8), "s3.amazonaws.com", "ListBuckets", user_arn=ROOT, user_type="Root"),
    # console_login_without_mfa
    login("ct-login-1", ts(D4, 7), ALICE, "No"),
    login("ct-login-nm", ts(D4, 7, 1), BOB, "Yes"),
    login("ct-login-nm2", ts(D4, 7, 2), ANALYST_SESSION, "No", user_type="AssumedRole"),
    # cloudtrail_logging_tampered
    ct(
        "ct-trail-1",
        ts(D4, 11),
        "cloudtrail.amazonaws.com",
        "StopLogging",
        user_arn=MALLORY,
        params={"name": "org-trail"},
    ),
    ct(
        "ct-trail-nm",
        ts(D4, 11, 30),
        "cloudtrail.amazonaws.com",
        "StartLogging",
        user_arn=BOB,
        params={"name": "org-trail"},
    ),
    # s3_bucket_made_public: policy for "*" (twice on one bucket), ACL to AllUsers; near-miss: "*" with a Condition
    ct(
        "ct-pol-1",
        ts(D4, 12),
        "s3.amazonaws.com",
        "PutBucketPolicy",
        params={
            "bucketName": "open-bucket",
            "bucketPolicy": {"Version": "2012-10-17", "Statement": [public_statement("*")]},
        },
    ),
    ct(
        "ct-pol-2",
        ts(D4, 12, 30),
        "s3.amazonaws.com",
        "PutBucketPolicy",
        params={
            "bucketName": "open-bucket",
            "bucketPolicy": {"Version": "2012-10-17", "Statement": public_statement({"AWS": [ALICE, "*"]})},
        },
    ),
    ct(
        "ct-acl-1",
        ts(D4, 13),
        "s3.amazonaws.com",
        "PutBucketAcl",
        params={
            "bucketName": "acl-bucket",
            "AccessControlPolicy": {
                "AccessControlList": {
                    "Grant": [
                        {
                            "Grantee": {
                                "xsi:type": "Group",
                                "URI": "http://acs.amazonaws.com/groups/global/AllUsers",
                            },
                            "Permission": "READ",
                        }
                    ]
                }
            },
        },
    ),
    ct(
        "ct-pol-nm",
        ts(D4, 12, 45),
        "s3.amazonaws.com",
        "PutBucketPolicy",
        params={
            "bucketName": "vpce-bucket",
            "bucketPolicy": {
                "Version": "2012-10-17",
                "Statement": [
                    public_statement({"AWS": "*"}, {"StringEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}})
                ],
            },
        },
    ),
    # s3_block_public_access_disabled: one setting false on a bucket, account-level delete; near-miss: all true
    ct(
        "ct-bpa-1",
        ts(D4, 14),
        "s3.amazonaws.com",
        "PutBucketPublicAccessBlock",
        params={
            "bucketName": "data-bucket",
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": False,
            },
        },
    ),
    ct("ct-bpa-2", ts(D4, 14, 5), "s3.amazonaws.com", "DeleteAccountPublicAccessBlock", params={}),
    ct(
        "ct-bpa-nm",
        ts(D4, 14, 10),
        "s3.amazonaws.com",
        "PutBucketPublicAccessBlock",
        params={
            "bucketName": "safe-bucket",
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        },
    ),
    # kms_key_disabled_or_scheduled_for_deletion; near-miss: EnableKey
    ct(
        "ct-kms-1",
        ts(D4, 16),
        "kms.amazonaws.com",
        "ScheduleKeyDeletion",
        params={"keyId": KEY, "pendingWindowInDays": 7},
        resources=[{"arn": KEY, "account_id": ACCT, "type": "AWS::KMS::Key"}],
    ),
    ct(
        "ct-kms-nm",
        ts(D4, 16, 5),
        "kms.amazonaws.com",
        "EnableKey",
        params={"keyId": OTHER_KEY},
        resources=[{"arn": OTHER_KEY, "account_id": ACCT, "type": "AWS::KMS::Key"}],
    ),
    # lakeformation_broad_grant: ALL to a role; a batch with one external account grantee;
    # near-misses: SELECT to an own role, SELECT to a trusted partner account's role
    lf_grant("ct-lf-1", f"arn:aws:iam::{ACCT}:role/analyst", ["ALL"]),
    ct(
        "ct-lf-2",
        ts(D4, 9, 10),
        "lakeformation.amazonaws.com",
        "BatchGrantPermissions",
        params={
            "catalogId": ACCT,
            "entries": [
                {
                    "id": "1",
                    "principal": {"dataLakePrincipalIdentifier": EXT},
                    "resource": {"table": {"databaseName": "sales", "name": "orders"}},
                    "permissions": ["SELECT"],
                },
                {
                    "id": "2",
                    "principal": {"dataLakePrincipalIdentifier": f"arn:aws:iam::{ACCT}:role/reader"},
                    "resource": {"table": {"databaseName": "sales", "name": "orders"}},
                    "permissions": ["SELECT"],
                },
            ],
        },
    ),
    lf_grant("ct-lf-nm", f"arn:aws:iam::{ACCT}:role/reader", ["SELECT"], ts(D4, 9, 20)),
    lf_grant("ct-lf-nm2", f"arn:aws:iam::{PARTNER}:role/partner", ["SELECT", "DESCRIBE"], ts(D4, 9, 30)),
    # glue_catalog_deletion_outside_deploy_role; near-miss: the deploy role deletes a database
    ct(
        "ct-glue-1",
        ts(D5, 10),
        "glue.amazonaws.com",
        "DeleteTable",
        user_arn=ANALYST_SESSION,
        user_type="AssumedRole",
        session_issuer_arn=f"arn:aws:iam::{ACCT}:role/analyst",
        params={"databaseName": "sales", "name": "orders"},
    ),
    ct(
        "ct-glue-nm",
        ts(D5, 10, 5),
        "glue.amazonaws.com",
        "DeleteDatabase",
        user_arn=DEPLOY_SESSION,
        user_type="AssumedRole",
        session_issuer_arn=f"arn:aws:iam::{ACCT}:role/deploy-pipeline",
        params={"name": "scratch"},
    ),
    # access_denied_spike (threshold 3 per hour): eve 3 in one hour; near-miss: frank 2 + 1 in the next hour
    denied("ct-ad-1", ts(D4, 10, 1), EVE),
    denied("ct-ad-2", ts(D4, 10, 20), EVE),
    denied("ct-ad-3", ts(D4, 10, 59), EVE),
    denied("ct-ad-nm1", ts(D4, 10, 5), FRANK),
    denied("ct-ad-nm2", ts(D4, 10, 6), FRANK),
    denied("ct-ad-nm3", ts(D4, 11, 5), FRANK),
    # athena_query_from_untrusted_network; near-misses: a private address and a service caller
    athena("ct-ath-1", "203.0.113.9"),
    athena("ct-ath-nm", "10.1.2.3"),
    athena("ct-ath-nm2", "athena.amazonaws.com"),
]


def s3(
    line_hash: str,
    at: dt.datetime,
    ip: str,
    bucket: str = "pii-bucket",
    operation: str = "REST.GET.OBJECT",
    status: int = 200,
) -> dict:
    return {
        "bucket_owner": "79a59df900b949e55d96a1e698fbaced",
        "bucket": bucket,
        "request_time": at,
        "request_date": at.date(),
        "remote_ip": ip,
        "requester": ALICE,
        "request_id": "3E57427F3EXAMPLE",
        "operation": operation,
        "key": "customers/part-0.parquet",
        "http_status": status,
        "source_object": "file:/raw/s3.log",
        "line_hash": line_hash,
    }


S3_ACCESS = [
    # s3_get_burst_from_new_ip (sensitive: pii-bucket, threshold 3, lookback 30 days)
    s3("s3-new-1", ts(D4, 2, 0), "198.51.100.7"),
    s3("s3-new-2", ts(D4, 2, 1), "198.51.100.7"),
    s3("s3-new-3", ts(D4, 2, 2), "198.51.100.7"),
    # near-miss: same burst from an IP that touched the bucket two days before
    s3("s3-known-0", ts(D2, 9), "198.51.100.8", operation="REST.HEAD.OBJECT"),
    s3("s3-known-1", ts(D4, 3, 0), "198.51.100.8"),
    s3("s3-known-2", ts(D4, 3, 1), "198.51.100.8"),
    s3("s3-known-3", ts(D4, 3, 2), "198.51.100.8"),
    # near-miss: a burst on a bucket that is not sensitive
    s3("s3-pub-1", ts(D4, 4, 0), "198.51.100.9", bucket="public-assets"),
    s3("s3-pub-2", ts(D4, 4, 1), "198.51.100.9", bucket="public-assets"),
    s3("s3-pub-3", ts(D4, 4, 2), "198.51.100.9", bucket="public-assets"),
    # near-miss: two successful reads and one refused
    s3("s3-few-1", ts(D4, 5, 0), "198.51.100.10"),
    s3("s3-few-2", ts(D4, 5, 1), "198.51.100.10"),
    s3("s3-few-3", ts(D4, 5, 2), "198.51.100.10", status=403),
]


def run(crawler: str, run_id: str, day: dt.date, status: str) -> dict:
    return {
        "crawler_name": crawler,
        "run_id": run_id,
        "run_date": day,
        "started_at": ts(day, 1),
        "finished_at": ts(day, 1, 5),
        "duration_seconds": 300.0,
        "final_state": status.upper(),
        "status": status,
        "error_count": 1 if status == "failed" else 0,
        "warn_count": 0,
        "updated_at": ts(day, 1, 6),
    }


CRAWLER_RUNS = [
    # crawler_failing_consecutive_days (3 days): orders fails D2, D3, D4 (the streak starts before the window)
    run("orders-crawler", "orders-r1", D1, "succeeded"),
    run("orders-crawler", "orders-r2", D2, "failed"),
    run("orders-crawler", "orders-r3", D3, "failed"),
    run("orders-crawler", "orders-r4", D4, "failed"),
    # near-miss: D2 had a failed and a succeeded run, then two failing days only
    run("events-crawler", "events-r2a", D2, "failed"),
    run("events-crawler", "events-r2b", D2, "succeeded"),
    run("events-crawler", "events-r3", D3, "failed"),
    run("events-crawler", "events-r4", D4, "failed"),
]

# rule -> {(entity_kind, entity): (evidence ids, event_count, dt)}: every finding the run must write.
EXPECTED = {
    "root_account_use": {("principal", ROOT): (["ct-root-1"], 1, D4)},
    "console_login_without_mfa": {("principal", ALICE): (["ct-login-1"], 1, D4)},
    "cloudtrail_logging_tampered": {("principal", MALLORY): (["ct-trail-1"], 1, D4)},
    "s3_bucket_made_public": {
        ("bucket", "open-bucket"): (["ct-pol-1", "ct-pol-2"], 2, D4),
        ("bucket", "acl-bucket"): (["ct-acl-1"], 1, D4),
    },
    "s3_block_public_access_disabled": {
        ("bucket", "data-bucket"): (["ct-bpa-1"], 1, D4),
        ("account", ACCT): (["ct-bpa-2"], 1, D4),
    },
    "kms_key_disabled_or_scheduled_for_deletion": {("kms_key", KEY): (["ct-kms-1"], 1, D4)},
    "lakeformation_broad_grant": {
        ("principal", f"arn:aws:iam::{ACCT}:role/analyst"): (["ct-lf-1"], 1, D4),
        ("account", EXT): (["ct-lf-2"], 1, D4),
    },
    "glue_catalog_deletion_outside_deploy_role": {("principal", ANALYST_SESSION): (["ct-glue-1"], 1, D5)},
    "access_denied_spike": {("principal", EVE): (["ct-ad-1", "ct-ad-2", "ct-ad-3"], 3, D4)},
    "athena_query_from_untrusted_network": {("ip", "203.0.113.9"): (["ct-ath-1"], 1, D4)},
    "s3_get_burst_from_new_ip": {("ip", "198.51.100.7"): (["s3-new-1", "s3-new-2", "s3-new-3"], 3, D4)},
    "crawler_failing_consecutive_days": {
        ("crawler", "orders-crawler"): (["orders-r2", "orders-r3", "orders-r4"], 3, D2),
    },
}


def detect_job(spark, lake: str, *extra: str) -> int:
    argv = ["--lake", lake, *[a for c in CONF for a in ("--conf", c)], *extra]
    return run_job(
        det.JOB_NAME, det.detect, argv=argv, needs_source=False, session_factory=lambda _cfg, _name: spark
    )


def findings_by_rule(spark, lake: str) -> dict[str, dict[tuple[str, str], tuple[list[str], int, dt.date]]]:
    out: dict[str, dict] = {}
    for r in lake_mod.read_table(spark, lake, "findings").collect():
        out.setdefault(r["rule_id"], {})[(r["entity_kind"], r["entity"])] = (
            list(r["evidence_event_ids"]),
            r["event_count"],
            r["dt"],
        )
    return out


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    """A lake with every planted row and one ingest run record that touched D4 and D5."""
    root = str(tmp_path_factory.mktemp("detect") / "lake")
    lake_mod.append_rows(spark, rows_of(spark, "cloudtrail_events", CLOUDTRAIL), root, "cloudtrail_events")
    lake_mod.append_rows(spark, rows_of(spark, "s3_access_logs", S3_ACCESS), root, "s3_access_logs")
    lake_mod.append_rows(spark, rows_of(spark, "crawler_runs", CRAWLER_RUNS), root, "crawler_runs")
    ingest = RunRecord(
        run_id="ingest-1",
        job="ingest_cloudtrail",
        source="cloudtrail",
        source_uri="file:/raw",
        env="local",
        started_at=dt.datetime(2024, 3, 6, 1),
        status="succeeded",
        ended_at=dt.datetime(2024, 3, 6, 1, 5),
        touched_dates=[D4, D5],
        loaded_by_table={"cloudtrail_events": len(CLOUDTRAIL)},
    )
    write_run_record(spark, root, ingest)
    # The first run takes its default window: yesterday, today and the days the ingest run touched.
    assert detect_job(spark, root, "--run-id", "detect-1") == 0
    return root


@pytest.fixture(scope="module")
def first_findings(spark, lake):
    return findings_by_rule(spark, lake)


def test_every_rule_of_the_pack_is_planted_here():
    assert sorted(r.id for r in det.load_rules()) == sorted(EXPECTED)


@pytest.mark.parametrize("rule_id", sorted(EXPECTED))
def test_rule_fires_on_its_positive_and_not_on_its_near_miss(first_findings, rule_id):
    assert first_findings.get(rule_id, {}) == EXPECTED[rule_id]


def test_finding_row_follows_the_contract(spark, lake):
    df = lake_mod.read_table(spark, lake, "findings")
    assert [(f.name, f.dataType) for f in df.schema] == [
        (f.name, f.dataType) for f in load_contract("findings").schema
    ]
    row = df.where("rule_id = 'root_account_use'").collect()[0]
    assert (
        row["finding_id"]
        == hashlib.sha256(f"root_account_use|principal|{ROOT}|2024-03-04".encode()).hexdigest()
    )
    assert (row["rule_name"], row["severity"], row["mitre_technique"]) == (
        "Root account used",
        "critical",
        "T1078.004",
    )
    assert (row["account_id"], row["region"]) == (ACCT, "us-east-1")
    assert (row["first_seen"], row["last_seen"]) == (ts(D4, 8), ts(D4, 8))
    assert (row["run_id"], row["dt"]) == ("detect-1", D4)
    crawler = df.where("rule_id = 'crawler_failing_consecutive_days'").collect()[0]
    assert (crawler["first_seen"], crawler["last_seen"], crawler["account_id"]) == (
        ts(D2, 1),
        ts(D4, 1),
        None,
    )


def test_run_is_recorded_in_job_runs(spark, lake):
    rec = lake_mod.read_table(spark, lake, "job_runs").where("run_id = 'detect-1'").collect()[0]
    assert (rec["job"], rec["status"], rec["dq_status"]) == ("detect", "succeeded", "passed")
    assert (rec["records_read"], rec["records_loaded"], rec["records_duplicate"]) == (15, 15, 0)
    assert rec["loaded_by_table"] == {"findings": 15}
    assert rec["touched_dates"] == [D2, D4, D5]
    assert rec["counters"]["s3_bucket_made_public_findings"] == 2


def test_rerun_adds_no_duplicate_and_a_longer_streak_updates_its_finding(spark, lake, first_findings):
    # first_findings forces the first run before this test changes the lake.
    assert sum(len(v) for v in first_findings.values()) == 15
    # The crawler fails again on D5: the rerun over D4..D5 finds every finding again, and the
    # crawler's (its streak started on D2) grows instead of becoming a second finding.
    lake_mod.append_rows(
        spark,
        rows_of(spark, "crawler_runs", [run("orders-crawler", "orders-r5", D5, "failed")]),
        lake,
        "crawler_runs",
    )
    argv = (
        "--since",
        "2024-03-04",
        "--until",
        "2024-03-05",
        "--run-id",
        "detect-2",
        "--conf",
        "quality.enabled=false",
    )
    assert detect_job(spark, lake, *argv) == 0
    after = findings_by_rule(spark, lake)
    grown = {("crawler", "orders-crawler"): (["orders-r2", "orders-r3", "orders-r4", "orders-r5"], 4, D2)}
    assert after == {**EXPECTED, "crawler_failing_consecutive_days": grown}
    findings = lake_mod.read_table(spark, lake, "findings")
    assert findings.count() == 15
    assert findings.select("finding_id").distinct().count() == 15
    row = findings.where("entity = 'orders-crawler'").collect()[0]
    assert (row["last_seen"], row["run_id"]) == (ts(D5, 1), "detect-1")
    rec = lake_mod.read_table(spark, lake, "job_runs").where("run_id = 'detect-2'").collect()[0]
    assert (rec["records_read"], rec["records_loaded"], rec["records_duplicate"]) == (15, 0, 15)
    assert (rec["counters"]["findings_inserted"], rec["counters"]["findings_updated"]) == (0, 1)


def test_a_rule_with_bad_sql_fails_naming_the_rule(spark, lake):
    bad = det.parse_rule(
        {
            "id": "broken_rule",
            "name": "Broken",
            "severity": "low",
            "description": "d",
            "tables": ["cloudtrail_events"],
            "sql": "SELECT 'ip' AS entity_kind, no_such_column AS entity FROM cloudtrail_events",
        },
        "test",
    )
    with pytest.raises(det.DetectionRuleError, match=r"^detection rule broken_rule failed: .*no_such_column"):
        det.run_rules(spark, lake, [bad], {}, [D4])
    lacking = det.parse_rule(
        {
            "id": "lacking_rule",
            "name": "Lacking",
            "severity": "low",
            "description": "d",
            "tables": ["cloudtrail_events"],
            "sql": "SELECT event_id FROM cloudtrail_events",
        },
        "test",
    )
    with pytest.raises(det.DetectionRuleError, match=r"lacking_rule: its SQL returns no column entity_kind"):
        det.run_rules(spark, lake, [lacking], {}, [D4])


def test_a_rule_failing_while_it_runs_is_named(spark):
    failing = det.parse_rule(
        {
            "id": "runtime_failure",
            "name": "Fails",
            "severity": "low",
            "description": "d",
            "tables": ["cloudtrail_events"],
            "sql": "SELECT 'ip' AS entity_kind, 'x' AS entity, NULL AS account_id, NULL AS region, event_time, "
            "event_id FROM (SELECT current_timestamp() AS event_time, 'e' AS event_id FROM range(3)) "
            "WHERE raise_error('boom in the rule') IS NULL",
        },
        "test",
    )
    with pytest.raises(
        det.DetectionRuleError, match=r"^detection rule runtime_failure failed while running: .*boom"
    ):
        det.blame_rule(spark, [failing], {}, [D4], RuntimeError("job failed"))


def test_malformed_rule_files_are_refused_with_the_reason():
    with pytest.raises(
        det.DetectionRuleError,
        match=r"rule x_rule \(f.yaml\): .*severity 'urgent'.*undeclared parameters limit",
    ):
        det.parse_rule(
            {
                "id": "x_rule",
                "name": "n",
                "severity": "urgent",
                "description": "d",
                "tables": ["cloudtrail_events"],
                "sql": "SELECT ${limit}",
            },
            "f.yaml",
        )
    with pytest.raises(det.DetectionRuleError, match=r"table 'no_table' has no contract"):
        det.parse_rule(
            {
                "id": "y",
                "name": "n",
                "severity": "low",
                "description": "d",
                "tables": ["no_table"],
                "sql": "SELECT 1",
            },
            "f.yaml",
        )


def test_parameter_overrides_are_checked():
    rule = next(r for r in det.load_rules() if r.id == "athena_query_from_untrusted_network")
    cfg = {"detections": {"parameters": {rule.id: {"trusted_cidrs": ["10.0.0.0/33"]}}}}
    with pytest.raises(det.ConfigError, match="trusted_cidrs"):
        det.rule_parameters(rule, cfg)
    spike = next(r for r in det.load_rules() if r.id == "access_denied_spike")
    with pytest.raises(det.ConfigError, match="threshold must be int, not 'many'"):
        det.rule_parameters(spike, {"detections": {"parameters": {spike.id: {"threshold": "many"}}}})
    with pytest.raises(det.ConfigError, match="unknown parameters threshold"):
        det.rule_parameters(rule, {"detections": {"parameters": {rule.id: {"threshold": 1}}}})
    assert det.rule_parameters(rule, {})["trusted_cidrs"] == ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]


def test_sql_literals_are_quoted():
    assert det.sql_literal("it's a \\d") == "'it\\'s a \\\\d'"
    assert det.sql_literal(["a", 3]) == "array('a', 3)"
    assert det.sql_literal([]) == "CAST(array() AS array<string>)"
    assert det.sql_literal(dt.date(2024, 3, 4)) == "DATE'2024-03-04'"
    assert det.sql_literal(True) == "true"


def test_ip_in_cidrs():
    nets = ["10.0.0.0/8", "2001:db8::/32"]
    assert det.ip_in_cidrs("10.2.3.4", nets) is True
    assert det.ip_in_cidrs("::ffff:10.2.3.4", nets) is True
    assert det.ip_in_cidrs("2001:db8::1", nets) is True
    assert det.ip_in_cidrs("203.0.113.9", nets) is False
    assert det.ip_in_cidrs("athena.amazonaws.com", nets) is None
    assert det.ip_in_cidrs(None, nets) is None


def test_default_window_is_yesterday_today_and_touched_days(spark, tmp_path):
    empty_lake = str(tmp_path / "lake")
    assert det.detection_window(spark, empty_lake, None, None, today=D5) == [D4, D5]
    assert det.detection_window(spark, empty_lake, D1, D3) == [D1, D2, D3]
    with pytest.raises(det.UsageError):
        det.detection_window(spark, empty_lake, None, D3)


def test_findings_table_is_in_the_athena_ddl():
    from auditlake.athena import ddl

    script = ddl.render_ddl(ddl.all_table_specs("s3://audit-bucket/lake", "audit"))
    assert (
        "CREATE EXTERNAL TABLE IF NOT EXISTS `audit`.`findings`\n"
        "LOCATION 's3://audit-bucket/lake/findings/'\n"
        "TBLPROPERTIES (\n  'table_type'='DELTA'\n);"
    ) in script
    assert "--   evidence_event_ids array<string>\n" in script
