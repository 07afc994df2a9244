"""Table maintenance: data retention, compaction of what was written since the last pass, VACUUM.

Hourly incremental commits leave many small files per day partition; Athena pays per file and S3
per request. Each pass, for every Delta table of the lake:

1. **Retention**: rows older than ``maintenance.retention.<table>.days`` (by the configured
   column) are deleted; a table without an entry is kept forever (the event tables by default).
2. **OPTIMIZE** (bin-packing to ``maintenance.target_file_mb``) of the partitions that commits
   since the previous pass added files to, read from the Delta log (commit JSON files after the
   version the previous pass recorded), and of those only the ones holding more than one file
   in the current snapshot: a partition already in one file has nothing to pack, and planning
   a compaction that writes nothing costs a cold JVM seconds per table. A first pass, or one
   whose commits the log no longer holds, looks at every partition. Compaction rewrites files,
   never rows: contents are unchanged.
3. **VACUUM** with ``maintenance.vacuum_retention_hours``, never below the table's
   ``delta.deletedFileRetentionDuration`` (Delta's safe minimum, 7 days by default): a reader or a
   writer still on an older snapshot never loses its files. A table whose first commit is younger
   than that retention cannot hold a file VACUUM would delete (removed files and leftovers of
   failed writes are all younger), so its VACUUM, a listing of every file, is skipped; the first
   pass after the table reaches the retention age cleans up as usual.

What it did is recorded in ``job_runs`` (job ``maintain_tables``), with per-table counters
``<table>.version`` (where the next pass starts), ``.files_removed``, ``.files_added``,
``.partitions_optimized`` (when a compaction ran), ``.rows_deleted`` (tables with a retention)
and ``.vacuumed`` (1 when VACUUM ran, 0 when the table was too young to need it).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections import Counter
from typing import Any
from urllib.parse import unquote

import pyspark.sql.functions as F

from auditlake import commits, hadoop_fs, metrics
from auditlake import config as config_mod
from auditlake import lake as lake_mod
from auditlake.context import JobContext
from auditlake.ingest.objects import normalize_uri
from auditlake.runs import RunRecord, now_utc, record_failed_run, write_run_record
from auditlake.tables import list_contracts, load_contract

log = logging.getLogger(__name__)

JOB_NAME = "maintain_tables"
DELTA_MIN_RETENTION_HOURS = 168  # Delta's default delta.deletedFileRetentionDuration (7 days)
_INTERVAL = re.compile(r"^\s*interval\s+(\d+)\s+(hour|hours|day|days|week|weeks)\s*$", re.IGNORECASE)
_HOURS = {"hour": 1, "hours": 1, "day": 24, "days": 24, "week": 168, "weeks": 168}


def safe_retention_hours(configured: float, table_property: str | None) -> float:
    """The VACUUM retention to use: the configured hours, never below the table's (or Delta's) minimum."""
    minimum = float(DELTA_MIN_RETENTION_HOURS)
    if table_property:
        m = _INTERVAL.match(table_property)
        if m:
            minimum = float(int(m.group(1)) * _HOURS[m.group(2).lower()])
    if configured < minimum:
        log.warning(
            "vacuum retention %.0f h is below the safe minimum %.0f h: using %.0f h",
            configured,
            minimum,
            minimum,
        )
    return max(float(configured), minimum)


def last_versions(spark, lake: str) -> dict[str, int]:
    """``<table>.version`` counters of the newest succeeded maintenance run: where this pass starts."""
    runs = lake_mod.read_table(spark, lake, "job_runs")
    row = (
        runs.where((F.col("job") == JOB_NAME) & (F.col("status") == "succeeded"))
        .orderBy(F.col("started_at").desc())
        .select("counters")
        .limit(1)
        .collect()
    )
    if not row or not row[0][0]:
        return {}
    return {k.removesuffix(".version"): int(v) for k, v in row[0][0].items() if k.endswith(".version")}


def written_partitions(spark, uri: str, column: str, after: int | None, current: int) -> list[str] | None:
    """Partition values that data commits after version ``after`` added files to; None = not known (all).

    Compaction commits (``dataChange`` false) are not counted, so a pass never chases its own work.
    """
    if after is None:
        return None
    if current <= after:
        return []
    paths = [f"{uri}/_delta_log/{v:020d}.json" for v in range(after + 1, current + 1)]
    if not hadoop_fs.exists(spark, paths[0]):
        return None  # the log was cleaned up past the previous pass: compact everything
    adds = (
        spark.read.schema("add struct<partitionValues: map<string,string>, dataChange: boolean>")
        .json(paths)
        .where(F.col("add").isNotNull() & F.col("add.dataChange"))
    )
    values = adds.select(F.col("add.partitionValues").getItem(column).alias("v")).distinct().collect()
    return sorted(r[0] for r in values if r[0] is not None)


_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


def files_by_partition(target, column: str | None) -> Counter:
    """Data files of the table's current snapshot per value of ``column`` (key None: unpartitioned)."""
    counts: Counter = Counter()
    pattern = re.compile(rf"/{re.escape(column)}=([^/]*)/") if column else None
    for path in target.toDF().inputFiles():
        m = pattern.search(path) if pattern else None
        value = unquote(m.group(1)) if m else None
        counts[None if value == _HIVE_NULL else value] += 1
    return counts


def _literal(value: str, dtype: str) -> str:
    if dtype == "date":
        dt.date.fromisoformat(value)  # a partition value from the log, validated before it shapes SQL
        return f"DATE'{value}'"
    return "'" + value.replace("'", "''") + "'"


def retention_cutoff(cfg: dict[str, Any], table: str, today: dt.date) -> tuple[str, dt.date] | None:
    """(column, first day kept) for a table with a retention, else None (kept forever)."""
    entry = config_mod.get(cfg, f"maintenance.retention.{table}")
    if not entry or entry.get("days") in (None, "forever"):
        return None
    days = int(entry["days"])
    if days < 1:
        raise ValueError(f"maintenance.retention.{table}.days must be >= 1, got {days}")
    return str(entry["column"]), today - dt.timedelta(days=days)


def _vacuum(spark, target, hours: float, cfg: dict[str, Any]) -> None:
    """VACUUM with its file listing spread over a bounded number of tasks.

    Delta lists the table's directories in ``spark.sql.sources.parallelPartitionDiscovery.parallelism``
    tasks, 10,000 by default: on a small table that is 10,000 near-empty tasks (about a minute on
    two cores). ``maintenance.vacuum_listing_tasks`` (default: the cluster's default parallelism)
    bounds it for this call only.
    """
    key = "spark.sql.sources.parallelPartitionDiscovery.parallelism"
    tasks = config_mod.get(cfg, "maintenance.vacuum_listing_tasks") or spark.sparkContext.defaultParallelism
    previous = spark.conf.get(key, None)
    spark.conf.set(key, str(max(1, int(tasks))))
    try:
        target.vacuum(hours)
    finally:
        if previous is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, previous)


def maintain_table(
    spark, lake: str, table: str, cfg: dict[str, Any], after: int | None, today: dt.date
) -> dict[str, int]:
    """Retention, OPTIMIZE and VACUUM of one Delta table; counters of what was done."""
    from delta.tables import DeltaTable

    contract = load_contract(table)
    uri = lake_mod.table_uri(lake, table)
    target = DeltaTable.forPath(spark, uri)
    out: dict[str, int] = {}

    cutoff = retention_cutoff(cfg, table, today)
    if cutoff is not None:
        column, keep_from = cutoff
        dtype = contract.column(column).type
        bound = (
            f"DATE'{keep_from.isoformat()}'"
            if dtype == "date"
            else f"TIMESTAMP'{keep_from.isoformat()} 00:00:00'"
        )
        before = commits.latest_version(spark, uri)
        target.delete(f"`{column}` < {bound}")
        out[f"{table}.rows_deleted"] = lake_mod.metric_since(spark, target, before, ("numDeletedRows",))

    current = commits.latest_version(spark, uri)
    part = contract.partition_by[0] if contract.partition_by else None
    values = (
        written_partitions(spark, uri, part, after, current)
        if part
        else (None if after is None or current > after else [None])
    )
    if values is None or values:
        counts = files_by_partition(target, part)
        candidates = counts if values is None else values
        packable = sorted(v for v in candidates if counts.get(v, 0) > 1 and (v is not None or not part))
        if packable:
            opt = target.optimize()
            if part:
                dtype = contract.column(part).type
                opt = opt.where(f"`{part}` IN ({', '.join(_literal(v, dtype) for v in packable)})")
            result = (
                opt.executeCompaction()
                .select("metrics.numFilesAdded", "metrics.numFilesRemoved")
                .collect()[0]
            )
            out[f"{table}.files_added"] = int(result[0] or 0)
            out[f"{table}.files_removed"] = int(result[1] or 0)
            out[f"{table}.partitions_optimized"] = len(packable)
    props = target.detail().select("properties").collect()[0][0] or {}
    hours = safe_retention_hours(
        float(config_mod.get(cfg, "maintenance.vacuum_retention_hours", 168)),
        props.get("delta.deletedFileRetentionDuration"),
    )
    created_ms = hadoop_fs.modification_time(spark, uri, "_delta_log/00000000000000000000.json")
    if created_ms is not None and time.time() * 1000 - created_ms < hours * 3_600_000:
        out[f"{table}.vacuumed"] = 0
    else:
        _vacuum(spark, target, hours, cfg)
        out[f"{table}.vacuumed"] = 1
    out[f"{table}.version"] = commits.latest_version(spark, uri)
    return out


def maintain_tables(ctx: JobContext) -> RunRecord:
    """Job entry: maintain every Delta table of ``ctx.args.lake`` (or ``--tables``)."""
    spark, cfg, args = ctx.spark, ctx.cfg, ctx.args
    lake = normalize_uri(args.lake)
    rec = RunRecord.for_job(ctx, "maintenance", lake)
    target_mb = int(config_mod.get(cfg, "maintenance.target_file_mb", 128))
    spark.conf.set("spark.databricks.delta.optimize.maxFileSize", str(target_mb * 1024 * 1024))
    try:
        previous = last_versions(spark, lake)
        wanted = [t.strip() for t in (getattr(args, "tables", None) or "").split(",") if t.strip()]
        tables = [
            t
            for t in list_contracts()
            if (not wanted or t in wanted) and lake_mod.delta_exists(spark, lake_mod.table_uri(lake, t))
        ]
        unknown = sorted(set(wanted) - set(list_contracts()))
        if unknown:
            raise ValueError(f"unknown tables: {', '.join(unknown)}")
        today = now_utc().date()
        for table in tables:
            t = time.monotonic()
            log.info("maintaining %s: start", table)
            done = maintain_table(spark, lake, table, cfg, previous.get(table), today)
            rec.counters.update(done)
            rec.phase_seconds[table] = time.monotonic() - t
            log.info(
                "maintaining %s: end, %s, %.1fs",
                table,
                ", ".join(f"{k.split('.', 1)[1]}={v}" for k, v in sorted(done.items())),
                rec.phase_seconds[table],
            )
        rec.objects_processed = len(tables)
        rec.status = "succeeded"
        rec.ended_at = now_utc()
        write_run_record(spark, lake, rec)
        log.info(
            "maintenance of %d tables done in %.1fs",
            len(tables),
            (rec.ended_at - rec.started_at).total_seconds(),
        )
        metrics.publish_run(cfg, rec)
        return rec
    except Exception as exc:
        record_failed_run(spark, lake, rec, exc)
        metrics.publish_run(cfg, rec)
        raise
