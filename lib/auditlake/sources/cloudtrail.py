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
- a file Spark cannot decompress (not gzip, truncated, empty) produces no row, and a file
  Spark's JSON parser rejects is one corrupt row; both are checked on the driver (a cold path,
  a few files, never a recursive parse) and quarantined with a specific reason (invalid JSON,
  nesting too deep, a top-level array, ``Records`` not an array, a record over
  ``ingest.max_record_bytes``), record_index -1;
- a file of several concatenated documents (two gzip members) loads the records of all;
- a file whose ``Records`` is not an array of objects is one quarantine row with its text;
- a record whose free-form parts exceed ``ingest.max_record_bytes`` is quarantined alone;
- a record without eventID or eventTime, with an unparseable eventTime, or of an eventVersion
  major other than 1, is a quarantine row with its index; the rest of the file loads.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

import pyspark.sql.functions as F
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame
from pyspark.sql import types as T

from auditlake import config as config_mod
from auditlake import hadoop_fs
from auditlake.ingest.decoding import DEFAULT_MAX_RECORD_BYTES, gunzip_members, json_shape_problem
from auditlake.ingest.objects import SourceObject, load_paths, object_uri_col, spark_path
from auditlake.ingest.quarantine import ROW_INDEX, WHOLE_OBJECT, quarantine_objects, to_quarantine, valid_utf8
from auditlake.ingest.source import ParsedBatch
from auditlake.tables import conform

log = logging.getLogger(__name__)

SOURCE = "cloudtrail"
EVENTS = "cloudtrail_events"
INSIGHTS = "cloudtrail_insights"

# Newest eventVersion AWS documents (major.minor); newer minors load and are counted.
SUPPORTED_MAJOR = 1
KNOWN_MINOR = 11

# Top-level keys AWS documents for management, data and network-activity events (1.0 - 1.11).
EVENT_KEYS = (
    "eventVersion",
    "userIdentity",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "errorCode",
    "errorMessage",
    "requestParameters",
    "responseElements",
    "additionalEventData",
    "requestID",
    "eventID",
    "eventType",
    "apiVersion",
    "managementEvent",
    "readOnly",
    "resources",
    "recipientAccountId",
    "serviceEventDetails",
    "sharedEventID",
    "vpcEndpointId",
    "vpcEndpointAccountId",
    "eventCategory",
    "addendum",
    "sessionCredentialFromConsole",
    "edgeDeviceDetails",
    "tlsDetails",
    "eventContext",
)
INSIGHT_KEYS = (
    "eventVersion",
    "eventTime",
    "awsRegion",
    "eventID",
    "eventType",
    "recipientAccountId",
    "sharedEventID",
    "insightDetails",
    "eventCategory",
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
FILE_SCHEMA = T.StructType(
    [
        T.StructField("Records", T.ArrayType(RECORD_MAP)),
        T.StructField("_corrupt_record", T.StringType()),
    ]
)
_S = T.StringType()


def _struct(*names: str, **nested: T.DataType) -> T.StructType:
    return T.StructType(
        [T.StructField(n, _S) for n in names] + [T.StructField(k, v) for k, v in nested.items()]
    )


USER_IDENTITY_SCHEMA = _struct(
    "type",
    "principalId",
    "arn",
    "accountId",
    "accessKeyId",
    "userName",
    "invokedBy",
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
    """ "true"/"false" (any case; JSON booleans arrive as those strings) -> boolean; else null."""
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
        F.when(
            corrupt.isNotNull(),
            F.when(salvage.isNotNull() & salvage["Records"].isNotNull(), F.lit(R_NOT_OBJECTS)).otherwise(
                F.lit(R_INVALID_JSON)
            ),
        )
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
        "source_object",
        "file_problem",
        "file_text",
        F.posexplode_outer("Records").alias("record_index", "r"),
    )


def is_insight_record(r: Column) -> Column:
    """Whether a record is an Insights event; never null, so a record lands in exactly one table.

    Older records have no eventType: insightDetails decides for them.
    """
    return (
        F.coalesce(r["eventType"] == "AwsCloudTrailInsight", F.lit(False)) | r["insightDetails"].isNotNull()
    )


def unknown_keys(r: Column, is_insight: Column) -> Column:
    """Top-level keys the parser does not know (and insightDetails' unknown keys, prefixed)."""
    keys = F.map_keys(r)
    insight_detail_keys = F.array_except(
        F.map_keys(F.from_json(r["insightDetails"], RECORD_MAP)),
        F.array(*[F.lit(k) for k in INSIGHT_DETAIL_KEYS]),
    )
    return F.when(
        is_insight,
        F.concat(
            F.array_except(keys, F.array(*[F.lit(k) for k in INSIGHT_KEYS])),
            F.transform(insight_detail_keys, lambda k: F.concat(F.lit("insightDetails."), k)),
        ),
    ).otherwise(F.array_except(keys, F.array(*[F.lit(k) for k in EVENT_KEYS])))


def with_parsed_objects(records: DataFrame) -> DataFrame:
    """Step 1: parse each nested object and test each pattern once per record (``_``-prefixed columns)."""
    r = F.col("r")
    version = r["eventVersion"]
    is_insight = is_insight_record(r)
    return records.select(
        "source_object",
        "record_index",
        "file_problem",
        "file_text",
        "r",
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
        unknown_keys(r, is_insight).alias("unknown_keys"),
    )


def quarantine_reason() -> Column:
    """Why a record (or its file) goes to quarantine; null for a good record. Reads step 1's columns."""
    r = F.col("r")
    event_id = r["eventID"]
    return (
        F.when(F.col("file_problem").isNotNull(), F.col("file_problem"))
        .when(r.isNull(), F.lit(R_NOT_OBJECTS))
        .when(event_id.isNull() | (F.trim(event_id) == ""), F.lit(R_MISSING_ID))
        .when(r["eventTime"].isNull(), F.lit(R_MISSING_TIME))
        .when(F.col("_event_time").isNull(), F.lit(R_BAD_TIME))
        .when(
            r["eventVersion"].isNotNull() & F.coalesce(F.col("_major") != SUPPORTED_MAJOR, F.lit(True)),
            F.lit(R_BAD_VERSION),
        )
        .when(F.col("_recipient").isNull(), F.lit(R_NO_ACCOUNT))
    )


def resources_of(parsed: Column) -> Column:
    """``resources`` as a list of (arn, account_id, type), whatever the key's capitalisation."""
    return F.transform(
        parsed,
        lambda m: F.struct(
            F.coalesce(m["ARN"], m["arn"]).alias("arn"),
            # `accountId` in AWS's docs, lower-case `accountid` in some delivered records.
            F.coalesce(m["accountId"], m["accountid"], m["AccountId"]).alias("account_id"),
            F.coalesce(m["type"], m["Type"]).alias("type"),
        ),
    )


def identity_columns(ui: Column) -> list[Column]:
    """The ``user_*`` and ``session_*`` columns from the parsed userIdentity."""
    issuer = ui["sessionContext"]["sessionIssuer"]
    attributes = ui["sessionContext"]["attributes"]
    return [
        ui["type"].alias("user_type"),
        ui["principalId"].alias("user_principal_id"),
        ui["arn"].alias("user_arn"),
        ui["accountId"].alias("user_account_id"),
        # Only an AssumedRole session takes its issuer's name as user_name.
        F.coalesce(ui["userName"], F.when(ui["type"] == "AssumedRole", issuer["userName"])).alias(
            "user_name"
        ),
        ui["accessKeyId"].alias("access_key_id"),
        ui["invokedBy"].alias("invoked_by"),
        issuer["type"].alias("session_issuer_type"),
        issuer["arn"].alias("session_issuer_arn"),
        issuer["userName"].alias("session_issuer_user_name"),
        to_bool(attributes["mfaAuthenticated"]).alias("session_mfa_authenticated"),
        parse_loose_time(attributes["creationDate"]).alias("session_creation_date"),
    ]


def event_columns(r: Column) -> list[Column]:
    """The event's own top-level fields, from ``event_version`` to ``vpc_endpoint_id``."""
    return [
        r["eventVersion"].alias("event_version"),
        r["eventSource"].alias("event_source"),
        r["eventName"].alias("event_name"),
        r["eventType"].alias("event_type"),
        r["eventCategory"].alias("event_category"),
        r["awsRegion"].alias("aws_region"),
        F.col("_recipient").alias("recipient_account_id"),
        r["sourceIPAddress"].alias("source_ip_address"),
        r["userAgent"].alias("user_agent"),
        r["errorCode"].alias("error_code"),
        r["errorMessage"].alias("error_message"),
        to_bool(r["readOnly"]).alias("read_only"),
        to_bool(r["managementEvent"]).alias("management_event"),
        r["requestID"].alias("request_id"),
        r["sharedEventID"].alias("shared_event_id"),
        r["vpcEndpointId"].alias("vpc_endpoint_id"),
    ]


def insight_columns(details: Column, r: Column) -> list[Column]:
    """The ``insight_*`` columns from the parsed insightDetails (null for management/data events)."""
    return [
        details["state"].alias("insight_state"),
        details["insightType"].alias("insight_type"),
        details["eventSource"].alias("insight_event_source"),
        details["eventName"].alias("insight_event_name"),
        details["errorCode"].alias("insight_error_code"),
        r["insightDetails"].alias("insight_details"),
    ]


def select_record_columns(step1: DataFrame) -> DataFrame:
    """Step 2: the reason and every typed column of both tables, from step 1's parsed objects."""
    r, tls = F.col("r"), F.col("_tls")
    event_time = F.col("_event_time")
    return step1.select(
        "source_object",
        "r",
        "file_text",
        F.coalesce(F.col("record_index"), F.lit(WHOLE_OBJECT)).cast("bigint").alias("record_index"),
        quarantine_reason().alias("reason"),
        F.col("_is_insight").alias("is_insight"),
        F.coalesce(F.size("unknown_keys"), F.lit(0)).alias("n_unknown"),
        "unknown_keys",
        (F.col("_minor") > KNOWN_MINOR).alias("newer_minor"),
        r["eventID"].alias("event_id"),
        event_time.alias("event_time"),
        F.to_date(event_time).alias("event_date"),
        *event_columns(r),
        *identity_columns(F.col("_ui")),
        tls["tlsVersion"].alias("tls_version"),
        tls["cipherSuite"].alias("cipher_suite"),
        tls["clientProvidedHostHeader"].alias("client_provided_host_header"),
        r["requestParameters"].alias("request_parameters"),
        r["responseElements"].alias("response_elements"),
        r["additionalEventData"].alias("additional_event_data"),
        r["serviceEventDetails"].alias("service_event_details"),
        resources_of(F.col("_resources")).alias("resources"),
        *insight_columns(F.col("_details"), r),
    )


def with_raw_text(step2: DataFrame) -> DataFrame:
    """Step 3: raw text for quarantine rows only; the working columns (``r``, ``file_text``) dropped.

    The file's text for a whole-file problem, else the record re-serialised from its parsed keys.
    """
    raw_text = F.when(F.col("reason").isNotNull(), F.coalesce(F.col("file_text"), F.to_json(F.col("r"))))
    return step2.select(
        "source_object",
        "record_index",
        "reason",
        raw_text.alias("raw_text"),
        *[c for c in step2.columns if c not in ("source_object", "record_index", "reason", "r", "file_text")],
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
    return records.transform(with_parsed_objects).transform(select_record_columns).transform(with_raw_text)


def select_events(parsed: DataFrame) -> DataFrame:
    """The ``cloudtrail_events`` rows of a normalized batch."""
    ok = parsed.where(F.col("reason").isNull() & ~F.col("is_insight"))
    return ok.withColumn(ROW_INDEX, F.col("record_index")).transform(conform, EVENTS, keep=(ROW_INDEX,))


def select_insights(parsed: DataFrame) -> DataFrame:
    """The ``cloudtrail_insights`` rows of a normalized batch."""
    ok = parsed.where(F.col("reason").isNull() & F.col("is_insight"))
    return ok.withColumn(ROW_INDEX, F.col("record_index")).transform(conform, INSIGHTS, keep=(ROW_INDEX,))


def select_quarantine(parsed: DataFrame, *, run_id: str, max_chars: int) -> DataFrame:
    """Quarantine rows of a normalized batch (an empty Records array is not a problem)."""
    bad = parsed.where(F.col("reason").isNotNull() & (F.col("reason") != "empty"))
    return to_quarantine(
        bad,
        source=SOURCE,
        source_object="source_object",
        record_index=F.col("record_index"),
        raw_text="raw_text",
        reason=F.col("reason"),
        run_id=run_id,
        max_chars=max_chars,
    )


# The free-form parts of a record: whatever makes one large is in these.
_BULK_COLUMNS = (
    "request_parameters",
    "response_elements",
    "additional_event_data",
    "service_event_details",
    "insight_details",
    "error_message",
    "user_agent",
)


def with_size_limit(parsed: DataFrame, *, max_bytes: int) -> DataFrame:
    """Quarantine a record whose free-form parts hold more than ``max_bytes`` (UTF-8).

    Counted from the columns already parsed (no re-serialisation of every record); the
    quarantine keeps those parts as its raw text.
    """
    size = sum((F.coalesce(F.octet_length(c), F.lit(0)) for c in _BULK_COLUMNS), F.lit(0))
    over = F.col("reason").isNull() & (size > max_bytes)
    reason = F.concat(
        F.lit("record of at least "),
        size.cast("string"),
        F.lit(f" bytes is over the {max_bytes}-byte record limit"),
    )
    bulk = F.to_json(F.struct(*[F.col(c) for c in _BULK_COLUMNS]))
    return parsed.select(
        *[c for c in parsed.columns if c not in ("reason", "raw_text")],
        F.when(over, reason).otherwise(F.col("reason")).alias("reason"),
        F.when(over, bulk).otherwise(F.col("raw_text")).alias("raw_text"),
    )


def parse_files(files: DataFrame) -> DataFrame:
    """Raw file rows (``source_object, Records, _corrupt_record``) -> normalized rows."""
    return files.transform(explode_records).transform(normalize_records)


# ---------------------------------------------------------------------------------------------
# Reading and the source


def read_files(spark, uris: list[str]) -> DataFrame:
    """One scan of the given log files: ``source_object, Records, _corrupt_record`` (explicit schema).

    Each file is read whole as text (Hadoop's codec inflates every gzip member) and parsed with
    ``parse_documents``. A file Spark cannot inflate (not gzip, truncated) gives no row and is
    checked on the driver.
    """
    text = load_paths(
        spark, "text", [spark_path(u) for u in uris], ignoreCorruptFiles=True, wholetext=True
    ).select(object_uri_col().alias("source_object"), F.col("value"))
    return text.transform(parse_documents)


# Between two concatenated documents (two gzip members, each a whole file's JSON) is the only
# place where valid JSON has a '}' followed by '{"Records":' outside a string: inside a string
# that quote would be escaped, and one document never has '}' directly before '{'.
_DOC_BOUNDARY = r'(?<=\})\s*(?=\{\s*"Records"\s*:)'
_RECORDS_KEY = '"Records"'
_JSON_OPTIONS = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt_record"}


def parse_documents(text: DataFrame) -> DataFrame:
    """``source_object, value`` (a file's text) -> ``source_object, Records, _corrupt_record``.

    Spark's JSON parser reads the first document of a text and ignores what follows, so a file
    of two concatenated documents lost the second one's records: the text is split at document
    boundaries first and the records of all its documents are concatenated (record_index then
    counts through the whole file). A file with any document that does not parse is one corrupt
    record. Invalid UTF-8 bytes need no second parse: ``from_json`` decodes the text as UTF-8 with
    each malformed sequence replaced (U+FFFD) before Jackson reads it; the text of a file that does
    not parse, kept for the quarantine, gets the same replacement.

    A text with one ``"Records"`` key (nearly every file) is one document: it goes to ``from_json``
    as it is, parsed or rejected there. Only the others take the way through a list of documents
    (a split, a parse per document),
    whose higher-order functions Spark evaluates row by row outside its generated code (2.4-3.0 s
    of a 7 s read and parse of 413,619 records when every file took it, with a retry of rejected
    documents with their invalid bytes replaced that could never change the outcome).
    """

    def parse(col: Column) -> Column:
        return F.transform(col, lambda d: F.from_json(d, FILE_SCHEMA, _JSON_OPTIONS))

    def corrupt(parsed: Column) -> Column:
        return F.filter(parsed, lambda p: p["_corrupt_record"].isNotNull())

    # A UTF-8 byte order mark is not JSON; Jackson rejects it inside a string it is handed.
    value = F.when(F.col("value").startswith("\ufeff"), F.expr("substring(value, 2)")).otherwise(
        F.col("value")
    )
    # A boundary is followed by a second '"Records"': a text without one (nearly every file) is one
    # document, told by a byte search, not the regular expression over its whole text (1.4-2.0 s
    # of a 21 s parse of 413,619 records).
    second = F.expr(f"locate('{_RECORDS_KEY}', value, instr(value, '{_RECORDS_KEY}') + {len(_RECORDS_KEY)})")
    # Two selects: the second reads the first parse (from_json is not cheap to evaluate twice).
    first = text.select("source_object", value.alias("value")).select(
        "source_object",
        "value",
        (second == 0).alias("one"),
        F.when(second == 0, F.from_json("value", FILE_SCHEMA, _JSON_OPTIONS)).alias("single"),
    )
    # A file of one document: its parse as it is (a rejected one keeps its text in the parse).
    single = F.col("single")
    # The other files: the text split at document boundaries and each document parsed (evaluated
    # only for those files' rows).
    docs = F.split("value", _DOC_BOUNDARY)
    parsed = parse(docs)
    bad = corrupt(parsed)
    records = F.when(F.size(docs) == 1, parsed[0]["Records"]).otherwise(
        F.flatten(
            F.transform(parsed, lambda p: F.coalesce(p["Records"], F.array().cast(T.ArrayType(RECORD_MAP))))
        )
    )
    corrupt_text = F.when(F.col("one"), single["_corrupt_record"]).otherwise(bad[0]["_corrupt_record"])
    return first.select(
        "source_object",
        F.when(F.col("one"), F.when(single["_corrupt_record"].isNull(), single["Records"]))
        .when(F.size(bad) == 0, records)
        .alias("Records"),
        # The text of a file that does not parse is kept as quarantine text: valid UTF-8 only.
        valid_utf8(corrupt_text).alias("_corrupt_record"),
    )


def diagnose_object(data: bytes, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> tuple[str, str]:
    """Why Spark could not read or parse a file (cold path, a few files): ``(reason, raw text)``.

    Never recurses on the JSON (``json_shape_problem`` measures nesting first), so a file
    nested 5,000 deep gets its reason instead of a RecursionError.
    """
    if not data:
        return "empty object", ""
    payload, _members, problem = gunzip_members(data)
    if problem == "not gzip":
        return problem, data[:4096].decode("utf-8", errors="replace")
    text = payload.decode("utf-8", errors="replace")
    if problem:
        return problem, text
    if payload[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in payload[:64]:
        return "not UTF-8 text (UTF-16 or UTF-32)", text
    return json_shape_problem(text.lstrip("\ufeff"), max_record_bytes=max_record_bytes) or "unreadable", text


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

    def prune_folder(self, uri: str) -> bool:
        """Service folders beside CloudTrail's (digests, Config, GuardDuty) are never entered by a bounded listing."""
        folder = _SERVICE_FOLDER.search(uri.rstrip("/") + "/")
        return bool(folder) and folder.group(2) not in _CLOUDTRAIL_FOLDERS

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
        max_record_bytes = int(config_mod.get(cfg, "ingest.max_record_bytes", DEFAULT_MAX_RECORD_BYTES))
        parsed = (
            parse_files(read_files(spark, [o.uri for o in objects]))
            .transform(with_size_limit, max_bytes=max_record_bytes)
            .persist(StorageLevel.MEMORY_AND_DISK)
        )
        # One small aggregate per file (metadata, not data) fills the cache and tells which
        # files produced rows, the unknown keys and the counters.
        per_file = (
            parsed.groupBy("source_object")
            .agg(
                F.count(F.lit(1)).alias("rows"),
                F.sum((F.col("is_insight") & F.col("reason").isNull()).cast("int")).alias("insight"),
                F.sum(F.coalesce(F.col("newer_minor"), F.lit(False)).cast("int")).alias("newer"),
                F.sum((F.col("reason") == "empty").cast("int")).alias("empty"),
                F.array_distinct(
                    F.flatten(F.collect_set(F.when(F.col("n_unknown") > 0, F.col("unknown_keys"))))
                ).alias("unknown"),
                F.max(F.coalesce(F.col("reason") == R_INVALID_JSON, F.lit(False))).alias("unparsed"),
            )
            .collect()
        )
        seen = {row["source_object"] for row in per_file}
        unknown = sorted({k for row in per_file for k in (row["unknown"] or [])})
        # Files Spark could not read, and files its JSON parser rejected, whose reason is said
        # here: deep nesting, a top-level array, a record over the size limit...
        unparsed = {row["source_object"] for row in per_file if row["unparsed"]}
        missing = [o for o in objects if o.uri not in seen or o.uri in unparsed]
        bad_objects = []
        for obj in missing:
            try:
                reason, raw = diagnose_object(hadoop_fs.read_bytes(spark, obj.uri), max_record_bytes)
            except Exception as exc:  # noqa: BLE001 - an unreadable object is quarantined, not fatal
                reason, raw = "unreadable: " + str(exc).splitlines()[0][:200], ""
            log.warning("quarantining %s: %s", obj.uri, reason)
            bad_objects.append((obj.uri, raw, reason))
        quarantine = select_quarantine(parsed, run_id=run_id, max_chars=max_chars)
        if unparsed:
            quarantine = quarantine.where(~F.col("source_object").isin(sorted(unparsed)))
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

    def after_commit(
        self, spark, lake: str, deduped_tables: dict[str, DataFrame], *, run_id: str, cfg: dict[str, Any]
    ) -> dict[str, int]:
        """Nothing derived: every table of this source is loaded by the runner's merges."""
        return {}
