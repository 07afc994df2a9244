"""Entity activity: one row per day, principal or IP, source and action, across CloudTrail and S3.

Principals are normalised so that one identity is findable however a source spells it:

- an assumed-role session ``arn:aws:sts::<acct>:assumed-role/<role>/<session>`` counts for the
  session (``assumed_role_session``, the ARN as logged) and for its role (``iam_role``,
  ``arn:aws:iam::<acct>:role/<role>``; CloudTrail's session issuer ARN when the event carries it,
  since it keeps the role's path, which the session ARN drops);
- IAM user ``arn:aws:iam::<acct>:user/<name>`` (``iam_user``), ``arn:aws:iam::<acct>:root``
  (``root``), ``arn:aws:sts::<acct>:federated-user/<name>`` (``federated_user``);
- AWS services: CloudTrail ``userIdentity.type = AWSService`` has no ARN, its ``invokedBy`` names
  the service (``athena.amazonaws.com``); S3 access logs write service principals as
  ``svc:<service>`` (both ``aws_service``, value = the service principal);
- an S3 access log requester that is a canonical user id (64 hex digits) cannot be mapped to an
  ARN from the logs alone: it stays as logged (``canonical_user``); a ``-`` requester is
  ``anonymous``. Anything else is kept as logged (``other``).

``raw_values`` keeps every spelling that was normalised into the row's value. IP entities are
CloudTrail ``sourceIPAddress`` and S3 ``remote_ip`` values that are IPv4/IPv6 addresses;
CloudTrail writes a service host name (``athena.amazonaws.com``) or ``AWS Internal`` there for
calls a service made, which are not addresses and give no IP row (the principal row remains).
"""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame

from auditlake.aggregates import ipv4_to_number, ipv6_to_hex

CLOUDTRAIL = "cloudtrail"
S3_ACCESS = "s3_access"

_ASSUMED_ROLE = r"^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role/([^/]+)/(.+)$"
_IAM_USER = r"^arn:aws[a-z-]*:iam::\d{12}:user/.+$"
_ROOT = r"^arn:aws[a-z-]*:iam::\d{12}:root$"
_FEDERATED = r"^arn:aws[a-z-]*:sts::\d{12}:federated-user/.+$"
_IAM_ROLE = r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$"
_CANONICAL = r"^[0-9a-f]{64}$"
_ARN_ACCOUNT = r"^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:(\d{12}):"


def principal_type(principal: Column) -> Column:
    """The kind of a principal as logged (ARN, ``svc:`` service, canonical id); null for null."""
    return (
        F.when(principal.isNull(), F.lit(None).cast("string"))
        .when(principal.rlike(_ASSUMED_ROLE), F.lit("assumed_role_session"))
        .when(principal.rlike(_IAM_USER), F.lit("iam_user"))
        .when(principal.rlike(_ROOT), F.lit("root"))
        .when(principal.rlike(_FEDERATED), F.lit("federated_user"))
        .when(principal.rlike(_IAM_ROLE), F.lit("iam_role"))
        .when(principal.startswith("svc:"), F.lit("aws_service"))
        .when(principal.rlike(_CANONICAL), F.lit("canonical_user"))
        .otherwise(F.lit("other"))
    )


def role_arn_of_session(session_arn: Column) -> Column:
    """``arn:aws:sts::A:assumed-role/R/S`` -> ``arn:aws:iam::A:role/R``; null for anything else."""
    partition = F.regexp_extract(session_arn, _ASSUMED_ROLE, 1)
    account = F.regexp_extract(session_arn, _ASSUMED_ROLE, 2)
    role = F.regexp_extract(session_arn, _ASSUMED_ROLE, 3)
    return F.when(
        session_arn.rlike(_ASSUMED_ROLE),
        F.concat(F.lit("arn:"), partition, F.lit(":iam::"), account, F.lit(":role/"), role),
    )


def account_of_arn(arn: Column) -> Column:
    """The 12-digit account id in an ARN; null when there is none (S3 bucket ARNs, services)."""
    return F.when(arn.rlike(_ARN_ACCOUNT), F.regexp_extract(arn, _ARN_ACCOUNT, 1))


def ip_kind(ip: Column) -> Column:
    """``ipv4`` / ``ipv6`` for an address, null for anything else (host names, ``AWS Internal``)."""
    text = F.trim(ip)
    return F.when(ipv4_to_number(text).isNotNull(), F.lit("ipv4")).when(
        ipv6_to_hex(text).isNotNull(), F.lit("ipv6")
    )


def principal_entities(principal: Column, *, role_arn: Column | None = None) -> Column:
    """array<struct<entity_type, entity_value>> for one logged principal.

    An assumed-role session gives two: the session and its role (``role_arn`` when given and not
    null, else derived from the session ARN). An ``svc:`` service is written without the prefix.
    """
    kind = principal_type(principal)
    role = (
        role_arn_of_session(principal)
        if role_arn is None
        else F.coalesce(role_arn, role_arn_of_session(principal))
    )

    def entity(t: Column | str, v: Column) -> Column:
        return F.struct((F.lit(t) if isinstance(t, str) else t).alias("entity_type"), v.alias("entity_value"))

    value = F.when(kind == "aws_service", F.regexp_replace(principal, r"^svc:", "")).otherwise(principal)
    return (
        F.when(principal.isNull(), F.array())
        .when(
            kind == "assumed_role_session",
            F.array(entity("assumed_role_session", principal), entity("iam_role", role)),
        )
        .otherwise(F.array(entity(kind, value)))
    )


def _ct_principal(events: DataFrame) -> Column:
    """CloudTrail's principal: the ARN, else for AWSService calls the invoking service."""
    is_service = F.col("user_type") == "AWSService"
    return F.coalesce(
        F.col("user_arn"),
        F.when(is_service, F.concat(F.lit("svc:"), F.col("invoked_by"))),
        F.col("user_principal_id"),
    )


def _non_null_sorted(arr: Column) -> Column:
    return F.array_sort(F.array_distinct(F.filter(arr, lambda x: x.isNotNull())))


def cloudtrail_entity_events(events: DataFrame) -> DataFrame:
    """cloudtrail_events -> one row per (event, entity) with what the daily rollup needs."""
    principal = _ct_principal(events)
    role = F.when(F.col("session_issuer_type") == "Role", F.col("session_issuer_arn"))
    service = F.regexp_replace(F.col("event_source"), r"\.amazonaws\.com$", "")
    base = events.select(
        F.col("event_date").alias("dt"),
        F.col("event_time").alias("event_time"),
        F.lit(CLOUDTRAIL).alias("source"),
        F.concat_ws(":", service, F.col("event_name")).alias("action"),
        F.col("error_code").isNotNull().alias("is_error"),
        _non_null_sorted(
            F.coalesce(F.transform("resources", lambda r: r["arn"]), F.array().cast("array<string>"))
        ).alias("resource_list"),
        _non_null_sorted(F.array("recipient_account_id", "user_account_id")).alias("account_list"),
        principal.alias("raw_principal"),
        principal_entities(principal, role_arn=role).alias("principals"),
        F.trim(F.col("source_ip_address")).alias("ip"),
    )
    return _explode_entities(base)


def s3_access_entity_events(logs: DataFrame) -> DataFrame:
    """s3_access_logs -> one row per (request, entity)."""
    requester = F.col("requester")
    resource = (
        F.when(F.col("bucket").isNull(), F.lit(None).cast("string"))
        .when(
            F.col("key").isNotNull(),
            F.concat(F.lit("arn:aws:s3:::"), F.col("bucket"), F.lit("/"), F.col("key")),
        )
        .otherwise(F.concat(F.lit("arn:aws:s3:::"), F.col("bucket")))
    )
    is_error = F.coalesce((F.col("http_status") >= 400) | F.col("error_code").isNotNull(), F.lit(False))
    base = logs.select(
        F.col("request_date").alias("dt"),
        F.col("request_time").alias("event_time"),
        F.lit(S3_ACCESS).alias("source"),
        F.col("operation").alias("action"),
        is_error.alias("is_error"),
        _non_null_sorted(F.array(resource)).alias("resource_list"),
        _non_null_sorted(F.array(account_of_arn(requester))).alias("account_list"),
        requester.alias("raw_principal"),
        F.when(
            requester.isNull(),
            F.array(
                F.struct(F.lit("anonymous").alias("entity_type"), F.lit("anonymous").alias("entity_value"))
            ),
        )
        .otherwise(principal_entities(requester))
        .alias("principals"),
        F.trim(F.col("remote_ip")).alias("ip"),
    )
    return _explode_entities(base)


def _explode_entities(base: DataFrame) -> DataFrame:
    """One row per principal entity plus one per IP entity; ``counterpart`` is the other side."""
    shared = [
        "dt",
        "event_time",
        "source",
        "action",
        "is_error",
        "resource_list",
        "account_list",
        "raw_principal",
    ]
    principals = base.select(*shared, "ip", F.explode("principals").alias("p")).select(
        *shared,
        F.lit("principal").alias("entity_kind"),
        F.col("p.entity_type").alias("entity_type"),
        F.col("p.entity_value").alias("entity_value"),
        F.when(ip_kind(F.col("ip")).isNotNull(), F.col("ip")).alias("counterpart"),
    )
    ips = base.where(ip_kind(F.col("ip")).isNotNull()).select(
        *shared,
        F.lit("ip").alias("entity_kind"),
        ip_kind(F.col("ip")).alias("entity_type"),
        F.col("ip").alias("entity_value"),
        # The principal as normalised for its main row (a session's role is one hop further).
        F.when(F.size("principals") > 0, F.col("principals")[0]["entity_value"]).alias("counterpart"),
    )
    return principals.unionByName(ips)


def aggregate_entity_activity_daily(events: DataFrame, *, s3_access_logs: DataFrame) -> DataFrame:
    """cloudtrail_events + s3_access_logs -> entity_activity_daily.

    ``distinct_counterparts`` is the number of distinct IP addresses a principal used, or of
    distinct principals an IP was used by.
    """
    rows = cloudtrail_entity_events(events).unionByName(s3_access_entity_events(s3_access_logs))
    grouped = rows.groupBy("dt", "entity_kind", "entity_value", "source", "action").agg(
        F.array_sort(F.collect_set("entity_type")).alias("_types"),
        F.count(F.lit(1)).alias("event_count"),
        F.sum(F.when(F.col("is_error"), 1).otherwise(0)).alias("error_count"),
        F.size(F.array_distinct(F.flatten(F.collect_list("resource_list")))).alias("distinct_resources"),
        F.countDistinct("counterpart").alias("distinct_counterparts"),
        F.array_sort(F.array_distinct(F.flatten(F.collect_list("account_list")))).alias("account_ids"),
        F.array_sort(F.collect_set("raw_principal")).alias("_raw"),
        F.min("event_time").alias("first_seen"),
        F.max("event_time").alias("last_seen"),
    )
    return grouped.select(
        F.col("entity_kind").cast("string"),
        # One value has one type; the max only matters for a value logged as two kinds.
        F.element_at("_types", -1).cast("string").alias("entity_type"),
        F.col("entity_value").cast("string"),
        F.col("source").cast("string"),
        F.col("action").cast("string"),
        F.col("event_count").cast("bigint"),
        F.col("error_count").cast("bigint"),
        F.col("distinct_resources").cast("bigint"),
        F.col("distinct_counterparts").cast("bigint"),
        F.col("account_ids").cast("array<string>"),
        F.when(F.col("entity_kind") == "principal", F.col("_raw")).cast("array<string>").alias("raw_values"),
        F.col("first_seen").cast("timestamp"),
        F.col("last_seen").cast("timestamp"),
        F.col("dt").cast("date"),
    )
