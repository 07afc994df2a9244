"""Run records (the ``job_runs`` table) of every job, and the data-quality outcome folded into them.

One ``RunRecord`` fits both kinds of job, and both balance ``records_read = records_loaded +
records_quarantined + records_duplicate``:

- an ingest run counts source records: read from the objects, loaded into tables, quarantined,
  and dropped as duplicates (in the batch or already in the table);
- a rebuild run (the aggregate job) counts the rows it built: read = rows built for the planned
  days, loaded = rows written (days whose rows changed), duplicate = rows built that the table
  already held unchanged; nothing is quarantined.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyspark.sql import SparkSession

from auditlake import lake as lake_mod
from auditlake import quality, run_log
from auditlake.errors import QualityGateError
from auditlake.redact import error_line

if TYPE_CHECKING:
    from auditlake.context import JobContext

log = logging.getLogger(__name__)

# The job summary a user reads at the end of a run; cli.configure_logging sends it to stdout.
summary_log = logging.getLogger("auditlake.summary")


def now_utc() -> dt.datetime:
    """The current UTC time as a naive datetime (how Spark's TIMESTAMP columns are written)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass
class RunRecord:
    """One row of ``job_runs``: what a run listed, read, loaded, quarantined, skipped, and how long it took."""

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
    table_versions: dict[str, int] = field(default_factory=dict)

    @classmethod
    def for_job(cls, ctx: JobContext, source: str, source_uri: str) -> RunRecord:
        """The running record of the job ``ctx`` over ``source_uri``."""
        return cls(
            run_id=ctx.run_id,
            job=ctx.job,
            source=source,
            source_uri=source_uri,
            env=ctx.cfg.get("env", "local"),
            started_at=ctx.started_at.replace(tzinfo=None),
        )

    def as_row(self) -> dict[str, Any]:
        ended = self.ended_at or now_utc()
        row = dict(self.__dict__)
        row["ended_at"] = ended
        row["duration_seconds"] = round((ended - self.started_at).total_seconds(), 3)
        return row

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the block into ``phase_seconds[name]``, also when it fails; log its start and end with counts."""
        started = time.monotonic()
        log.info("run %s %s: phase %s: start", self.run_id, self.source, name)
        try:
            yield
        finally:
            self.phase_seconds[name] = time.monotonic() - started
            log.info(
                "run %s %s: phase %s: end, %.1fs; objects listed=%d processed=%d; records read=%d "
                "loaded=%d quarantined=%d",
                self.run_id,
                self.source,
                name,
                self.phase_seconds[name],
                self.objects_listed,
                self.objects_processed,
                self.records_read,
                self.records_loaded,
                self.records_quarantined,
            )

    def balanced(self) -> bool:
        return self.records_read == self.records_loaded + self.records_quarantined + self.records_duplicate

    def summary(self) -> str:
        """The ingest summary: objects, records, tables, skips, counters, quality, phase times."""
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
            lines.append(
                "  skipped: " + ", ".join(f"{k}={v}" for k, v in sorted(self.skipped_by_reason.items()))
            )
        if self.counters:
            lines.append("  counters: " + ", ".join(f"{k}={v}" for k, v in sorted(self.counters.items())))
        if self.unknown_keys:
            lines.append("  unknown keys seen: " + ", ".join(self.unknown_keys))
        lines.append(
            f"  data quality: {self.dq_status}"
            + (f" ({len(self.dq_warnings)} warnings)" if self.dq_warnings else "")
        )
        lines.append("  seconds: " + ", ".join(f"{k}={v:.1f}" for k, v in self.phase_seconds.items()))
        return "\n".join(lines)


def write_run_record(
    spark: SparkSession, lake: str, record: RunRecord, deferred: run_log.DeferredWrites | None = None
) -> None:
    """Insert or update the run's ``job_runs`` row (``run_log``: written at start and at end).

    ``deferred``: the end row goes there, and the pipeline writes it with its other ingests' rows.
    """
    if deferred is not None and record.status != "running":
        deferred.add_end(record)
    else:
        run_log.write_run(spark, lake, record)
    if record.status == "running":
        return
    row = record.as_row()
    # The final line of every run: counts and duration only, never record content.
    log.info(
        "run %s %s %s: %s in %.1fs; records read=%d loaded=%d quarantined=%d duplicates=%d",
        record.run_id,
        record.job,
        record.source,
        record.status,
        row["duration_seconds"],
        record.records_read,
        record.records_loaded,
        record.records_quarantined,
        record.records_duplicate,
    )


def record_failed_run(spark: SparkSession, lake: str, rec: RunRecord, exc: BaseException) -> None:
    """Write the run record of a run that is about to fail with ``exc`` (best effort)."""
    rec.status = "dq_failed" if isinstance(exc, QualityGateError) else "failed"
    rec.error = error_line(exc, 1000)
    rec.ended_at = now_utc()
    try:
        write_run_record(spark, lake, rec)
    except Exception as write_exc:  # noqa: BLE001 - the original error is the one to report
        # Said on the job's one error line, after the run's own error (never a second traceback).
        exc.add_note(f"also could not write the failed run record: {error_line(write_exc)}")
        log.debug("could not write the failed run record", exc_info=True)


def dq_status(statuses: set[str]) -> str:
    """A run's data-quality status from its tables' outcomes: the worst of them, "skipped" if none ran."""
    for status in ("failed", "warning", "passed"):
        if status in statuses:
            return status
    return "skipped"


def record_gate(
    spark: SparkSession,
    lake: str,
    rec: RunRecord,
    outcomes: list[quality.QualityOutcome],
    deferred: run_log.DeferredWrites | None = None,
) -> None:
    """Fold the gate's outcomes into ``rec``, append them to ``dq_results``; raise if any table failed.

    ``deferred``: a passed gate's results go there, and the pipeline appends them with its other
    ingests' results; a failed gate's are appended at once, before the error stops the run.
    """
    rec.dq_status = dq_status({o.status for o in outcomes})
    rec.dq_warnings = [w for o in outcomes for w in o.warnings]
    # Failed expectations by severity, for the DataQualityFailures metric.
    rec.counters["dq_failed_critical"] = sum(len(o.failures) for o in outcomes)
    rec.counters["dq_failed_warning"] = len(rec.dq_warnings)
    failed = [o for o in outcomes if o.status == "failed"]
    if outcomes and deferred is not None and not failed:
        deferred.add_results(outcomes, rec.run_id)
    elif outcomes:
        lake_mod.append_rows(spark, quality.results_frame(spark, outcomes, rec.run_id), lake, "dq_results")
    if failed:
        raise QualityGateError("; ".join(o.message() for o in failed))
