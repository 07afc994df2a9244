"""What the daily report shows, read from the lake into small plain-Python tables.

Every section reads a daily aggregate filtered on its ``dt`` partition (a few days at most),
except the day's governance changes, which also read the day's partition of
``cloudtrail_events`` for IAM and bucket-policy changes the aggregate does not carry. Run
health comes from ``job_runs`` and ``dq_results``, quarantine counts and samples from the
quarantine rows of those runs. Tables are capped: a section keeps its first ``max_rows`` rows
and the total, so a large day stays readable ("N more").
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, Window

from auditlake import lake as lake_mod

log = logging.getLogger(__name__)

FINDINGS_TABLE = "findings"
SEVERITIES = ("critical", "high", "medium", "low")
FAILED_RUN_STATUSES = ("failed", "dq_failed")
DQ_RANK = {"failed": 3, "warning": 2, "passed": 1, "skipped": 0}
HTTP_CLASSES = ("2xx", "3xx", "4xx", "5xx", "other")

# Permission and policy changes outside the Glue Data Catalog and Lake Formation grants (which
# agg_governance_changes_daily carries): read from the day's cloudtrail_events partition.
POLICY_CHANGES: dict[str, tuple[str, ...]] = {
    "iam.amazonaws.com": (
        "AttachRolePolicy",
        "DetachRolePolicy",
        "PutRolePolicy",
        "DeleteRolePolicy",
        "AttachUserPolicy",
        "DetachUserPolicy",
        "PutUserPolicy",
        "DeleteUserPolicy",
        "AttachGroupPolicy",
        "DetachGroupPolicy",
        "PutGroupPolicy",
        "DeleteGroupPolicy",
        "CreatePolicy",
        "DeletePolicy",
        "CreatePolicyVersion",
        "SetDefaultPolicyVersion",
        "UpdateAssumeRolePolicy",
        "CreateRole",
        "DeleteRole",
        "CreateUser",
        "DeleteUser",
        "CreateAccessKey",
        "AddUserToGroup",
        "RemoveUserFromGroup",
    ),
    "s3.amazonaws.com": (
        "PutBucketPolicy",
        "DeleteBucketPolicy",
        "PutBucketAcl",
        "PutBucketPublicAccessBlock",
        "DeleteBucketPublicAccessBlock",
    ),
    "lakeformation.amazonaws.com": ("PutDataLakeSettings", "RegisterResource", "DeregisterResource"),
}


@dataclass(frozen=True)
class Options:
    """Report settings (conf ``report.*``)."""

    max_rows: int = 25
    top_ips_per_bucket: int = 5
    spike_min_denied: int = 10
    spike_factor: float = 3.0
    quarantine_samples: int = 3
    sample_chars: int = 240
    redact_samples: bool = True

    @classmethod
    def from_conf(cls, cfg: dict[str, Any]) -> Options:
        known = cls.__dataclass_fields__
        conf = (cfg or {}).get("report") or {}
        unknown = sorted(set(conf) - set(known))
        if unknown:
            raise ValueError(f"unknown report settings {unknown}; known: {sorted(known)}")
        return cls(**{k: type(getattr(cls, k))(v) for k, v in conf.items()})


@dataclass
class Table:
    """A capped table: the first rows of a section and how many there were."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    total: int

    @property
    def more(self) -> int:
        return self.total - len(self.rows)


@dataclass
class RunHealth:
    """The night's runs per source and what went wrong."""

    sources: Table
    problems: list[str] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)


@dataclass
class ReportData:
    """Everything the page shows, as plain values."""

    day: dt.date
    days: int
    accounts: list[str]
    regions: list[str]
    cloudtrail_events: int
    health: RunHealth
    findings: Table | None
    findings_by_severity: dict[str, int]
    governance: Table
    data_access: Table
    athena_untrusted: Table
    denied_daily: list[tuple[dt.date, int]]
    denied_spike_days: list[dt.date]
    denied_principals: Table
    s3_by_status: list[tuple[dt.date, str, int]]
    s3_by_operation: list[tuple[dt.date, str, int]]
    s3_top_ips: Table
    s3_requesters: Table
    crawler_failed: Table
    crawler_errors_daily: list[tuple[dt.date, str, int]]
    crawler_day: Table
    quarantine_counts: Table
    quarantine_samples: Table
    data_access_calls: int = 0
    data_access_principals: int = 0
    athena_untrusted_queries: int = 0

    @property
    def window(self) -> list[dt.date]:
        return window_days(self.day, self.days)


def window_days(day: dt.date, days: int) -> list[dt.date]:
    """The ``days`` UTC days ending with ``day``, oldest first."""
    return [day - dt.timedelta(days=i) for i in range(days - 1, -1, -1)]


# --- redaction ------------------------------------------------------------------------------

_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    # key=value / "key": "value" pairs whose value is a credential
    (
        re.compile(
            r"(?i)(\"?[a-z_-]*(?:secret|password|passwd|token|signature|credential|authorization)"
            r"[a-z_-]*\"?\s*[:=]\s*)(\"[^\"]*\"|[^\s,;&}\"]+)"
        ),
        r"\1«redacted»",
    ),
    (re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA|AGPA|ANPA)[A-Z0-9]{12,}\b"), "«access-key»"),
    (re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b"), "«email»"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b"), "«ip»"),
    (re.compile(r"\b\d{12}\b"), "«account»"),
)

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def redact(text: str | None, *, max_chars: int, enabled: bool = True) -> str:
    """A quarantined record made fit to show: credentials, keys, emails, IPs, accounts masked, cut."""
    if text is None:
        return ""
    out = text[: max_chars * 4]
    if enabled:
        for pattern, repl in _REDACTIONS:
            out = pattern.sub(repl, out)
    # control characters (binary junk in a log line) would render as tofu boxes
    out = _CONTROL.sub("\ufffd", out)
    out = " ".join(out.split())
    return out if len(out) <= max_chars else out[: max_chars - 1] + "…"


# --- helpers --------------------------------------------------------------------------------


def capped(df: DataFrame, columns: dict[str, Column | str], order: list[Column], cap: int) -> Table:
    """The first ``cap`` rows of ``df`` in ``order`` as a Table, with the total row count."""
    total = df.count()
    rows = (
        [tuple(r) for r in df.orderBy(*order).limit(cap).select(*columns.values()).collect()] if total else []
    )
    return Table(tuple(columns), rows, total)


def _read_days(spark, lake: str, table: str, days: list[dt.date]) -> DataFrame:
    return lake_mod.read_table(spark, lake, table).where(F.col("dt").isin(days))


def _short_table_arn(arn: Column) -> Column:
    """``arn:aws:glue:<region>:<acct>:table/<db>/<table>`` -> ``<db>.<table>`` (other ARNs as they are)."""
    tail = F.regexp_extract(arn, r":table/([^/]+)/(.+)$", 0)
    return F.when(
        tail != "",
        F.concat_ws(
            ".", F.regexp_extract(arn, r":table/([^/]+)/", 1), F.regexp_extract(arn, r":table/[^/]+/(.+)$", 1)
        ),
    ).otherwise(arn)


def http_class(status: Column) -> Column:
    """HTTP status -> ``2xx`` .. ``5xx``; ``other`` for null or anything else."""
    return F.when(
        status.between(200, 599), F.concat((status / 100).cast("int").cast("string"), F.lit("xx"))
    ).otherwise(F.lit("other"))


# --- run health -----------------------------------------------------------------------------


def select_night_runs(job_runs: DataFrame, *, day: dt.date) -> DataFrame:
    """The runs a day's report answers for: those that wrote into the day or started on it or the next day.

    A run record can in principle be written more than once; the last one (by ended_at) counts.
    """
    latest = Window.partitionBy("run_id", "job").orderBy(F.col("ended_at").desc_nulls_last())
    next_day = day + dt.timedelta(days=1)
    return (
        job_runs.withColumn("_n", F.row_number().over(latest))
        .where(F.col("_n") == 1)
        .drop("_n")
        .where(
            F.array_contains(F.coalesce("touched_dates", F.array().cast("array<date>")), F.lit(day))
            | F.to_date("started_at").between(F.lit(day), F.lit(next_day))
        )
    )


def run_health(runs: DataFrame, dq_results: DataFrame, *, cap: int) -> RunHealth:
    """Per job and source: runs, records loaded/quarantined/duplicate, worst quality status, problems."""
    rows = (
        runs.select(
            "run_id",
            "job",
            "source",
            "status",
            "error",
            "started_at",
            "records_read",
            "records_loaded",
            "records_quarantined",
            "records_duplicate",
            "dq_status",
        )
        .orderBy("started_at", "run_id")
        .collect()
    )
    run_ids = [r["run_id"] for r in rows]
    critical: dict[str, list[str]] = {}
    if run_ids:
        failed = (
            dq_results.where(
                F.col("run_id").isin(run_ids) & (F.col("severity") == "critical") & ~F.col("success")
            )
            .select("run_id", "table_name", "expectation")
            .distinct()
            .orderBy("run_id", "table_name", "expectation")
        )
        for r in failed.collect():
            critical.setdefault(r["run_id"], []).append(f"{r['table_name']}: {r['expectation']}")

    per_source: dict[tuple[str, str], dict[str, Any]] = {}
    problems: list[str] = []
    for r in rows:
        key = (r["job"], r["source"] or "-")
        s = per_source.setdefault(
            key,
            {
                "runs": 0,
                "failed": 0,
                "read": 0,
                "loaded": 0,
                "quarantined": 0,
                "duplicate": 0,
                "dq": "skipped",
                "critical": 0,
                "last": None,
            },
        )
        s["runs"] += 1
        s["failed"] += r["status"] in FAILED_RUN_STATUSES
        for col, name in (
            ("records_read", "read"),
            ("records_loaded", "loaded"),
            ("records_quarantined", "quarantined"),
            ("records_duplicate", "duplicate"),
        ):
            s[name] += int(r[col] or 0)
        dq = r["dq_status"] or "skipped"
        if DQ_RANK.get(dq, 0) > DQ_RANK.get(s["dq"], 0):
            s["dq"] = dq
        s["critical"] += len(critical.get(r["run_id"], []))
        s["last"] = r["status"]
        if r["status"] in FAILED_RUN_STATUSES:
            error = redact(r["error"], max_chars=160) or "no error recorded"
            problems.append(f"{r['job']} run {r['run_id']} {r['status']}: {error}")
        for check in critical.get(r["run_id"], []):
            problems.append(f"{r['job']} run {r['run_id']}: critical expectation failed on {check}")
    table_rows = [
        (
            job,
            source,
            s["runs"],
            s["last"],
            s["read"],
            s["loaded"],
            s["quarantined"],
            s["duplicate"],
            s["dq"],
            s["critical"],
        )
        for (job, source), s in sorted(per_source.items())
    ]
    table = Table(
        (
            "job",
            "source",
            "runs",
            "last status",
            "read",
            "loaded",
            "quarantined",
            "duplicates",
            "data quality",
            "critical failed",
        ),
        table_rows[:cap],
        len(table_rows),
    )
    return RunHealth(table, problems, run_ids)


# --- findings -------------------------------------------------------------------------------


def findings_of_day(findings: DataFrame, *, day: dt.date) -> DataFrame:
    """The day's detection findings, most severe first."""
    rank = F.coalesce(
        *[F.when(F.col("severity") == s, F.lit(i)) for i, s in enumerate(SEVERITIES)], F.lit(99)
    )
    return findings.where(F.col("dt") == F.lit(day)).withColumn("_rank", rank)


# --- sections -------------------------------------------------------------------------------


def governance_changes(gov_day: DataFrame, events_day: DataFrame) -> DataFrame:
    """Catalog, grant and policy changes of a day: one row per call, with who, from where and the outcome."""
    catalog = gov_day.select(
        "event_time",
        F.regexp_replace("event_source", r"\.amazonaws\.com$", "").alias("service"),
        "event_name",
        F.coalesce(
            F.when(F.col("table_name").isNotNull(), F.concat_ws(".", "database_name", "table_name")),
            F.when(F.size("table_names") > 0, F.array_join("table_names", ", ")),
            F.col("database_name"),
        ).alias("target"),
        F.concat_ws(
            " ",
            F.when(F.size("grantees") > 0, F.concat(F.lit("to "), F.array_join("grantees", ", "))),
            F.when(
                F.size("permissions") > 0, F.concat(F.lit("["), F.array_join("permissions", ", "), F.lit("]"))
            ),
            F.when(
                F.size("partition_values") > 0,
                F.concat(F.size("partition_values").cast("string"), F.lit(" partition(s)")),
            ),
            F.when(
                F.size("table_names") > 1, F.concat(F.size("table_names").cast("string"), F.lit(" tables"))
            ),
        ).alias("detail"),
        "user_arn",
        "source_ip_address",
        "error_code",
    )
    conds = [
        (F.col("event_source") == src) & F.col("event_name").isin(list(names))
        for src, names in POLICY_CHANGES.items()
    ]
    cond = conds[0]
    for c in conds[1:]:
        cond = cond | c

    def param(path: str) -> Column:
        return F.get_json_object("request_parameters", path)

    policy = events_day.where(cond).select(
        "event_time",
        F.regexp_replace("event_source", r"\.amazonaws\.com$", "").alias("service"),
        "event_name",
        F.coalesce(
            param("$.roleName"),
            param("$.userName"),
            param("$.groupName"),
            param("$.bucketName"),
            param("$.policyName"),
            param("$.resource.resourceArn"),
            param("$.resourceArn"),
        ).alias("target"),
        F.coalesce(param("$.policyArn"), param("$.policyName")).alias("detail"),
        "user_arn",
        "source_ip_address",
        "error_code",
    )
    return catalog.unionByName(policy).withColumn("detail", F.when(F.col("detail") != "", F.col("detail")))


def data_access_by_principal(access_day: DataFrame) -> DataFrame:
    """Lake Formation GetDataAccess per principal and table (the query pack's data_access_by_principal)."""
    return (
        access_day.groupBy("user_arn", "table_arn")
        .agg(
            F.sum("access_count").alias("calls"),
            F.sum("error_count").alias("denied"),
            F.array_join(
                F.array_sort(
                    F.array_distinct(
                        F.flatten(F.collect_list(F.coalesce("permissions", F.array().cast("array<string>"))))
                    )
                ),
                ", ",
            ).alias("permissions"),
            F.min("first_access_time").alias("first_access"),
            F.max("last_access_time").alias("last_access"),
        )
        .withColumn("table", _short_table_arn(F.col("table_arn")))
    )


def athena_outside_trusted(athena_day: DataFrame) -> DataFrame:
    """Athena StartQueryExecution calls from outside the trusted networks, per principal, IP and workgroup."""
    return (
        athena_day.where(F.col("outside_trusted_networks"))
        .groupBy("user_arn", "source_ip_address", "workgroup")
        .agg(
            F.sum("query_count").alias("queries"),
            F.sum("failed_count").alias("failed"),
            F.min("first_event_time").alias("first_query"),
            F.max("last_event_time").alias("last_query"),
        )
    )


def access_denied_by_day(denied: DataFrame, days: list[dt.date]) -> list[tuple[dt.date, int]]:
    """AccessDenied-family events per day of the window (0 for a day without any)."""
    counts = {r[0]: int(r[1]) for r in denied.groupBy("dt").agg(F.sum("event_count")).collect()}
    return [(d, counts.get(d, 0)) for d in days]


def spike_days(daily: list[tuple[dt.date, int]], *, factor: float, minimum: int) -> list[dt.date]:
    """Days whose count is at least ``minimum`` and ``factor`` times the median of the window's other days."""
    out = []
    for day, count in daily:
        others = sorted(c for d, c in daily if d != day)
        if not others:
            median = 0.0
        elif len(others) % 2:
            median = float(others[len(others) // 2])
        else:
            median = (others[len(others) // 2 - 1] + others[len(others) // 2]) / 2
        if count >= minimum and count >= factor * median:
            out.append(day)
    return out


def access_denied_principals(denied_day: DataFrame, *, min_denied: int) -> DataFrame:
    """The day's AccessDenied-family events per principal, with the APIs and whether it is a spike."""
    return (
        denied_day.groupBy(F.coalesce("user_arn", F.lit("unknown")).alias("principal"))
        .agg(
            F.sum("event_count").alias("denied"),
            F.array_join(F.array_sort(F.collect_set("event_name")), ", ").alias("event_names"),
            F.array_join(F.array_sort(F.collect_set("error_code")), ", ").alias("error_codes"),
        )
        .withColumn("spike", F.when(F.col("denied") >= min_denied, F.lit("spike")).otherwise(F.lit("")))
    )


def s3_top_remote_ips(s3_day: DataFrame, *, per_bucket: int) -> DataFrame:
    """The day's top remote IPs per bucket by requests (the query pack's top_remote_ips, per bucket)."""
    per_ip = s3_day.groupBy("bucket", "remote_ip").agg(
        F.sum("request_count").alias("requests"),
        F.sum("error_count").alias("errors"),
        F.sum("bytes_sent").alias("bytes_sent"),
    )
    rank = Window.partitionBy("bucket").orderBy(F.col("requests").desc(), F.col("remote_ip").asc_nulls_last())
    return per_ip.withColumn("rank", F.row_number().over(rank)).where(F.col("rank") <= per_bucket)


def s3_distinct_requesters(s3_day: DataFrame) -> DataFrame:
    """The day's distinct requesters per bucket (anonymous counts as one), with requests and errors."""
    anonymous = "\u0000anonymous"
    top = Window.partitionBy("bucket").orderBy(F.col("r").desc(), F.col("requester").asc_nulls_last())
    per_requester = (
        s3_day.groupBy("bucket", "requester")
        .agg(F.sum("request_count").alias("r"))
        .withColumn("n", F.row_number().over(top))
    )
    top_requester = per_requester.where(F.col("n") == 1).select(
        "bucket",
        F.coalesce("requester", F.lit("anonymous")).alias("top_requester"),
        F.col("r").alias("top_requester_requests"),
    )
    return (
        s3_day.groupBy("bucket")
        .agg(
            F.countDistinct(F.coalesce("requester", F.lit(anonymous))).alias("distinct_requesters"),
            F.sum("request_count").alias("requests"),
            F.sum("error_count").alias("errors"),
        )
        .join(top_requester, on="bucket", how="left")
    )


def _first_line(col: str) -> Column:
    return F.substring(F.regexp_extract(F.col(col), r"^([^\r\n]*)", 1), 1, 300)


# --- everything -----------------------------------------------------------------------------


def collect_report(spark, lake: str, *, day: dt.date, days: int, options: Options) -> ReportData:
    """Read what the page for ``day`` shows (``days`` days for the charts)."""
    window = window_days(day, days)
    cap = options.max_rows
    t = F.col

    ct_day = _read_days(spark, lake, "agg_cloudtrail_daily", [day])
    scope = ct_day.agg(
        F.array_sort(F.collect_set("account_id")),
        F.array_sort(F.collect_set("aws_region")),
        F.sum("event_count"),
    ).collect()[0]

    runs = select_night_runs(lake_mod.read_table(spark, lake, "job_runs"), day=day)
    health = run_health(runs, lake_mod.read_table(spark, lake, "dq_results"), cap=cap)

    findings: Table | None = None
    by_severity: dict[str, int] = {}
    findings_uri = lake_mod.table_uri(lake, FINDINGS_TABLE)
    if lake_mod.delta_exists(spark, findings_uri):
        fdf = findings_of_day(spark.read.format("delta").load(findings_uri), day=day).cache()
        by_severity = {r[0]: int(r[1]) for r in fdf.groupBy("severity").count().collect()}
        findings = capped(
            fdf,
            {
                "severity": "severity",
                "rule": F.coalesce("rule_name", "rule_id"),
                "entity": F.concat_ws(": ", "entity_kind", "entity"),
                "account": "account_id",
                "region": "region",
                "events": "event_count",
                "first seen": "first_seen",
                "last seen": "last_seen",
                "MITRE": "mitre_technique",
                "description": "description",
            },
            [t("_rank"), t("first_seen"), t("finding_id")],
            cap,
        )
        fdf.unpersist()

    events_day = lake_mod.read_table(spark, lake, "cloudtrail_events").where(t("event_date") == F.lit(day))
    gov = governance_changes(_read_days(spark, lake, "agg_governance_changes_daily", [day]), events_day)
    governance = capped(
        gov,
        {
            "time": F.date_format("event_time", "HH:mm:ss"),
            "service": "service",
            "action": "event_name",
            "target": "target",
            "detail": "detail",
            "principal": "user_arn",
            "source IP": "source_ip_address",
            "error": "error_code",
        },
        [t("event_time"), t("event_name"), t("user_arn")],
        cap,
    )

    access = data_access_by_principal(_read_days(spark, lake, "agg_data_access_daily", [day]))
    data_access = capped(
        access,
        {
            "principal": "user_arn",
            "table": "table",
            "permissions": "permissions",
            "calls": "calls",
            "denied": "denied",
            "first": F.date_format("first_access", "HH:mm:ss"),
            "last": F.date_format("last_access", "HH:mm:ss"),
        },
        [t("calls").desc(), t("user_arn"), t("table_arn")],
        cap,
    )
    access_totals = access.agg(F.sum("calls"), F.countDistinct("user_arn")).collect()[0]

    athena = athena_outside_trusted(_read_days(spark, lake, "agg_athena_queries_daily", [day]))
    athena_untrusted = capped(
        athena,
        {
            "principal": "user_arn",
            "source IP": "source_ip_address",
            "workgroup": "workgroup",
            "queries": "queries",
            "failed": "failed",
            "first": F.date_format("first_query", "HH:mm:ss"),
            "last": F.date_format("last_query", "HH:mm:ss"),
        },
        [t("queries").desc(), t("user_arn"), t("source_ip_address")],
        cap,
    )
    athena_queries = athena.agg(F.sum("queries")).collect()[0][0]

    denied = _read_days(spark, lake, "agg_access_denied_daily", window).cache()
    denied_daily = access_denied_by_day(denied, window)
    spikes = spike_days(denied_daily, factor=options.spike_factor, minimum=options.spike_min_denied)
    principals = access_denied_principals(
        denied.where(t("dt") == F.lit(day)), min_denied=options.spike_min_denied
    )
    denied_principals = capped(
        principals,
        {
            "principal": "principal",
            "denied": "denied",
            "APIs": "event_names",
            "error codes": "error_codes",
            "spike": "spike",
        },
        [t("denied").desc(), t("principal")],
        cap,
    )
    denied.unpersist()

    s3 = _read_days(spark, lake, "agg_s3_requests_daily", window).cache()
    s3_by_status = [
        (r[0], r[1], int(r[2]))
        for r in s3.groupBy("dt", http_class(t("http_status")).alias("c"))
        .agg(F.sum("request_count"))
        .orderBy("dt", "c")
        .collect()
    ]
    s3_by_operation = [
        (r[0], r[1] or "unknown", int(r[2]))
        for r in s3.groupBy("dt", "operation")
        .agg(F.sum("request_count"))
        .orderBy("dt", "operation")
        .collect()
    ]
    s3_day = s3.where(t("dt") == F.lit(day))
    s3_top_ips = capped(
        s3_top_remote_ips(s3_day, per_bucket=options.top_ips_per_bucket),
        {
            "bucket": "bucket",
            "#": "rank",
            "remote IP": "remote_ip",
            "requests": "requests",
            "errors": "errors",
            "bytes sent": "bytes_sent",
        },
        [t("bucket"), t("rank")],
        cap * 2,
    )
    s3_requesters = capped(
        s3_distinct_requesters(s3_day),
        {
            "bucket": "bucket",
            "distinct requesters": "distinct_requesters",
            "requests": "requests",
            "errors": "errors",
            "top requester": "top_requester",
            "its requests": "top_requester_requests",
        },
        [t("requests").desc(), t("bucket")],
        cap,
    )
    s3.unpersist()

    crawler_runs = lake_mod.read_table(spark, lake, "crawler_runs").where(
        (t("run_date") == F.lit(day)) & (t("status") == "failed")
    )
    crawler_failed = capped(
        crawler_runs,
        {
            "crawler": "crawler_name",
            "run": "run_id",
            "started": F.date_format("started_at", "HH:mm:ss"),
            "finished": F.date_format("finished_at", "HH:mm:ss"),
            "errors": "error_count",
            "first error": _first_line("first_error_message"),
        },
        [t("crawler_name"), t("started_at"), t("run_id")],
        cap,
    )
    crawler = _read_days(spark, lake, "agg_crawler_daily", window).cache()
    crawler_errors_daily = [
        (r[0], r[1], int(r[2]))
        for r in crawler.select("dt", "crawler_name", "error_count").orderBy("dt", "crawler_name").collect()
    ]
    crawler_day = capped(
        crawler.where(t("dt") == F.lit(day)),
        {
            "crawler": "crawler_name",
            "runs": "runs",
            "failed": "failed_runs",
            "succeeded": "succeeded_runs",
            "ERROR events": "error_count",
            "WARN events": "warn_count",
            "tables created": "tables_created",
            "tables updated": "tables_updated",
            "partitions added": "partitions_added",
        },
        [t("failed_runs").desc(), t("error_count").desc(), t("crawler_name")],
        cap,
    )
    crawler.unpersist()

    quarantine = lake_mod.read_table(spark, lake, "quarantine").where(
        t("run_id").isin(health.run_ids or [""])
    )
    quarantine_counts = capped(
        quarantine.groupBy("source", "reason").agg(F.count(F.lit(1)).alias("rows")),
        {
            "source": "source",
            "reason": "reason",
            "rows": "rows",
        },
        [t("rows").desc(), t("source"), t("reason")],
        cap,
    )
    pick = Window.partitionBy("source", "reason").orderBy("source_object", "record_index")
    samples = (
        quarantine.withColumn("_n", F.row_number().over(pick))
        .where(t("_n") <= options.quarantine_samples)
        .orderBy("source", "reason", "_n")
        .limit(cap)
        .select("source", "reason", "source_object", "record_index", "raw_text", "raw_length")
        .collect()
    )
    sample_rows = [
        (
            r["source"],
            r["reason"],
            redact(r["source_object"], max_chars=120, enabled=options.redact_samples),
            r["record_index"],
            redact(r["raw_text"], max_chars=options.sample_chars, enabled=options.redact_samples),
            r["raw_length"],
        )
        for r in samples
    ]
    quarantine_samples = Table(
        ("source", "reason", "object", "record", "raw text (redacted, cut)", "length"),
        sample_rows,
        len(sample_rows),
    )

    return ReportData(
        day=day,
        days=days,
        accounts=list(scope[0] or []),
        regions=list(scope[1] or []),
        cloudtrail_events=int(scope[2] or 0),
        health=health,
        findings=findings,
        findings_by_severity=by_severity,
        governance=governance,
        data_access=data_access,
        data_access_calls=int(access_totals[0] or 0),
        data_access_principals=int(access_totals[1] or 0),
        athena_untrusted_queries=int(athena_queries or 0),
        athena_untrusted=athena_untrusted,
        denied_daily=denied_daily,
        denied_spike_days=spikes,
        denied_principals=denied_principals,
        s3_by_status=s3_by_status,
        s3_by_operation=s3_by_operation,
        s3_top_ips=s3_top_ips,
        s3_requesters=s3_requesters,
        crawler_failed=crawler_failed,
        crawler_errors_daily=crawler_errors_daily,
        crawler_day=crawler_day,
        quarantine_counts=quarantine_counts,
        quarantine_samples=quarantine_samples,
    )


def latest_day(spark, lake: str) -> dt.date | None:
    """The last UTC day the lake holds CloudTrail aggregates for (the day a demo report shows)."""
    row = lake_mod.read_table(spark, lake, "agg_cloudtrail_daily").agg(F.max("dt")).collect()[0]
    return row[0]
