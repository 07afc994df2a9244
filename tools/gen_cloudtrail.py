"""Generate a synthetic CloudTrail delivery tree for benchmarks (minimal; deterministic by seed).

    python tools/gen_cloudtrail.py --out build/ct-bench --files 400 --records 1000

Writes ``AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<ts>_<id>.json.gz``
files, each ``{"Records": [...]}`` with a mix of identity types and eventVersions 1.05-1.11, plus
one digest file per day (which the ingest must skip).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import random
import uuid
from pathlib import Path

ACCOUNTS = ["111111111111", "222222222222", "333333333333"]
REGIONS = ["us-east-1", "eu-west-1"]
VERSIONS = ["1.05", "1.08", "1.09", "1.10", "1.11"]
APIS = [
    ("glue.amazonaws.com", "GetTable", True), ("glue.amazonaws.com", "DeleteTable", False),
    ("s3.amazonaws.com", "GetObject", True), ("s3.amazonaws.com", "PutObject", False),
    ("athena.amazonaws.com", "StartQueryExecution", False), ("sts.amazonaws.com", "AssumeRole", True),
    ("lakeformation.amazonaws.com", "GetDataAccess", True), ("iam.amazonaws.com", "AttachRolePolicy", False),
]


def identity(rng: random.Random, account: str) -> dict:
    kind = rng.choice(["IAMUser", "AssumedRole", "AssumedRole", "AWSService", "Root"])
    if kind == "IAMUser":
        name = f"user{rng.randrange(50)}"
        return {"type": kind, "principalId": "AIDA" + name.upper(), "arn": f"arn:aws:iam::{account}:user/{name}",
                "accountId": account, "accessKeyId": "AKIA" + uuid.UUID(int=rng.getrandbits(128)).hex[:16].upper(),
                "userName": name}
    if kind == "AssumedRole":
        role = f"role{rng.randrange(20)}"
        return {"type": kind, "principalId": f"AROA{role.upper()}:session", "arn": f"arn:aws:sts::{account}:assumed-role/{role}/s",
                "accountId": account, "accessKeyId": "ASIA" + uuid.UUID(int=rng.getrandbits(128)).hex[:16].upper(),
                "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROA" + role.upper(),
                                                     "arn": f"arn:aws:iam::{account}:role/{role}",
                                                     "accountId": account, "userName": role},
                                   "webIdFederationData": {},
                                   "attributes": {"creationDate": "2024-03-01T00:00:00Z", "mfaAuthenticated": "false"}}}
    if kind == "AWSService":
        return {"type": kind, "invokedBy": "athena.amazonaws.com"}
    return {"type": "Root", "principalId": account, "arn": f"arn:aws:iam::{account}:root", "accountId": account}


def record(rng: random.Random, account: str, region: str, when: dt.datetime) -> dict:
    source, name, read_only = rng.choice(APIS)
    version = rng.choice(VERSIONS)
    rec = {
        "eventVersion": version,
        "userIdentity": identity(rng, account),
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": source, "eventName": name, "awsRegion": region,
        "sourceIPAddress": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
        "userAgent": "aws-sdk-java/1.12.0 Linux/5.10 OpenJDK_64-Bit_Server_VM/17",
        "requestParameters": {"databaseName": f"db{rng.randrange(10)}", "name": f"t{rng.randrange(100)}",
                              "catalogId": account},
        "responseElements": None if read_only else {"ok": True},
        "requestID": str(uuid.UUID(int=rng.getrandbits(128))),
        "eventID": str(uuid.UUID(int=rng.getrandbits(128))),
        # readOnly is a string in some versions and a boolean in others.
        "readOnly": ("true" if read_only else "false") if version == "1.05" else read_only,
        "resources": [{"accountId": account, "type": "AWS::Glue::Table", "ARN": f"arn:aws:glue:{region}:{account}:table/db/t"}],
        "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": account,
        "eventCategory": "Management",
    }
    if int(version.split(".")[1]) >= 8:  # minor as a number, never a float or a string
        rec["tlsDetails"] = {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                             "clientProvidedHostHeader": f"{source.split('.')[0]}.{region}.amazonaws.com"}
    return rec


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True)
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    start = dt.datetime(2024, 3, 1)
    root = Path(args.out)
    for i in range(args.files):
        account, region = ACCOUNTS[i % len(ACCOUNTS)], REGIONS[i % len(REGIONS)]
        when = start + dt.timedelta(minutes=15 * i)
        folder = root / "AWSLogs" / account / "CloudTrail" / region / f"{when:%Y/%m/%d}"
        folder.mkdir(parents=True, exist_ok=True)
        records = [record(rng, account, region, when - dt.timedelta(seconds=rng.randrange(900)))
                   for _ in range(args.records)]
        name = f"{account}_CloudTrail_{region}_{when:%Y%m%dT%H%M}Z_{uuid.UUID(int=rng.getrandbits(128)).hex[:16]}.json.gz"
        (folder / name).write_bytes(gzip.compress(json.dumps({"Records": records}, separators=(",", ":")).encode(), 6))
        if i % 96 == 0:
            digest = root / "AWSLogs" / account / "CloudTrail-Digest" / region / f"{when:%Y/%m/%d}"
            digest.mkdir(parents=True, exist_ok=True)
            (digest / f"{account}_CloudTrail-Digest_{region}_trail_{region}_{when:%Y%m%dT%H%M%S}Z.json.gz").write_bytes(
                gzip.compress(json.dumps({"awsAccountId": account, "logFiles": []}).encode()))
    print(f"wrote {args.files} files x {args.records} records under {root}")


if __name__ == "__main__":
    main()
