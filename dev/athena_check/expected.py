"""The query pack's answers computed with Spark DataFrames from the lake tables.

Written independently of the SQL in ``queries/``: the same question, asked through the
DataFrame API, so that a wrong query (or a type that did not survive the trip to Trino) shows
up as a difference. Each function takes the Spark session, a table reader and the parameter
values the check renders into the query, and returns a DataFrame with the query's columns in
the query's order.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

import pyspark.sql.functions as F
from pyspark.sql import DataFrame
from pyspark.sql import types as T

Reader = Callable[[str], DataFrame]


def _days(col: str, p: dict) -> F.Column:
    return F.col(col).between(F.lit(p["start_date"]).cast("date"), F.lit(p["end_date"]).cast("date"))


def _json(path: str) -> F.Column:
    return F.get_json_object(F.col("request_parameters"), path)


def who_deleted_table(spark, read: Reader, p: dict) -> DataFrame:
    tables = F.from_json(_json("$.tablesToDelete"), T.ArrayType(T.StringType()))
    return (
        read("cloudtrail_events")
        .where(_days("event_date", p))
        .where(
            (F.col("event_source") == "glue.amazonaws.com")
            & F.col("event_name").isin("DeleteTable", "BatchDeleteTable")
        )
        .where(_json("$.databaseName") == p["database"])
        .where(
            (_json("$.name") == p["table"]) | F.coalesce(F.array_contains(tables, p["table"]), F.lit(False))
        )
        .select(
            "event_time",
            "event_name",
            "user_arn",
            "user_name",
            "source_ip_address",
            "user_agent",
            "aws_region",
            "recipient_account_id",
            "error_code",
        )
    )


def permission_changes(spark, read: Reader, p: dict) -> DataFrame:
    names = ("GrantPermissions", "RevokePermissions", "BatchGrantPermissions", "BatchRevokePermissions")
    return (
        read("cloudtrail_events")
        .where(_days("event_date", p))
        .where((F.col("event_source") == "lakeformation.amazonaws.com") & F.col("event_name").isin(*names))
        .select(
            "event_time",
            "event_name",
            "user_arn",
            "source_ip_address",
            _json("$.principal.dataLakePrincipalIdentifier").alias("grantee"),
            "error_code",
            "request_parameters",
        )
    )


def data_access_by_principal(spark, read: Reader, p: dict) -> DataFrame:
    return (
        read("cloudtrail_events")
        .where(_days("event_date", p))
        .where(
            (F.col("event_source") == "lakeformation.amazonaws.com")
            & (F.col("event_name") == "GetDataAccess")
        )
        .groupBy("user_arn", _json("$.tableArn").alias("table_arn"))
        .agg(
            F.count(F.lit(1)).alias("calls"),
            F.min("event_time").alias("first_access"),
            F.max("event_time").alias("last_access"),
        )
    )


def queries_from_untrusted_networks(spark, read: Reader, p: dict) -> DataFrame:
    rows = (
        read("cloudtrail_events")
        .where(_days("event_date", p))
        .where(
            (F.col("event_source") == "athena.amazonaws.com") & (F.col("event_name") == "StartQueryExecution")
        )
        .select(
            "event_time",
            "user_arn",
            "source_ip_address",
            _json("$.workGroup").alias("work_group"),
            _json("$.queryString").alias("query_string"),
        )
        .collect()
    )
    nets = [ipaddress.ip_network(c) for c in p["trusted_cidrs"]]

    def untrusted(ip: str | None) -> bool:
        try:
            addr = ipaddress.ip_address(ip or "")
        except ValueError:
            return False  # a service host name, not an address
        return not any(addr.version == n.version and addr in n for n in nets)

    kept = [r for r in rows if untrusted(r["source_ip_address"])]
    schema = (
        read("cloudtrail_events")
        .select(
            "event_time",
            "user_arn",
            "source_ip_address",
            F.lit("").alias("work_group"),
            F.lit("").alias("query_string"),
        )
        .schema
    )
    return spark.createDataFrame(kept, schema)


def _bucket(p: dict) -> DataFrame:
    return F.col("bucket") == p["bucket"]


def top_remote_ips(spark, read: Reader, p: dict) -> DataFrame:
    return (
        read("s3_access_logs")
        .where((F.col("request_date") == F.lit(p["day"]).cast("date")) & _bucket(p))
        .groupBy("remote_ip")
        .agg(F.count(F.lit(1)).alias("requests"), F.sum("bytes_sent").alias("bytes_sent"))
        .orderBy(F.col("requests").desc(), F.col("remote_ip").asc_nulls_last())
        .limit(10)
    )


def requests_by_status(spark, read: Reader, p: dict) -> DataFrame:
    return (
        read("s3_access_logs")
        .where(_days("request_date", p) & _bucket(p))
        .groupBy("request_date", "http_status")
        .agg(F.count(F.lit(1)).alias("requests"))
    )


def object_requests(spark, read: Reader, p: dict) -> DataFrame:
    return (
        read("s3_access_logs")
        .where(_days("request_date", p) & _bucket(p) & (F.col("key") == p["key"]))
        .select(
            "request_time",
            "operation",
            "requester",
            "remote_ip",
            "http_status",
            "error_code",
            "bytes_sent",
            "version_id",
            "request_id",
        )
    )


def requests_by_operation(spark, read: Reader, p: dict) -> DataFrame:
    return (
        read("s3_access_logs")
        .where(_days("request_date", p) & _bucket(p))
        .groupBy("operation")
        .agg(
            F.count(F.lit(1)).alias("requests"),
            F.sum(F.when(F.col("http_status") >= 400, 1).otherwise(0)).alias("errors"),
            F.sum("bytes_sent").alias("bytes_sent"),
        )
    )


def distinct_requesters(spark, read: Reader, p: dict) -> DataFrame:
    return (
        read("s3_access_logs")
        .where(_days("request_date", p) & _bucket(p))
        .groupBy("requester")
        .agg(
            F.count(F.lit(1)).alias("requests"),
            F.min("request_time").alias("first_request"),
            F.max("request_time").alias("last_request"),
        )
    )


def failed_crawlers(spark, read: Reader, p: dict) -> DataFrame:
    return (
        read("crawler_runs")
        .where((F.col("run_date") == F.lit(p["day"]).cast("date")) & (F.col("status") == "failed"))
        .select("crawler_name", "run_id", "started_at", "finished_at", "error_count", "first_error_message")
    )


def crawler_error_count_daily(spark, read: Reader, p: dict) -> DataFrame:
    """From the normalized log events, so the query also checks the aggregate it reads."""
    return (
        read("crawler_log_events")
        .where(_days("event_date", p))
        .groupBy("event_date", "crawler_name")
        .agg(F.sum(F.when(F.col("error_filter_match"), 1).otherwise(0)).alias("crawler_error_count"))
    )


def access_denied_spikes(spark, read: Reader, p: dict) -> DataFrame:
    code = F.col("error_code")
    denied = code.contains("AccessDenied") | code.contains("UnauthorizedOperation") | (code == "Forbidden")
    return (
        read("cloudtrail_events")
        .where(_days("event_date", p) & denied)
        .groupBy(
            "event_date", F.coalesce("user_arn", "user_principal_id", F.lit("unknown")).alias("principal")
        )
        .agg(
            F.count(F.lit(1)).alias("denied"), F.array_sort(F.collect_set("event_name")).alias("event_names")
        )
        .where(F.col("denied") >= int(p["min_denied"]))
    )


def _sessions_of(entity: str, arn: F.Column) -> F.Column:
    """Whether ``arn`` is a session of the role ``entity`` (a role ARN, with or without a path)."""
    m = re.match(r"^arn:([^:]+):iam::(\d{12}):role/(?:.*/)?([^/]+)$", entity)
    if not m:
        return F.lit(False)
    partition, account, name = m.groups()
    return F.coalesce(arn.startswith(f"arn:{partition}:sts::{account}:assumed-role/{name}/"), F.lit(False))


def entity_timeline(spark, read: Reader, p: dict) -> DataFrame:
    """Both sources' events of the entity, as one frame in (time, source, id) order."""
    e = p["entity"]
    ct = read("cloudtrail_events").where(_days("event_date", p))
    ct = ct.where(
        (F.col("user_arn") == e)
        | (F.col("session_issuer_arn") == e)
        | (F.col("user_principal_id") == e)
        | (F.col("invoked_by") == e)
        | (F.col("source_ip_address") == e)
        | _sessions_of(e, F.col("user_arn"))
    ).select(
        "event_time",
        F.lit("cloudtrail").alias("source"),
        F.concat(F.split("event_source", r"\.").getItem(0), F.lit(":"), F.col("event_name")).alias("action"),
        F.array_join(F.transform("resources", lambda r: r["arn"]), " ").alias("resource"),
        F.when(F.col("error_code").isNull(), "success").otherwise("failure").alias("result"),
        "error_code",
        F.coalesce("user_arn", "invoked_by", "user_principal_id").alias("principal"),
        F.col("source_ip_address").alias("source_ip"),
        "user_agent",
        F.col("recipient_account_id").alias("account_id"),
        "event_id",
    )
    s3 = read("s3_access_logs").where(_days("request_date", p))
    s3 = s3.where(
        (F.col("requester") == e)
        | (F.col("requester") == "svc:" + e)
        | (F.col("remote_ip") == e)
        | _sessions_of(e, F.col("requester"))
    ).select(
        F.col("request_time").alias("event_time"),
        F.lit("s3_access").alias("source"),
        F.col("operation").alias("action"),
        F.when(F.col("key").isNull(), F.col("bucket"))
        .otherwise(F.concat(F.col("bucket"), F.lit("/"), F.col("key")))
        .alias("resource"),
        F.when((F.col("http_status") >= 400) | F.col("error_code").isNotNull(), "failure")
        .otherwise("success")
        .alias("result"),
        "error_code",
        F.col("requester").alias("principal"),
        F.col("remote_ip").alias("source_ip"),
        "user_agent",
        F.lit(None).cast("string").alias("account_id"),
        F.col("request_id").alias("event_id"),
    )
    return ct.unionByName(s3).orderBy("event_time", "source", "event_id")


EXPECTED = {
    f.__name__: f
    for f in (
        who_deleted_table,
        permission_changes,
        data_access_by_principal,
        queries_from_untrusted_networks,
        top_remote_ips,
        requests_by_status,
        object_requests,
        requests_by_operation,
        distinct_requesters,
        failed_crawlers,
        crawler_error_count_daily,
        access_denied_spikes,
        entity_timeline,
    )
}
