"""CloudTrail log files -> ``cloudtrail_events`` and ``cloudtrail_insights``.

Input: gzipped JSON objects ``{"Records": [...]}`` under
``[prefix/]AWSLogs/[o-org/]<account>/CloudTrail[-Insight]/<region>/YYYY/MM/DD/*.json.gz``.

One pass over the raw bytes: Spark's JSON reader with an explicit schema where every record is a
``map<string,string>``. A string-typed value keeps the raw JSON text of an object
(``requestParameters`` has a different shape per API) and turns a JSON boolean into "true", so
fields that are strings in some eventVersions and booleans in others arrive as one type, and
the map's keys tell which top-level keys a record had (unknown keys are reported, never fatal).
The small nested objects the tables flatten (userIdentity, tlsDetails, resources,
insightDetails) are parsed from that text with explicit schemas.

Bad input never fails the run and is never dropped silently:
- a file Spark cannot decompress (not gzip, truncated, empty) produces no row; the objects
  that produced none are checked on the driver (a cold path, a few files) and quarantined with
  a specific reason, record_index -1;
- a file that is not valid JSON, or whose ``Records`` is not an array of objects, is one
  quarantine row with its text;
- a record without eventID or eventTime, with an unparseable eventTime, or of an eventVersion
  major other than 1, is a quarantine row with its index; the rest of the file loads.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import logging
import re
import zlib
from typing import Any

import pyspark.sql.functions as F
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame
from pyspark.sql import types as T

from auditlake import config as config_mod
from auditlake.ingest.objects import SourceObject, object_uri_col, spark_path
from auditlake.ingest.quarantine import ROW_INDEX, WHOLE_OBJECT, quarantine_objects, to_quarantine
from auditlake.ingest.runner import ParsedBatch

log = logging.getLogger(__name__)

SOURCE = "cloudtrail"
EVENTS = "cloudtrail_events"
INSIGHTS = "cloudtrail_insights"

# Newest eventVersion AWS documents (major.minor); newer minors load and are counted.
SUPPORTED_MAJOR = 1
KNOWN_MINOR = 11

# Top-level keys AWS documents for management, data and network-activity events (1.0 - 1.11).
EVENT_KEYS = (
    "eventVersion", "userIdentity", "eventTime", "eventSource", "eventName", "awsRegion",
    "sourceIPAddress", "userAgent", "errorCode", "errorMessage", "requestParameters",
    "responseElements", "additionalEventData", "requestID", "eventID", "eventType", "apiVersion",
    "managementEvent", "readOnly", "resources", "recipientAccountId", "serviceEventDetails",
    "sharedEventID", "vpcEndpointId", "vpcEndpointAccountId", "eventCategory", "addendum",
    "sessionCredentialFromConsole", "edgeDeviceDetails", "tlsDetails", "eventContext",
)
INSIGHT_KEYS = (
    "eventVersion", "eventTime", "awsRegion", "eventID", "eventType", "recipientAccountId",
    "sharedEventID", "insightDetails", "eventCategory",
)
INSIGHT_DETAIL_KEYS = ("state", "eventSource", "eventName", "insightType", "insightContext", "errorCode")

# Key layout: the service folder after the account decides what an object is.
_SERVICE_FOLDER = re.compile(r"/AWSLogs/(?:o-[a-z0-9]+/)?(\d{12})/([^/]+)/")
_DELIVERY_DAY = re.compile(r"/CloudTrail(?:-Insight)?/[^/]+/(\d{4})/(\d{1,2})/(\d{1,2})/")
_NAME_DAY = re.compile(r"_CloudTrail(?:-Insight)?_[^_]+_(\d{8})T\d{4}Z")
_CLOUDTRAIL_FOLDERS = ("CloudTrail", "CloudTrail-Insight")
# Same account pattern, as a Spark regex over source_object (fallback recipient account).
_PATH_ACCOUNT = r"/AWSLogs/(?:o-[a-z0-9]+/)?([0-9]{12})/CloudTrail"

# eventTime: ISO 8601 in UTC, e.g. 2024-01-02T03:04:05Z; fractional seconds and offsets tolerated.
_EVENT_TIME_RE = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$"
_VERSION_RE = r"^(\d+)\.(\d+)$"

RECORD_MAP = T.MapType(T.StringType(), T.StringType())
FILE_SCHEMA = T.StructType([
    T.StructField("Records", T.ArrayType(RECORD_MAP)),
    T.StructField("_corrupt_record", T.StringType()),
])
_S = T.StringType()


def _struct(*names: str, **nested: T.DataType) -> T.StructType:
    return T.StructType([T.StructField(n, _S) for n in names] + [T.StructField(k, v) for k, v in nested.items()])


USER_IDENTITY_SCHEMA = _struct(
    "type", "principalId", "arn", "accountId", "accessKeyId", "userName", "invokedBy",
    sessionContext=_struct(
        attributes=_struct("mfaAuthenticated", "creationDate"),
        sessionIssuer=_struct("type", "principalId", "arn", "accountId", "userName"),
    ),
)
TLS_SCHEMA = _struct("tlsVersion", "cipherSuite", "clientProvidedHostHeader")
RESOURCES_SCHEMA = T.ArrayType(RECORD_MAP)
INSIGHT_DETAILS_SCHEMA = _struct("state", "eventSource", "eventName", "insightType", "errorCode")

# Reasons, as they appear in the quarantine table.
R_MISSING_ID = "missing eventID"
R_MISSING_TIME = "missing eventTime"
R_BAD_TIME = "unparseable eventTime"
R_BAD_VERSION = "unsupported eventVersion"
R_NO_ACCOUNT = "missing recipientAccountId"
R_INVALID_JSON = "invalid JSON"
R_NOT_OBJECTS = "Records is not an array of JSON objects"
R_NO_RECORDS = "no Records array"


# ---------------------------------------------------------------------------------------------
# Column helpers


def to_bool(col: Column) -> Column:
    """"true"/"false" (any case; JSON booleans arrive as those strings) -> boolean; else null."""
    v = F.lower(F.trim(col))
    return F.when(v == "true", F.lit(True)).when(v == "false", F.lit(False))


def parse_event_time(col: Column) -> Column:
    """CloudTrail's ISO 8601 UTC time -> timestamp; null when it is not one."""
    return F.when(col.rlike(_EVENT_TIME_RE), col.cast(T.TimestampType()))


def parse_loose_time(col: Column) -> Column:
    """Times in nested fields (session creationDate): as eventTime, or compact 20131102T010628Z; else null."""
    compact = F.to_timestamp(col, "yyyyMMdd'T'HHmmssX")
    return F.coalesce(parse_event_time(col), F.when(col.rlike(r"^\d{8}T\d{6}Z$"), compact))


def version_major(col: Column) -> Column:
    return F.when(col.rlike(_VERSION_RE), F.regexp_extract(col, _VERSION_RE, 1).cast("int"))


def version_minor(col: Column) -> Column:
    return F.when(col.rlike(_VERSION_RE), F.regexp_extract(col, _VERSION_RE, 2).cast("int"))


def event_version_at_least(col: Column, major: int, minor: int) -> Column:
    """AWS's rule: major equal, minor compared as a number (1.10 > 1.9; never as floats)."""
    return (version_major(col) == F.lit(major)) & (version_minor(col) >= F.lit(minor))


# ---------------------------------------------------------------------------------------------
# Transformations (pure DataFrame -> DataFrame)


def explode_records(files: DataFrame) -> DataFrame:
    """One row per record, or one row per file that holds none (empty, corrupt, no Records).

    In: ``source_object, Records array<map>, _corrupt_record``. Out: ``source_object,
    record_index, r`` (the record map) and ``file_problem`` (a reason, or "empty" for an
    empty Records array, or null for a record row).
    """
    corrupt = F.col("_corrupt_record")
    # Valid JSON whose Records does not fit array<object> (AWS never writes it): say which.
    salvage = F.from_json(corrupt, "Records array<string>")
    file_problem = (
        F.when(corrupt.isNotNull(), F.when(salvage.isNotNull() & salvage["Records"].isNotNull(), F.lit(R_NOT_OBJECTS))
               .otherwise(F.lit(R_INVALID_JSON)))
        .when(F.col("Records").isNull(), F.lit(R_NO_RECORDS))
        .when(F.size("Records") == 0, F.lit("empty"))
    )
    # Two selects: file-level columns are computed before the explode, so the exploded rows
    # never carry the file's whole Records array (that would copy it once per record).
    per_file = files.select(
        "source_object",
        file_problem.alias("file_problem"),
        F.when(corrupt.isNotNull(), corrupt).alias("file_text"),
        "Records",
    )
    return per_file.select(
        "source_object", "file_problem", "file_text",
        F.posexplode_outer("Records").alias("record_index", "r"),
    )


def normalize_records(records: DataFrame) -> DataFrame:
    """Typed columns for both tables, a quarantine reason per row and the unknown keys it had.

    Three selects, so that every costly expression runs once per record. Spark does not share
    a ``from_json`` between the output columns that read it (it is not code-generated), so in
    one select the userIdentity text was parsed once per identity column, 14 times a record.
    Step 1 parses each nested object and tests each pattern once; Spark keeps it a separate
    projection because its results are not cheap and are read more than once. Step 2 picks the
    columns and decides the reason; step 3 serialises the raw text of quarantined rows only.
    """
    r = F.col("r")
    version = r["eventVersion"]
    event_type = r["eventType"]
    # Never null: a record without eventType (older versions) must still land in one table.
    is_insight = F.coalesce(event_type == "AwsCloudTrailInsight", F.lit(False)) | r["insightDetails"].isNotNull()
    keys = F.map_keys(r)
    unknown = F.when(
        is_insight,
        F.concat(
            F.array_except(keys, F.array(*[F.lit(k) for k in INSIGHT_KEYS])),
            F.transform(
                F.array_except(F.map_keys(F.from_json(r["insightDetails"], RECORD_MAP)),
                               F.array(*[F.lit(k) for k in INSIGHT_DETAIL_KEYS])),
                lambda k: F.concat(F.lit("insightDetails."), k),
            ),
        ),
    ).otherwise(F.array_except(keys, F.array(*[F.lit(k) for k in EVENT_KEYS])))
    step1 = records.select(
        "source_object", "record_index", "file_problem", "file_text", "r",
        is_insight.alias("_is_insight"),
        parse_event_time(r["eventTime"]).alias("_event_time"),
        version_major(version).alias("_major"),
        version_minor(version).alias("_minor"),
        F.coalesce(
            r["recipientAccountId"],
            F.nullif(F.regexp_extract("source_object", _PATH_ACCOUNT, 1), F.lit("")),
        ).alias("_recipient"),
        F.from_json(r["userIdentity"], USER_IDENTITY_SCHEMA).alias("_ui"),
        F.from_json(r["tlsDetails"], TLS_SCHEMA).alias("_tls"),
        F.from_json(r["resources"], RESOURCES_SCHEMA).alias("_resources"),
        F.from_json(r["insightDetails"], INSIGHT_DETAILS_SCHEMA).alias("_details"),
        unknown.alias("unknown_keys"),
    )

    event_id = r["eventID"]
    time_text = r["eventTime"]
    event_time = F.col("_event_time")
    recipient = F.col("_recipient")
    reason = (
        F.when(F.col("file_problem").isNotNull(), F.col("file_problem"))
        .when(r.isNull(), F.lit(R_NOT_OBJECTS))
        .when(event_id.isNull() | (F.trim(event_id) == ""), F.lit(R_MISSING_ID))
        .when(time_text.isNull(), F.lit(R_MISSING_TIME))
        .when(event_time.isNull(), F.lit(R_BAD_TIME))
        .when(version.isNotNull() & F.coalesce(F.col("_major") != SUPPORTED_MAJOR, F.lit(True)),
              F.lit(R_BAD_VERSION))
        .when(recipient.isNull(), F.lit(R_NO_ACCOUNT))
    )
    ui = F.col("_ui")
    issuer = ui["sessionContext"]["sessionIssuer"]
    tls = F.col("_tls")
    resources = F.transform(
        F.col("_resources"),
        lambda m: F.struct(
            F.coalesce(m["ARN"], m["arn"]).alias("arn"),
            # `accountId` in AWS's docs, lower-case `accountid` in some delivered records.
            F.coalesce(m["accountId"], m["accountid"], m["AccountId"]).alias("account_id"),
            F.coalesce(m["type"], m["Type"]).alias("type"),
        ),
    )
    details = F.col("_details")
    step2 = step1.select(
        "source_object", "r", "file_text",
        F.coalesce(F.col("record_index"), F.lit(WHOLE_OBJECT)).cast("bigint").alias("record_index"),
        reason.alias("reason"),
        F.col("_is_insight").alias("is_insight"),
        F.coalesce(F.size("unknown_keys"), F.lit(0)).alias("n_unknown"),
        "unknown_keys",
        (F.col("_minor") > KNOWN_MINOR).alias("newer_minor"),
        event_id.alias("event_id"),
        event_time.alias("event_time"),
        F.to_date(event_time).alias("event_date"),
        version.alias("event_version"),
        r["eventSource"].alias("event_source"),
        r["eventName"].alias("event_name"),
        event_type.alias("event_type"),
        r["eventCategory"].alias("event_category"),
        r["awsRegion"].alias("aws_region"),
        recipient.alias("recipient_account_id"),
        r["sourceIPAddress"].alias("source_ip_address"),
        r["userAgent"].alias("user_agent"),
        r["errorCode"].alias("error_code"),
        r["errorMessage"].alias("error_message"),
        to_bool(r["readOnly"]).alias("read_only"),
        to_bool(r["managementEvent"]).alias("management_event"),
        r["requestID"].alias("request_id"),
        r["sharedEventID"].alias("shared_event_id"),
        r["vpcEndpointId"].alias("vpc_endpoint_id"),
        ui["type"].alias("user_type"),
        ui["principalId"].alias("user_principal_id"),
        ui["arn"].alias("user_arn"),
        ui["accountId"].alias("user_account_id"),
        F.coalesce(ui["userName"], F.when(ui["type"] == "AssumedRole", issuer["userName"])).alias("user_name"),
        ui["accessKeyId"].alias("access_key_id"),
        ui["invokedBy"].alias("invoked_by"),
        issuer["type"].alias("session_issuer_type"),
        issuer["arn"].alias("session_issuer_arn"),
        issuer["userName"].alias("session_issuer_user_name"),
        to_bool(ui["sessionContext"]["attributes"]["mfaAuthenticated"]).alias("session_mfa_authenticated"),
        parse_loose_time(ui["sessionContext"]["attributes"]["creationDate"]).alias("session_creation_date"),
        tls["tlsVersion"].alias("tls_version"),
        tls["cipherSuite"].alias("cipher_suite"),
        tls["clientProvidedHostHeader"].alias("client_provided_host_header"),
        r["requestParameters"].alias("request_parameters"),
        r["responseElements"].alias("response_elements"),
        r["additionalEventData"].alias("additional_event_data"),
        r["serviceEventDetails"].alias("service_event_details"),
        resources.alias("resources"),
        details["state"].alias("insight_state"),
        details["insightType"].alias("insight_type"),
        details["eventSource"].alias("insight_event_source"),
        details["eventName"].alias("insight_event_name"),
        details["errorCode"].alias("insight_error_code"),
        r["insightDetails"].alias("insight_details"),
    )
    # Raw text for quarantine rows only: the file's text for a whole-file problem, else the
    # record re-serialised from its parsed keys.
    raw_text = F.when(F.col("reason").isNotNull(), F.coalesce(F.col("file_text"), F.to_json(F.col("r"))))
    return step2.select(
        "source_object", "record_index", "reason", raw_text.alias("raw_text"),
        *[c for c in step2.columns if c not in ("source_object", "record_index", "reason", "r", "file_text")],
    )


def select_events(parsed: DataFrame) -> DataFrame:
    """The ``cloudtrail_events`` rows of a normalized batch."""
    ok = parsed.where(F.col("reason").isNull() & ~F.col("is_insight"))
    return ok.select(
        "event_id", "event_time", "event_date", "event_version", "event_source", "event_name",
        "event_type", "event_category", "aws_region", "recipient_account_id", "source_ip_address",
        "user_agent", "error_code", "error_message", "read_only", "management_event", "request_id",
        "shared_event_id", "vpc_endpoint_id", "user_type", "user_principal_id", "user_arn",
        "user_account_id", "user_name", "access_key_id", "invoked_by", "session_issuer_type",
        "session_issuer_arn", "session_issuer_user_name", "session_mfa_authenticated",
        "session_creation_date", "tls_version", "cipher_suite", "client_provided_host_header",
        "request_parameters", "response_elements", "additional_event_data", "service_event_details",
        "resources", "source_object", F.col("record_index").alias(ROW_INDEX),
    )


def select_insights(parsed: DataFrame) -> DataFrame:
    """The ``cloudtrail_insights`` rows of a normalized batch."""
    ok = parsed.where(F.col("reason").isNull() & F.col("is_insight"))
    return ok.select(
        "event_id", "event_time", "event_date", "event_version", "event_type", "event_category",
        "aws_region", "recipient_account_id", "shared_event_id", "insight_state", "insight_type",
        "insight_event_source", "insight_event_name", "insight_error_code", "insight_details",
        "source_object", F.col("record_index").alias(ROW_INDEX),
    )


def select_quarantine(parsed: DataFrame, *, run_id: str, max_chars: int) -> DataFrame:
    """Quarantine rows of a normalized batch (an empty Records array is not a problem)."""
    bad = parsed.where(F.col("reason").isNotNull() & (F.col("reason") != "empty"))
    return to_quarantine(
        bad, source=SOURCE, source_object="source_object", record_index=F.col("record_index"),
        raw_text="raw_text", reason=F.col("reason"), run_id=run_id, max_chars=max_chars,
    )


def parse_files(files: DataFrame) -> DataFrame:
    """Raw file rows (``source_object, Records, _corrupt_record``) -> normalized rows."""
    return files.transform(explode_records).transform(normalize_records)


# ---------------------------------------------------------------------------------------------
# Reading and the source


def read_files(spark, uris: list[str]) -> DataFrame:
    """One scan of the given log files with the explicit file schema (never inferred)."""
    reader = (
        spark.read.schema(FILE_SCHEMA)
        .option("multiLine", True)            # a file is one JSON object, pretty-printed or not
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", "_corrupt_record")
        .option("ignoreCorruptFiles", True)   # not gzip / truncated: no row; checked on the driver
        .option("encoding", "UTF-8")
    )
    df = reader.json([spark_path(u) for u in uris])
    return df.select(object_uri_col(F.col("_metadata.file_path")).alias("source_object"), "Records", "_corrupt_record")


def _read_bytes(spark, uri: str) -> bytes:
    jvm = spark._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    fs = path.getFileSystem(spark._jsc.hadoopConfiguration())
    stream = fs.open(path)
    try:
        return bytes(jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
    finally:
        stream.close()


def diagnose_object(data: bytes) -> tuple[str, str]:
    """Why Spark could not read a file (cold path): ``(reason, raw text)``."""
    if not data:
        return "empty object", ""
    if data[:2] != b"\x1f\x8b":
        return "not gzip", data[:4096].decode("utf-8", errors="replace")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        text = inflater.decompress(data)
    except zlib.error as exc:
        return f"corrupt gzip: {exc}", ""
    if not inflater.eof:
        return "truncated gzip", text.decode("utf-8", errors="replace")
    try:
        json.loads(gzip.decompress(data))
    except ValueError:
        return R_INVALID_JSON, text.decode("utf-8", errors="replace")
    return "unreadable", text.decode("utf-8", errors="replace")


class CloudTrailSource:
    """CloudTrail log files (and CloudTrail-Insight files) for the shared ingest runner."""

    name = SOURCE
    tables = (EVENTS, INSIGHTS)

    def classify(self, obj: SourceObject) -> str | None:
        uri = obj.uri
        if uri.endswith("/") or (obj.size == 0 and not uri.endswith(".json.gz")):
            return "folder_marker"
        folder = _SERVICE_FOLDER.search(uri)
        if folder and folder.group(2) not in _CLOUDTRAIL_FOLDERS:
            return "digest" if folder.group(2) == "CloudTrail-Digest" else "not_cloudtrail"
        if "_CloudTrail-Digest_" in obj.name:
            return "digest"
        if not uri.endswith(".json.gz"):
            return "not_json_gz"
        return None

    def object_date(self, obj: SourceObject) -> dt.date | None:
        for pattern, fmt in ((_DELIVERY_DAY, None), (_NAME_DAY, "%Y%m%d")):
            m = pattern.search(obj.uri)
            if not m:
                continue
            try:
                if fmt:
                    return dt.datetime.strptime(m.group(1), fmt).date()
                return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            except ValueError:
                continue
        return None

    def parse(self, spark, objects: list[SourceObject], *, run_id: str, cfg: dict[str, Any]) -> ParsedBatch:
        max_chars = int(config_mod.get(cfg, "ingest.quarantine_raw_max_chars", 8192))
        parsed = parse_files(read_files(spark, [o.uri for o in objects])).persist(StorageLevel.MEMORY_AND_DISK)
        # One small aggregate per file (metadata, not data) fills the cache and tells which
        # files produced rows, the unknown keys and the counters.
        per_file = parsed.groupBy("source_object").agg(
            F.count(F.lit(1)).alias("rows"),
            F.sum((F.col("is_insight") & F.col("reason").isNull()).cast("int")).alias("insight"),
            F.sum(F.coalesce(F.col("newer_minor"), F.lit(False)).cast("int")).alias("newer"),
            F.sum((F.col("reason") == "empty").cast("int")).alias("empty"),
            F.array_distinct(F.flatten(F.collect_set(F.when(F.col("n_unknown") > 0, F.col("unknown_keys"))))).alias("unknown"),
        ).collect()
        seen = {row["source_object"] for row in per_file}
        unknown = sorted({k for row in per_file for k in (row["unknown"] or [])})
        missing = [o for o in objects if o.uri not in seen]
        bad_objects = []
        for obj in missing:
            try:
                reason, raw = diagnose_object(_read_bytes(spark, obj.uri))
            except Exception as exc:  # noqa: BLE001 - an unreadable object is quarantined, not fatal
                reason, raw = "unreadable: " + str(exc).splitlines()[0][:200], ""
            log.warning("quarantining %s: %s", obj.uri, reason)
            bad_objects.append((obj.uri, raw, reason))
        quarantine = select_quarantine(parsed, run_id=run_id, max_chars=max_chars)
        if bad_objects:
            quarantine = quarantine.unionByName(
                quarantine_objects(spark, bad_objects, source=SOURCE, run_id=run_id, max_chars=max_chars)
            )
        counters = {
            "files_read": len(seen),
            "files_unreadable": len(bad_objects),
            "files_empty": sum(int(r["empty"] or 0) for r in per_file),
            "records_insight": sum(int(r["insight"] or 0) for r in per_file),
            "records_newer_minor_version": sum(int(r["newer"] or 0) for r in per_file),
        }
        if unknown:
            log.info("unknown CloudTrail keys seen: %s", ", ".join(unknown))
        return ParsedBatch(
            tables={EVENTS: select_events(parsed), INSIGHTS: select_insights(parsed)},
            quarantine=quarantine,
            counters=counters,
            unknown_keys=unknown,
            persisted=[parsed],
        )

