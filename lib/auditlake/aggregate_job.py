"""The daily-aggregates job: recompute the days the ingest runs touched, replace those partitions.

Which days:
- ``--since/--until``: every day of the window, for every aggregate.
- otherwise: the days the input tables' commits touched since the versions this job's last
  succeeded scheduled run read (``auditlake.aggregate_plan``: the ``_delta_log`` of each input,
  not ``job_runs``, so a killed ingest whose commits landed is rebuilt all the same). Each
  aggregate takes the days of its own inputs, and reads them pinned at the versions recorded.

How: read the inputs of those days only, build every aggregate (pure transforms in
``auditlake.aggregates``), gate them with the quality suites when ``auditlake.quality`` exists,
then compare each day with what the table holds (row count and a sum of row hashes per day) and
replace only the days whose rows differ (a day that became empty is emptied). A rerun, or a window rebuilt with the same inputs, rewrites
nothing; a late file rewrites only its own days. The job's own ``job_runs`` row (job
``build_daily_aggregates``, its ``table_versions``) is the watermark of the next run.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession

from auditlake import aggregate_plan, commits, metrics, quality, run_log
from auditlake import aggregates as agg
from auditlake import config as config_mod
from auditlake import lake as lake_mod
from auditlake.context import JobContext
from auditlake.entities import aggregate_entity_activity_daily
from auditlake.errors import ConfigError, UsageError
from auditlake.ingest.objects import normalize_uri
from auditlake.runs import RunRecord, now_utc, record_failed_run, record_gate, summary_log, write_run_record
from auditlake.tables import conform

log = logging.getLogger(__name__)

JOB_NAME = "build_daily_aggregates"
FORMATS = ("parquet", "delta")


@dataclass(frozen=True)
class AggregateSpec:
    """One aggregate: its table, the inputs it reads (table, day column) and how it is built."""

    table: str
    inputs: tuple[tuple[str, str], ...]
    build: Callable[[dict[str, DataFrame], dict[str, Any]], DataFrame]


def _cloudtrail(
    f: Callable[..., DataFrame], **options_from_cfg: str
) -> Callable[[dict[str, DataFrame], dict[str, Any]], DataFrame]:
    def build(frames: dict[str, DataFrame], opts: dict[str, Any]) -> DataFrame:
        return frames["cloudtrail_events"].transform(f, **{k: opts[v] for k, v in options_from_cfg.items()})

    return build


CLOUDTRAIL = (("cloudtrail_events", "event_date"),)
S3_ACCESS = (("s3_access_logs", "request_date"),)

SPECS: tuple[AggregateSpec, ...] = (
    AggregateSpec("agg_cloudtrail_daily", CLOUDTRAIL, _cloudtrail(agg.aggregate_cloudtrail_daily)),
    AggregateSpec(
        "agg_governance_changes_daily", CLOUDTRAIL, _cloudtrail(agg.aggregate_governance_changes_daily)
    ),
    AggregateSpec("agg_data_access_daily", CLOUDTRAIL, _cloudtrail(agg.aggregate_data_access_daily)),
    AggregateSpec(
        "agg_athena_queries_daily",
        CLOUDTRAIL,
        _cloudtrail(agg.aggregate_athena_queries_daily, trusted_cidrs="trusted_cidrs"),
    ),
    AggregateSpec("agg_glue_jobs_daily", CLOUDTRAIL, _cloudtrail(agg.aggregate_glue_jobs_daily)),
    AggregateSpec("agg_access_denied_daily", CLOUDTRAIL, _cloudtrail(agg.aggregate_access_denied_daily)),
    AggregateSpec(
        "agg_s3_requests_daily",
        S3_ACCESS,
        lambda fr, _o: fr["s3_access_logs"].transform(agg.aggregate_s3_requests_daily),
    ),
    AggregateSpec(
        "agg_s3_object_access_daily",
        S3_ACCESS,
        lambda fr, _o: fr["s3_access_logs"].transform(agg.aggregate_s3_object_access_daily),
    ),
    AggregateSpec(
        "entity_activity_daily",
        CLOUDTRAIL + S3_ACCESS,
        lambda fr, _o: fr["cloudtrail_events"].transform(
            aggregate_entity_activity_daily, s3_access_logs=fr["s3_access_logs"]
        ),
    ),
    AggregateSpec(
        "agg_crawler_daily",
        (("crawler_runs", "run_date"), ("crawler_log_events", "event_date")),
        lambda fr, _o: fr["crawler_runs"].transform(
            agg.aggregate_crawler_daily, log_events=fr["crawler_log_events"]
        ),
    ),
)


def _options(cfg: dict[str, Any]) -> dict[str, Any]:
    fmt = str(config_mod.get(cfg, "aggregates.format", "parquet")).lower()
    if fmt not in FORMATS:
        raise ConfigError(f"aggregates.format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    cidrs = config_mod.get(cfg, "aggregates.trusted_cidrs", []) or []
    if isinstance(cidrs, str):
        cidrs = [c for c in cidrs.split(",") if c.strip()]
    try:
        agg.parse_cidrs(cidrs)
    except ValueError as exc:
        raise ConfigError(f"aggregates.trusted_cidrs: {exc}") from None
    return {"format": fmt, "trusted_cidrs": [str(c).strip() for c in cidrs], "threads": _threads(cfg)}


def window_days(since: dt.date | None, until: dt.date | None) -> list[dt.date]:
    """Every day of [since, until]; --since alone runs to today (UTC)."""
    if until is not None and since is None:
        raise UsageError(f"{JOB_NAME}: --until needs --since")
    if since is None:
        return []
    return commits.days_between(since, until or now_utc().date())


def _spec_days(spec: AggregateSpec, touched: dict[str, set[dt.date]]) -> list[dt.date]:
    days: set[dt.date] = set()
    for table, _ in spec.inputs:
        days |= touched.get(table, set())
    return sorted(days)


def build_aggregate(
    spark: SparkSession,
    lake: str,
    spec: AggregateSpec,
    days: list[dt.date],
    opts: dict[str, Any],
    inputs: dict[str, DataFrame] | None = None,
) -> DataFrame:
    """Read the spec's inputs for ``days`` and build its rows (conformed to the contract).

    ``inputs`` holds input tables already read in this run (one snapshot per table and run).
    """
    inputs = inputs if inputs is not None else {}
    for table, _ in spec.inputs:
        if table not in inputs:
            inputs[table] = lake_mod.read_table(spark, lake, table)
    frames = {table: inputs[table].where(F.col(col).isin(days)) for table, col in spec.inputs}
    built = spec.build(frames, opts).where(F.col("dt").isin(days))
    return conform(built, spec.table)


def day_fingerprints(df: DataFrame) -> dict[dt.date, tuple[int, Any]]:
    """Per day: (row count, sum of 64-bit row hashes), a fingerprint of the day's rows as a multiset.

    Two frames of one aggregate hold the same rows for a day exactly when the fingerprints match
    (up to a 64-bit hash collision); one aggregation per frame, no join or shuffle of rows.
    """
    cols = [c for c in df.columns if c != "dt"]
    rows = (
        df.groupBy("dt")
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.sum(F.xxhash64(*cols).cast("decimal(38,0)")).alias("h"),
        )
        .collect()
    )
    return {r["dt"]: (int(r["n"]), r["h"]) for r in rows}


def changed_days(new: dict[dt.date, tuple[int, Any]], old: dict[dt.date, tuple[int, Any]]) -> list[dt.date]:
    """Days whose fingerprints differ (a day present on one side only is changed)."""
    return sorted(d for d in set(new) | set(old) if new.get(d) != old.get(d))


def _read_aggregate(spark: SparkSession, lake: str, table: str, days: list[dt.date]) -> DataFrame:
    return conform(lake_mod.read_table(spark, lake, table).where(F.col("dt").isin(days)), table)


@dataclass
class _Built:
    """One aggregate built for its planned days, cached, with each day's fingerprint."""

    df: DataFrame
    days: list[dt.date]
    prints: dict[dt.date, tuple[int, Any]]


def build_daily_aggregates(ctx: JobContext) -> RunRecord:
    """Job entry: recompute the aggregates of the touched (or given) days into ``ctx.args.lake``.

    Steps: plan (which days per aggregate) -> build -> gate -> write (changed days only) -> record.
    """
    lake = normalize_uri(ctx.args.lake)
    rec = RunRecord.for_job(ctx, "aggregates", lake)
    built: dict[str, _Built] = {}
    inputs: dict[str, DataFrame] = {}
    try:
        opts = _options(ctx.cfg)
        with rec.phase("plan"):
            run_log.start_run(ctx.spark, lake, rec, ctx.cfg)
            plan = _plan(ctx, lake, rec, inputs)
        with rec.phase("build"):
            outcomes = _build(ctx, lake, plan, opts, rec, built, inputs)
        with rec.phase("quality"):
            record_gate(ctx.spark, lake, rec, outcomes)
        with rec.phase("write"):
            _write(ctx.spark, lake, built, opts, rec)
        _record(ctx.spark, lake, rec, plan)
        metrics.publish_run(ctx.cfg, rec)
        return rec
    except Exception as exc:
        record_failed_run(ctx.spark, lake, rec, exc)
        metrics.publish_run(ctx.cfg, rec)
        raise
    finally:
        for b in built.values():
            b.df.unpersist()


def _plan(
    ctx: JobContext, lake: str, rec: RunRecord, inputs: dict[str, DataFrame]
) -> dict[str, list[dt.date]]:
    """Days to rebuild per aggregate: the window's, or those the input tables' commits since the last run touched.

    A scheduled run pins every input at the version it plans from (into ``inputs``) and records
    those versions in ``rec.table_versions``, the next run's watermark.
    """
    spark = ctx.spark
    window = window_days(ctx.args.since, ctx.args.until)
    if window:
        plan = {spec.table: window for spec in SPECS}
    else:
        watermark = ctx.aggregate_watermark
        if watermark is None:
            watermark = aggregate_plan.last_versions(lake_mod.read_table(spark, lake, "job_runs"), ctx.job)
        changes = aggregate_plan.plan_from_commits(
            spark, lake, [table for spec in SPECS for table, _ in spec.inputs], watermark
        )
        plan = {spec.table: _spec_days(spec, changes.days) for spec in SPECS}
        inputs.update(changes.inputs)
        rec.table_versions = changes.versions
        rec.counters["ingest_runs"] = len(changes.run_ids)
    plan = {table: days for table, days in plan.items() if days}
    log.info("aggregates to rebuild: %s", {k: [d.isoformat() for d in v] for k, v in plan.items()} or "none")
    return plan


def _threads(cfg: dict[str, Any]) -> int:
    threads = config_mod.get(cfg, "aggregates.threads", 3)
    try:
        n = int(threads)
    except (TypeError, ValueError):
        raise ConfigError(f"aggregates.threads must be a whole number, not {threads!r}") from None
    if n < 1:
        raise ConfigError(f"aggregates.threads must be at least 1, not {n}")
    return n


def in_threads(fn: Callable[[Any], Any], items: list[Any], threads: int) -> list[Any]:
    """``fn`` over ``items`` in up to ``threads`` threads of this session; results in ``items``' order.

    Every call finishes before this returns; the first error (in ``items``' order) is then raised.
    The threads inherit the caller's Spark job group (``inheritable_thread_target``).
    """
    if threads <= 1 or len(items) < 2:
        return [fn(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    from pyspark import inheritable_thread_target

    target = inheritable_thread_target(fn)
    with ThreadPoolExecutor(max_workers=min(threads, len(items)), thread_name_prefix="aggregate") as pool:
        futures = [pool.submit(target, item) for item in items]
    return [f.result() for f in futures]


def _build(
    ctx: JobContext,
    lake: str,
    plan: dict[str, list[dt.date]],
    opts: dict[str, Any],
    rec: RunRecord,
    built: dict[str, _Built],
    inputs: dict[str, DataFrame],
) -> list[quality.QualityOutcome]:
    """Build, cache and gate each planned aggregate into ``built`` (from ``inputs`` where pinned).

    The aggregates are independent: they are built in threads (``aggregates.threads``), so that
    one aggregate's planning and bookkeeping on the driver overlaps another's tasks. A small
    rebuild (an hour of new data) is a few dozen small Spark jobs, bound by the driver.
    """
    specs = [spec for spec in SPECS if plan.get(spec.table)]
    # Every input read once, before the threads: all of them share one snapshot per table.
    for spec in specs:
        for table, _ in spec.inputs:
            if table not in inputs:
                inputs[table] = lake_mod.read_table(ctx.spark, lake, table)

    def one(spec: AggregateSpec) -> tuple[int, quality.QualityOutcome]:
        days = plan[spec.table]
        # Cached behind a one-node plan: its fingerprint, gate and write are then planned over
        # that node, not over the aggregate's joins and windows again each time.
        df = lake_mod.cached_flat(build_aggregate(ctx.spark, lake, spec, days, opts, inputs))
        b = built[spec.table] = _Built(df, days, {})
        b.prints = day_fingerprints(df)
        n = sum(count for count, _ in b.prints.values())
        outcome = quality.validate_batch(
            ctx.spark, spec.table, df, run_id=ctx.run_id, cfg=ctx.cfg, expected_row_count=n
        )
        return n, outcome

    results = in_threads(one, specs, opts["threads"])
    # In the specs' order (the threads filled it as each finished): writes and counters follow it.
    for spec in specs:
        built[spec.table] = built.pop(spec.table)
    rec.counters["rows_built"] = rec.counters.get("rows_built", 0) + sum(n for n, _ in results)
    return [outcome for _, outcome in results]


def _write(
    spark: SparkSession,
    lake: str,
    built: dict[str, _Built],
    opts: dict[str, Any],
    rec: RunRecord,
) -> None:
    """Replace the days whose rows differ from what each table holds; leave the others untouched."""

    def one(item: tuple[str, _Built]) -> list[dt.date]:
        table, b = item
        stored = lake_mod.existing_partitions(spark, lake, table, b.days)
        old = day_fingerprints(_read_aggregate(spark, lake, table, stored)) if stored else {}
        changed = changed_days(b.prints, old)
        if changed:
            batch = b.df.where(F.col("dt").isin(changed))
            lake_mod.replace_partitions(
                spark, batch, lake, table, changed, fmt=opts["format"], present=list(b.prints)
            )
        log.info(
            "%s: %d days checked, %d replaced %s",
            table,
            len(b.days),
            len(changed),
            [d.isoformat() for d in changed],
        )
        return changed

    rewritten: set[dt.date] = set()
    items = list(built.items())
    for (table, b), changed in zip(items, in_threads(one, items, opts["threads"]), strict=True):
        rec.counters[f"{table}_days_checked"] = len(b.days)
        rec.counters[f"{table}_days_replaced"] = len(changed)
        if changed:
            rec.loaded_by_table[table] = sum(b.prints[d][0] for d in changed if d in b.prints)
            rewritten.update(changed)
    # Rows built = rows written (days that changed) + rows the table already held unchanged.
    rec.records_read = rec.counters.get("rows_built", 0)
    rec.records_loaded = sum(rec.loaded_by_table.values())
    rec.records_duplicate = rec.records_read - rec.records_loaded
    rec.touched_dates = sorted(rewritten)


def _record(spark: SparkSession, lake: str, rec: RunRecord, plan: dict[str, list[dt.date]]) -> None:
    """Write the succeeded run's record (the next run's watermark) and show its summary."""
    rec.status = "succeeded"
    rec.ended_at = now_utc()
    write_run_record(spark, lake, rec)
    summary_log.info(_summary(rec, plan))


def _summary(rec: RunRecord, plan: dict[str, list[dt.date]]) -> str:
    lines = [f"run {rec.run_id} job={rec.job} lake={rec.source_uri} status={rec.status}"]
    if not plan:
        lines.append("  nothing to rebuild: no input table committed a change since the last run")
    for table, days in plan.items():
        replaced = rec.counters.get(f"{table}_days_replaced", 0)
        lines.append(
            f"  {table}: {len(days)} days recomputed, {replaced} replaced, "
            f"{rec.loaded_by_table.get(table, 0)} rows written"
        )
    lines.append(f"  data quality: {rec.dq_status}")
    lines.append("  seconds: " + ", ".join(f"{k}={v:.1f}" for k, v in rec.phase_seconds.items()))
    return "\n".join(lines)
