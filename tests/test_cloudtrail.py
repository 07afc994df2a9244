"""CloudTrail ingest: parser units on in-test JSON, real-sample golden run, job end to end, s3a."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
from pathlib import Path

import pyspark.sql.functions as F
from chispa import assert_df_equality

from auditlake.cli import run_job
from auditlake.ingest import runner
from auditlake.ingest.objects import SourceObject
from auditlake.ingest.runner import run_ingest
from auditlake.lake import read_table
from auditlake.sources import cloudtrail as ct

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "cloudtrail"
T0 = dt.datetime(2024, 1, 1)


def write_files(root: Path, files: dict[str, bytes | list]) -> list[str]:
    """Write gzipped CloudTrail files (a list of records is wrapped in Records) -> their URIs."""
    uris = []
    for name, content in files.items():
        path = root / "AWSLogs" / "111111111111" / "CloudTrail" / "us-east-1" / "2024" / "01" / "02" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = content if isinstance(content, bytes) else json.dumps({"Records": content}).encode()
        path.write_bytes(gzip.compress(data))
        uris.append("file:" + str(path))
    return uris


def parse(spark, root: Path, files: dict[str, bytes | list]):
    return ct.parse_files(ct.read_files(spark, write_files(root, files)))


def rec(event_id: str, **fields) -> dict:
    base = {
        "eventVersion": "1.08",
        "eventID": event_id,
        "eventTime": "2024-01-02T03:04:05Z",
        "eventSource": "glue.amazonaws.com",
        "eventName": "GetTable",
        "awsRegion": "us-east-1",
        "recipientAccountId": "111111111111",
        "eventType": "AwsApiCall",
    }
    base.update(fields)
    return base


# --------------------------------------------------------------------------- parser units


def test_every_identity_type_and_mixed_versions(spark, tmp_path):
    records = [
        rec(
            "root",
            eventVersion="1.0",
            userIdentity={
                "type": "Root",
                "arn": "arn:aws:iam::111111111111:root",
                "accountId": "111111111111",
            },
        ),
        rec(
            "iam",
            eventVersion="1.05",
            readOnly="true",
            userIdentity={"type": "IAMUser", "userName": "alice", "accessKeyId": "AKIA1"},
        ),
        rec(
            "assumed",
            eventVersion="1.10",
            readOnly=False,
            userIdentity={
                "type": "AssumedRole",
                "arn": "arn:aws:sts::111111111111:assumed-role/Dev/s",
                "sessionContext": {
                    "sessionIssuer": {
                        "type": "Role",
                        "arn": "arn:aws:iam::111111111111:role/Dev",
                        "userName": "Dev",
                    },
                    "attributes": {"mfaAuthenticated": "true", "creationDate": "2024-01-02T01:00:00Z"},
                },
            },
        ),
        rec("role", eventVersion="1.11", userIdentity={"type": "Role", "principalId": "AROA1"}),
        rec(
            "federated",
            eventVersion="1.09",
            userIdentity={
                "type": "FederatedUser",
                "sessionContext": {
                    "sessionIssuer": {"type": "IAMUser", "userName": "bob"},
                    "attributes": {"mfaAuthenticated": False},
                },
            },
        ),
        rec("saml", userIdentity={"type": "SAMLUser", "userName": "carol@example.com"}),
        rec(
            "webid",
            userIdentity={
                "type": "WebIdentityUser",
                "userName": "user-id",
                "identityProvider": "accounts.google.com",
            },
        ),
        rec(
            "idc",
            userIdentity={
                "type": "IdentityCenterUser",
                "accountId": "111111111111",
                "onBehalfOf": {"userId": "u-1"},
                "credentialId": "c1",
            },
        ),
        rec("service", userIdentity={"type": "AWSService", "invokedBy": "athena.amazonaws.com"}),
        rec("account", userIdentity={"type": "AWSAccount", "accountId": "ANONYMOUS_PRINCIPAL"}),
        rec("directory", userIdentity={"type": "Directory", "userName": "d-user"}),
        rec("unknown", userIdentity={"type": "Unknown", "principalId": "x"}),
        rec("none", userIdentity=None),
    ]
    actual = parse(spark, tmp_path, {"a.json.gz": records}).select(
        "event_id",
        "event_version",
        "user_type",
        "user_name",
        "invoked_by",
        "read_only",
        "session_issuer_type",
        "session_mfa_authenticated",
        "session_creation_date",
        "reason",
    )
    expected = spark.createDataFrame(
        [
            ("root", "1.0", "Root", None, None, None, None, None, None, None),
            ("iam", "1.05", "IAMUser", "alice", None, True, None, None, None, None),
            (
                "assumed",
                "1.10",
                "AssumedRole",
                "Dev",
                None,
                False,
                "Role",
                True,
                dt.datetime(2024, 1, 2, 1),
                None,
            ),
            ("role", "1.11", "Role", None, None, None, None, None, None, None),
            # Only an AssumedRole takes the issuer's name as user_name.
            ("federated", "1.09", "FederatedUser", None, None, None, "IAMUser", False, None, None),
            ("saml", "1.08", "SAMLUser", "carol@example.com", None, None, None, None, None, None),
            ("webid", "1.08", "WebIdentityUser", "user-id", None, None, None, None, None, None),
            ("idc", "1.08", "IdentityCenterUser", None, None, None, None, None, None, None),
            ("service", "1.08", "AWSService", None, "athena.amazonaws.com", None, None, None, None, None),
            ("account", "1.08", "AWSAccount", None, None, None, None, None, None, None),
            ("directory", "1.08", "Directory", "d-user", None, None, None, None, None, None),
            ("unknown", "1.08", "Unknown", None, None, None, None, None, None, None),
            ("none", "1.08", None, None, None, None, None, None, None, None),
        ],
        actual.schema,
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_raw_json_fields_booleans_resources_and_network_activity(spark, tmp_path):
    records = [
        rec(
            "vpce",
            eventVersion="1.09",
            eventType="AwsVpceEvent",
            eventCategory="NetworkActivity",
            vpcEndpointId="vpce-0abc",
            errorCode="VpceAccessDenied",
            managementEvent=False,
            requestParameters={"b": [1, {"c": None}]},
            readOnly="TRUE",
            resources=[
                {"ARN": "arn:aws:s3:::b", "accountId": "111111111111", "type": "AWS::S3::Bucket"},
                {"ARN": "arn:aws:s3:::b/k", "accountid": "222222222222", "type": "AWS::S3::Object"},
            ],
            tlsDetails={
                "tlsVersion": "TLSv1.3",
                "cipherSuite": "TLS_AES_128_GCM_SHA256",
                "clientProvidedHostHeader": "s3.amazonaws.com",
            },
        ),
        rec(
            "nulls",
            requestParameters=None,
            responseElements="plain string",
            readOnly="maybe",
            additionalEventData={"MFAUsed": "No"},
            serviceEventDetails=[1, 2],
        ),
    ]
    actual = parse(spark, tmp_path, {"a.json.gz": records}).select(
        "event_id",
        "event_type",
        "event_category",
        "vpc_endpoint_id",
        "error_code",
        "management_event",
        "read_only",
        "request_parameters",
        "response_elements",
        "additional_event_data",
        "service_event_details",
        "resources",
        "tls_version",
        "client_provided_host_header",
    )
    expected = spark.createDataFrame(
        [
            (
                "vpce",
                "AwsVpceEvent",
                "NetworkActivity",
                "vpce-0abc",
                "VpceAccessDenied",
                False,
                True,
                '{"b":[1,{"c":null}]}',
                None,
                None,
                None,
                [
                    ("arn:aws:s3:::b", "111111111111", "AWS::S3::Bucket"),
                    ("arn:aws:s3:::b/k", "222222222222", "AWS::S3::Object"),
                ],
                "TLSv1.3",
                "s3.amazonaws.com",
            ),
            (
                "nulls",
                "AwsApiCall",
                None,
                None,
                None,
                None,
                None,
                None,
                "plain string",
                '{"MFAUsed":"No"}',
                "[1,2]",
                None,
                None,
                None,
            ),
        ],
        actual.schema,
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_bad_records_get_a_reason_and_the_rest_loads(spark, tmp_path):
    records = [
        rec("ok-frac", eventTime="2024-01-02T03:04:05.123Z"),
        {"eventVersion": "1.08", "eventTime": "2024-01-02T03:04:05Z"},
        rec("no-time", eventTime=None),
        rec("bad-time", eventTime="02/01/2024 03:04"),
        rec("bad-month", eventTime="2024-13-02T03:04:05Z"),
        rec("v2", eventVersion="2.0"),
        rec("ok", recipientAccountId=None),  # falls back to the key's account
    ]
    actual = parse(spark, tmp_path, {"a.json.gz": records}).select(
        "record_index", "event_id", "event_time", "event_date", "recipient_account_id", "reason"
    )
    expected = spark.createDataFrame(
        [
            (
                0,
                "ok-frac",
                dt.datetime(2024, 1, 2, 3, 4, 5, 123000),
                dt.date(2024, 1, 2),
                "111111111111",
                None,
            ),
            (
                1,
                None,
                dt.datetime(2024, 1, 2, 3, 4, 5),
                dt.date(2024, 1, 2),
                "111111111111",
                "missing eventID",
            ),
            (2, "no-time", None, None, "111111111111", "missing eventTime"),
            (3, "bad-time", None, None, "111111111111", "unparseable eventTime"),
            (4, "bad-month", None, None, "111111111111", "unparseable eventTime"),
            (
                5,
                "v2",
                dt.datetime(2024, 1, 2, 3, 4, 5),
                dt.date(2024, 1, 2),
                "111111111111",
                "unsupported eventVersion",
            ),
            (6, "ok", dt.datetime(2024, 1, 2, 3, 4, 5), dt.date(2024, 1, 2), "111111111111", None),
        ],
        actual.schema,
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_whole_file_problems(spark, tmp_path):
    files = {
        "bad.json.gz": b'{"Records": [{"eventID": ',
        "scalar.json.gz": b'{"Records": [5, {"eventID": "a"}]}',
        "norecords.json.gz": b'{"foo": 1}',
        "empty.json.gz": b'{"Records": []}',
    }
    actual = parse(spark, tmp_path, files).select(
        F.regexp_extract("source_object", r"([a-z]+)\.json\.gz$", 1).alias("file"), "record_index", "reason"
    )
    expected = spark.createDataFrame(
        [
            ("bad", -1, "invalid JSON"),
            ("scalar", -1, "Records is not an array of JSON objects"),
            ("norecords", -1, "no Records array"),
            ("empty", -1, "empty"),
        ],
        actual.schema,
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_unknown_keys_and_insights(spark, tmp_path):
    records = [
        rec("e1", **{"@timestamp": "x", "newField": {"a": 1}}),
        rec("no-type", eventType=None),  # 1.0-1.01 records have no eventType: still an event
        {
            "eventVersion": "1.07",
            "eventTime": "2020-09-09T23:00:00Z",
            "eventID": "i1",
            "eventType": "AwsCloudTrailInsight",
            "recipientAccountId": "123456789012",
            "eventCategory": "Insight",
            "insightDetails": {
                "state": "Start",
                "eventSource": "iam.amazonaws.com",
                "eventName": "AttachUserPolicy",
                "insightType": "ApiErrorRateInsight",
                "errorCode": "AccessDenied",
                "typoContext": {},
            },
        },
    ]
    parsed = parse(spark, tmp_path, {"a.json.gz": records})
    actual = ct.select_insights(parsed).select(
        "event_id", "insight_state", "insight_type", "insight_event_name", "insight_error_code"
    )
    expected = spark.createDataFrame(
        [("i1", "Start", "ApiErrorRateInsight", "AttachUserPolicy", "AccessDenied")], actual.schema
    )
    assert_df_equality(actual, expected, ignore_nullable=True)
    assert sorted(r.event_id for r in ct.select_events(parsed).collect()) == ["e1", "no-type"]
    keys = parsed.select(F.explode("unknown_keys").alias("k")).distinct().orderBy("k")
    assert [r.k for r in keys.collect()] == ["@timestamp", "insightDetails.typoContext", "newField"]


def test_event_version_compares_minor_as_a_number(spark):
    df = spark.createDataFrame(
        [("1.10",), ("1.9",), ("1.08",), ("2.0",), ("1.0",), ("junk",), (None,)], "v string"
    )
    actual = df.select("v", ct.event_version_at_least(F.col("v"), 1, 9).alias("ge_1_9"))
    expected = spark.createDataFrame(
        [
            ("1.10", True),
            ("1.9", True),
            ("1.08", False),
            ("2.0", False),
            ("1.0", False),
            ("junk", None),
            (None, None),
        ],
        actual.schema,
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_classify_and_object_date():
    src = ct.CloudTrailSource()

    def obj(key: str, size: int = 10) -> SourceObject:
        return SourceObject("s3://b/" + key, size, T0)

    base = "AWSLogs/o-abc1234567/111111111111/"
    assert (
        src.classify(
            obj(
                base
                + "CloudTrail/us-east-1/2024/01/02/111111111111_CloudTrail_us-east-1_20240102T0305Z_x.json.gz"
            )
        )
        is None
    )
    assert src.classify(obj(base + "CloudTrail-Insight/us-east-1/2024/01/02/f.json.gz")) is None
    assert src.classify(obj(base + "CloudTrail-Digest/us-east-1/2024/01/02/f.json.gz")) == "digest"
    assert (
        src.classify(obj("AWSLogs/111111111111/Config/us-east-1/2020/8/31/ConfigHistory/f.json.gz"))
        == "not_cloudtrail"
    )
    assert (
        src.classify(obj("AWSLogs/111111111111/GuardDuty/us-east-1/2020/09/02/f.jsonl.gz"))
        == "not_cloudtrail"
    )
    assert src.classify(obj(base + "CloudTrail/", 0)) == "folder_marker"
    assert src.classify(obj(base + "CloudTrail/us-east-1/2024/01/02/notes.txt")) == "not_json_gz"
    assert src.object_date(obj(base + "CloudTrail/us-east-1/2024/01/02/f.json.gz")) == dt.date(2024, 1, 2)
    assert src.object_date(obj("x/111111111111_CloudTrail_us-east-1_20240103T0305Z_x.json.gz")) == dt.date(
        2024, 1, 3
    )
    assert src.object_date(obj("x/f.json.gz")) is None


def test_diagnose_object():
    full = gzip.compress(b'{"Records": [' + b'{"eventID": "a"},' * 200 + b"{}]}")
    assert ct.diagnose_object(b"") == ("empty object", "")
    assert ct.diagnose_object(b"plain")[0] == "not gzip"
    assert ct.diagnose_object(full[: len(full) // 2])[0] == "truncated gzip"
    assert ct.diagnose_object(gzip.compress(b"{nope"))[0] == "invalid JSON"


# --------------------------------------------------------------------------- job end to end


def run(spark, source: str, lake: str, *extra: str) -> int:
    return run_job(
        "ingest_cloudtrail",
        lambda ctx: run_ingest(ctx, ct.CloudTrailSource()),
        argv=["--source", source, "--lake", lake, *extra],
        session_factory=lambda cfg, name: spark,
    )


def table(spark, lake: str, name: str, *cols: str):
    df = read_table(spark, lake, name)
    return df.select(*cols) if cols else df


EVENT_COLS = (
    "event_id",
    "recipient_account_id",
    "event_time",
    "event_version",
    "event_name",
    "user_type",
    "user_name",
    "read_only",
    "resources",
    "source_object",
)


def test_real_samples_golden(spark, tmp_path):
    lake = str(tmp_path / "lake")
    assert run(spark, str(FIXTURES), lake) == 0
    run_row = table(spark, lake, "job_runs").collect()[0]
    assert run_row.status == "succeeded"
    assert run_row.skipped_by_reason == {"digest": 1, "not_cloudtrail": 1, "not_json_gz": 1}
    assert (
        run_row.records_read,
        run_row.records_loaded,
        run_row.records_quarantined,
        run_row.records_duplicate,
    ) == (19, 12, 7, 0)
    assert sorted(run_row.unknown_keys) == ["@timestamp", "@version", "insightDetails.insffightContext"]

    events = (
        table(spark, lake, "cloudtrail_events")
        .where(
            F.col("event_id").isin(
                "1917948f-3042-46ec-98e2-62865EXAMPLE",
                "b3d7f1a2-6c4e-4d8b-8e21-5a9c0e7f4d33",
                "6829a09f-4a37-4ec7-86d2-e739f77a57f3",
                "11ea990b-4678-4bcd-8fbe-625EXAMPLE",
                "234f004b-EXAMPLE",
            )
        )
        .select(*EVENT_COLS[:-1])
    )
    expected = spark.createDataFrame(
        [
            (
                "1917948f-3042-46ec-98e2-62865EXAMPLE",
                "111111111111",
                dt.datetime(2019, 10, 2, 22, 12, 29),
                "1.05",
                "AssumeRole",
                "AssumedRole",
                "JohnDoe",
                None,
                [("arn:aws:iam::111122223333:role/JohnRole2", "111111111111", "AWS::IAM::Role")],
            ),
            (
                "b3d7f1a2-6c4e-4d8b-8e21-5a9c0e7f4d33",
                "111111111111",
                dt.datetime(2024, 10, 8, 10, 15, 32),
                "1.08",
                "AssumeRole",
                "AWSService",
                None,
                None,
                [("arn:aws:iam::111111111111:role/ec2-instance-role", "111111111111", "AWS::IAM::Role")],
            ),
            (
                "6829a09f-4a37-4ec7-86d2-e739f77a57f3",
                "000000000",
                dt.datetime(2024, 10, 15, 8, 57, 13),
                "1.09",
                "PutObject",
                "IAMUser",
                "test@elastic.co",
                False,
                [
                    ("arn:aws:s3:::elastic-cspm-cloudtrail-test-bucket/test.json", None, "AWS::S3::Object"),
                    ("arn:aws:s3:::elastic-cspm-cloudtrail-test-bucket", "000000000", "AWS::S3::Bucket"),
                ],
            ),
            # No recipientAccountId in the record: the key's account.
            (
                "11ea990b-4678-4bcd-8fbe-625EXAMPLE",
                "111122223333",
                dt.datetime(2014, 7, 8, 17, 35, 27),
                "1.05",
                "ConsoleLogin",
                "IAMUser",
                "JaneDoe",
                None,
                None,
            ),
            (
                "234f004b-EXAMPLE",
                "123456789012",
                dt.datetime(2019, 6, 2, 0, 6, 8),
                "1.05",
                "RotateKey",
                None,
                None,
                False,
                [
                    (
                        "arn:aws:kms:us-east-2:123456789012:key/7944f0ec-EXAMPLE",
                        "123456789012",
                        "AWS::KMS::Key",
                    )
                ],
            ),
        ],
        events.schema,
    )
    assert_df_equality(events, expected, ignore_row_order=True, ignore_nullable=True)
    rp = table(spark, lake, "cloudtrail_events").where(
        F.col("event_id") == "6829a09f-4a37-4ec7-86d2-e739f77a57f3"
    )
    row = rp.collect()[0]
    assert json.loads(row.request_parameters) == {
        "Host": "elastic-cspm-cloudtrail-test-bucket.s3.us-east-1.amazonaws.com",
        "bucketName": "elastic-cspm-cloudtrail-test-bucket",
    }
    assert (row.tls_version, row.event_category, row.event_date) == (
        "TLSv1.3",
        "Management",
        dt.date(2024, 10, 15),
    )
    assert row.source_object.startswith("file:/") and row.source_object.endswith("_mixedVersions01.json.gz")

    insights = table(
        spark,
        lake,
        "cloudtrail_insights",
        "event_id",
        "recipient_account_id",
        "insight_state",
        "insight_event_name",
        "event_date",
    )
    expected_insights = spark.createDataFrame(
        [
            (
                "41ed77ca-d659-b45a-8e9a-74e504300007",
                "123456789012",
                "End",
                "AttachUserPolicy",
                dt.date(2020, 9, 9),
            ),
            (
                "EXAMPLE8-9621-4d00-b913-beca2EXAMPLE",
                "123456789012",
                "Start",
                "UpdateInstanceInformation",
                dt.date(2019, 11, 14),
            ),
            (
                "EXAMPLEc-28be-486c-8928-49ce6EXAMPLE",
                "123456789012",
                "End",
                "UpdateInstanceInformation",
                dt.date(2019, 11, 14),
            ),
        ],
        insights.schema,
    )
    assert_df_equality(insights, expected_insights, ignore_row_order=True, ignore_nullable=True)

    quarantine = table(spark, lake, "quarantine").select(
        F.regexp_extract("source_object", r"_([A-Za-z0-9]+)\.json\.gz$", 1).alias("file"),
        "record_index",
        "reason",
    )
    expected_q = spark.createDataFrame(
        [
            ("mixedVersions01", 3, "missing eventID"),
            ("otrfLogstash0001", 0, "missing eventTime"),
            ("otrfLogstash0001", 1, "missing eventTime"),
            ("otrfLogstash0001", 2, "missing eventTime"),
            ("notGzipAtAll0001", -1, "not gzip"),
            ("invalidJson00001", -1, "invalid JSON"),
            ("truncatedGzip001", -1, "truncated gzip"),
        ],
        quarantine.schema,
    )
    assert_df_equality(quarantine, expected_q, ignore_row_order=True, ignore_nullable=True)


def snapshot(spark, lake: str):
    events = table(spark, lake, "cloudtrail_events", *EVENT_COLS)
    insights = table(spark, lake, "cloudtrail_insights", "event_id", "recipient_account_id", "source_object")
    quarantine = table(spark, lake, "quarantine", "source_object", "record_index", "reason", "raw_text")
    return events, insights, quarantine


def test_rerun_duplicates_and_killed_run(spark, tmp_path, monkeypatch):
    source = tmp_path / "src"
    shutil.copytree(FIXTURES, source)
    # The same file delivered twice (another key) adds no rows.
    mixed = next(source.rglob("*_mixedVersions01.json.gz"))
    shutil.copy(mixed, mixed.with_name(mixed.name.replace("mixedVersions01", "redelivered01")))
    clean, killed = str(tmp_path / "clean"), str(tmp_path / "killed")
    assert run(spark, str(source), clean) == 0
    first = table(spark, clean, "job_runs").collect()[0]
    assert (first.records_duplicate, first.records_loaded, first.records_quarantined) == (6, 12, 8)

    # Rerun: nothing new to read, nothing added.
    before = [df.count() for df in snapshot(spark, clean)]
    assert run(spark, str(source), clean) == 0
    assert [df.count() for df in snapshot(spark, clean)] == before
    second = table(spark, clean, "job_runs").where(F.col("run_id") != first.run_id).collect()[0]
    assert (second.objects_processed, second.records_read) == (0, 0)

    # Killed after the data merges, before the ledger: the rerun completes it, no duplicates.
    def crash(*args, **kwargs):
        raise RuntimeError("killed before the ledger")

    with monkeypatch.context() as m:
        m.setattr(runner, "_ledger_rows", crash)
        assert run(spark, str(source), killed) != 0
    assert run(spark, str(source), killed) == 0
    # Which of two delivered copies keeps its row is either's; the rows themselves must match.
    got_events, got_insights, got_quarantine = snapshot(spark, killed)
    want_events, want_insights, want_quarantine = snapshot(spark, clean)
    assert_df_equality(
        got_events.drop("source_object"),
        want_events.drop("source_object"),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert_df_equality(got_insights, want_insights, ignore_row_order=True, ignore_nullable=True)
    assert_df_equality(got_quarantine, want_quarantine, ignore_row_order=True, ignore_nullable=True)
    runs = table(spark, killed, "job_runs").orderBy("started_at").select("status", "records_loaded").collect()
    assert [r.status for r in runs] == ["failed", "succeeded"]
    assert runs[1].records_loaded == 0  # everything was already in; the ledger now holds the objects


def test_since_until_bound_the_listing(spark, tmp_path):
    lake = str(tmp_path / "lake")
    assert run(spark, str(FIXTURES), lake, "--since", "2019-10-01", "--until", "2019-10-01") == 0
    row = table(spark, lake, "job_runs").collect()[0]
    # Only the 2019/10/02 folder is in the window (one day of slack after --until).
    assert row.objects_processed == 1 and row.records_loaded == 6


def test_job_on_s3a(spark, s3, tmp_path):
    s3.create_bucket(Bucket="ct-raw")
    s3.create_bucket(Bucket="ct-lake")
    for path in FIXTURES.rglob("*"):
        if path.is_file():
            s3.put_object(
                Bucket="ct-raw", Key="logs/" + path.relative_to(FIXTURES).as_posix(), Body=path.read_bytes()
            )
    s3.put_object(
        Bucket="ct-raw", Key="logs/AWSLogs/111111111111/CloudTrail/", Body=b""
    )  # a console folder marker
    assert run(spark, "s3a://ct-raw/logs/AWSLogs/111111111111/CloudTrail", "s3a://ct-lake/lake") == 0
    row = table(spark, "s3a://ct-lake/lake", "job_runs").collect()[0]
    assert (row.records_loaded, row.records_quarantined) == (6, 7)
    events = table(spark, "s3a://ct-lake/lake", "cloudtrail_events", "event_id", "source_object").where(
        F.col("event_id") == "b7d4398e-b2f0-4faa-9c76-e2d316a8d67f"
    )
    expected = spark.createDataFrame(
        [
            (
                "b7d4398e-b2f0-4faa-9c76-e2d316a8d67f",
                "s3a://ct-raw/logs/AWSLogs/111111111111/CloudTrail/us-east-2/2019/10/02/"
                "111111111111_CloudTrail_us-east-2_20191002T2215Z_mixedVersions01.json.gz",
            )
        ],
        events.schema,
    )
    assert_df_equality(events, expected, ignore_nullable=True)
    reasons = sorted(
        r.reason
        for r in table(spark, "s3a://ct-lake/lake", "quarantine").where("record_index = -1").collect()
    )
    assert reasons == ["invalid JSON", "not gzip", "truncated gzip"]


def test_bad_date_argument_exits_2(spark, tmp_path):
    assert run(spark, str(FIXTURES), str(tmp_path / "lake"), "--since", "2024-13-01") == 2


def test_concatenated_documents_load_every_record_and_a_records_string_is_not_a_boundary(spark, tmp_path):
    # Two gzip members, each a whole document (as some copies of delivered files are), and one
    # document with the string "Records" inside a record: its text holds '"Records"' twice.
    one = json.dumps({"Records": [rec("a1"), rec("a2")]}).encode()
    two = json.dumps({"Records": [rec("b1")]}).encode()
    root = tmp_path / "raw"
    uris = write_files(
        root, {"inside.json.gz": [rec("c1", requestParameters={"name": "Records"}), rec("c2")]}
    )
    joined = (
        root / "AWSLogs" / "111111111111" / "CloudTrail" / "us-east-1" / "2024" / "01" / "02" / "two.json.gz"
    )
    joined.write_bytes(gzip.compress(one) + gzip.compress(b"\n" + two))
    rows = ct.parse_files(ct.read_files(spark, [*uris, "file:" + str(joined)])).collect()
    got = sorted(
        (r["source_object"].rsplit("/", 1)[1], r["record_index"], r["event_id"], r["reason"]) for r in rows
    )
    assert got == [
        ("inside.json.gz", 0, "c1", None),
        ("inside.json.gz", 1, "c2", None),
        ("two.json.gz", 0, "a1", None),
        ("two.json.gz", 1, "a2", None),
        ("two.json.gz", 2, "b1", None),
    ]
    inside = next(r for r in rows if r["event_id"] == "c1")
    assert json.loads(inside["request_parameters"]) == {"name": "Records"}


def test_a_file_of_one_document_and_every_other_kind_read_alike(spark, tmp_path):
    # One document as it is (the common case, parsed straight from the text), one with a byte order
    # mark, one with an invalid UTF-8 byte in a value (it loads, the byte read as U+FFFD), text that
    # is no JSON, and two gzip members (the way through a list of documents).
    def doc(*ids: str, **fields) -> bytes:
        return json.dumps({"Records": [rec(i, **fields) for i in ids]}).encode()

    root = tmp_path / "raw"
    uris = write_files(
        root,
        {
            "one.json.gz": doc("a1", "a2"),
            "bom.json.gz": b"\xef\xbb\xbf" + doc("b1"),
            "latin1.json.gz": doc("c1", userAgent="caf-").replace(b"caf-", b"caf\xe9"),
            "bad.json.gz": b'{"Records": [{"eventID": "d1"',
            "scalar.json.gz": b'{"Records": [5, "caf\xe9"]}',
            # '"Records"' twice but one document, without a Records array.
            "words.json.gz": b'{"note": "Records", "again": "Records"}',
        },
    )
    two = Path(uris[0].removeprefix("file:")).with_name("two.json.gz")
    two.write_bytes(gzip.compress(doc("e1")) + gzip.compress(b"\n" + doc("e2", "e3")))
    rows = (
        ct.parse_files(ct.read_files(spark, [*uris, "file:" + str(two)]))
        .withColumn("raw_hex", F.hex(F.col("raw_text").cast("binary")))
        .collect()
    )
    got = sorted(
        (r["source_object"].rsplit("/", 1)[1], r["record_index"], r["event_id"], r["user_agent"], r["reason"])
        for r in rows
    )
    assert got == [
        ("bad.json.gz", -1, None, None, "invalid JSON"),
        ("bom.json.gz", 0, "b1", None, None),
        ("latin1.json.gz", 0, "c1", "caf\ufffd", None),
        ("one.json.gz", 0, "a1", None, None),
        ("one.json.gz", 1, "a2", None, None),
        ("scalar.json.gz", -1, None, None, "Records is not an array of JSON objects"),
        ("two.json.gz", 0, "e1", None, None),
        ("two.json.gz", 1, "e2", None, None),
        ("two.json.gz", 2, "e3", None, None),
        ("words.json.gz", -1, None, None, "no Records array"),
    ]
    # A file's text kept for the quarantine is valid UTF-8, its invalid byte replaced: checked on
    # the string's own bytes (Python would see U+FFFD either way, decoded on the way out).
    scalar = next(r for r in rows if r["source_object"].endswith("/scalar.json.gz"))
    assert bytes.fromhex(scalar["raw_hex"]) == '{"Records": [5, "caf\ufffd"]}'.encode()
