"""Synthetic CloudTrail log files, shaped like real deliveries to a log-archive bucket.

Layout (see samples/cloudtrail/key_examples.txt): an organization trail
``AWSLogs/o-<org>/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<16>.json.gz``
for most accounts and a single-account trail ``AWSLogs/<account>/CloudTrail/...`` for one, each file a
gzipped compact ``{"Records":[...]}``; hourly digest files under ``CloudTrail-Digest/``, a few Insights
files under ``CloudTrail-Insight/`` and Config / GuardDuty siblings that are not CloudTrail records.

Planted (all listed in the manifest): records without eventID or with a bad eventTime, one object
named ``.json.gz`` that is not gzip, duplicate deliveries (the records of one file again in a second
file) and late files (a file whose records happened days before its folder date).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path
from typing import Any

from synth.common import Rng, day_counts_add, gzip_bytes, iso_z, scaled, seeded, write_object

ORG = "o-a1b2c3d4e5"
ORG_ACCOUNTS = ["111122223333", "444455556666", "777788889999"]
SINGLE_ACCOUNT = "123456789012"
REGIONS = ["us-east-1", "eu-west-1"]
TRAIL = "org-audit-trail"

DATABASES = ["sales_raw", "sales_curated", "marketing", "finance_gold", "hr_restricted", "clickstream"]
TABLES = [
    "orders",
    "customers",
    "invoices",
    "events",
    "sessions",
    "payroll",
    "campaigns",
    "ledger",
    "page_views",
    "returns",
    "web_logs",
    "daily_revenue",
]
BUCKETS = [
    "datalake-raw-111122223333",
    "datalake-curated-111122223333",
    "athena-results-444455556666",
    "finance-exports-777788889999",
    "shared-landing-zone",
]
ROLES = [
    "DataEngineer",
    "Analyst",
    "GlueServiceRole",
    "AthenaQueryRole",
    "LakeAdmin",
    "AWSReservedSSO_AdministratorAccess_3c2a9e8f1b7d6c54",
    "SecurityAudit",
    "etl-pipeline-prod",
]
USERS = ["alice", "bob", "carol.ops", "dave", "erin-ci", "svc-airflow", "frank"]
WORKGROUPS = ["primary", "analysts", "finance", "etl"]
CRAWLERS = ["raw-orders-crawler", "curated-sales-crawler", "clickstream-crawler", "finance-gold-crawler"]
GLUE_JOBS = ["orders-to-parquet", "sessionize-clickstream", "finance-daily-close", "hr-sync"]

TRUSTED_IPS = ["10.0.{}.{}", "10.12.{}.{}", "172.16.{}.{}", "172.31.{}.{}", "192.168.{}.{}"]
PUBLIC_IPS = ["203.0.113.{}", "198.51.100.{}", "52.94.{}.{}", "34.201.{}.{}", "81.2.{}.{}", "2001:db8::{:x}"]

USER_AGENTS = [
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.79-99.164.amzn2023.x86_64 exe/x86_64.amzn.2023 prompt/off command/glue.get-table",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.10.213 md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69",
    "aws-sdk-java/1.12.661 Linux/5.10.213 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS java/17.0.10 vendor/Amazon.com_Inc. cfg/retry-mode/standard",
    "AWS Internal",
    "console.amazonaws.com",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Safari/605.1.15",
    "[aws-sdk-go-v2/1.25.2 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/athena#1.40.0]",
    "Hive-3.1.3-amzn-9",
]
VERSIONS = [("1.05", 8), ("1.06", 6), ("1.07", 10), ("1.08", 40), ("1.09", 20), ("1.10", 10), ("1.11", 6)]
IDENTITY_TYPES = [
    ("AssumedRole", 62),
    ("AWSService", 12),
    ("IAMUser", 9),
    ("IdentityCenterUser", 4),
    ("FederatedUser", 2),
    ("SAMLUser", 3),
    ("WebIdentityUser", 3),
    ("Root", 1),
    ("AWSAccount", 3),
    ("Unknown", 1),
]

# (eventSource, eventName, weight, readOnly, category)
EVENTS = [
    ("s3.amazonaws.com", "GetObject", 22, True, "Data"),
    ("s3.amazonaws.com", "PutObject", 6, False, "Data"),
    ("s3.amazonaws.com", "ListObjects", 3, True, "Data"),
    ("lakeformation.amazonaws.com", "GetDataAccess", 14, True, "Management"),
    ("athena.amazonaws.com", "StartQueryExecution", 8, False, "Management"),
    ("athena.amazonaws.com", "GetQueryExecution", 8, True, "Management"),
    ("glue.amazonaws.com", "GetTable", 9, True, "Management"),
    ("glue.amazonaws.com", "GetPartitions", 5, True, "Management"),
    ("glue.amazonaws.com", "CreateTable", 1.5, False, "Management"),
    ("glue.amazonaws.com", "UpdateTable", 1.5, False, "Management"),
    ("glue.amazonaws.com", "DeleteTable", 0.6, False, "Management"),
    ("glue.amazonaws.com", "BatchDeleteTable", 0.3, False, "Management"),
    ("glue.amazonaws.com", "CreatePartition", 1.2, False, "Management"),
    ("glue.amazonaws.com", "BatchCreatePartition", 1.2, False, "Management"),
    ("glue.amazonaws.com", "StartJobRun", 1, False, "Management"),
    ("glue.amazonaws.com", "StartCrawler", 0.8, False, "Management"),
    ("lakeformation.amazonaws.com", "GrantPermissions", 0.6, False, "Management"),
    ("lakeformation.amazonaws.com", "RevokePermissions", 0.3, False, "Management"),
    ("lakeformation.amazonaws.com", "BatchGrantPermissions", 0.3, False, "Management"),
    ("sts.amazonaws.com", "AssumeRole", 6, True, "Management"),
    ("kms.amazonaws.com", "Decrypt", 5, True, "Management"),
    ("signin.amazonaws.com", "ConsoleLogin", 0.5, False, "Management"),
    ("iam.amazonaws.com", "AttachRolePolicy", 0.2, False, "Management"),
    ("ec2.amazonaws.com", "DescribeInstances", 2, True, "Management"),
]
PERMISSIONS = ["SELECT", "DESCRIBE", "INSERT", "DELETE", "ALTER", "DROP", "ALL"]

ERRORS = {
    "s3.amazonaws.com": [
        ("AccessDenied", "Access Denied"),
        ("NoSuchKey", "The specified key does not exist."),
    ],
    "glue.amazonaws.com": [
        ("AccessDenied", None),
        ("EntityNotFoundException", "Table not found"),
        ("AlreadyExistsException", "Table already exists."),
    ],
    "lakeformation.amazonaws.com": [
        ("AccessDenied", None),
        ("InvalidInputException", "Permissions modification is invalid."),
    ],
    "athena.amazonaws.com": [
        ("AccessDenied", None),
        ("InvalidRequestException", "Queries of this type are not supported"),
    ],
    "sts.amazonaws.com": [("AccessDenied", None)],
    "kms.amazonaws.com": [("AccessDenied", None)],
    "ec2.amazonaws.com": [
        ("Client.UnauthorizedOperation", "You are not authorized to perform this operation.")
    ],
    "iam.amazonaws.com": [("AccessDenied", None)],
    "signin.amazonaws.com": [],
}


def _ip(rng: Rng, trusted_share: float = 0.7) -> str:
    tpl = rng.choice(TRUSTED_IPS if rng.random() < trusted_share else PUBLIC_IPS)
    if "{:x}" in tpl:
        return tpl.format(rng.randrange(1, 65535))
    return tpl.format(*(rng.randrange(1, 255) for _ in range(tpl.count("{}"))))


class _Ids:
    """Stable principal ids per name, so the same user looks the same across records."""

    def __init__(self, rng: Rng):
        self.rng = rng
        self.cache: dict[tuple[str, str], str] = {}

    def get(self, kind: str, name: str) -> str:
        key = (kind, name)
        if key not in self.cache:
            self.cache[key] = kind + self.rng.chars(17, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        return self.cache[key]


def _identity(
    rng: Rng, ids: _Ids, kind: str, account: str, when: dt.datetime, version: str, event_source: str
) -> tuple[dict[str, Any], str | None]:
    """userIdentity for one record, and the service that invoked the call (if any)."""
    if kind == "AssumedRole":
        role = rng.choice(ROLES)
        session = rng.choice(
            USERS + [f"i-0{rng.hex_lower(16)}", "AWSAthena-" + rng.hex_lower(8), "GlueJobRunnerSession"]
        )
        role_id = ids.get("AROA", role)
        created = when - dt.timedelta(minutes=rng.randrange(1, 600))
        # Old records carry the compact creationDate form (see the user-identity doc fragment).
        creation = (
            created.strftime("%Y%m%dT%H%M%SZ") if version == "1.05" and rng.random() < 0.5 else iso_z(created)
        )
        ident: dict[str, Any] = {
            "type": "AssumedRole",
            "principalId": f"{role_id}:{session}",
            "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
            "accountId": account,
            "accessKeyId": "ASIA" + rng.chars(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": role_id,
                    "arn": f"arn:aws:iam::{account}:role/{role}"
                    if not role.startswith("AWSReserved")
                    else f"arn:aws:iam::{account}:role/aws-reserved/sso.amazonaws.com/{role}",
                    "accountId": account,
                    "userName": role,
                },
                "webIdFederationData": {},
                "attributes": {
                    "creationDate": creation,
                    "mfaAuthenticated": rng.choice(["false", "false", "true"]),
                },
            },
        }
        invoked = None
        if event_source == "lakeformation.amazonaws.com" or rng.random() < 0.08:
            invoked = rng.choice(["athena.amazonaws.com", "glue.amazonaws.com", "AWS Internal"])
            if event_source == "lakeformation.amazonaws.com":
                invoked = rng.choice(["athena.amazonaws.com", "athena.amazonaws.com", "glue.amazonaws.com"])
            ident["invokedBy"] = invoked
        if version >= "1.08" and rng.random() < 0.1:
            ident["sessionContext"]["sourceIdentity"] = rng.choice(USERS)
        return ident, invoked
    if kind == "AWSService":
        svc = rng.choice(
            [
                "glue.amazonaws.com",
                "athena.amazonaws.com",
                "lakeformation.amazonaws.com",
                "cloudtrail.amazonaws.com",
                "s3.amazonaws.com",
            ]
        )
        return {"type": "AWSService", "invokedBy": svc}, svc
    if kind == "IAMUser":
        user = rng.choice(USERS)
        return {
            "type": "IAMUser",
            "principalId": ids.get("AIDA", user),
            "arn": f"arn:aws:iam::{account}:user/{user}",
            "accountId": account,
            "accessKeyId": "AKIA" + rng.chars(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
            "userName": user,
        }, None
    if kind == "IdentityCenterUser":
        return {
            "type": "IdentityCenterUser",
            "accountId": account,
            "onBehalfOf": {
                "userId": rng.uuid4(),
                "identityStoreArn": f"arn:aws:identitystore::{account}:identitystore/d-9067{rng.hex_lower(6)}",
            },
            "credentialId": rng.chars(40),
        }, None
    if kind == "FederatedUser":
        user = rng.choice(USERS)
        return {
            "type": "FederatedUser",
            "principalId": f"{account}:{user}",
            "arn": f"arn:aws:sts::{account}:federated-user/{user}",
            "accountId": account,
            "accessKeyId": "ASIA" + rng.chars(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
            "sessionContext": {
                "sessionIssuer": {
                    "type": "IAMUser",
                    "principalId": ids.get("AIDA", "svc-airflow"),
                    "arn": f"arn:aws:iam::{account}:user/svc-airflow",
                    "accountId": account,
                    "userName": "svc-airflow",
                },
                "attributes": {
                    "creationDate": iso_z(when - dt.timedelta(hours=1)),
                    "mfaAuthenticated": "false",
                },
            },
        }, None
    if kind == "SAMLUser":
        user = rng.choice(USERS) + "@example.com"
        return {
            "type": "SAMLUser",
            "principalId": f"{rng.b64(28)}=:{user}",
            "userName": user,
            "identityProvider": rng.b64(28) + "=",
        }, None
    if kind == "WebIdentityUser":
        return {
            "type": "WebIdentityUser",
            "principalId": f"accounts.google.com:{rng.hex_lower(12)}.apps.googleusercontent.com:{rng.randrange(10**20, 10**21)}",
            "userName": str(rng.randrange(10**20, 10**21)),
            "identityProvider": "accounts.google.com",
        }, None
    if kind == "Root":
        return {
            "type": "Root",
            "principalId": account,
            "arn": f"arn:aws:iam::{account}:root",
            "accountId": account,
            "accessKeyId": "ASIA" + rng.chars(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
        }, None
    if kind == "AWSAccount":
        other = rng.choice(["ANONYMOUS_PRINCIPAL", "999988887777", "210987654321"])
        ident = {
            "type": "AWSAccount",
            "principalId": "" if other == "ANONYMOUS_PRINCIPAL" else ids.get("AIDA", other),
            "accountId": other,
        }
        return ident, None
    return {
        "type": "Unknown",
        "principalId": "",
        "arn": "",
        "accountId": "",
        "accessKeyId": "",
        "userName": rng.choice(USERS),
    }, None


def _table_input(rng: Rng, db: str, table: str) -> dict[str, Any]:
    ncols = rng.randrange(3, 9)
    cols = [
        {"name": f"col_{i}", "type": rng.choice(["string", "bigint", "double", "timestamp", "decimal(18,2)"])}
        for i in range(ncols)
    ]
    return {
        "name": table,
        "tableType": "EXTERNAL_TABLE",
        "parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
        "partitionKeys": [{"name": "dt", "type": "string"}],
        "storageDescriptor": {
            "columns": cols,
            "location": f"s3://{rng.choice(BUCKETS)}/{db}/{table}/",
            "inputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "outputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "serdeInfo": {
                "serializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
            },
            "compressed": False,
            "storedAsSubDirectories": False,
        },
    }


def _partition_input(rng: Rng, db: str, table: str, day: dt.date) -> dict[str, Any]:
    return {
        "values": [day.isoformat()],
        "storageDescriptor": {"location": f"s3://{rng.choice(BUCKETS)}/{db}/{table}/dt={day.isoformat()}/"},
    }


def _lf_resource(rng: Rng, account: str) -> dict[str, Any]:
    db, table = rng.choice(DATABASES), rng.choice(TABLES)
    r = rng.random()
    if r < 0.6:
        return {"table": {"catalogId": account, "databaseName": db, "name": table}}
    if r < 0.8:
        return {
            "tableWithColumns": {
                "catalogId": account,
                "databaseName": db,
                "name": table,
                "columnNames": [f"col_{i}" for i in range(rng.randrange(1, 4))],
            }
        }
    return {"database": {"catalogId": account, "name": db}}


def _principal(rng: Rng, account: str) -> dict[str, str]:
    if rng.random() < 0.8:
        return {"dataLakePrincipalIdentifier": f"arn:aws:iam::{account}:role/{rng.choice(ROLES)}"}
    return {"dataLakePrincipalIdentifier": f"arn:aws:iam::{account}:user/{rng.choice(USERS)}"}


def _query(rng: Rng) -> str:
    db, table = rng.choice(DATABASES), rng.choice(TABLES)
    shapes = [
        f'SELECT * FROM "{db}"."{table}" limit 10',
        f"SELECT count(*) FROM {db}.{table} WHERE dt = '2024-03-0{rng.randrange(1, 7)}'",
        f"SELECT customer_id, sum(amount) AS total\nFROM {db}.{table}\nWHERE dt >= '2024-03-01'\nGROUP BY 1\nORDER BY 2 DESC",
        f"MSCK REPAIR TABLE {db}.{table}",
        f"CREATE TABLE {db}.{table}_ctas WITH (format = 'PARQUET') AS SELECT * FROM {db}.{table}",
        f"SHOW PARTITIONS {db}.{table}",
    ]
    return rng.choice(shapes)


def _params(
    rng: Rng, source: str, name: str, account: str, region: str, when: dt.datetime
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, list[dict[str, str]] | None, dict[str, Any] | None]:
    """requestParameters, responseElements, resources, additionalEventData for one API."""
    db, table = rng.choice(DATABASES), rng.choice(TABLES)
    if source == "s3.amazonaws.com":
        bucket = rng.choice(BUCKETS)
        key = f"{db}/{table}/dt={when.date().isoformat()}/part-{rng.randrange(0, 200):05d}-{rng.uuid4()}.c000.snappy.parquet"
        params: dict[str, Any] = {"bucketName": bucket, "Host": f"{bucket}.s3.{region}.amazonaws.com"}
        res = [{"accountId": account, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}]
        if name != "ListObjects":
            params["key"] = key
            res.insert(0, {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"})
        else:
            params.update({"prefix": f"{db}/{table}/", "list-type": "2", "delimiter": "/"})
        extra = {
            "SignatureVersion": "SigV4",
            "CipherSuite": "TLS_AES_128_GCM_SHA256",
            "bytesTransferredIn": 0 if name != "PutObject" else rng.randrange(1000, 50_000_000),
            "AuthenticationMethod": "AuthHeader",
            "x-amz-id-2": rng.b64(76),
            "bytesTransferredOut": rng.randrange(0, 20_000_000) if name != "PutObject" else 0,
        }
        return params, None, res, extra
    if name == "GetDataAccess":
        arn = f"arn:aws:glue:{region}:{account}:table/{db}/{table}"
        return (
            {
                "tableArn": arn,
                "durationSeconds": 3600,
                "permissions": rng.sample(["SELECT", "DESCRIBE"], rng.randrange(1, 3)),
                "auditContext": {"additionalAuditContext": "{queryId: " + rng.uuid4() + "}"},
                "supportedPermissionTypes": [
                    "TABLE_PERMISSION",
                    "COLUMN_PERMISSION",
                    "CELL_FILTER_PERMISSION",
                ],
            },
            None,
            [{"accountId": account, "type": "AWS::Glue::Table", "ARN": arn}],
            None,
        )
    if name == "StartQueryExecution":
        return (
            {
                "queryString": _query(rng),
                "clientRequestToken": rng.uuid4(),
                "queryExecutionContext": {"database": db, "catalog": "AwsDataCatalog"},
                "resultConfiguration": {
                    "outputLocation": f"s3://athena-results-444455556666/{rng.choice(WORKGROUPS)}/"
                },
                "workGroup": rng.choice(WORKGROUPS),
            },
            {"queryExecutionId": rng.uuid4()},
            None,
            None,
        )
    if name == "GetQueryExecution":
        return {"queryExecutionId": rng.uuid4()}, None, None, None
    if name in ("GetTable", "DeleteTable"):
        return {"catalogId": account, "databaseName": db, "name": table}, None, None, None
    if name == "GetPartitions":
        return (
            {
                "catalogId": account,
                "databaseName": db,
                "tableName": table,
                "expression": "dt >= '2024-03-01'",
                "maxResults": 1000,
            },
            None,
            None,
            None,
        )
    if name == "CreateTable":
        return (
            {"catalogId": account, "databaseName": db, "tableInput": _table_input(rng, db, table)},
            None,
            None,
            None,
        )
    if name == "UpdateTable":
        return (
            {
                "catalogId": account,
                "databaseName": db,
                "tableInput": _table_input(rng, db, table),
                "skipArchive": rng.random() < 0.3,
            },
            None,
            None,
            None,
        )
    if name == "BatchDeleteTable":
        return (
            {
                "catalogId": account,
                "databaseName": db,
                "tablesToDelete": rng.sample(TABLES, rng.randrange(2, 5)),
            },
            {"errors": []},
            None,
            None,
        )
    if name == "CreatePartition":
        return (
            {
                "catalogId": account,
                "databaseName": db,
                "tableName": table,
                "partitionInput": _partition_input(rng, db, table, when.date()),
            },
            None,
            None,
            None,
        )
    if name == "BatchCreatePartition":
        days = [when.date() - dt.timedelta(days=i) for i in range(rng.randrange(2, 6))]
        return (
            {
                "catalogId": account,
                "databaseName": db,
                "tableName": table,
                "partitionInputList": [_partition_input(rng, db, table, d) for d in days],
            },
            {"errors": []},
            None,
            None,
        )
    if name == "StartJobRun":
        return (
            {
                "jobName": rng.choice(GLUE_JOBS),
                "arguments": {"--enable-metrics": "true", "--run_date": when.date().isoformat()},
            },
            {"jobRunId": "jr_" + rng.hex_lower(64)},
            None,
            None,
        )
    if name == "StartCrawler":
        return {"name": rng.choice(CRAWLERS)}, None, None, None
    if name in ("GrantPermissions", "RevokePermissions"):
        perms = rng.sample(PERMISSIONS[:6], rng.randrange(1, 3))
        return (
            {
                "catalogId": account,
                "principal": _principal(rng, account),
                "resource": _lf_resource(rng, account),
                "permissions": perms,
                "permissionsWithGrantOption": perms if rng.random() < 0.2 else [],
            },
            None,
            None,
            None,
        )
    if name == "BatchGrantPermissions":
        entries = [
            {
                "id": str(i),
                "principal": _principal(rng, account),
                "resource": _lf_resource(rng, account),
                "permissions": rng.sample(PERMISSIONS[:4], rng.randrange(1, 3)),
                "permissionsWithGrantOption": [],
            }
            for i in range(rng.randrange(2, 5))
        ]
        return {"catalogId": account, "entries": entries}, {"failures": []}, None, None
    if name == "AssumeRole":
        role = rng.choice(ROLES)
        return (
            {
                "roleArn": f"arn:aws:iam::{account}:role/{role}",
                "roleSessionName": rng.choice(USERS),
                "durationSeconds": 3600,
            },
            {
                "credentials": {
                    "accessKeyId": "ASIA" + rng.chars(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
                    "sessionToken": rng.b64(120),
                    "expiration": when.strftime("%b %d, %Y, %I:%M:%S %p"),
                },
                "assumedRoleUser": {
                    "assumedRoleId": f"AROA{rng.hex_upper(17)}:{rng.choice(USERS)}",
                    "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{rng.choice(USERS)}",
                },
            },
            [{"accountId": account, "type": "AWS::IAM::Role", "ARN": f"arn:aws:iam::{account}:role/{role}"}],
            None,
        )
    if name == "Decrypt":
        return (
            {
                "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
                "encryptionContext": {"aws:s3:arn": f"arn:aws:s3:::{rng.choice(BUCKETS)}"},
            },
            None,
            [
                {
                    "accountId": account,
                    "type": "AWS::KMS::Key",
                    "ARN": f"arn:aws:kms:{region}:{account}:key/{rng.uuid4()}",
                }
            ],
            None,
        )
    if name == "ConsoleLogin":
        return (
            None,
            {"ConsoleLogin": rng.choice(["Success", "Success", "Success", "Failure"])},
            None,
            {
                "LoginTo": "https://console.aws.amazon.com/console/home",
                "MobileVersion": "No",
                "MFAUsed": rng.choice(["Yes", "No"]),
            },
        )
    if name == "AttachRolePolicy":
        return (
            {"roleName": rng.choice(ROLES), "policyArn": "arn:aws:iam::aws:policy/AmazonAthenaFullAccess"},
            None,
            None,
            None,
        )
    return (
        ({"instancesSet": {}, "filterSet": {}, "maxResults": 1000} if rng.random() < 0.5 else None),
        None,
        None,
        None,
    )


def make_record(rng: Rng, ids: _Ids, account: str, region: str, when: dt.datetime) -> dict[str, Any]:
    """One realistic CloudTrail record (compact JSON once dumped)."""
    source, name, _, read_only, category = rng.weighted([(e, e[2]) for e in EVENTS])
    version = rng.weighted(VERSIONS)
    kind = rng.weighted(IDENTITY_TYPES)
    if name == "ConsoleLogin":
        kind = rng.choice(["IAMUser", "AssumedRole", "Root"])
    if name == "GetDataAccess":
        kind = "AssumedRole"
    if kind == "IdentityCenterUser" and version < "1.10":
        version = "1.10"
    ident, invoked = _identity(rng, ids, kind, account, when, version, source)
    params, response, resources, extra = _params(rng, source, name, account, region, when)
    event_type = "AwsConsoleSignIn" if name == "ConsoleLogin" else "AwsApiCall"
    if kind == "AWSService" and rng.random() < 0.3 and source != "s3.amazonaws.com":
        event_type = "AwsServiceEvent"
    if invoked:
        ip, agent = invoked, invoked
    else:
        ip = _ip(rng, 0.55 if name == "StartQueryExecution" else 0.7)
        agent = rng.choice(USER_AGENTS)
        if agent == "AWS Internal":
            ip = "AWS Internal"
    rec: dict[str, Any] = {
        "eventVersion": version,
        "userIdentity": ident,
        "eventTime": iso_z(when),
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-east-1" if source in ("iam.amazonaws.com", "signin.amazonaws.com") else region,
        "sourceIPAddress": ip,
        "userAgent": agent,
    }
    if rng.random() < 0.04 and ERRORS.get(source):
        code, message = rng.choice(ERRORS[source])
        if code == "AccessDenied" and source != "s3.amazonaws.com":
            arn = ident.get("arn") or f"arn:aws:iam::{account}:root"
            code = (
                "AccessDenied"
                if source in ("sts.amazonaws.com", "iam.amazonaws.com", "kms.amazonaws.com")
                else "AccessDeniedException"
            )
            message = (
                f"User: {arn} is not authorized to perform: {source.split('.')[0]}:{name} on resource: "
                f"arn:aws:{source.split('.')[0]}:{region}:{account}:*"
            )
        rec["errorCode"] = code
        if message:
            rec["errorMessage"] = message
        response = None
    rec["requestParameters"] = params
    rec["responseElements"] = response
    if extra is not None:
        rec["additionalEventData"] = extra
    if name != "ConsoleLogin":
        rec["requestID"] = rng.uuid4() if source != "s3.amazonaws.com" else rng.hex_upper(16)
    rec["eventID"] = rng.uuid4()
    # readOnly: boolean normally; older writers put the string "true"/"false".
    if name != "ConsoleLogin":
        rec["readOnly"] = (
            str(read_only).lower() if version in ("1.05", "1.06") and rng.random() < 0.5 else read_only
        )
    if resources:
        rec["resources"] = resources
    rec["eventType"] = event_type
    if version >= "1.06":
        rec["managementEvent"] = category == "Management"
    rec["recipientAccountId"] = account
    if kind == "AWSAccount" or (source == "sts.amazonaws.com" and rng.random() < 0.2):
        rec["sharedEventID"] = rng.uuid4()
    if source == "s3.amazonaws.com" and rng.random() < 0.3:
        rec["vpcEndpointId"] = "vpce-" + rng.hex_lower(17)
    if version >= "1.07":
        rec["eventCategory"] = category
    if version >= "1.08" and not invoked and ip != "AWS Internal":
        rec["tlsDetails"] = {
            "tlsVersion": rng.choice(["TLSv1.2", "TLSv1.3"]),
            "cipherSuite": rng.choice(["ECDHE-RSA-AES128-GCM-SHA256", "TLS_AES_128_GCM_SHA256"]),
            "clientProvidedHostHeader": f"{source.split('.')[0]}.{region}.amazonaws.com",
        }
    if version >= "1.08" and agent.startswith("Mozilla") and rng.random() < 0.5:
        rec["sessionCredentialFromConsole"] = "true"
    return rec


def _digest(
    rng: Rng, account: str, region: str, end: dt.datetime, files: list[str], bucket: str
) -> dict[str, Any]:
    return {
        "awsAccountId": account,
        "digestStartTime": iso_z(end - dt.timedelta(hours=1)),
        "digestEndTime": iso_z(end),
        "digestS3Bucket": bucket,
        "digestS3Object": "",
        "digestPublicKeyFingerprint": rng.hex_lower(32),
        "digestSignatureAlgorithm": "SHA256withRSA",
        "newestEventTime": iso_z(end - dt.timedelta(minutes=3)),
        "oldestEventTime": iso_z(end - dt.timedelta(minutes=64)),
        "previousDigestS3Bucket": bucket,
        "previousDigestS3Object": "",
        "previousDigestHashValue": rng.hex_lower(64),
        "previousDigestHashAlgorithm": "SHA-256",
        "previousDigestSignature": rng.hex_lower(512),
        "logFiles": [
            {
                "s3Bucket": bucket,
                "s3Object": f,
                "hashValue": rng.hex_lower(64),
                "hashAlgorithm": "SHA-256",
                "newestEventTime": iso_z(end - dt.timedelta(minutes=5)),
                "oldestEventTime": iso_z(end - dt.timedelta(minutes=60)),
            }
            for f in files
        ],
    }


def _insight_pair(rng: Rng, account: str, region: str, start: dt.datetime) -> list[dict[str, Any]]:
    shared = rng.uuid4()
    source, name = rng.choice(
        [
            ("glue.amazonaws.com", "DeleteTable"),
            ("lakeformation.amazonaws.com", "GetDataAccess"),
            ("iam.amazonaws.com", "AttachUserPolicy"),
            ("s3.amazonaws.com", "PutBucketPolicy"),
        ]
    )
    kind = rng.choice(["ApiCallRateInsight", "ApiErrorRateInsight"])
    out = []
    for state, t in (("Start", start), ("End", start + dt.timedelta(minutes=rng.randrange(5, 50)))):
        details: dict[str, Any] = {
            "state": state,
            "eventSource": source,
            "eventName": name,
            "insightType": kind,
        }
        if kind == "ApiErrorRateInsight":
            details["errorCode"] = "AccessDeniedException"
        details["insightContext"] = {
            "statistics": {
                "baseline": {"average": round(rng.random(), 4)},
                "insight": {"average": float(rng.randrange(2, 40))},
                **(
                    {"insightDuration": rng.randrange(1, 60), "baselineDuration": 11459}
                    if state == "End"
                    else {}
                ),
            },
            "attributions": [
                {
                    "attribute": "userIdentityArn",
                    "insight": [
                        {"value": f"arn:aws:iam::{account}:role/{rng.choice(ROLES)}", "average": 2.0}
                    ],
                    "baseline": [],
                }
            ],
        }
        out.append(
            {
                "eventVersion": "1.07",
                "eventTime": iso_z(t.replace(second=0)),
                "awsRegion": region,
                "eventID": rng.uuid4(),
                "eventType": "AwsCloudTrailInsight",
                "recipientAccountId": account,
                "sharedEventID": shared,
                "insightDetails": details,
                "eventCategory": "Insight",
            }
        )
    return out


def _dump(records: list[dict[str, Any]]) -> bytes:
    return json.dumps({"Records": records}, separators=(",", ":")).encode()


def generate(root: Path, *, seed: int, scale: float, days: list[dt.date]) -> dict[str, Any]:
    """Write the CloudTrail bucket under ``root``; return its manifest section."""
    rng = seeded(seed, "cloudtrail")
    ids = _Ids(seeded(seed, "cloudtrail-ids"))
    target_records = scaled(60_000, scale, 200)
    mean_per_file = 150
    n_files = max(6, target_records // mean_per_file)
    trails = [(acct, f"AWSLogs/{ORG}/{acct}") for acct in ORG_ACCOUNTS] + [
        (SINGLE_ACCOUNT, f"AWSLogs/{SINGLE_ACCOUNT}")
    ]
    slots = [(acct, base, region) for acct, base in trails for region in REGIONS]

    events_by_date: dict[str, int] = {}
    stats: dict[str, Counter] = {
        k: Counter() for k in ("identity_types", "event_names", "event_versions", "error_codes")
    }
    planted: dict[str, list[Any]] = {
        "malformed_records": [],
        "corrupt_objects": [],
        "duplicate_objects": [],
        "late_objects": [],
    }
    counts = Counter()
    clean_files: list[tuple[str, list[dict[str, Any]], dt.datetime]] = []
    digests: dict[tuple[str, str, str, dt.datetime], list[str]] = {}

    def key_for(acct: str, base: str, region: str, delivered: dt.datetime) -> str:
        d = delivered
        stamp = d.strftime("%Y%m%dT%H%MZ")
        return f"{base}/CloudTrail/{region}/{d:%Y/%m/%d}/{acct}_CloudTrail_{region}_{stamp}_{rng.chars(16)}.json.gz"

    def account_records(recs: list[dict[str, Any]]) -> None:
        for r in recs:
            stats["identity_types"][r["userIdentity"]["type"]] += 1
            stats["event_names"][f"{r['eventSource'].split('.')[0]}:{r['eventName']}"] += 1
            stats["event_versions"][r["eventVersion"]] += 1
            if "errorCode" in r:
                stats["error_codes"][r["errorCode"]] += 1
            day_counts_add(events_by_date, dt.date.fromisoformat(r["eventTime"][:10]))

    seconds_in_window = len(days) * 86400
    malformed_every = 400  # about 0.25 % of records
    record_no = 0
    for i in range(n_files):
        acct, base, region = slots[i % len(slots)]
        offset = int((i + rng.random()) * seconds_in_window / n_files)
        delivered = dt.datetime.combine(days[0], dt.time()) + dt.timedelta(seconds=offset)
        n = max(1, int(rng.expovariate(1 / mean_per_file)))
        n = min(n, mean_per_file * 6)
        late = i >= n_files // 2 and (i - n_files // 2) % 97 == 0 and delivered.date() > days[0]
        recs = []
        for _ in range(n):
            if late:
                when = delivered - dt.timedelta(days=rng.choice([2, 3]), seconds=rng.randrange(0, 3600))
            else:
                when = delivered - dt.timedelta(seconds=rng.randrange(30, 900))
            recs.append(make_record(rng, ids, acct, region, when))
        recs.sort(key=lambda r: r["eventTime"])
        key = key_for(acct, base, region, delivered)
        bad_here = []
        if not late:
            for j in range(len(recs)):
                record_no += 1
                if record_no % malformed_every == 0:
                    kind = rng.choice(["missing_event_id", "bad_event_time", "missing_event_time"])
                    if kind == "missing_event_id":
                        del recs[j]["eventID"]
                    elif kind == "bad_event_time":
                        recs[j]["eventTime"] = rng.choice(["2024-13-45T99:61:00Z", "yesterday", "1709251200"])
                    else:
                        del recs[j]["eventTime"]
                    bad_here.append(j)
                    planted["malformed_records"].append({"object": key, "index": j, "reason": kind})
        good = [r for j, r in enumerate(recs) if j not in bad_here]
        account_records(good)
        counts["records_valid"] += len(good)
        counts["records_malformed"] += len(bad_here)
        if late:
            planted["late_objects"].append(
                {
                    "object": key,
                    "folder_date": delivered.date().isoformat(),
                    "event_dates": sorted({r["eventTime"][:10] for r in recs}),
                    "records": len(recs),
                }
            )
        modified = delivered + dt.timedelta(minutes=rng.randrange(1, 5))
        write_object(root, key, gzip_bytes(_dump(recs)), modified)
        counts["log_objects"] += 1
        if not bad_here:
            clean_files.append((key, recs, delivered))
        digests.setdefault(
            (acct, base, region, delivered.replace(minute=0, second=0) + dt.timedelta(hours=1)), []
        ).append(key)

    # Duplicate deliveries: the same records again in a second file of the same folder.
    for key, recs, delivered in clean_files[min(7, len(clean_files) - 1) :: 60]:
        acct, base, region = next(s for s in slots if key.startswith(f"{s[1]}/CloudTrail/{s[2]}/"))
        again = delivered + dt.timedelta(minutes=rng.randrange(5, 20))
        if again.date() != delivered.date():
            again = delivered
        dup_key = key_for(acct, base, region, again)
        write_object(root, dup_key, gzip_bytes(_dump(recs)), again + dt.timedelta(minutes=3))
        planted["duplicate_objects"].append({"object": dup_key, "copy_of": key, "records": len(recs)})
        counts["log_objects"] += 1
        counts["records_duplicate"] += len(recs)

    # One object named like a log file that is not gzip (a truncated upload rewritten as text).
    acct, base, region = slots[1]
    corrupt_at = dt.datetime.combine(days[-1], dt.time(13, 5))
    corrupt_key = key_for(acct, base, region, corrupt_at)
    write_object(
        root, corrupt_key, b'{"Records":[{"eventVersion":"1.08","userIdentity":{"type":"IAMUser"', corrupt_at
    )
    planted["corrupt_objects"].append(corrupt_key)
    counts["log_objects"] += 1

    # Insight files: start/end pairs, a different record shape.
    insight_records = 0
    insights_by_date: dict[str, int] = {}
    for k, day in enumerate(days):
        acct, base, region = slots[(k * 3) % len(slots)]
        start = dt.datetime.combine(day, dt.time(9 + k, 0))
        recs = _insight_pair(rng, acct, region, start)
        key = (
            f"{base}/CloudTrail-Insight/{region}/{day:%Y/%m/%d}/"
            f"{acct}_CloudTrail-Insight_{region}_{start + dt.timedelta(hours=1):%Y%m%dT%H%MZ}_{rng.chars(16)}.json.gz"
        )
        write_object(root, key, gzip_bytes(_dump(recs)), start + dt.timedelta(hours=1))
        insight_records += len(recs)
        for r in recs:
            day_counts_add(insights_by_date, dt.date.fromisoformat(r["eventTime"][:10]))
        counts["insight_objects"] += 1

    # Hourly digests (skipped: not records) and siblings of other services.
    for (acct, base, region, end), files in sorted(digests.items()):
        key = (
            f"{base}/CloudTrail-Digest/{region}/{end:%Y/%m/%d}/"
            f"{acct}_CloudTrail-Digest_{region}_{TRAIL}_{region}_{end:%Y%m%dT%H%M%SZ}.json.gz"
        )
        body = _digest(rng, acct, region, end, files, "org-log-archive")
        body["digestS3Object"] = key
        write_object(
            root,
            key,
            gzip_bytes(json.dumps(body, separators=(",", ":")).encode()),
            end + dt.timedelta(minutes=8),
        )
        counts["digest_objects"] += 1
    acct = ORG_ACCOUNTS[0]
    day = days[0]
    config_key = (
        f"AWSLogs/{acct}/Config/us-east-1/{day.year}/{day.month}/{day.day}/ConfigHistory/"
        f"{acct}_Config_us-east-1_ConfigHistory_AWS::Glue::Job_{day:%Y%m%d}T011226Z_{day:%Y%m%d}T025845Z_1.json.gz"
    )
    write_object(
        root,
        config_key,
        gzip_bytes(b'{"fileVersion":"1.0","configurationItems":[]}'),
        dt.datetime.combine(day, dt.time(3, 0)),
    )
    gd_key = f"AWSLogs/{acct}/GuardDuty/us-east-1/{day:%Y/%m/%d}/{rng.uuid4()}.jsonl.gz"
    write_object(
        root,
        gd_key,
        gzip_bytes(b'{"schemaVersion":"2.0","type":"Recon:EC2/PortProbeUnprotectedPort"}\n'),
        dt.datetime.combine(day, dt.time(4, 0)),
    )
    counts["other_objects"] += 2

    read = (
        counts["records_valid"]
        + counts["records_duplicate"]
        + counts["records_malformed"]
        + len(planted["corrupt_objects"])
        + insight_records
    )
    quarantined = counts["records_malformed"] + len(planted["corrupt_objects"])
    skipped = counts["digest_objects"] + counts["other_objects"]
    listed = counts["log_objects"] + counts["insight_objects"] + skipped
    return {
        "root": root.name,
        "expected": {
            "objects_listed": listed,
            "objects_skipped": skipped,
            "objects_processed": counts["log_objects"] + counts["insight_objects"],
            "records_read": read,
            "records_loaded": counts["records_valid"] + insight_records,
            "records_quarantined": quarantined,
            "records_duplicate": counts["records_duplicate"],
            "loaded_by_table": {
                "cloudtrail_events": counts["records_valid"],
                "cloudtrail_insights": insight_records,
            },
        },
        "objects": {
            "log": counts["log_objects"],
            "insight": counts["insight_objects"],
            "digest": counts["digest_objects"],
            "other_service": counts["other_objects"],
        },
        "loaded_by_date": {
            "cloudtrail_events": dict(sorted(events_by_date.items())),
            "cloudtrail_insights": dict(sorted(insights_by_date.items())),
        },
        "planted": planted,
        "mix": {k: dict(sorted(v.items())) for k, v in stats.items()},
        "notes": "a corrupt object counts as one quarantined record; duplicate deliveries repeat only clean files; "
        "malformed records are never duplicated; late files hold no malformed records",
    }
