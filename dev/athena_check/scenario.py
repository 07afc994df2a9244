"""Raw audit logs for the Athena check: the repository's test fixtures plus a scenario for every question.

The fixtures (``tests/fixtures``: a CloudTrail log file of real-shaped records, S3 server access
log lines) hold few of the events the query pack asks about (Glue DeleteTable, Lake Formation
grants and GetDataAccess, Athena StartQueryExecution, failed crawlers), so a query over them
alone would pass while returning nothing. The scenario adds raw files in the sources' own
formats, shaped like the fixtures, with known answers:

- CloudTrail (gzipped ``{"Records": [...]}`` under ``AWSLogs/<account>/CloudTrail/<region>/Y/M/D``);
- S3 server access log lines (simple prefix layout, ``<prefix>YYYY-MM-DD-HH-MM-SS-<id>``);
- Glue crawler logs exported from CloudWatch Logs (``<task>/<stream>/000000.gz``).
"""

from __future__ import annotations

import gzip
import json
import shutil
import uuid
from pathlib import Path

ACCOUNT = "111122223333"
REGION = "us-east-1"
DAY1, DAY2 = "2024-03-04", "2024-03-05"
BUCKET = "audit-demo-bucket"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
BOB = f"arn:aws:sts::{ACCOUNT}:assumed-role/DataEngineer/bob"
ANALYST = f"arn:aws:sts::{ACCOUNT}:assumed-role/Analyst/carol"
MALLORY = f"arn:aws:iam::{ACCOUNT}:user/mallory"
# The timeline scenario: one assumed-role principal and one IP, active in both CloudTrail and S3
# access logs on DAY2, interleaved in time; the IP is also used anonymously and the principal
# also from a second IP, so the two timelines differ.
ERIN_ROLE = f"arn:aws:iam::{ACCOUNT}:role/DataScientist"
ERIN = f"arn:aws:sts::{ACCOUNT}:assumed-role/DataScientist/erin"
TIMELINE_IP = "198.18.0.10"


def _event(
    n: int,
    time: str,
    source: str,
    name: str,
    arn: str,
    ip: str,
    params: dict | None,
    error: str | None = None,
    extra: dict | None = None,
) -> dict:
    user_type = "AssumedRole" if ":assumed-role/" in arn else "IAMUser"
    rec = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": user_type,
            "principalId": f"AIDA{n:016d}",
            "arn": arn,
            "accountId": ACCOUNT,
            "accessKeyId": f"AKIA{n:016d}",
            "userName": arn.rsplit("/", 1)[-1],
        },
        "eventTime": time,
        "eventSource": source,
        "eventName": name,
        "awsRegion": REGION,
        "sourceIPAddress": ip,
        "userAgent": "aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64",
        "requestParameters": params,
        "responseElements": None,
        "requestID": str(uuid.UUID(int=n)),
        "eventID": str(uuid.UUID(int=10_000 + n)),
        "readOnly": name.startswith("Get"),
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }
    if error:
        rec["errorCode"] = error
        rec["errorMessage"] = f"User: {arn} is not authorized to perform: {name}"
    rec.update(extra or {})
    return rec


def cloudtrail_records() -> dict[str, list[dict]]:
    """Scenario records by event day."""
    glue, lf, athena = "glue.amazonaws.com", "lakeformation.amazonaws.com", "athena.amazonaws.com"
    table_arn = f"arn:aws:glue:{REGION}:{ACCOUNT}:table/sales/orders"
    day1 = [
        _event(
            1,
            f"{DAY1}T09:15:02Z",
            glue,
            "DeleteTable",
            ALICE,
            "203.0.113.7",
            {"databaseName": "sales", "name": "orders"},
        ),
        _event(
            2,
            f"{DAY1}T09:20:00Z",
            glue,
            "DeleteTable",
            ALICE,
            "203.0.113.7",
            {"databaseName": "sales", "name": "customers"},
        ),
        _event(
            3,
            f"{DAY1}T10:00:00Z",
            lf,
            "GrantPermissions",
            ALICE,
            "10.0.4.20",
            {
                "principal": {"dataLakePrincipalIdentifier": f"arn:aws:iam::{ACCOUNT}:role/Analyst"},
                "resource": {"table": {"databaseName": "sales", "name": "orders"}},
                "permissions": ["SELECT"],
                "permissionsWithGrantOption": [],
            },
        ),
        _event(
            4,
            f"{DAY1}T11:00:00Z",
            lf,
            "GetDataAccess",
            ANALYST,
            "athena.amazonaws.com",
            {
                "tableArn": table_arn,
                "durationSeconds": 3600,
                "supportedPermissionTypes": ["TABLE_PERMISSION"],
            },
            extra={"additionalEventData": {"requesterService": "ATHENA"}},
        ),
        _event(
            5,
            f"{DAY1}T11:05:00Z",
            lf,
            "GetDataAccess",
            ANALYST,
            "athena.amazonaws.com",
            {
                "tableArn": table_arn,
                "durationSeconds": 3600,
                "supportedPermissionTypes": ["TABLE_PERMISSION"],
            },
        ),
        _event(
            6,
            f"{DAY1}T11:00:01Z",
            athena,
            "StartQueryExecution",
            ANALYST,
            "10.0.8.15",
            {"queryString": "SELECT count(*) FROM orders", "workGroup": "primary"},
        ),
        _event(
            7,
            f"{DAY1}T12:30:00Z",
            athena,
            "StartQueryExecution",
            MALLORY,
            "198.51.100.23",
            {"queryString": "SELECT * FROM customers", "workGroup": "primary"},
        ),
        _event(
            8,
            f"{DAY1}T12:31:00Z",
            athena,
            "StartQueryExecution",
            ANALYST,
            "athena.amazonaws.com",
            {"queryString": "SELECT 1", "workGroup": "primary"},
        ),
    ]
    for k in range(4):
        day1.append(
            _event(
                20 + k,
                f"{DAY1}T13:0{k}:00Z",
                glue,
                "GetTable",
                MALLORY,
                "198.51.100.23",
                {"databaseName": "sales", "name": f"t{k}"},
                error="AccessDenied",
            )
        )
    day2 = [
        _event(
            30,
            f"{DAY2}T08:00:00Z",
            glue,
            "BatchDeleteTable",
            BOB,
            "192.0.2.44",
            {"databaseName": "sales", "tablesToDelete": ["orders", "returns"]},
        ),
        _event(
            31,
            f"{DAY2}T08:30:00Z",
            lf,
            "RevokePermissions",
            BOB,
            "10.0.4.21",
            {
                "principal": {"dataLakePrincipalIdentifier": f"arn:aws:iam::{ACCOUNT}:role/Analyst"},
                "resource": {"table": {"databaseName": "sales", "name": "orders"}},
                "permissions": ["SELECT"],
            },
        ),
        _event(
            32,
            f"{DAY2}T09:00:00Z",
            lf,
            "GetDataAccess",
            BOB,
            "glue.amazonaws.com",
            {"tableArn": f"arn:aws:glue:{REGION}:{ACCOUNT}:table/sales/returns", "durationSeconds": 900},
        ),
        _event(
            33,
            f"{DAY2}T09:10:00Z",
            athena,
            "StartQueryExecution",
            BOB,
            "172.16.9.9",
            {"queryString": "SELECT * FROM returns", "workGroup": "etl"},
        ),
        _event(
            34,
            f"{DAY2}T09:11:00Z",
            s3 := "s3.amazonaws.com",
            "GetObject",
            BOB,
            "192.0.2.44",
            {"bucketName": BUCKET, "key": "exports/orders.csv"},
            error="AccessDenied",
        ),
    ]
    del s3
    for k in range(3):
        day2.append(
            _event(
                40 + k,
                f"{DAY2}T14:0{k}:00Z",
                "iam.amazonaws.com",
                "ListRoles",
                MALLORY,
                "198.51.100.23",
                None,
                error="AccessDenied",
            )
        )
    erin = {
        "type": "AssumedRole",
        "principalId": "AROAEXAMPLEERIN:erin",
        "arn": ERIN,
        "accountId": ACCOUNT,
        "accessKeyId": "ASIAEXAMPLEERIN",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROAEXAMPLEERIN",
                "arn": ERIN_ROLE,
                "accountId": ACCOUNT,
                "userName": "DataScientist",
            },
            "attributes": {"creationDate": f"{DAY2}T09:55:00Z", "mfaAuthenticated": "false"},
        },
    }
    obj_arn = f"arn:aws:s3:::{BUCKET}/exports/orders.csv"
    day2 += [
        _event(
            50,
            f"{DAY2}T10:00:00Z",
            "s3.amazonaws.com",
            "GetObject",
            ERIN,
            TIMELINE_IP,
            {"bucketName": BUCKET, "key": "exports/orders.csv"},
            extra={
                "userIdentity": erin,
                "eventCategory": "Data",
                "managementEvent": False,
                "readOnly": True,
                "resources": [
                    {"type": "AWS::S3::Object", "ARN": obj_arn},
                    {"accountId": ACCOUNT, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{BUCKET}"},
                ],
            },
        ),
        _event(
            51,
            f"{DAY2}T10:00:30Z",
            "glue.amazonaws.com",
            "GetTable",
            ERIN,
            TIMELINE_IP,
            {"databaseName": "sales", "name": "orders"},
            extra={"userIdentity": erin},
        ),
        _event(
            52,
            f"{DAY2}T10:02:00Z",
            "glue.amazonaws.com",
            "DeleteTable",
            ERIN,
            "198.18.0.11",
            {"databaseName": "sales", "name": "orders"},
            error="AccessDeniedException",
            extra={"userIdentity": erin},
        ),
    ]
    return {DAY1: day1, DAY2: day2}


def _s3_line(
    time: str,
    ip: str,
    requester: str,
    op: str,
    key: str | None,
    status: int,
    error: str | None,
    sent: int | None,
    n: int,
) -> str:
    uri = f'"GET /{BUCKET}/{key} HTTP/1.1"' if key else f'"GET /{BUCKET}?list-type=2 HTTP/1.1"'
    fields = [
        "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be",
        BUCKET,
        f"[{time} +0000]",
        ip,
        requester,
        f"3E57427F3EXAMPL{n:01d}",
        op,
        key or "-",
        uri,
        str(status),
        error or "-",
        str(sent) if sent is not None else "-",
        "3462992",
        "70",
        "10",
        '"-"',
        '"aws-cli/2.15.0"',
        "-",
        f"hostid{n}EXAMPLE=",
        "SigV4",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "AuthHeader",
        f"{BUCKET}.s3.us-east-1.amazonaws.com",
        "TLSv1.2",
        "-",
        "-",
    ]
    return " ".join(fields)


def s3_access_lines() -> dict[str, list[str]]:
    obj = "exports/orders.csv"
    day1 = [
        _s3_line("04/Mar/2024:10:00:01", "203.0.113.7", ALICE, "REST.GET.OBJECT", obj, 200, None, 3462992, 1),
        _s3_line("04/Mar/2024:10:00:05", "203.0.113.7", ALICE, "REST.GET.OBJECT", obj, 200, None, 3462992, 2),
        _s3_line("04/Mar/2024:10:01:00", "203.0.113.7", ALICE, "REST.HEAD.OBJECT", obj, 200, None, None, 3),
        _s3_line(
            "04/Mar/2024:11:00:00",
            "198.51.100.23",
            MALLORY,
            "REST.GET.OBJECT",
            obj,
            403,
            "AccessDenied",
            243,
            4,
        ),
        _s3_line(
            "04/Mar/2024:11:00:02",
            "198.51.100.23",
            MALLORY,
            "REST.GET.BUCKET",
            None,
            403,
            "AccessDenied",
            243,
            5,
        ),
        _s3_line(
            "04/Mar/2024:12:00:00",
            "10.0.8.15",
            ANALYST,
            "REST.PUT.OBJECT",
            "exports/returns.csv",
            200,
            None,
            None,
            6,
        ),
        _s3_line(
            "04/Mar/2024:12:00:09",
            "10.0.8.15",
            ANALYST,
            "REST.GET.OBJECT",
            "exports/missing.csv",
            404,
            "NoSuchKey",
            310,
            7,
        ),
    ]
    day2 = [
        _s3_line("05/Mar/2024:08:00:00", "192.0.2.44", BOB, "REST.GET.OBJECT", obj, 200, None, 3462992, 8),
        _s3_line("05/Mar/2024:08:00:30", "192.0.2.44", BOB, "REST.DELETE.OBJECT", obj, 204, None, None, 9),
        # the timeline scenario (ERIN, TIMELINE_IP)
        _s3_line("05/Mar/2024:10:00:10", TIMELINE_IP, ERIN, "REST.GET.OBJECT", obj, 200, None, 3462992, 10),
        _s3_line(
            "05/Mar/2024:10:01:00",
            TIMELINE_IP,
            ERIN,
            "REST.PUT.OBJECT",
            "exports/scored.csv",
            200,
            None,
            None,
            11,
        ),
        _s3_line(
            "05/Mar/2024:10:01:30",
            TIMELINE_IP,
            "-",
            "REST.GET.OBJECT",
            "exports/scored.csv",
            403,
            "AccessDenied",
            243,
            12,
        ),
        _s3_line(
            "05/Mar/2024:10:03:00",
            "198.18.0.11",
            ERIN,
            "REST.GET.OBJECT",
            "exports/missing.csv",
            404,
            "NoSuchKey",
            310,
            13,
        ),
    ]
    return {DAY1: day1, DAY2: day2}


CRAWLER_RUNS = {
    # stream (crawler name) -> lines
    "sales_crawler": [
        f"{DAY1}T06:00:00.000Z [8d0c1b1e-0000-4000-8000-000000000001] BENCHMARK : Running Start Crawl for Crawler sales_crawler",
        f"{DAY1}T06:00:10.000Z [8d0c1b1e-0000-4000-8000-000000000001] BENCHMARK : Classification complete, writing results to database sales",
        f"{DAY1}T06:00:11.000Z [8d0c1b1e-0000-4000-8000-000000000001] ERROR : Insufficient Lake Formation permission(s) on orders (Database name: sales)",
        f"{DAY1}T06:00:12.000Z [8d0c1b1e-0000-4000-8000-000000000001] ERROR : Internal Service Exception",
        f"{DAY1}T06:00:20.000Z [8d0c1b1e-0000-4000-8000-000000000001] BENCHMARK : Crawler has finished running and is in state READY",
    ],
    "logs_crawler": [
        f"{DAY1}T07:00:00.000Z [8d0c1b1e-0000-4000-8000-000000000002] BENCHMARK : Running Start Crawl for Crawler logs_crawler",
        f"{DAY1}T07:00:05.000Z [8d0c1b1e-0000-4000-8000-000000000002] INFO : Run Summary For TABLE:",
        f"{DAY1}T07:00:05.001Z [8d0c1b1e-0000-4000-8000-000000000002] INFO : ADD: 1",
        f"{DAY1}T07:00:09.000Z [8d0c1b1e-0000-4000-8000-000000000002] BENCHMARK : Finished writing to Catalog",
        f"{DAY1}T07:00:10.000Z [8d0c1b1e-0000-4000-8000-000000000002] BENCHMARK : Crawler has finished running and is in state READY",
    ],
    "sales_crawler#2": [
        f"{DAY2}T06:00:00.000Z [8d0c1b1e-0000-4000-8000-000000000003] BENCHMARK : Running Start Crawl for Crawler sales_crawler",
        f"{DAY2}T06:00:09.000Z [8d0c1b1e-0000-4000-8000-000000000003] WARN : Table orders has schema changes",
        f"{DAY2}T06:00:10.000Z [8d0c1b1e-0000-4000-8000-000000000003] BENCHMARK : Crawler has finished running and is in state READY",
    ],
}


def write_sources(root: Path, fixtures: Path) -> dict[str, Path]:
    """Write ``root/{cloudtrail,s3access,crawler}`` (fixtures first, then the scenario)."""
    if root.exists():
        shutil.rmtree(root)
    out = {name: root / name for name in ("cloudtrail", "s3access", "crawler")}
    # CloudTrail: the scenario's records as delivered log files, and the fixtures' real-shaped file.
    ct = out["cloudtrail"] / "AWSLogs" / ACCOUNT / "CloudTrail" / REGION
    for day, records in cloudtrail_records().items():
        y, m, d = day.split("-")
        path = ct / y / m / d / f"{ACCOUNT}_CloudTrail_{REGION}_{y}{m}{d}T2355Z_scenario.json.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            json.dump({"Records": records}, fh)
    fixture_ct = (
        fixtures
        / "cloudtrail"
        / "AWSLogs"
        / "111111111111"
        / "CloudTrail"
        / "us-east-1"
        / "2020"
        / "09"
        / "14"
    )
    for src in sorted(fixture_ct.glob("*.json.gz")):
        target = out["cloudtrail"] / src.relative_to(fixtures / "cloudtrail")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
    # S3 server access logs: the well-formed fixture files as log objects, plus the scenario objects.
    s3 = out["s3access"] / "logs"
    s3.mkdir(parents=True, exist_ok=True)
    # Object names carry the delivery time, as AWS names them: shortly after the last line.
    for fixture, delivered in (
        ("current_format.log", "2024-03-15-00-10-00"),
        ("docs_format_example.log", "2019-02-06-00-10-00"),
    ):
        shutil.copyfile(
            fixtures / "s3access" / fixture,
            s3 / f"{delivered}-{fixture.split('.')[0].upper().replace('_', '')}",
        )
    for day, lines in s3_access_lines().items():
        (s3 / f"{day}-23-59-59-SCENARIO{day.replace('-', '')}").write_text("\n".join(lines) + "\n")
    # Crawler logs: one CloudWatch Logs export task, one log stream (folder) per crawler.
    task = out["crawler"] / "exportedlogs" / "5e3d1c5a-0000-4000-8000-00000000abcd"
    streams: dict[str, list[str]] = {}
    for stream, lines in CRAWLER_RUNS.items():
        streams.setdefault(stream.split("#")[0], []).extend(lines)
    for name, lines in streams.items():
        target = task / name / "000000.gz"
        target.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(target, "wt", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
    marker = out["crawler"] / "exportedlogs" / "aws-logs-write-test"
    marker.write_text("Permission Check Successful")
    return out
