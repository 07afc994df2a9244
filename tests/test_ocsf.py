"""OCSF export: every written row validates against the OCSF 1.1.0 JSON schema of its class.

The schemas are generated from the official OCSF definitions (tests/fixtures/ocsf/1.1.0,
dev/ocsf_schema/generate.py); the job runs end to end on a small lake and the Parquet it writes
is read back, turned into JSON and validated row by row.
"""

from __future__ import annotations

import datetime as dt
import json
from argparse import Namespace
from pathlib import Path

import pyspark.sql.functions as F
import pytest
from jsonschema import Draft202012Validator

from auditlake import lake as lake_mod
from auditlake import ocsf
from auditlake.config import load_config
from auditlake.context import JobContext
from auditlake.ocsf_job import export_ocsf
from auditlake.tables import load_contract

SCHEMAS = Path(__file__).resolve().parent / "fixtures" / "ocsf" / "1.1.0"
ACCT = "111122223333"
D1 = dt.date(2024, 3, 4)
SESSION = f"arn:aws:sts::{ACCT}:assumed-role/DataEngineer/bob"
ALICE = f"arn:aws:iam::{ACCT}:user/alice"


def ts(hh: int, mm: int = 0, day: dt.date = D1) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hh, mm)


def ct(n: int, t: dt.datetime, source: str, name: str, **kw) -> dict:
    row = {
        "event_id": f"00000000-0000-0000-0000-{n:012d}",
        "event_time": t,
        "event_date": t.date(),
        "event_version": "1.08",
        "event_source": source,
        "event_name": name,
        "event_type": "AwsApiCall",
        "event_category": "Management",
        "aws_region": "us-east-1",
        "recipient_account_id": ACCT,
        "source_ip_address": "203.0.113.7",
        "user_agent": "aws-cli/2.15.0",
        "request_id": f"req-{n}",
        "user_type": "IAMUser",
        "user_arn": ALICE,
        "user_principal_id": "AIDAEXAMPLE",
        "user_account_id": ACCT,
        "user_name": "alice",
        "access_key_id": "AKIAEXAMPLE",
        "source_object": "file:/raw/ct.json.gz",
    }
    row.update(kw)
    return row


def _events(spark):
    contract = load_contract("cloudtrail_events")
    rows = [
        # a data event by an assumed-role session, with resources
        ct(
            1,
            ts(9),
            "s3.amazonaws.com",
            "GetObject",
            event_category="Data",
            read_only=True,
            user_type="AssumedRole",
            user_arn=SESSION,
            user_name="DataEngineer",
            session_issuer_type="Role",
            session_issuer_arn=f"arn:aws:iam::{ACCT}:role/DataEngineer",
            session_mfa_authenticated=False,
            session_creation_date=ts(8),
            request_parameters='{"bucketName":"b","key":"k"}',
            resources=[
                ("arn:aws:s3:::b/k", None, "AWS::S3::Object"),
                ("arn:aws:s3:::b", ACCT, "AWS::S3::Bucket"),
            ],
        ),
        # a refused delete
        ct(
            2,
            ts(10),
            "glue.amazonaws.com",
            "DeleteTable",
            error_code="AccessDenied",
            error_message="User is not authorized",
            read_only=False,
        ),
        # a call a service made: no ARN, a host name as the source
        ct(
            3,
            ts(11),
            "lakeformation.amazonaws.com",
            "GetDataAccess",
            user_type="AWSService",
            user_arn=None,
            user_principal_id=None,
            user_account_id=None,
            user_name=None,
            access_key_id=None,
            invoked_by="athena.amazonaws.com",
            source_ip_address="athena.amazonaws.com",
        ),
        # an API the CRUD verbs do not cover
        ct(4, ts(11, 30), "sts.amazonaws.com", "AssumeRole", read_only=None),
        # console sign-ins: success with MFA, failure; a federated sign-in
        ct(
            5,
            ts(12),
            "signin.amazonaws.com",
            "ConsoleLogin",
            event_type="AwsConsoleSignIn",
            response_elements='{"ConsoleLogin":"Success"}',
            additional_event_data='{"MFAUsed":"Yes"}',
            access_key_id=None,
        ),
        ct(
            6,
            ts(12, 5),
            "signin.amazonaws.com",
            "ConsoleLogin",
            event_type="AwsConsoleSignIn",
            error_message="Failed authentication",
            response_elements='{"ConsoleLogin":"Failure"}',
            additional_event_data='{"MFAUsed":"No"}',
            user_name="HIDDEN_DUE_TO_SECURITY_REASONS",
            user_arn=None,
            access_key_id=None,
        ),
        ct(
            7,
            ts(13),
            "sts.amazonaws.com",
            "AssumeRoleWithSAML",
            user_type="SAMLUser",
            user_arn=None,
            user_name="alice@example.com",
            user_principal_id="SAMLID:alice",
            access_key_id=None,
        ),
        # another day, another region
        ct(8, ts(1, day=dt.date(2024, 3, 5)), "glue.amazonaws.com", "CreateTable", aws_region="eu-west-1"),
        # a region that cannot shape a partition path: quarantined
        ct(9, ts(14), "glue.amazonaws.com", "GetTable", aws_region="../../etc"),
        # network-activity events are not API Activity
        ct(
            10,
            ts(15),
            "s3.amazonaws.com",
            "GetObject",
            event_category="NetworkActivity",
            event_type="AwsVpceEvent",
        ),
    ]
    return spark.createDataFrame(
        [tuple(r.get(c) for c in contract.column_names) for r in rows], contract.schema
    )


def _run(spark, lake: str, out: str) -> dict:
    args = Namespace(
        lake=lake,
        out=out,
        since=D1,
        until=dt.date(2024, 3, 5),
        env="local",
        run_id="r1",
        conf=[],
        verbose=False,
        source=None,
        reprocess=False,
    )
    ctx = JobContext(
        job="export_ocsf",
        args=args,
        cfg=load_config("local"),
        spark=spark,
        run_id="r1",
        started_at=dt.datetime.now(dt.UTC),
    )
    return export_ocsf(ctx)


def _json_rows(spark, uri: str) -> list[dict]:
    df = spark.read.parquet(uri)
    data = [c for c in df.columns if c not in ("region", "accountId", "eventDay")]
    rows = df.select(
        F.col("eventDay").cast("string").alias("d"), F.to_json(F.struct(*data)).alias("j")
    ).collect()
    return [dict(json.loads(r["j"]), _eventDay=r["d"]) for r in rows]


@pytest.fixture(scope="module")
def exported(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("ocsf")
    lake, out = str(root / "lake"), str(root / "out")
    lake_mod.append_rows(spark, _events(spark), lake, "cloudtrail_events")
    first = _run(spark, lake, out)
    return {
        "lake": lake,
        "out": Path(out),
        "counts": first,
        ocsf.API_ACTIVITY: _json_rows(spark, f"{out}/api_activity"),
        ocsf.AUTHENTICATION: _json_rows(spark, f"{out}/authentication"),
    }


@pytest.mark.parametrize("cls", [ocsf.API_ACTIVITY, ocsf.AUTHENTICATION])
def test_every_row_validates_against_the_ocsf_schema(exported, cls):
    validator = Draft202012Validator(json.loads((SCHEMAS / f"{cls}.schema.json").read_text()))
    rows = exported[cls]
    assert len(rows) == {ocsf.API_ACTIVITY: 5, ocsf.AUTHENTICATION: 3}[cls]
    for row in rows:
        row = {k: v for k, v in row.items() if k != "_eventDay"}
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(row)]
        assert errors == [], (row["metadata"]["uid"], errors)


def test_the_schema_rejects_a_broken_row(exported):
    """The validator is not vacuous: a wrong class, a missing actor and an unknown field all fail."""
    validator = Draft202012Validator(json.loads((SCHEMAS / "api_activity.schema.json").read_text()))
    row = {k: v for k, v in exported[ocsf.API_ACTIVITY][0].items() if k != "_eventDay"}
    assert not list(validator.iter_errors(row))
    for broken in (
        {**row, "class_uid": 3002},
        {k: v for k, v in row.items() if k != "actor"},
        {**row, "user_name": "alice"},
        {**row, "type_uid": 600399 + 1},
    ):
        assert list(validator.iter_errors(broken))


def test_mapped_values(exported):
    api = {r["metadata"]["uid"][-2:]: r for r in exported[ocsf.API_ACTIVITY]}
    assert sorted(api) == ["01", "02", "03", "04", "08"]
    get = api["01"]
    assert (get["class_uid"], get["category_uid"], get["activity_id"], get["type_uid"]) == (
        6003,
        6,
        2,
        600302,
    )
    assert get["time"] == 1709542800000  # 2024-03-04T09:00:00Z
    assert get["api"] == {
        "operation": "GetObject",
        "service": {"name": "s3.amazonaws.com"},
        "request": {"uid": "req-1"},
    }
    assert get["actor"]["user"]["uid"] == SESSION
    assert get["actor"]["session"] == {
        "issuer": f"arn:aws:iam::{ACCT}:role/DataEngineer",
        "is_mfa": False,
        "created_time": 1709539200000,
        "credential_uid": "AKIAEXAMPLE",
    }
    assert get["src_endpoint"] == {"ip": "203.0.113.7"}
    assert [r["uid"] for r in get["resources"]] == ["arn:aws:s3:::b/k", "arn:aws:s3:::b"]
    assert get["metadata"]["version"] == "1.1.0"
    assert get["unmapped"]["request_parameters"] == '{"bucketName":"b","key":"k"}'
    assert get["cloud"] == {
        "provider": "AWS",
        "region": "us-east-1",
        "account": {"uid": ACCT, "type": "AWS Account", "type_id": 10},
    }
    delete = api["02"]
    assert (delete["activity_id"], delete["status_id"], delete["status"], delete["status_code"]) == (
        4,
        2,
        "Failure",
        "AccessDenied",
    )
    service = api["03"]
    assert service["src_endpoint"] == {"hostname": "athena.amazonaws.com"}
    assert service["actor"]["user"]["name"] == "athena.amazonaws.com"
    assert service["actor"]["invoked_by"] == "athena.amazonaws.com"
    other = api["04"]
    assert (other["activity_id"], other["activity_name"], other["type_uid"]) == (99, "AssumeRole", 600399)
    assert (api["08"]["activity_id"], api["08"]["_eventDay"], api["08"]["cloud"]["region"]) == (
        1,
        "20240305",
        "eu-west-1",
    )

    auth = {r["metadata"]["uid"][-2:]: r for r in exported[ocsf.AUTHENTICATION]}
    assert sorted(auth) == ["05", "06", "07"]
    ok, failed, saml = auth["05"], auth["06"], auth["07"]
    assert (ok["class_uid"], ok["activity_id"], ok["type_uid"], ok["status_id"], ok["is_mfa"]) == (
        3002,
        1,
        300201,
        1,
        True,
    )
    assert ok["user"]["uid"] == ALICE and ok["service"] == {"name": "signin.amazonaws.com"}
    assert (failed["status_id"], failed["status"], failed["status_detail"], failed["is_mfa"]) == (
        2,
        "Failure",
        "Failed authentication",
        False,
    )
    assert (saml["auth_protocol_id"], saml["auth_protocol"], saml["user"]["name"]) == (
        5,
        "SAML",
        "alice@example.com",
    )


def test_security_lake_layout_and_quarantine(spark, exported):
    out = exported["out"]
    folders = sorted(str(p.parent.relative_to(out)) for p in out.rglob("*.parquet"))
    assert sorted(set(folders)) == [
        "api_activity/region=eu-west-1/accountId=111122223333/eventDay=20240305",
        "api_activity/region=us-east-1/accountId=111122223333/eventDay=20240304",
        "authentication/region=us-east-1/accountId=111122223333/eventDay=20240304",
    ]
    assert exported["counts"]["quarantined"] == 1
    q = (
        lake_mod.read_table(spark, exported["lake"], "quarantine")
        .where(F.col("source") == "ocsf_export")
        .collect()
    )
    assert [(r["raw_text"], r["reason"]) for r in q] == [
        (
            "eventID=00000000-0000-0000-0000-000000000009",
            "ocsf export: awsRegion is not an AWS region name (eventID=00000000-0000-0000-0000-000000000009)",
        )
    ]


def test_rerun_replaces_the_same_partitions(spark, exported):
    before = sorted(p.relative_to(exported["out"]).parent for p in exported["out"].rglob("*.parquet"))
    counts = _run(spark, exported["lake"], str(exported["out"]))
    assert (counts[ocsf.API_ACTIVITY], counts[ocsf.AUTHENTICATION]) == (5, 3)
    after = sorted(p.relative_to(exported["out"]).parent for p in exported["out"].rglob("*.parquet"))
    assert after == before
    assert spark.read.parquet(str(exported["out"] / "api_activity")).count() == 5
    assert lake_mod.read_table(spark, exported["lake"], "quarantine").count() == 1
