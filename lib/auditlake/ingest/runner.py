"""The ingest run every source shares.

list -> classify -> skip what the ledger has -> parse (source-specific) -> dedupe in batch ->
quality gate -> exactly-once merge per table -> quarantine -> ledger -> run record.

Crash safety: each Delta commit is atomic and every write is idempotent (insert-only merges on
natural keys), and the ledger is written after the data. A run killed at any point leaves the
ledger without its objects, so the rerun reads them again and the merges insert only what is
missing: the end state is that of one clean run.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyspark.sql.functions as F
from pyspark import StorageLevel
from pyspark.sql import DataFrame

from auditlake import config as config_mod
from auditlake import lake as lake_mod
from auditlake import quality
from auditlake.cli import JobContext
from auditlake.errors import QualityGateError, ReconciliationError
from auditlake.ingest import gate
from auditlake.ingest.objects import SourceObject, list_objects, normalize_uri
from auditlake.redact import error_line, redact
from auditlake.tables import load_contract

log = logging.getLogger(__name__)

LOG_OBJECT = None  # classify() returns this for an object to parse


@dataclass
class ParsedBatch:
    """What a source's parse step hands back: rows per table, quarantine rows, counters."""

    tables: dict[str, DataFrame]
    quarantine: DataFrame
    counters: dict[str, int] = field(default_factory=dict)
    unknown_keys: list[str] = field(default_factory=list)
    # Intermediate frames the parser persisted; unpersisted by the runner at the end. A parser
    # that lists any promises that every frame in ``tables`` is a cheap filter or projection of
    # them: the runner then validates and merges those frames as they are, without caching a
    # second copy (each quality expectation and the merge read them again).
    persisted: list[DataFrame] = field(default_factory=list)


class Source(Protocol):
    """A log source: how to recognise its objects and parse them."""

    name: str            # e.g. "cloudtrail"; the `source` value in ledger, quarantine, job_runs
    tables: tuple[str, ...]

    def classify(self, obj: SourceObject) -> str | None:
        """None for an object to parse; otherwise the reason it is skipped (counted)."""

    def object_date(self, obj: SourceObject) -> dt.date | None:
        """Delivery date from the key, for --since/--until listing bounds; None if the key has none."""

    def parse(self, spark, objects: list[SourceObject], *, run_id: str, cfg: dict[str, Any]) -> ParsedBatch:
        """Read and parse the objects (one pass, explicit schema) into table rows and quarantine rows."""


@dataclass
class RunRecord:
    run_id: str
    job: str
    source: str
    source_uri: str
    env: str
    started_at: dt.datetime
    status: str = "running"
    error: str | None = None
    ended_at: dt.datetime | None = None
    objects_listed: int = 0
    objects_skipped: int = 0
    objects_already_processed: int = 0
    objects_processed: int = 0
    records_read: int = 0
    records_loaded: int = 0
    records_quarantined: int = 0
    records_duplicate: int = 0
    loaded_by_table: dict[str, int] = field(default_factory=dict)
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    unknown_keys: list[str] = field(default_factory=list)
    touched_dates: list[dt.date] = field(default_factory=list)
    dq_status: str = "skipped"
    dq_warnings: list[str] = field(default_factory=list)
    phase_seconds: dict[str, float] = field(default_factory=dict)

    def as_row(self) -> dict[str, Any]:
        ended = self.ended_at or dt.datetime.now(dt.UTC).replace(tzinfo=None)
        row = dict(self.__dict__)
        row["ended_at"] = ended
        row["duration_seconds"] = round((ended - self.started_at).total_seconds(), 3)
        return row

    def balanced(self) -> bool:
        return self.records_read == self.records_loaded + self.records_quarantined + self.records_duplicate

    def summary(self) -> str:
        lines = [
            f"run {self.run_id} job={self.job} source={self.source_uri} status={self.status}",
            f"  objects: listed={self.objects_listed} skipped={self.objects_skipped} "
            f"already_processed={self.objects_already_processed} processed={self.objects_processed}",
            f"  records: read={self.records_read} loaded={self.records_loaded} "
            f"quarantined={self.records_quarantined} duplicates={self.records_duplicate}",
        ]
        for table, n in sorted(self.loaded_by_table.items()):
            lines.append(f"  loaded {table}: {n}")
        if self.skipped_by_reason:
            lines.append("  skipped: " + ", ".join(f"{k}={v}" for k, v in sorted(self.skipped_by_reason.items())))
        if self.counters:
            lines.append("  counters: " + ", ".join(f"{k}={v}" for k, v in sorted(self.counters.items())))
        if self.unknown_keys:
            lines.append("  unknown keys seen: " + ", ".join(self.unknown_keys))
        lines.append(f"  data quality: {self.dq_status}" + (f" ({len(self.dq_warnings)} warnings)" if self.dq_warnings else ""))
        lines.append("  seconds: " + ", ".join(f"{k}={v:.1f}" for k, v in self.phase_seconds.items()))
        return "\n".join(lines)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def write_run_record(spark, lake: str, record: RunRecord) -> None:
    contract = load_contract("job_runs")
    df = spark.createDataFrame([record.as_row()], contract.schema)
    lake_mod.append_rows(spark, df, lake, "job_runs")


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


def ledger_keys(spark, lake: str, source: str) -> set[tuple[str, int, dt.datetime]]:
    """(uri, size, modified) of every object the ledger holds for this source."""
    if not lake_mod.delta_exists(spark, lake_mod.table_uri(lake, "ingest_ledger")):
        return set()  # a new lake: no Spark job to read an empty frame
    ledger = lake_mod.read_table(spark, lake, "ingest_ledger")
    rows = ledger.where(F.col("source") == source).select("object_uri", "object_size", "object_modified_at").collect()
    return {(r[0], int(r[1]), r[2]) for r in rows}


def _ledger_frame(spark, source_name: str, objects: Iterable[SourceObject], dates: dict[str, dt.date | None], run_id: str) -> DataFrame:
    now = _now()
    rows = [(source_name, redact(o.uri), o.size, o.modified_at, dates.get(o.uri), run_id, now) for o in objects]
    return spark.createDataFrame(rows, load_contract("ingest_ledger").schema)


def _dedupe(df: DataFrame, keys: tuple[str, ...]) -> tuple[DataFrame, int, int]:
    """Drop in-batch duplicate keys: ``(deduplicated frame, rows in the batch, rows dropped)``.

    One job groups the batch by its key columns only (a shuffle of the keys, not of whole rows)
    and returns the row count and the duplicate count together. A batch without duplicates, the
    usual case, is returned as it is: no shuffle of whole rows and no second cached copy. Only a
    batch that has duplicates pays for ``dropDuplicates``.
    """
    if not keys:
        return df, df.count(), 0
    per_key = df.groupBy(*keys).agg(F.count(F.lit(1)).alias("n"))
    row = per_key.agg(
        F.sum("n").alias("rows"),
        F.sum(F.when(F.col("n") > 1, F.col("n") - 1)).alias("extra"),
    ).collect()[0]
    rows, extra = int(row["rows"] or 0), int(row["extra"] or 0)
    if extra == 0:
        return df, rows, 0
    return df.dropDuplicates(list(keys)), rows, extra


def record_failed_run(spark, lake: str, rec: RunRecord, exc: BaseException) -> None:
    """Write the run record of a run that is about to fail with ``exc`` (best effort)."""
    rec.status = "dq_failed" if isinstance(exc, QualityGateError) else "failed"
    rec.error = error_line(exc, 1000)
    rec.ended_at = _now()
    try:
        write_run_record(spark, lake, rec)
    except Exception as write_exc:  # noqa: BLE001 - the original error is the one to report
        # Said on the job's one error line, after the run's own error (never a second traceback).
        exc.add_note(f"also could not write the failed run record: {error_line(write_exc)}")
        log.debug("could not write the failed run record", exc_info=True)


def run_ingest(ctx: JobContext, source: Source) -> RunRecord:
    """Run one ingest of ``source`` from ``ctx.args.source`` into ``ctx.args.lake``."""
    spark, cfg, args = ctx.spark, ctx.cfg, ctx.args
    lake = normalize_uri(args.lake)
    rec = RunRecord(
        run_id=ctx.run_id, job=ctx.job, source=source.name, source_uri=redact(normalize_uri(args.source)),
        env=cfg.get("env", "local"), started_at=ctx.started_at.replace(tzinfo=None),
    )
    slack = int(config_mod.get(cfg, "ingest.listing_slack_days", 1))
    t0 = time.monotonic()
    try:
        listed = list_objects(spark, args.source)
        rec.objects_listed = len(listed)
        skipped: Counter[str] = Counter()
        candidates: list[SourceObject] = []
        dates: dict[str, dt.date | None] = {}
        for obj in listed:
            reason = source.classify(obj)
            if reason is not None:
                skipped[reason] += 1
                continue
            day = source.object_date(obj)
            if not in_window(day, args.since, args.until, slack):
                skipped["outside_window"] += 1
                continue
            dates[obj.uri] = day
            candidates.append(obj)
        rec.skipped_by_reason = dict(skipped)
        rec.objects_skipped = sum(v for k, v in skipped.items() if k != "outside_window")
        if args.reprocess:
            todo = candidates
        else:
            done = ledger_keys(spark, lake, source.name)
            todo = [o for o in candidates if (o.uri, o.size, o.modified_at) not in done]
        rec.objects_already_processed = len(candidates) - len(todo)
        rec.objects_processed = len(todo)
        rec.phase_seconds["list"] = time.monotonic() - t0
        log.info("%s: %d listed, %d to process, %d already in the ledger, skipped %s",
                 source.name, len(listed), len(todo), rec.objects_already_processed, dict(skipped))
        if todo:
            _process(ctx, source, lake, todo, dates, rec)
        rec.status = "succeeded"
        rec.ended_at = _now()
        if not rec.balanced():
            raise ReconciliationError(
                f"run {rec.run_id} does not balance: read {rec.records_read} != loaded {rec.records_loaded} "
                f"+ quarantined {rec.records_quarantined} + duplicates {rec.records_duplicate}"
            )
        write_run_record(spark, lake, rec)
        print(rec.summary())
        return rec
    except Exception as exc:
        record_failed_run(spark, lake, rec, exc)
        raise


def _process(ctx: JobContext, source: Source, lake: str, todo: list[SourceObject],
             dates: dict[str, dt.date | None], rec: RunRecord) -> None:
    spark, cfg = ctx.spark, ctx.cfg
    # Only a run with objects to parse needs the quality gate: its import overlaps the parse.
    quality.prefetch(cfg)
    t = time.monotonic()
    batch = source.parse(spark, todo, run_id=ctx.run_id, cfg=cfg)
    persisted: list[DataFrame] = list(batch.persisted)
    try:
        # Rows failing a row-level check join the quarantine; schema drift stops the run here.
        prepared = gate.prepare_batch(spark, batch.tables, batch.quarantine, source=source.name,
                                      run_id=ctx.run_id, cfg=cfg, now=ctx.started_at)
        gate.raise_on_failure(spark, lake, prepared.outcomes, ctx.run_id)
        quarantine = prepared.quarantine.persist(StorageLevel.MEMORY_AND_DISK)
        persisted.append(quarantine)
        deduped: dict[str, DataFrame] = {}
        batch_counts: dict[str, int] = {}
        read = 0
        for table, df in prepared.tables.items():
            # Not persisted again: the parser's own cached intermediate backs this frame (one copy
            # of the batch in memory; a second, deduplicated one only when there are duplicates).
            if not batch.persisted:
                df = df.persist(StorageLevel.MEMORY_AND_DISK)
                persisted.append(df)
            d, rows, dropped = _dedupe(df, load_contract(table).keys)
            if d is not df:
                d = d.persist(StorageLevel.MEMORY_AND_DISK)
                persisted.append(d)
            read += rows
            # Counted from the key groups, independently of the frame the quality gate counts.
            batch_counts[table] = rows - dropped
            deduped[table] = d
        rec.records_quarantined, row_quarantined = gate.count_quarantine(quarantine)
        rec.records_read = read + rec.records_quarantined
        rec.counters = dict(batch.counters)
        rec.unknown_keys = sorted(set(batch.unknown_keys))
        rec.phase_seconds["parse"] = time.monotonic() - t

        t = time.monotonic()
        share = gate.quarantine_share(rec.records_quarantined, rec.records_read, cfg=cfg, run_id=ctx.run_id)
        outcomes = [share] if share is not None else []
        for table, d in deduped.items():
            if batch_counts[table] == 0:
                continue  # nothing to validate and nothing to commit
            outcomes.append(quality.validate_batch(spark, table, d, run_id=ctx.run_id, cfg=cfg,
                                                   expected_row_count=batch_counts[table], backed_by_cache=True,
                                                   quarantined=row_quarantined.get(table)))
        statuses = {o.status for o in outcomes}
        rec.dq_status = ("failed" if "failed" in statuses else "warning" if "warning" in statuses
                         else "passed" if "passed" in statuses else "skipped")
        rec.dq_warnings = [w for o in outcomes for w in o.warnings]
        if outcomes:
            results = quality.results_frame(spark, outcomes, ctx.run_id)
            lake_mod.append_rows(spark, results, lake, "dq_results")
        rec.phase_seconds["quality"] = time.monotonic() - t
        failed = [o for o in outcomes if o.status == "failed"]
        if failed:
            raise QualityGateError("; ".join(o.message() for o in failed))

        t = time.monotonic()
        touched: set[dt.date] = set()
        for table, d in deduped.items():
            contract = load_contract(table)
            if batch_counts[table] == 0:
                lake_mod.ensure_delta_table(spark, lake, contract)
                rec.loaded_by_table[table] = 0
                continue
            part_values = lake_mod.partition_values(d, contract.partition_by[0]) if contract.partition_by else None
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
        if rec.records_quarantined:
            lake_mod.merge_new_rows(spark, quarantine, lake, "quarantine", dates=[source.name])
        after = getattr(source, "after_commit", None)
        if after is not None:
            extra = after(spark, lake, deduped, run_id=ctx.run_id, cfg=cfg)
            for table, n in (extra or {}).items():
                rec.counters[f"{table}_upserted"] = int(n)
        lake_mod.merge_new_rows(
            spark, _ledger_frame(spark, source.name, todo, dates, ctx.run_id), lake, "ingest_ledger",
            dates=[source.name],
        )
        rec.phase_seconds["commit"] = time.monotonic() - t
    finally:
        for df in persisted:
            df.unpersist()
