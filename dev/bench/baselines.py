"""Baselines the benchmark compares the ingest jobs with; each runs as its own measured process.

    python -m bench.baselines floor  --source cloudtrail --files FILES.json --out DIR
    python -m bench.baselines duckdb --source s3access   --files FILES.json --out DIR
    python -m bench.baselines spark  --source cloudtrail --files FILES.json --out DIR

floor: Spark (the same session settings as the jobs) reads the same bytes and writes them as
Parquet without parsing: one row per line (one per file for CloudTrail, whose files are one JSON
document); Firehose objects, gzip without an extension, as binary content.
duckdb: the bare conversion to Parquet partitioned by day, no quarantine, no dedupe, no commit
protocol: CloudTrail with ``read_json`` and explicit columns, S3 access lines with one regular
expression, crawler export lines with a regular expression and Firehose envelopes with ``read_json``.
spark: Spark's own bare conversion of the same bytes, in the same session settings as the jobs, to
Parquet partitioned by day: CloudTrail with the JSON reader and an explicit schema (no inference),
S3 access lines with the same one regular expression as DuckDB, crawler export lines likewise
(Firehose objects, gzip without an extension, are left out: Spark has no reader for them). This is
the yardstick of the ingest overhead: what the job adds over Spark parsing and writing the data.
Prints one JSON line: {"rows": n}.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

CT_RECORD = (
    "STRUCT(eventVersion VARCHAR, "
    "userIdentity STRUCT(type VARCHAR, principalId VARCHAR, arn VARCHAR, accountId VARCHAR, accessKeyId VARCHAR, "
    "userName VARCHAR, invokedBy VARCHAR, sessionContext STRUCT(sessionIssuer STRUCT(type VARCHAR, arn VARCHAR, "
    "userName VARCHAR), attributes STRUCT(creationDate VARCHAR, mfaAuthenticated VARCHAR))), "
    "eventTime VARCHAR, eventSource VARCHAR, eventName VARCHAR, awsRegion VARCHAR, sourceIPAddress VARCHAR, "
    "userAgent VARCHAR, errorCode VARCHAR, errorMessage VARCHAR, requestParameters JSON, responseElements JSON, "
    "additionalEventData JSON, serviceEventDetails JSON, requestID VARCHAR, eventID VARCHAR, readOnly VARCHAR, "
    "resources STRUCT(ARN VARCHAR, accountId VARCHAR, type VARCHAR)[], eventType VARCHAR, managementEvent BOOLEAN, "
    "recipientAccountId VARCHAR, sharedEventID VARCHAR, vpcEndpointId VARCHAR, eventCategory VARCHAR, "
    "tlsDetails STRUCT(tlsVersion VARCHAR, cipherSuite VARCHAR, clientProvidedHostHeader VARCHAR))[]"
)

CT_SELECT = """
SELECT r.eventID AS event_id,
       try_strptime(r.eventTime, '%Y-%m-%dT%H:%M:%SZ') AS event_time,
       CAST(try_strptime(r.eventTime, '%Y-%m-%dT%H:%M:%SZ') AS DATE) AS event_date,
       r.eventVersion AS event_version, r.eventSource AS event_source, r.eventName AS event_name,
       r.eventType AS event_type, r.eventCategory AS event_category, r.awsRegion AS aws_region,
       r.recipientAccountId AS recipient_account_id, r.sourceIPAddress AS source_ip_address,
       r.userAgent AS user_agent, r.errorCode AS error_code, r.errorMessage AS error_message,
       try_cast(r.readOnly AS BOOLEAN) AS read_only, r.managementEvent AS management_event,
       r.requestID AS request_id, r.sharedEventID AS shared_event_id, r.vpcEndpointId AS vpc_endpoint_id,
       r.userIdentity.type AS user_type, r.userIdentity.principalId AS user_principal_id,
       r.userIdentity.arn AS user_arn, r.userIdentity.accountId AS user_account_id,
       coalesce(r.userIdentity.userName, r.userIdentity.sessionContext.sessionIssuer.userName) AS user_name,
       r.userIdentity.accessKeyId AS access_key_id, r.userIdentity.invokedBy AS invoked_by,
       r.userIdentity.sessionContext.sessionIssuer.type AS session_issuer_type,
       r.userIdentity.sessionContext.sessionIssuer.arn AS session_issuer_arn,
       r.tlsDetails.tlsVersion AS tls_version, r.tlsDetails.cipherSuite AS cipher_suite,
       CAST(r.requestParameters AS VARCHAR) AS request_parameters,
       CAST(r.responseElements AS VARCHAR) AS response_elements,
       CAST(r.additionalEventData AS VARCHAR) AS additional_event_data,
       r.resources AS resources, filename AS source_object
FROM (SELECT unnest(Records) AS r, filename
      FROM read_json($files, columns={'Records': '__RECORD__'}, compression='gzip', filename=true,
                     maximum_object_size=536870912))
"""

# One regular expression over the whole line (RE2): the requester may hold spaces, so it is lazy and
# anchored by the request id and operation that follow; fields after the TLS version are optional.
S3_REGEX = (
    r"^(\S+) (\S+) \[([^\]]+)\] (\S+) (.+?) ([0-9A-Z]{8,}|-) ([A-Z0-9_]+\.[A-Z0-9_.]+) (\S+) "
    r'("[A-Z]+ .*? HTTP/\d\.\d"|"[^"]*"|-) (\S+) (\S+) (\S+) (\S+) (\S+) (\S+) ("(?:[^"]|"[^ ])*"|-) ("(?:[^"]|"[^ ])*"*|-) (\S+)'
    r"(?: (\S+) (\S+) (\S+) (\S+) (\S+) (\S+))?(?: (\S+) (\S+))?(.*)$"
)
S3_GROUPS = [
    "bucket_owner",
    "bucket",
    "time",
    "remote_ip",
    "requester",
    "request_id",
    "operation",
    "key",
    "request_uri",
    "http_status",
    "error_code",
    "bytes_sent",
    "object_size",
    "total_time",
    "turn_around_time",
    "referer",
    "user_agent",
    "version_id",
    "host_id",
    "signature_version",
    "cipher_suite",
    "auth_type",
    "host_header",
    "tls_version",
    "access_point_arn",
    "acl_required",
    "rest",
]

S3_SELECT = """
WITH lines AS (
  SELECT line, filename FROM read_csv($files, columns={'line': 'VARCHAR'}, delim=E'\\x01', quote='', escape='',
                                     header=false, auto_detect=false, filename=true, compression='none',
                                     strict_mode=false, null_padding=true)
), p AS (SELECT regexp_extract(line, $regex, $groups) AS f, filename, sha256(line) AS line_hash FROM lines)
SELECT nullif(f.bucket_owner, '') AS bucket_owner, f.bucket AS bucket,
       timezone('UTC', try_strptime(f.time, '%d/%b/%Y:%H:%M:%S %z')) AS request_time,
       CAST(timezone('UTC', try_strptime(f.time, '%d/%b/%Y:%H:%M:%S %z')) AS DATE) AS request_date,
       nullif(f.remote_ip, '-') AS remote_ip, nullif(f.requester, '-') AS requester,
       nullif(f.request_id, '-') AS request_id, f.operation AS operation,
       url_decode(nullif(f.key, '-')) AS key, nullif(trim(f.request_uri, '"'), '-') AS request_uri,
       try_cast(f.http_status AS INTEGER) AS http_status, nullif(f.error_code, '-') AS error_code,
       try_cast(f.bytes_sent AS BIGINT) AS bytes_sent, try_cast(f.object_size AS BIGINT) AS object_size,
       try_cast(f.total_time AS INTEGER) AS total_time_ms, try_cast(f.turn_around_time AS INTEGER) AS turn_around_time_ms,
       nullif(trim(f.referer, '"'), '-') AS referer, nullif(trim(f.user_agent, '"'), '-') AS user_agent,
       nullif(f.version_id, '-') AS version_id, nullif(f.host_id, '') AS host_id,
       nullif(f.signature_version, '') AS signature_version, nullif(f.cipher_suite, '') AS cipher_suite,
       nullif(f.auth_type, '') AS auth_type, nullif(f.host_header, '') AS host_header,
       nullif(f.tls_version, '') AS tls_version, nullif(nullif(f.access_point_arn, ''), '-') AS access_point_arn,
       f.acl_required = 'Yes' AS acl_required, filename AS source_object, line_hash
FROM p
"""

CRAWLER_EXPORT_SELECT = """
WITH lines AS (
  SELECT line, filename FROM read_csv($files, columns={'line': 'VARCHAR'}, delim=E'\\x01', quote='', escape='',
                                     header=false, auto_detect=false, filename=true, compression='gzip',
                                     strict_mode=false, null_padding=true)
), p AS (SELECT regexp_extract(line, '^(\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z) (?:\\[([^\\]]+)\\] (\\w+) : )?(.*)$',
                               ['ts', 'run_id', 'level', 'message']) AS f, filename FROM lines)
SELECT split_part(filename, '/', -2) AS crawler_name, nullif(f.run_id, '') AS run_id,
       try_strptime(f.ts, '%Y-%m-%dT%H:%M:%S.%gZ') AS event_time,
       CAST(try_strptime(f.ts, '%Y-%m-%dT%H:%M:%S.%gZ') AS DATE) AS event_date,
       nullif(f.level, '') AS level, f.message AS message, filename AS source_object
FROM p
"""

CRAWLER_FIREHOSE_SELECT = """
SELECT e.logStream AS crawler_name, regexp_extract(ev.message, '^\\[([^\\]]+)\\]', 1) AS run_id,
       make_timestamp(ev.timestamp * 1000) AS event_time, CAST(make_timestamp(ev.timestamp * 1000) AS DATE) AS event_date,
       regexp_extract(ev.message, '^\\[[^\\]]+\\] (\\w+) : ', 1) AS level, ev.message AS message,
       e.filename AS source_object
FROM (SELECT *, unnest(logEvents) AS ev
      FROM read_json($files, compression='gzip', format='unstructured', filename=true, ignore_errors=true,
                     columns={'messageType': 'VARCHAR', 'logStream': 'VARCHAR',
                              'logEvents': 'STRUCT(id VARCHAR, timestamp BIGINT, message VARCHAR)[]'})
      WHERE messageType = 'DATA_MESSAGE') e
"""


def duckdb_convert(source: str, files: dict[str, list[str]], out: Path) -> int:
    """DuckDB's bare conversion of ``files`` (by kind, as in FILES.json) to Parquet under ``out``; rows written."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {os.cpu_count() or 2}")
    con.execute("SET preserve_insertion_order = false")
    rows = 0

    def copy(select: str, params: dict, target: Path, partition: str) -> int:
        con.execute(
            f"COPY ({select}) TO '{target}' (FORMAT parquet, PARTITION_BY ({partition}), OVERWRITE_OR_IGNORE)",
            params,
        )
        return con.execute(f"SELECT count(*) FROM read_parquet('{target}/**/*.parquet')").fetchone()[0]

    if source == "cloudtrail":
        rows += copy(
            CT_SELECT.replace("__RECORD__", CT_RECORD),
            {"files": files["json"]},
            out / "cloudtrail_events",
            "event_date",
        )
    elif source == "s3access":
        rows += copy(
            S3_SELECT,
            {"files": files["text"], "regex": S3_REGEX, "groups": S3_GROUPS},
            out / "s3_access_logs",
            "request_date",
        )
    elif source == "crawler":
        if files.get("text_gz"):
            rows += copy(
                CRAWLER_EXPORT_SELECT, {"files": files["text_gz"]}, out / "crawler_export", "event_date"
            )
        if files.get("binary_gz"):
            rows += copy(
                CRAWLER_FIREHOSE_SELECT, {"files": files["binary_gz"]}, out / "crawler_firehose", "event_date"
            )
    return rows


def _baseline_config() -> dict[str, Any]:
    """The local configuration with a large batch's settings (``ingest.large_batch.spark_conf``)
    as the session's own, whatever the size of the set: code generation on, as Spark ships
    (conf/local.yaml turns it off for auditlake's small local runs), and the input splits of a
    large batch's ingest. The settings for what a baseline does not do (a cache, a merge) change
    nothing there."""
    from auditlake import config as config_mod

    cfg = config_mod.load_config("local")
    large = config_mod.get(cfg, "ingest.large_batch.spark_conf") or {}
    return config_mod.deep_merge(cfg, {"spark": {"conf": dict(large)}})


def _floor(source: str, files: dict[str, list[str]], out: Path) -> int:
    from auditlake.ingest.objects import spark_path
    from auditlake.session import build_session

    spark = build_session(_baseline_config(), "bench_floor")
    rows = 0
    try:
        for kind, paths in files.items():
            if not paths:
                continue
            uris = [spark_path("file:" + p) for p in paths]
            if kind == "json":
                df = spark.read.text(uris, wholetext=True)  # one document per file
            elif kind == "binary_gz":
                df = spark.read.format("binaryFile").load(uris).select("path", "content")
            else:
                df = spark.read.text(uris)  # one row per line (.gz decompressed by the codec)
            target = out / kind
            df.write.mode("overwrite").parquet("file:" + str(target))
            rows += spark.read.parquet("file:" + str(target)).count()
    finally:
        spark.stop()
    return rows


CT_SPARK_RECORD = (
    "eventVersion STRING, userIdentity STRUCT<type: STRING, principalId: STRING, arn: STRING, accountId: STRING, "
    "accessKeyId: STRING, userName: STRING, invokedBy: STRING, sessionContext: STRUCT<sessionIssuer: "
    "STRUCT<type: STRING, arn: STRING, userName: STRING>, attributes: STRUCT<creationDate: STRING, "
    "mfaAuthenticated: STRING>>>, eventTime STRING, eventSource STRING, eventName STRING, awsRegion STRING, "
    "sourceIPAddress STRING, userAgent STRING, errorCode STRING, errorMessage STRING, requestParameters STRING, "
    "responseElements STRING, additionalEventData STRING, serviceEventDetails STRING, requestID STRING, "
    "eventID STRING, readOnly STRING, resources ARRAY<STRUCT<ARN: STRING, accountId: STRING, type: STRING>>, "
    "eventType STRING, managementEvent BOOLEAN, recipientAccountId STRING, sharedEventID STRING, "
    "vpcEndpointId STRING, eventCategory STRING, tlsDetails STRUCT<tlsVersion: STRING, cipherSuite: STRING, "
    "clientProvidedHostHeader: STRING>"
)


# Between the groups of a line rewritten by ``_with_groups``: a control character no log line holds.
_SEP = "\u0001"


def _with_groups(lines, column: str, pattern: str, n: int) -> tuple:
    """``lines`` with a column ``_groups``: the ``n`` groups of ``pattern`` in ``column``, from one
    evaluation of the expression per row; returns (the frame, the ``n`` group Columns).

    One ``regexp_extract`` per group ran the whole expression once per group (26 times an S3
    access line: 480 s for 2M lines, where DuckDB takes 17 s). The line is rewritten into its
    groups joined by a separator and split once, as a Spark engineer would write it, in a
    projection of its own so that the fields read it rather than evaluate it again. A line the
    expression does not match (it comes back as it was) gives empty strings, as ``regexp_extract``.
    """
    import pyspark.sql.functions as F

    parts = F.split(F.regexp_replace(column, pattern, _SEP.join(f"${i}" for i in range(1, n + 1))), _SEP)
    empty = F.array_repeat(F.lit(""), n)
    framed = lines.withColumn("_groups", F.when(F.size(parts) == n, parts).otherwise(empty))
    return framed, [F.col("_groups")[i] for i in range(n)]


def _spark_convert(source: str, files: dict[str, list[str]], out: Path) -> int:
    """Spark's bare conversion of ``files`` to Parquet partitioned by day (explicit schema); rows written."""
    import pyspark.sql.functions as F

    from auditlake.ingest.objects import spark_path
    from auditlake.session import build_session

    spark = build_session(_baseline_config(), "bench_spark_baseline")
    rows = 0

    def write(df, target: Path, partition: str) -> int:
        df.write.mode("overwrite").partitionBy(partition).parquet("file:" + str(target))
        return spark.read.parquet("file:" + str(target)).count()

    def uris(kind: str) -> list[str]:
        return [spark_path("file:" + p) for p in files.get(kind, [])]

    try:
        if source == "cloudtrail" and files.get("json"):
            # Nested objects (requestParameters, ...) as their JSON text, as the table keeps them.
            raw = (
                spark.read.schema(f"Records ARRAY<STRUCT<{CT_SPARK_RECORD}>>")
                .option("multiLine", True)
                .json(uris("json"))
                .select(F.explode("Records").alias("r"), F.input_file_name().alias("source_object"))
            )
            t = F.to_timestamp("r.eventTime", "yyyy-MM-dd'T'HH:mm:ss'Z'")
            df = raw.select(
                F.col("r.eventID").alias("event_id"),
                t.alias("event_time"),
                F.to_date(t).alias("event_date"),
                *[
                    F.col(f"r.{c}").alias(c)
                    for c in (
                        "eventVersion",
                        "eventSource",
                        "eventName",
                        "eventType",
                        "eventCategory",
                        "awsRegion",
                        "recipientAccountId",
                        "sourceIPAddress",
                        "userAgent",
                        "errorCode",
                        "errorMessage",
                        "requestID",
                        "sharedEventID",
                        "vpcEndpointId",
                        "requestParameters",
                        "responseElements",
                        "additionalEventData",
                        "resources",
                    )
                ],
                F.col("r.readOnly").cast("boolean").alias("read_only"),
                F.col("r.managementEvent"),
                F.col("r.userIdentity.type").alias("user_type"),
                F.col("r.userIdentity.arn").alias("user_arn"),
                F.col("r.userIdentity.accountId").alias("user_account_id"),
                F.coalesce(
                    "r.userIdentity.userName", "r.userIdentity.sessionContext.sessionIssuer.userName"
                ).alias("user_name"),
                F.col("r.tlsDetails.tlsVersion").alias("tls_version"),
                "source_object",
            )
            rows += write(df, out / "cloudtrail_events", "event_date")
        elif source == "s3access" and files.get("text"):
            lines = spark.read.text(uris("text")).select("value", F.input_file_name().alias("source_object"))
            lines, parts = _with_groups(lines, "value", S3_REGEX, len(S3_GROUPS))
            fields = {g: parts[i] for i, g in enumerate(S3_GROUPS)}
            t = F.to_timestamp(fields["time"], "dd/MMM/yyyy:HH:mm:ss Z")
            df = lines.select(
                *[fields[g].alias(g) for g in S3_GROUPS if g not in ("time", "rest")],
                t.alias("request_time"),
                F.to_date(t).alias("request_date"),
                F.sha2("value", 256).alias("line_hash"),
                "source_object",
            )
            rows += write(df, out / "s3_access_logs", "request_date")
        elif source == "crawler" and files.get("text_gz"):
            lines = spark.read.text(uris("text_gz")).select(
                "value", F.input_file_name().alias("source_object")
            )
            pattern = r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (?:\[([^\]]+)\] (\w+) : )?(.*)$"
            lines, parts = _with_groups(lines, "value", pattern, 4)
            t = F.to_timestamp(parts[0], "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'")
            df = lines.select(
                t.alias("event_time"),
                F.to_date(t).alias("event_date"),
                parts[1].alias("run_id"),
                parts[2].alias("level"),
                parts[3].alias("message"),
                "source_object",
            )
            rows += write(df, out / "crawler_export", "event_date")
    finally:
        spark.stop()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("engine", choices=["floor", "duckdb", "spark"])
    parser.add_argument("--source", required=True, choices=["cloudtrail", "s3access", "crawler"])
    parser.add_argument("--files", required=True, help='JSON {"json"|"text"|"text_gz"|"binary_gz": [paths]}')
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    files = json.loads(Path(args.files).read_text())
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    convert = {"floor": _floor, "duckdb": duckdb_convert, "spark": _spark_convert}[args.engine]
    rows = convert(args.source, files, out)
    print(json.dumps({"rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
