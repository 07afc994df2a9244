"""Daily aggregates for Athena: pure transforms from the normalized tables.

Each ``aggregate_*_daily`` takes normalized rows (any days) and returns the aggregate rows of
those days, ending in ``tables.conform`` with ``schemas/agg_<name>.yaml``; ``dt`` is the
UTC event day. No I/O here: the job (``auditlake.aggregate_job``) decides which days to read
and replaces exactly those partitions.

``requestParameters`` differs per API; it is parsed with ``from_json`` and explicit schemas,
so a malformed or unexpected document gives null fields, never an error.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable

import pyspark.sql.functions as F
import pyspark.sql.types as T
from pyspark.sql import Column, DataFrame

from auditlake.tables import conform

log = logging.getLogger(__name__)

GLUE = "glue.amazonaws.com"
LAKE_FORMATION = "lakeformation.amazonaws.com"
ATHENA = "athena.amazonaws.com"

GLUE_CATALOG_WRITES = (
    "CreateTable",
    "UpdateTable",
    "DeleteTable",
    "BatchDeleteTable",
    "CreatePartition",
    "BatchCreatePartition",
    "DeletePartition",
    "BatchDeletePartition",
    "UpdatePartition",
    "BatchUpdatePartition",
    "CreateDatabase",
    "UpdateDatabase",
    "DeleteDatabase",
)
LAKE_FORMATION_WRITES = (
    "GrantPermissions",
    "BatchGrantPermissions",
    "RevokePermissions",
    "BatchRevokePermissions",
)
GLUE_JOB_EVENTS = ("StartJobRun", "CreateJob", "UpdateJob", "DeleteJob")
GLUE_CRAWLER_EVENTS = ("StartCrawler", "StopCrawler", "CreateCrawler", "UpdateCrawler", "DeleteCrawler")

# The AccessDenied family across services: S3/IAM AccessDenied, JSON-protocol
# AccessDeniedException, EC2 Client.UnauthorizedOperation, SNS AuthorizationError(Exception),
# Cognito NotAuthorizedException, Forbidden / ForbiddenException.
ACCESS_DENIED_PATTERN = (
    r"(?i)^(client\.)?(accessdenied.*|unauthorizedoperation|unauthorizedaccess.*|.*notauthorized.*"
    r"|forbidden.*|authorizationerror.*)$"
)

PERCENTILE_ACCURACY = 10000

# --- requestParameters shapes (CloudTrail spells the API's fields in lowerCamelCase) -----------

_STRINGS = T.ArrayType(T.StringType())
_TABLE_REF = T.StructType(
    [T.StructField("databaseName", T.StringType()), T.StructField("name", T.StringType())]
)
_LF_RESOURCE = T.StructType(
    [
        T.StructField("database", T.StructType([T.StructField("name", T.StringType())])),
        T.StructField("table", _TABLE_REF),
        T.StructField("tableWithColumns", _TABLE_REF),
    ]
)
_LF_PRINCIPAL = T.StructType([T.StructField("dataLakePrincipalIdentifier", T.StringType())])
_VALUES = T.StructType([T.StructField("values", _STRINGS)])

# One schema for every catalog / Lake Formation write; the event name says which fields apply.
GOVERNANCE_REQUEST_SCHEMA = T.StructType(
    [
        T.StructField("databaseName", T.StringType()),
        T.StructField("name", T.StringType()),  # DeleteTable: table; *Database: database
        T.StructField("tableName", T.StringType()),  # partition calls
        T.StructField("tableInput", T.StructType([T.StructField("name", T.StringType())])),
        T.StructField("databaseInput", T.StructType([T.StructField("name", T.StringType())])),
        T.StructField("tablesToDelete", _STRINGS),  # BatchDeleteTable
        T.StructField("partitionInput", _VALUES),  # CreatePartition
        T.StructField("partitionInputList", T.ArrayType(_VALUES)),  # BatchCreatePartition
        T.StructField("partitionValues", _STRINGS),  # DeletePartition
        T.StructField("partitionsToDelete", T.ArrayType(_VALUES)),  # BatchDeletePartition
        T.StructField("partitionValueList", _STRINGS),  # UpdatePartition
        # BatchUpdatePartition entries carry partitionValueList; Batch*Permissions entries the rest.
        T.StructField(
            "entries",
            T.ArrayType(
                T.StructType(
                    [
                        T.StructField("partitionValueList", _STRINGS),
                        T.StructField("principal", _LF_PRINCIPAL),
                        T.StructField("resource", _LF_RESOURCE),
                        T.StructField("permissions", _STRINGS),
                        T.StructField("permissionsWithGrantOption", _STRINGS),
                    ]
                )
            ),
        ),
        T.StructField("principal", _LF_PRINCIPAL),
        T.StructField("resource", _LF_RESOURCE),
        T.StructField("permissions", _STRINGS),
        T.StructField("permissionsWithGrantOption", _STRINGS),
    ]
)

DATA_ACCESS_REQUEST_SCHEMA = T.StructType(
    [
        T.StructField("tableArn", T.StringType()),
        T.StructField("permissions", _STRINGS),
    ]
)

ATHENA_REQUEST_SCHEMA = T.StructType([T.StructField("workGroup", T.StringType())])

GLUE_JOB_REQUEST_SCHEMA = T.StructType(
    [
        T.StructField("jobName", T.StringType()),
        T.StructField("name", T.StringType()),
    ]
)


def parse_request(col: str | Column, schema: T.StructType) -> Column:
    """requestParameters JSON text -> struct; malformed text or a mismatched shape gives null fields."""
    return F.from_json(F.col(col) if isinstance(col, str) else col, schema, {"mode": "PERMISSIVE"})


def _count_if(cond: Column) -> Column:
    return F.sum(F.when(cond, 1).otherwise(0)).cast("bigint")


def _sorted_distinct(arr: Column) -> Column:
    return F.array_sort(F.array_distinct(arr))


def _non_null(arr: Column) -> Column:
    return F.filter(arr, lambda x: x.isNotNull())


def _empty_to_null(arr: Column) -> Column:
    return F.when(F.size(arr) > 0, arr)


# --- IP addresses and CIDRs as Column logic -------------------------------------------------

_IPV4 = r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$"
_IPV4_MAPPED = r"(?i)^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$"


def ipv4_to_number(ip: Column) -> Column:
    """Dotted IPv4 text -> its 32-bit value as bigint; null for anything else (also octets > 255)."""
    octets = [F.regexp_extract(ip, _IPV4, i).cast("bigint") for i in range(1, 5)]
    valid = ip.rlike(_IPV4)
    for o in octets:
        valid = valid & (o <= 255)
    value = octets[0] * 16777216 + octets[1] * 65536 + octets[2] * 256 + octets[3]
    return F.when(valid, value)


def ipv6_to_hex(ip: Column) -> Column:
    """IPv6 text -> its 128-bit value as 32 lowercase hex digits (compares like the number).

    Null for anything that is not a plain IPv6 address (zone ids and embedded IPv4 forms other
    than ``::ffff:a.b.c.d``, which is handled as IPv4, are not expanded).
    """
    halves = F.split(ip, "::", -1)
    left = F.when(F.element_at(halves, 1) == "", F.array().cast("array<string>")).otherwise(
        F.split(F.element_at(halves, 1), ":", -1)
    )
    right = F.when(
        (F.size(halves) < 2) | (F.element_at(halves, -1) == ""), F.array().cast("array<string>")
    ).otherwise(F.split(F.element_at(halves, -1), ":", -1))
    missing = F.lit(8) - F.size(left) - F.size(right)
    groups = F.when(F.size(halves) == 1, left).otherwise(
        F.concat(left, F.array_repeat(F.lit("0"), F.greatest(missing, F.lit(0))), right)
    )
    valid = (
        ip.contains(":")
        & ip.rlike(r"^[0-9A-Fa-f:]+$")
        & (F.size(halves) <= 2)
        & F.when(F.size(halves) == 1, F.size(left) == 8).otherwise(missing >= 1)
        & F.forall(groups, lambda g: g.rlike(r"^[0-9A-Fa-f]{1,4}$"))
    )
    hexed = F.concat_ws("", F.transform(groups, lambda g: F.lpad(F.lower(g), 4, "0")))
    return F.when(valid, hexed)


def parse_cidrs(cidrs: Iterable[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Validate CIDR strings (host bits allowed); raises ValueError naming the bad one."""
    nets = []
    for text in cidrs or []:
        try:
            nets.append(ipaddress.ip_network(str(text).strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"not a CIDR: {text!r} ({exc})") from None
    return nets


def outside_cidrs(ip: Column, cidrs: Iterable[str]) -> Column:
    """True when ``ip`` is an IP address in none of ``cidrs``, false when in one, null when not an IP.

    IPv4 is compared as a number, IPv6 as its zero-padded 128-bit hex string; an IPv4-mapped
    IPv6 address (``::ffff:10.1.2.3``) counts as its IPv4. Null, AWS service host names
    (``athena.amazonaws.com``) and ``AWS Internal`` are not addresses: null.
    """
    nets = parse_cidrs(cidrs)
    text = F.trim(ip)
    mapped = F.regexp_extract(text, _IPV4_MAPPED, 1)
    v4 = ipv4_to_number(F.when(mapped != "", mapped).otherwise(text))
    v6 = ipv6_to_hex(text)
    in_v4 = F.lit(False)
    in_v6 = F.lit(False)
    for net in nets:
        lo, hi = int(net.network_address), int(net.broadcast_address)
        if net.version == 4:
            in_v4 = in_v4 | v4.between(F.lit(lo), F.lit(hi))
        else:
            in_v6 = in_v6 | v6.between(F.lit(f"{lo:032x}"), F.lit(f"{hi:032x}"))
    return F.when(v4.isNotNull(), ~in_v4).when(v6.isNotNull(), ~in_v6)


# --- CloudTrail aggregates ------------------------------------------------------------------


def _event_stats() -> list[Column]:
    """Event count, distinct source IPs, first and last event time of a group of CloudTrail events."""
    return [
        F.count(F.lit(1)).alias("event_count"),
        F.countDistinct("source_ip_address").alias("distinct_source_ips"),
        F.min("event_time").alias("first_event_time"),
        F.max("event_time").alias("last_event_time"),
    ]


def aggregate_cloudtrail_daily(events: DataFrame) -> DataFrame:
    """cloudtrail_events -> agg_cloudtrail_daily."""
    grouped = events.groupBy(
        F.col("recipient_account_id").alias("account_id"),
        "aws_region",
        "event_source",
        "event_name",
        "user_arn",
        "error_code",
        "read_only",
        F.col("event_date").alias("dt"),
    ).agg(*_event_stats())
    return grouped.transform(conform, "agg_cloudtrail_daily")


def _governance_fields(df: DataFrame) -> DataFrame:
    """Database, table(s), partition values, grantees and permissions from requestParameters."""
    r = parse_request("request_parameters", GOVERNANCE_REQUEST_SCHEMA)
    name = F.col("event_name")
    is_lf = F.col("event_source") == LAKE_FORMATION
    is_batch_lf = is_lf & name.startswith("Batch")
    res = r["resource"]
    entries = r["entries"]

    lf_db = F.coalesce(
        res["table"]["databaseName"], res["tableWithColumns"]["databaseName"], res["database"]["name"]
    )
    lf_table = F.coalesce(res["table"]["name"], res["tableWithColumns"]["name"])
    batch_dbs = _sorted_distinct(
        _non_null(
            F.transform(
                entries,
                lambda e: F.coalesce(
                    e["resource"]["table"]["databaseName"],
                    e["resource"]["tableWithColumns"]["databaseName"],
                    e["resource"]["database"]["name"],
                ),
            )
        )
    )
    batch_tables = _non_null(
        F.transform(
            entries,
            lambda e: F.coalesce(e["resource"]["table"]["name"], e["resource"]["tableWithColumns"]["name"]),
        )
    )

    database = (
        F.when(name == "CreateDatabase", r["databaseInput"]["name"])
        .when(name.isin("UpdateDatabase", "DeleteDatabase"), r["name"])
        .when(is_batch_lf, F.when(F.size(batch_dbs) == 1, F.element_at(batch_dbs, 1)))
        .when(is_lf, lf_db)
        .otherwise(r["databaseName"])
    )
    table = (
        F.when(name.isin("CreateTable", "UpdateTable"), r["tableInput"]["name"])
        .when(name == "DeleteTable", r["name"])
        .when(name.contains("Partition"), r["tableName"])
        .when(is_lf & ~is_batch_lf, lf_table)
    )
    tables = (
        F.when(name == "BatchDeleteTable", _empty_to_null(_non_null(r["tablesToDelete"])))
        .when(is_batch_lf, _empty_to_null(batch_tables))
        .when(table.isNotNull(), F.array(table))
    )
    partitions = (
        F.when(
            name == "CreatePartition",
            F.when(r["partitionInput"]["values"].isNotNull(), F.array(r["partitionInput"]["values"])),
        )
        .when(name == "BatchCreatePartition", F.transform(r["partitionInputList"], lambda p: p["values"]))
        .when(
            name == "DeletePartition", F.when(r["partitionValues"].isNotNull(), F.array(r["partitionValues"]))
        )
        .when(name == "BatchDeletePartition", F.transform(r["partitionsToDelete"], lambda p: p["values"]))
        .when(
            name == "UpdatePartition",
            F.when(r["partitionValueList"].isNotNull(), F.array(r["partitionValueList"])),
        )
        .when(name == "BatchUpdatePartition", F.transform(entries, lambda e: e["partitionValueList"]))
    )
    grantees = F.when(
        is_batch_lf,
        _empty_to_null(
            _sorted_distinct(
                _non_null(F.transform(entries, lambda e: e["principal"]["dataLakePrincipalIdentifier"]))
            )
        ),
    ).when(
        is_lf & r["principal"]["dataLakePrincipalIdentifier"].isNotNull(),
        F.array(r["principal"]["dataLakePrincipalIdentifier"]),
    )

    def perms(field: str) -> Column:
        batch = F.flatten(
            F.transform(entries, lambda e: F.coalesce(e[field], F.array().cast("array<string>")))
        )
        return F.when(is_batch_lf, _empty_to_null(_sorted_distinct(_non_null(batch)))).when(
            is_lf, _sorted_distinct(r[field])
        )

    return df.select(
        "*",
        database.alias("database_name"),
        table.alias("table_name"),
        tables.alias("table_names"),
        partitions.alias("partition_values"),
        grantees.alias("grantees"),
        perms("permissions").alias("permissions"),
        perms("permissionsWithGrantOption").alias("permissions_with_grant_option"),
    )


def aggregate_governance_changes_daily(events: DataFrame) -> DataFrame:
    """cloudtrail_events -> agg_governance_changes_daily: one row per catalog / LF write event."""
    writes = events.where(
        ((F.col("event_source") == GLUE) & F.col("event_name").isin(*GLUE_CATALOG_WRITES))
        | ((F.col("event_source") == LAKE_FORMATION) & F.col("event_name").isin(*LAKE_FORMATION_WRITES))
    )
    return (
        writes.transform(_governance_fields)
        .withColumnsRenamed({"recipient_account_id": "account_id", "event_date": "dt"})
        .transform(conform, "agg_governance_changes_daily")
    )


def aggregate_data_access_daily(events: DataFrame) -> DataFrame:
    """cloudtrail_events -> agg_data_access_daily (Lake Formation GetDataAccess)."""
    req = parse_request("request_parameters", DATA_ACCESS_REQUEST_SCHEMA)
    calls = events.where(
        (F.col("event_source") == LAKE_FORMATION) & (F.col("event_name") == "GetDataAccess")
    ).select(
        "*",
        req["tableArn"].alias("_table_arn"),
        F.array_sort(req["permissions"]).alias("_permissions"),
    )
    grouped = calls.groupBy(
        F.col("recipient_account_id").alias("account_id"),
        "user_arn",
        F.col("_table_arn").alias("table_arn"),
        F.col("_permissions").alias("permissions"),
        F.col("event_date").alias("dt"),
    ).agg(
        F.count(F.lit(1)).alias("access_count"),
        _count_if(F.col("error_code").isNotNull()).alias("error_count"),
        F.min("event_time").alias("first_access_time"),
        F.max("event_time").alias("last_access_time"),
    )
    return grouped.transform(conform, "agg_data_access_daily")


def aggregate_athena_queries_daily(events: DataFrame, *, trusted_cidrs: Iterable[str]) -> DataFrame:
    """cloudtrail_events -> agg_athena_queries_daily (StartQueryExecution), flagging untrusted IPs."""
    cidrs = list(trusted_cidrs or [])
    calls = events.where(
        (F.col("event_source") == ATHENA) & (F.col("event_name") == "StartQueryExecution")
    ).select("*", parse_request("request_parameters", ATHENA_REQUEST_SCHEMA)["workGroup"].alias("_workgroup"))
    grouped = calls.groupBy(
        F.col("recipient_account_id").alias("account_id"),
        "aws_region",
        "user_arn",
        "source_ip_address",
        "user_agent",
        F.col("_workgroup").alias("workgroup"),
        F.col("event_date").alias("dt"),
    ).agg(
        F.count(F.lit(1)).alias("query_count"),
        _count_if(F.col("error_code").isNotNull()).alias("failed_count"),
        F.min("event_time").alias("first_event_time"),
        F.max("event_time").alias("last_event_time"),
    )
    outside = outside_cidrs(F.col("source_ip_address"), cidrs)
    return grouped.withColumn("outside_trusted_networks", outside).transform(
        conform, "agg_athena_queries_daily"
    )


def aggregate_glue_jobs_daily(events: DataFrame) -> DataFrame:
    """cloudtrail_events -> agg_glue_jobs_daily: who started, changed or deleted jobs and crawlers."""
    req = parse_request("request_parameters", GLUE_JOB_REQUEST_SCHEMA)
    is_job = F.col("event_name").isin(*GLUE_JOB_EVENTS)
    calls = events.where(
        (F.col("event_source") == GLUE) & F.col("event_name").isin(*GLUE_JOB_EVENTS, *GLUE_CRAWLER_EVENTS)
    ).select(
        "*",
        F.when(is_job, F.lit("job")).otherwise(F.lit("crawler")).alias("_resource_type"),
        # StartJobRun/UpdateJob/DeleteJob name the job jobName, CreateJob and the crawler calls name.
        F.when(is_job, F.coalesce(req["jobName"], req["name"]))
        .otherwise(req["name"])
        .alias("_resource_name"),
    )
    grouped = calls.groupBy(
        F.col("recipient_account_id").alias("account_id"),
        "aws_region",
        "user_arn",
        F.col("_resource_type").alias("resource_type"),
        F.col("_resource_name").alias("resource_name"),
        "event_name",
        F.col("event_date").alias("dt"),
    ).agg(
        F.count(F.lit(1)).alias("event_count"),
        _count_if(F.col("error_code").isNotNull()).alias("error_count"),
        F.min("event_time").alias("first_event_time"),
        F.max("event_time").alias("last_event_time"),
    )
    return grouped.transform(conform, "agg_glue_jobs_daily")


def is_access_denied(error_code: Column) -> Column:
    """Whether a CloudTrail errorCode belongs to the AccessDenied family (false for null)."""
    return F.coalesce(error_code.rlike(ACCESS_DENIED_PATTERN), F.lit(False))


def aggregate_access_denied_daily(events: DataFrame) -> DataFrame:
    """cloudtrail_events -> agg_access_denied_daily."""
    denied = events.where(is_access_denied(F.col("error_code")))
    grouped = denied.groupBy(
        F.col("recipient_account_id").alias("account_id"),
        "user_arn",
        "event_source",
        "event_name",
        "error_code",
        F.col("event_date").alias("dt"),
    ).agg(*_event_stats())
    return grouped.transform(conform, "agg_access_denied_daily")


# --- S3 server access log aggregates --------------------------------------------------------


def aggregate_s3_requests_daily(logs: DataFrame) -> DataFrame:
    """s3_access_logs -> agg_s3_requests_daily, with p50/p95 of total_time_ms (percentile_approx)."""
    is_error = (F.col("http_status") >= 400) | F.col("error_code").isNotNull()
    grouped = logs.groupBy(
        "bucket",
        "operation",
        "http_status",
        "requester",
        "remote_ip",
        F.col("request_date").alias("dt"),
    ).agg(
        F.count(F.lit(1)).alias("request_count"),
        F.sum(F.coalesce(F.col("bytes_sent"), F.lit(0))).alias("bytes_sent"),
        _count_if(F.coalesce(is_error, F.lit(False))).alias("error_count"),
        F.percentile_approx("total_time_ms", [0.5, 0.95], PERCENTILE_ACCURACY).alias("_pct"),
    )
    percentiles = {"total_time_p50_ms": F.col("_pct")[0], "total_time_p95_ms": F.col("_pct")[1]}
    return grouped.withColumns(percentiles).transform(conform, "agg_s3_requests_daily")


def aggregate_s3_object_access_daily(logs: DataFrame) -> DataFrame:
    """s3_access_logs -> agg_s3_object_access_daily (object-level lines only)."""
    grouped = (
        logs.where(F.col("key").isNotNull())
        .groupBy(
            "bucket",
            "key",
            "operation",
            F.col("request_date").alias("dt"),
        )
        .agg(
            F.count(F.lit(1)).alias("request_count"),
            # count_distinct skips nulls; the anonymous requester (null) counts as one more.
            (F.countDistinct("requester") + F.max(F.when(F.col("requester").isNull(), 1).otherwise(0))).alias(
                "distinct_requesters"
            ),
            F.sum(F.coalesce(F.col("bytes_sent"), F.lit(0))).alias("bytes_sent"),
        )
    )
    return grouped.transform(conform, "agg_s3_object_access_daily")


# --- Glue crawler aggregate -----------------------------------------------------------------


def aggregate_crawler_daily(runs: DataFrame, *, log_events: DataFrame) -> DataFrame:
    """crawler_runs (by run_date) + crawler_log_events (by event_date) -> agg_crawler_daily."""

    def total(c: str) -> Column:
        return F.sum(F.coalesce(F.col(c), F.lit(0))).cast("bigint")

    per_run_day = runs.groupBy("crawler_name", F.col("run_date").alias("dt")).agg(
        F.count(F.lit(1)).alias("runs"),
        _count_if(F.col("status") == "failed").alias("failed_runs"),
        _count_if(F.col("status") == "succeeded").alias("succeeded_runs"),
        total("tables_created").alias("tables_created"),
        total("tables_updated").alias("tables_updated"),
        total("partitions_added").alias("partitions_added"),
        total("partitions_updated").alias("partitions_updated"),
        F.sum(F.coalesce(F.col("duration_seconds"), F.lit(0.0))).alias("total_run_seconds"),
    )
    per_log_day = log_events.groupBy("crawler_name", F.col("event_date").alias("dt")).agg(
        # What the seed's CloudWatch metric filter `ERROR` counts (case-sensitive term anywhere in
        # the message, once per event), computed by the crawler source as error_filter_match.
        _count_if(F.col("error_filter_match")).alias("error_count"),
        _count_if(F.upper(F.col("level")) == "WARN").alias("warn_count"),
    )
    joined = per_run_day.join(per_log_day, on=["crawler_name", "dt"], how="full_outer")

    # A day with runs but no log events (or the reverse) counts 0, not null, on the other side.
    counts = [c for c in joined.columns if c not in ("crawler_name", "dt")]
    return joined.fillna(0, subset=counts).transform(conform, "agg_crawler_daily")
