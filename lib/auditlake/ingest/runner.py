"""The ingest run every source shares.

``run_ingest`` is a sequence of named steps: ``_list`` (list -> classify -> window -> skip what the
ledger has), ``_process`` (parse, source-specific -> ``_dedupe_batch`` -> ``_gate`` -> ``_commit``:
exactly-once merge per table, quarantine, the source's ``after_commit`` -> ``_commit_ledger``), and
``_record`` (balance check, run record, summary).

Crash safety: each Delta commit is atomic and every write is idempotent (insert-only merges on
natural keys), and the ledger is written after the data. A run killed at any point leaves the
ledger without its objects, so the rerun reads them again and the merges insert only what is
missing: the end state is that of one clean run.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import pyspark.sql.functions as F
import pyspark.sql.types as T
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession, Window

from auditlake import config as config_mod
from auditlake import lake as lake_mod
from auditlake import metrics, quality, run_log
from auditlake.context import JobContext
from auditlake.errors import ConfigError, ReconciliationError
from auditlake.ingest import gate, listing
from auditlake.ingest.objects import SourceObject, normalize_uri
from auditlake.ingest.source import ParsedBatch, Source
from auditlake.redact import redact
from auditlake.runs import RunRecord, now_utc, record_failed_run, record_gate, summary_log, write_run_record
from auditlake.session import session_settings
from auditlake.tables import load_contract

log = logging.getLogger(__name__)


def in_window(day: dt.date | None, since: dt.date | None, until: dt.date | None, slack_days: int) -> bool:
    """Whether an object delivered on ``day`` can hold events of [since, until].

    A file's folder is its delivery time; its records can be earlier, never later, so the
    window's upper bound gets the slack. Objects without a date in their key are always in.
    """
    if day is None:
        return True
    if since and day < since:
        return False
    if until and day > until + dt.timedelta(days=slack_days):
        return False
    return True


def _ledger_rows(
    source_name: str, objects: Iterable[SourceObject], dates: dict[str, dt.date | None], run_id: str
) -> list[tuple[Any, ...]]:
    """The ``ingest_ledger`` rows of the processed objects."""
    now = now_utc()
    return [
        (source_name, redact(o.uri), o.size, o.modified_at, dates.get(o.uri), run_id, now) for o in objects
    ]


def _dedupe(
    df: DataFrame, keys: tuple[str, ...], part: str | None = None, *, held: list[DataFrame] | None = None
) -> tuple[DataFrame, int, int, list[Any] | None]:
    """Drop in-batch duplicate keys: ``(deduplicated frame, rows in the batch, rows dropped,
    partition values)``.

    One job groups the batch by a hash of its key (a shuffle of one long per row, not of whole
    rows nor of the key's strings) and returns the row count and the copies' count together. A
    batch without a repeated hash, the usual case, has no duplicate and is returned as it is. A
    batch with some ranks only the rows of its repeated hashes, by their real key (see
    ``_first_of_each_key``); the rows dropped are counted from those.

    Frames it caches (filled before it returns) are appended to ``held``; the caller unpersists
    them with the batch. With up to ``REPEATED_KEYS_BROADCAST_MAX`` repeated hashes that is two
    small ones, the repeated hashes and the copy kept of each key: the deduplicated frame is the
    batch less the repeated hashes' rows (a broadcast anti-join, a filter over the batch's own
    cache) plus the kept copies, and no second copy of the batch is cached. That copy was the
    costliest step of a large batch: filling it took 14.6 s of a 113 s ingest of 413,619
    CloudTrail records with 2,967 duplicates, and it doubled the cached bytes (285 + 268 MB at
    941k records). More repeated hashes than that, and the deduplicated frame (a shuffle join) is
    cached and filled here instead.

    ``part``: the table's partition column, whose distinct non-null values the same job returns
    (the merge's partition pruning), where a job over the deduplicated frame counted them again.
    They are those of the deduplicated frame whenever every key's copies agree on the column;
    should some differ (None is returned then), the caller asks the deduplicated frame.

    Of a key's copies the first in the order of the frame's other atomic columns is kept, never an
    arbitrary one: copies can differ outside the key (a crawler event delivered by both an export
    task and Firehose has two ``source_object`` values), and a rerun after a kill must keep the copy
    the killed run kept, so that its end state is the clean run's.
    """
    if not keys:
        return df, df.count(), 0, None
    # Grouped by a 64-bit hash of the key (one long), not by the key's columns: the shuffle of a
    # batch whose keys are nearly all unique moves 8 bytes a row instead of its key's strings. Equal
    # keys have equal hashes, so a batch with no repeated hash has no duplicate; the rows of a
    # repeated hash are then deduplicated by their real key, and the count of rows dropped is
    # taken from those (two keys sharing a hash only cost that check).
    hashed = df.withColumn(_KEY_HASH, _key_hash(keys))
    per_hash_aggs = [F.count(F.lit(1)).alias("n")]
    batch_aggs = [
        F.sum("n").alias("rows"),
        F.sum(F.when(F.col("n") > 1, F.col("n"))).alias("copies"),
        F.count(F.when(F.col("n") > 1, True)).alias("repeated"),
    ]
    if part is not None:
        per_hash_aggs += [F.min(part).alias("p0"), F.max(part).alias("p1"), F.count(part).alias("pn")]
        # A hash whose rows hold different values (or some a null) in the partition column: a key's
        # copies that disagree, or (rarely) two keys sharing a hash; either way the caller asks.
        mixed = (F.col("p0") != F.col("p1")) | ((F.col("pn") > 0) & (F.col("pn") < F.col("n")))
        batch_aggs += [F.collect_set("p0").alias("parts"), F.count(F.when(mixed, True)).alias("mixed")]
    # Cached for the batch's duplicates: their hashes are read from it, not grouped again.
    per_hash = hashed.groupBy(_KEY_HASH).agg(*per_hash_aggs).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        row = per_hash.agg(*batch_aggs).collect()[0]
        rows, copies_n = int(row["rows"] or 0), int(row["copies"] or 0)
        parts = sorted(row["parts"]) if part is not None and not row["mixed"] else None
        if copies_n == 0:
            return df, rows, 0, parts
        held = [] if held is None else held
        repeated = per_hash.where(F.col("n") > 1).select(_KEY_HASH)
        small = int(row["repeated"]) <= REPEATED_KEYS_BROADCAST_MAX
        if small:
            repeated = lake_mod.cached_flat(repeated, 1)
            held.append(repeated)
            repeated = F.broadcast(repeated)
        # The rows of the repeated hashes only are ranked (a shuffle and sort of the copies); the
        # others pass through as they are. Ranking the whole batch shuffled and sorted every row of
        # it: at 400k CloudTrail records with 3k repeated keys, all its bytes for 1% of its rows.
        single = hashed.join(repeated, _KEY_HASH, "left_anti").drop(_KEY_HASH)
        kept = _first_of_each_key(hashed.join(repeated, _KEY_HASH, "left_semi").drop(_KEY_HASH), keys)
        if not small:
            d = single.unionByName(kept).persist(StorageLevel.MEMORY_AND_DISK)
            held.append(d)
            return d, rows, rows - d.count(), parts
        kept = lake_mod.cached_flat(kept, _parallelism(df))
        held.append(kept)
        extra = copies_n - kept.count()  # fills both
        return single.unionByName(kept), rows, extra, parts
    finally:
        per_hash.unpersist()


_KEY_HASH = "_dedupe_key_hash"


def _key_hash(keys: tuple[str, ...]) -> Column:
    """The dedupe's grouping hash of a row's key (null parts are skipped, as Spark's hashes do)."""
    return F.xxhash64(*[F.col(k) for k in keys])


# Up to this many repeated key hashes are broadcast to split the batch without a shuffle of its
# rows (a redelivered file repeats a few thousand keys at most); more, and it joins by shuffle.
REPEATED_KEYS_BROADCAST_MAX = 200_000


def _first_of_each_key(df: DataFrame, keys: tuple[str, ...]) -> DataFrame:
    """One row per key: the least by the non-key atomic columns in column order (nulls last)."""
    ties = [
        F.col(f.name).asc_nulls_last()
        for f in df.schema.fields
        if f.name not in keys and isinstance(f.dataType, T.AtomicType)
    ]
    if not ties:
        return df.dropDuplicates(list(keys))
    rank = F.row_number().over(Window.partitionBy(*keys).orderBy(*ties))
    return df.withColumn("_dedupe_rank", rank).where(F.col("_dedupe_rank") == 1).drop("_dedupe_rank")


def _parallelism(df: DataFrame) -> int:
    return max(1, df.sparkSession.sparkContext.defaultParallelism)


@dataclass
class _Selected:
    """The list step's result: objects to parse and each one's delivery day."""

    todo: list[SourceObject]
    dates: dict[str, dt.date | None]


@dataclass
class _Batch:
    """A parsed batch on its way to the lake: deduplicated rows per table and quarantine rows."""

    tables: dict[str, DataFrame]
    row_counts: dict[str, int]  # rows per table after dedupe, counted from the key groups
    quarantine: DataFrame
    persisted: list[DataFrame] = field(default_factory=list)
    # Rows the row-level checks quarantined, per table and reason (reported by the gate).
    row_quarantined: dict[str, dict[str, int]] = field(default_factory=dict)
    # Distinct non-null values of each partitioned table's partition column (its merge's pruning).
    partitions: dict[str, list[Any]] = field(default_factory=dict)


def run_record(ctx: JobContext, source: Source) -> RunRecord:
    """The running record of an ingest of ``source`` from ``ctx.args.source``."""
    return RunRecord.for_job(ctx, source.name, redact(normalize_uri(ctx.args.source)))


def run_ingest(ctx: JobContext, source: Source) -> RunRecord:
    """Run one ingest of ``source`` from ``ctx.args.source`` into ``ctx.args.lake``.

    Steps: list -> parse + dedupe -> gate -> commit -> record; a failing step records a failed run.
    """
    lake = normalize_uri(ctx.args.lake)
    rec = run_record(ctx, source)
    with session_settings(ctx.spark, config_mod.get(ctx.cfg, "ingest.spark_conf") or {}):
        try:
            selected = _start_and_list(ctx, source, lake, rec)
            if selected.todo:
                with session_settings(ctx.spark, batch_settings(ctx.cfg, source, selected.todo)):
                    _process(ctx, source, lake, selected, rec)
            _record(ctx.spark, lake, rec, ctx.deferred)
            metrics.publish_run(ctx.cfg, rec, source)
            return rec
        except Exception as exc:
            record_failed_run(ctx.spark, lake, rec, exc)
            metrics.publish_run(ctx.cfg, rec, source)
            raise


def batch_settings(cfg: dict[str, Any], source: Source, objects: list[SourceObject]) -> dict[str, Any]:
    """The SQL settings of a large batch (``ingest.large_batch``): none for a batch under its size.

    The size is the objects' as listed (as stored: compressed for CloudTrail). A laptop's ingests run
    without code generation, which suits the small batches of an hour; a backfill's parse is bound
    by the per-row expressions that code generation compiles, so a large batch turns it back on.
    """
    large = config_mod.get(cfg, "ingest.large_batch") or {}
    if not isinstance(large, dict) or not isinstance(large.get("spark_conf") or {}, dict):
        raise ConfigError(f"ingest.large_batch must be a mapping of bytes and spark_conf, not {large!r}")
    threshold, settings = large.get("bytes"), large.get("spark_conf") or {}
    if threshold is None or not settings:
        return {}
    try:
        threshold = int(threshold)
    except (TypeError, ValueError):
        raise ConfigError(
            f"ingest.large_batch.bytes must be a whole number of bytes, not {threshold!r}"
        ) from None
    size = sum(o.size or 0 for o in objects)
    if size < threshold:
        return {}
    log.info(
        "%s: a large batch (%.0f MB of objects, at least %.0f MB): SQL settings %s",
        source.name,
        size / 2**20,
        threshold / 2**20,
        settings,
    )
    return dict(settings)


def _start_and_list(ctx: JobContext, source: Source, lake: str, rec: RunRecord) -> _Selected:
    """Record the run as running (``run_log.start_run``) and list what it has to do.

    Alone, a run records its start before it reads anything. In the pipeline its start row is
    being written ahead (``ctx.start_rows_written``) while it lists: listing only reads (the
    source, the ledger), so the run lists meanwhile and starts once the row is there; nothing it
    writes, its failed-run row included, comes before its start row.
    """
    written = ctx.start_rows_written
    if written is None:
        run_log.start_run(ctx.spark, lake, rec, ctx.cfg)
        return _list(ctx, source, lake, rec)
    listing_error: Exception | None = None
    try:
        selected = _list(ctx, source, lake, rec)
    except Exception as exc:  # noqa: BLE001 - raised once the run has started
        listing_error = exc
    written.wait()
    run_log.start_run(ctx.spark, lake, rec, ctx.cfg)
    if listing_error is not None:
        raise listing_error
    return selected


def _list(ctx: JobContext, source: Source, lake: str, rec: RunRecord) -> _Selected:
    """List the window (see ``listing``), classify each object, drop those the ledger holds."""
    args = ctx.args
    slack = int(config_mod.get(ctx.cfg, "ingest.listing_slack_days", 1))
    with rec.phase("list"):
        window = listing.resolve_window(
            ctx.spark,
            lake,
            source.name,
            args.since,
            args.until,
            slack,
            reprocess=args.reprocess,
            marks=ctx.ledger_marks,
        )
        found = listing.list_window(
            ctx.spark,
            args.source,
            source,
            window,
            lake=lake,
            cfg=ctx.cfg,
            progress_every=int(config_mod.get(ctx.cfg, "progress.every_objects", 10000)),
        )
        listed = found.objects
        rec.counters["list_calls"] = found.list_calls
        rec.objects_listed = len(listed)
        candidates, dates, skipped = _classify(source, listed, window.since, args.until, slack)
        if found.skipped_complete_tasks:
            skipped["complete_export_task"] = found.skipped_complete_tasks
        rec.skipped_by_reason = dict(skipped)
        rec.objects_skipped = sum(
            v for k, v in skipped.items() if k not in ("outside_window", "complete_export_task")
        )
        if args.reprocess:
            todo = candidates
        else:
            done = listing.ledger_done(ctx.spark, lake, source.name, candidates, window)
            todo = [o for o in candidates if (o.uri, o.size, o.modified_at) not in done]
        rec.objects_already_processed = len(candidates) - len(todo)
        rec.objects_processed = len(todo)
    log.info(
        "%s: %d listed, %d to process, %d already in the ledger, skipped %s",
        source.name,
        len(listed),
        len(todo),
        rec.objects_already_processed,
        dict(skipped),
    )
    return _Selected(todo, dates)


def _classify(
    source: Source, listed: list[SourceObject], since: dt.date | None, until: dt.date | None, slack: int
) -> tuple[list[SourceObject], dict[str, dt.date | None], Counter[str]]:
    """Objects to parse with their delivery days, and skip counts per reason (``outside_window`` too)."""
    skipped: Counter[str] = Counter()
    candidates: list[SourceObject] = []
    dates: dict[str, dt.date | None] = {}
    for obj in listed:
        reason = source.classify(obj)
        day = source.object_date(obj) if reason is None else None
        if reason is None and not in_window(day, since, until, slack):
            reason = "outside_window"
        if reason is not None:
            skipped[reason] += 1
            continue
        dates[obj.uri] = day
        candidates.append(obj)
    return candidates, dates, skipped


def _process(ctx: JobContext, source: Source, lake: str, selected: _Selected, rec: RunRecord) -> None:
    """Parse, dedupe, gate and commit the selected objects; free the batch's cached frames after."""
    # Only a run with objects to parse needs the quality gate: its import overlaps the parse.
    quality.prefetch(ctx.cfg)
    with rec.phase("parse"):
        parsed = source.parse(ctx.spark, selected.todo, run_id=ctx.run_id, cfg=ctx.cfg)
        batch = _Batch({}, {}, parsed.quarantine, list(parsed.persisted))
        try:
            # Rows failing a row-level check join the quarantine; schema drift stops the run here.
            prepared = gate.prepare_batch(
                ctx.spark,
                parsed.tables,
                parsed.quarantine,
                source=source.name,
                run_id=ctx.run_id,
                cfg=ctx.cfg,
                now=ctx.started_at,
                number_rows=parsed.number_rows,
            )
            gate.raise_on_failure(ctx.spark, lake, prepared.outcomes, ctx.run_id)
            parsed = replace(parsed, tables=prepared.tables, quarantine=prepared.quarantine)
            _dedupe_batch(parsed, batch, rec)
        except BaseException:
            _unpersist(batch)
            raise
    try:
        with rec.phase("quality"):
            _gate(ctx, lake, batch, rec)
        with rec.phase("commit"):
            _commit(ctx, source, lake, batch, rec)
            _commit_ledger(ctx, source, lake, selected)
    finally:
        _unpersist(batch)


def _dedupe_batch(parsed: ParsedBatch, batch: _Batch, rec: RunRecord) -> None:
    """Materialize the quarantine, drop in-batch duplicates per table, count what was read."""
    batch.quarantine = _materialize_small(parsed.quarantine)
    batch.persisted.append(batch.quarantine)
    read = 0
    for table, df in parsed.tables.items():
        # Not persisted again: the parser's own cached intermediate backs this frame (one copy
        # of the batch in memory; a second, deduplicated one only when there are duplicates).
        if not parsed.persisted:
            df = df.persist(StorageLevel.MEMORY_AND_DISK)
            batch.persisted.append(df)
        contract = load_contract(table)
        part = contract.partition_by[0] if contract.partition_by else None
        # What the dedupe caches it fills, so that its shuffle is timed as parse, not as part of
        # the gate's first use of the frame.
        d, rows, dropped, parts = _dedupe(df, contract.keys, part, held=batch.persisted)
        if part is not None:
            batch.partitions[table] = parts if parts is not None else lake_mod.partition_values(d, part)
        read += rows
        # Counted from the key groups, independently of the frame the quality gate counts.
        batch.row_counts[table] = rows - dropped
        batch.tables[table] = d
    rec.records_quarantined, batch.row_quarantined = gate.count_quarantine(batch.quarantine)
    rec.records_read = read + rec.records_quarantined
    rec.counters.update(parsed.counters)
    rec.unknown_keys = sorted(set(parsed.unknown_keys))


def _materialize_small(df: DataFrame) -> DataFrame:
    """A small frame (the quarantine), cached in at most one partition per core, behind a plan of
    one node (``lake.cached_flat``).

    The quarantine is a union of the parse's bad rows and each table's rows failing a row check:
    as many partitions as all its branches together (269 for 400k CloudTrail records in 2,800
    objects), each branch the whole parse plan. Every later use of it (its counts, its merge)
    paid that many tasks and the analysis of that plan again.
    """
    return lake_mod.cached_flat(df, _parallelism(df))


def _gate(ctx: JobContext, lake: str, batch: _Batch, rec: RunRecord) -> None:
    """Validate every non-empty table; record the outcomes; raise before any commit if one failed."""
    share = gate.quarantine_share(rec.records_quarantined, rec.records_read, cfg=ctx.cfg, run_id=ctx.run_id)
    outcomes = [share] if share is not None else []
    outcomes += [
        quality.validate_batch(
            ctx.spark,
            table,
            d,
            run_id=ctx.run_id,
            cfg=ctx.cfg,
            expected_row_count=batch.row_counts[table],
            backed_by_cache=True,
            quarantined=batch.row_quarantined.get(table),
        )
        for table, d in batch.tables.items()
        if batch.row_counts[table]  # nothing to validate and nothing to commit
    ]
    record_gate(ctx.spark, lake, rec, outcomes, ctx.deferred)


def _commit(ctx: JobContext, source: Source, lake: str, batch: _Batch, rec: RunRecord) -> None:
    """Merge each table's new rows, then the quarantine, then what the source derives from them."""
    spark = ctx.spark
    touched: set[dt.date] = set()
    for table, d in batch.tables.items():
        contract = load_contract(table)
        if batch.row_counts[table] == 0:
            lake_mod.ensure_delta_table(spark, lake, contract)
            rec.loaded_by_table[table] = 0
            continue
        part_values = batch.partitions.get(table) if contract.partition_by else None
        if not _merge_repartitions(spark):
            # Two partitions per core at most: each of a batch's cached partitions (30 for 2M S3
            # access lines in 4,978 objects) would write a file per day (a large local batch,
            # conf/local.yaml).
            d = d.coalesce(2 * _parallelism(d))
        inserted = lake_mod.merge_new_rows(spark, d, lake, table, dates=part_values)
        rec.loaded_by_table[table] = inserted
        if part_values and inserted:
            touched.update(v for v in part_values if isinstance(v, dt.date))
        # Recorded per table: a run that fails after some commits still names the days it
        # wrote, so the aggregate job rebuilds them (the rerun's merges insert nothing there).
        rec.touched_dates = sorted(touched)
    rec.records_loaded = sum(rec.loaded_by_table.values())
    rec.records_duplicate = rec.records_read - rec.records_loaded - rec.records_quarantined
    rec.touched_dates = sorted(touched)
    if rec.records_quarantined and ctx.deferred is not None:
        # The pipeline merges the quarantined rows of all its ingests at once, before their ledger
        # rows; it unpersists the frame once written.
        ctx.deferred.add_quarantine(source.name, batch.quarantine)
        batch.persisted.remove(batch.quarantine)
    elif rec.records_quarantined:
        lake_mod.merge_new_rows(spark, batch.quarantine, lake, "quarantine", dates=[source.name])
    extra = source.after_commit(spark, lake, batch.tables, run_id=ctx.run_id, cfg=ctx.cfg)
    for table, n in extra.items():
        rec.counters[f"{table}_upserted"] = int(n)


def _merge_repartitions(spark: SparkSession) -> bool:
    """Whether Delta's merges repartition their rows by partition value before writing (its default)."""
    key = "spark.databricks.delta.merge.repartitionBeforeWrite.enabled"
    return str(spark.conf.get(key, None) or "true").strip().lower() != "false"


def _commit_ledger(ctx: JobContext, source: Source, lake: str, selected: _Selected) -> None:
    """Record the objects as processed: last, so a crash before it makes the rerun read them again."""
    rows = _ledger_rows(source.name, selected.todo, selected.dates, ctx.run_id)
    # An object's date comes from its key, so a stored row of the same object has the same one:
    # the merge compares only the ledger files of those dates, not the source's whole history.
    days = [selected.dates.get(o.uri) for o in selected.todo]
    if ctx.deferred is not None:
        # The pipeline merges the ledger rows of all its ingests at once, after their data.
        ctx.deferred.add_ledger(source.name, rows, days)
        return
    ledger = ctx.spark.createDataFrame(rows, load_contract("ingest_ledger").schema)
    lake_mod.merge_new_rows(
        ctx.spark, ledger, lake, "ingest_ledger", dates=[source.name], within=("object_date", days)
    )


def _record(spark: SparkSession, lake: str, rec: RunRecord, deferred: run_log.DeferredWrites | None) -> None:
    """Check that the run balances, write its record (or hand it to the pipeline), show its summary."""
    rec.status = "succeeded"
    rec.ended_at = now_utc()
    if not rec.balanced():
        raise ReconciliationError(
            f"run {rec.run_id} does not balance: read {rec.records_read} != loaded {rec.records_loaded} "
            f"+ quarantined {rec.records_quarantined} + duplicates {rec.records_duplicate}"
        )
    write_run_record(spark, lake, rec, deferred)
    summary_log.info(rec.summary())


def _unpersist(batch: _Batch) -> None:
    for df in batch.persisted:
        df.unpersist()
