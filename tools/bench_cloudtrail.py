"""Time the CloudTrail ingest against DuckDB's bare JSON -> Parquet conversion of the same files.

    python tools/gen_cloudtrail.py --out build/ct-bench --files 400 --records 1000
    python tools/bench_cloudtrail.py --source build/ct-bench --work build/ct-bench-out

DuckDB: ``read_json`` with explicit columns (no inference), unnest the Records, ``COPY ... TO``
Parquet partitioned by event day. auditlake: the whole ``ingest_cloudtrail`` run (list, parse,
dedupe, quality gate, Delta merges, ledger, run record), timed inside the job and end to end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

IDENTITY = ("STRUCT(type VARCHAR, principalId VARCHAR, arn VARCHAR, accountId VARCHAR, accessKeyId VARCHAR, "
            "userName VARCHAR, invokedBy VARCHAR, sessionContext STRUCT(attributes STRUCT(mfaAuthenticated VARCHAR, "
            "creationDate VARCHAR), sessionIssuer STRUCT(type VARCHAR, principalId VARCHAR, arn VARCHAR, "
            "accountId VARCHAR, userName VARCHAR)))")
RECORD = (
    "STRUCT(eventVersion VARCHAR, userIdentity " + IDENTITY + ", eventTime VARCHAR, eventSource VARCHAR, "
    "eventName VARCHAR, awsRegion VARCHAR, sourceIPAddress VARCHAR, userAgent VARCHAR, errorCode VARCHAR, "
    "errorMessage VARCHAR, requestParameters JSON, responseElements JSON, additionalEventData JSON, "
    "requestID VARCHAR, eventID VARCHAR, eventType VARCHAR, eventCategory VARCHAR, readOnly VARCHAR, "
    "managementEvent VARCHAR, resources STRUCT(ARN VARCHAR, accountId VARCHAR, type VARCHAR)[], "
    "recipientAccountId VARCHAR, serviceEventDetails JSON, sharedEventID VARCHAR, vpcEndpointId VARCHAR, "
    "tlsDetails STRUCT(tlsVersion VARCHAR, cipherSuite VARCHAR, clientProvidedHostHeader VARCHAR))"
)


def duckdb_convert(source: Path, out: Path) -> tuple[float, int]:
    import duckdb

    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    glob = str(source / "AWSLogs" / "*" / "CloudTrail" / "*" / "*" / "*" / "*" / "*.json.gz")
    con = duckdb.connect()
    t = time.monotonic()
    con.execute(f"""
        COPY (
          SELECT r.eventID AS event_id, CAST(r.eventTime AS TIMESTAMP) AS event_time,
                 CAST(CAST(r.eventTime AS TIMESTAMP) AS DATE) AS event_date, r.eventVersion AS event_version,
                 r.eventSource AS event_source, r.eventName AS event_name, r.eventType AS event_type,
                 r.eventCategory AS event_category, r.awsRegion AS aws_region,
                 r.recipientAccountId AS recipient_account_id, r.sourceIPAddress AS source_ip_address,
                 r.userAgent AS user_agent, r.errorCode AS error_code, r.errorMessage AS error_message,
                 lower(r.readOnly) = 'true' AS read_only, lower(r.managementEvent) = 'true' AS management_event,
                 r.requestID AS request_id, r.sharedEventID AS shared_event_id, r.vpcEndpointId AS vpc_endpoint_id,
                 r.userIdentity.type AS user_type, r.userIdentity.principalId AS user_principal_id,
                 r.userIdentity.arn AS user_arn, r.userIdentity.accountId AS user_account_id,
                 coalesce(r.userIdentity.userName, r.userIdentity.sessionContext.sessionIssuer.userName) AS user_name,
                 r.userIdentity.accessKeyId AS access_key_id, r.userIdentity.invokedBy AS invoked_by,
                 r.userIdentity.sessionContext.sessionIssuer.type AS session_issuer_type,
                 r.userIdentity.sessionContext.sessionIssuer.arn AS session_issuer_arn,
                 r.userIdentity.sessionContext.sessionIssuer.userName AS session_issuer_user_name,
                 lower(r.userIdentity.sessionContext.attributes.mfaAuthenticated) = 'true' AS session_mfa_authenticated,
                 TRY_CAST(r.userIdentity.sessionContext.attributes.creationDate AS TIMESTAMP) AS session_creation_date,
                 r.tlsDetails.tlsVersion AS tls_version, r.tlsDetails.cipherSuite AS cipher_suite,
                 r.tlsDetails.clientProvidedHostHeader AS client_provided_host_header,
                 CAST(r.requestParameters AS VARCHAR) AS request_parameters,
                 CAST(r.responseElements AS VARCHAR) AS response_elements,
                 CAST(r.additionalEventData AS VARCHAR) AS additional_event_data,
                 CAST(r.serviceEventDetails AS VARCHAR) AS service_event_details,
                 r.resources AS resources, filename AS source_object
          FROM (SELECT unnest(Records) AS r, filename
                FROM read_json('{glob}', columns = {{'Records': '{RECORD}[]'}}, format = 'auto',
                               filename = true, maximum_object_size = 268435456))
        ) TO '{out}' (FORMAT parquet, PARTITION_BY (event_date))
    """)
    seconds = time.monotonic() - t
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{out}/**/*.parquet')").fetchone()[0]
    return seconds, rows


def auditlake_ingest(source: Path, lake: Path) -> dict:
    from auditlake.cli import run_job
    from auditlake.ingest.runner import run_ingest
    from auditlake.sources.cloudtrail import CloudTrailSource

    shutil.rmtree(lake, ignore_errors=True)
    out: dict = {}

    def main(ctx):
        t = time.monotonic()
        rec = run_ingest(ctx, CloudTrailSource())
        out["ingest_seconds"] = time.monotonic() - t
        out["record"] = rec
        return None

    t = time.monotonic()
    status = run_job("ingest_cloudtrail", main, argv=["--source", str(source), "--lake", str(lake)])
    out["job_seconds"] = time.monotonic() - t
    out["status"] = status
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", required=True)
    parser.add_argument("--work", required=True)
    args = parser.parse_args(argv)
    source, work = Path(args.source).resolve(), Path(args.work).resolve()
    duck_seconds, duck_rows = duckdb_convert(source, work / "duckdb")
    result = auditlake_ingest(source, work / "lake")
    rec = result["record"]
    summary = {
        "records": rec.records_read,
        "files": rec.objects_processed,
        "duckdb_seconds": round(duck_seconds, 2),
        "duckdb_rows": duck_rows,
        "ingest_seconds": round(result["ingest_seconds"], 2),
        "job_seconds_incl_session": round(result["job_seconds"], 2),
        "records_per_second": round(rec.records_read / result["ingest_seconds"]),
        "ratio_ingest_to_duckdb": round(result["ingest_seconds"] / duck_seconds, 2),
        "phases": {k: round(v, 2) for k, v in rec.phase_seconds.items()},
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
