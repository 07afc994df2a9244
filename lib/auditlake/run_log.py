"""Run accounting that survives a kill: ``job_runs`` rows written at start and at end.

A run writes its ``job_runs`` row (key: run id and job) twice: ``status = running`` before it
reads anything (a blind append for a new run id, an upsert for a retry that reuses one), and its
final status when it ends (an upsert). A run killed in between (SIGKILL, a lost
node, a Glue timeout) leaves its row ``running``; the next run of the same job and source marks
it ``abandoned`` once it can tell the run is gone: the driver process no longer exists (same
host), or the run started longer ago than ``runs.abandon_after_hours``. A run still going on
elsewhere is left alone, so concurrent runs never abandon each other.

Every Delta commit a run makes carries its run id (``commits.tag_commits``), so the tables
themselves say which run wrote what, also for an abandoned run.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import socket
import threading
from typing import Any

import pyspark.sql.functions as F
from pyspark.sql import DataFrame

from auditlake import commits
from auditlake import config as config_mod
from auditlake import lake as lake_mod
from auditlake.tables import load_contract

log = logging.getLogger(__name__)

DEFAULT_ABANDON_AFTER_HOURS = 24.0

# Runs this process has started and not yet ended: a row of this driver that is not here is
# from a run of this process that died without recording its end.
_ACTIVE: set[tuple[str, str]] = set()
# Runs whose start row ``start_runs`` wrote ahead of them (the pipeline's ingests), with the rows
# of their job it read: their ``start_run`` neither reads nor writes ``job_runs`` again.
_STARTED_AHEAD: dict[tuple[str, str], list[Any]] = {}


def driver_id() -> str:
    """``host:pid`` of this driver."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def run_row(rec: Any) -> dict[str, Any]:
    """The ``job_runs`` row of a run record (a running run has no end yet)."""
    row = rec.as_row()
    row["driver"] = driver_id()
    row["table_versions"] = dict(getattr(rec, "table_versions", None) or {}) or None
    if rec.status == "running":
        row["ended_at"] = None
        row["duration_seconds"] = None
    return row


def _runs_frame(spark, recs: list[Any]) -> Any:
    """The ``job_runs`` rows of the records, as a frame of the table's contract."""
    contract = load_contract("job_runs")
    rows = [run_row(rec) for rec in recs]
    return spark.createDataFrame(
        [tuple(r.get(c) for c in contract.column_names) for r in rows], contract.schema
    )


def write_run(spark, lake: str, rec: Any, *, recorded: bool | None = None) -> None:
    """Insert or update the run's ``job_runs`` row (idempotent, safe beside concurrent runs).

    ``recorded``: whether ``job_runs`` already holds the run's row, when the caller has read it
    (``start_run`` reads the job's rows once for this and for ``mark_abandoned``).
    """
    df = _runs_frame(spark, [rec])
    key = (rec.run_id, rec.job)
    # Known as active before its row is visible: a concurrent run in this process must not
    # take the new row for one of a run that died.
    if rec.status == "running":
        _ACTIVE.add(key)
        if not (_recorded(spark, lake, key) if recorded is None else recorded):
            # A new run's row is a blind append: appends never conflict with each other, where
            # concurrent MERGEs into job_runs do (jobs scheduled together all start with this
            # write), and a cold JVM plans no MERGE before a run with nothing to do.
            lake_mod.append_rows(spark, df, lake, "job_runs")
            return
    # The run id is a key, so the row to update is among the files whose run id statistics allow
    # it: the merge reads the run's own start row, not the whole year of job_runs.
    lake_mod.upsert_rows(spark, df, lake, "job_runs", within=("run_id", [rec.run_id]))
    if rec.status != "running":
        _ACTIVE.discard(key)


def end_runs(spark, lake: str, recs: list[Any]) -> None:
    """Write the final rows of several ended runs in one upsert (``DeferredWrites.flush``)."""
    if not recs:
        return
    ids = sorted({r.run_id for r in recs})
    lake_mod.upsert_rows(spark, _runs_frame(spark, recs), lake, "job_runs", within=("run_id", ids))
    for rec in recs:
        _ACTIVE.discard((rec.run_id, rec.job))


class DeferredWrites:
    """What the pipeline's ingests record after their data, written for all of them at once.

    Each ingest of a pipeline made four commits of its own besides its data: the append of its
    quality results to ``dq_results``, the merge of its quarantined rows, the merge of its objects
    into ``ingest_ledger`` and the upsert of its end row. All four only record what the run did or
    set aside, and all are safe to make later: an object is in the ledger only after its rows, its
    quarantined rows included, are committed (a run killed before ``flush`` leaves its objects
    out of the ledger, so the rerun reads them again, gates them, records their results and its
    merges insert nothing twice), and a run whose end row is missing stays ``running`` until the
    next run of its job marks it abandoned. So the pipeline hands them here and ``flush`` makes one
    commit of each kind for all its ingests: on 2 cores every Delta commit of a small run costs
    seconds of driver time (the plans, the snapshot update, the log write). A gate that fails
    still records its results at once. Thread-safe: the ingests add from their threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._results: list[tuple[list[Any], str]] = []
        self._quarantine: list[tuple[str, Any]] = []
        self._ledger: list[tuple[str, list[tuple[Any, ...]], list[dt.date | None]]] = []
        self._ends: list[Any] = []

    def add_results(self, outcomes: list[Any], run_id: str) -> None:
        """The quality outcomes of a run's passed gate (``dq_results`` rows, ``quality.results_frame``)."""
        with self._lock:
            self._results.append((list(outcomes), run_id))

    def add_quarantine(self, source: str, frame: Any) -> None:
        """A run's quarantined rows: a cached frame, unpersisted here once merged."""
        with self._lock:
            self._quarantine.append((source, frame))

    def add_ledger(self, source: str, rows: list[tuple[Any, ...]], days: list[dt.date | None]) -> None:
        """The ledger rows of one run (``ingest_ledger`` columns) and the object dates they hold."""
        with self._lock:
            self._ledger.append((source, rows, days))

    def add_end(self, rec: Any) -> None:
        """The run record of an ended run (its final ``job_runs`` row)."""
        with self._lock:
            self._ends.append(rec)

    def pending_ends(self) -> list[Any]:
        """The run records whose end rows are not written yet."""
        with self._lock:
            return list(self._ends)

    def flush(self, spark, lake: str) -> None:
        """One commit of each kind: results, quarantine, ledger, end rows; raise if one fails.

        The ledger after the quarantine, the end rows last: an object is in the ledger only once
        all its rows are, and an end row never says ``succeeded`` for a run whose objects are not
        in the ledger. What was written is forgotten, so a second call writes only what came after.
        """
        from auditlake import quality

        with self._lock:
            results, quarantine = list(self._results), list(self._quarantine)
            ledger, ends = list(self._ledger), list(self._ends)
        if results:
            frames = [quality.results_frame(spark, outcomes, run_id) for outcomes, run_id in results]
            lake_mod.append_rows(spark, functools.reduce(DataFrame.unionByName, frames), lake, "dq_results")
            with self._lock:
                self._results = self._results[len(results) :]
        if quarantine:
            frames = [frame for _, frame in quarantine]
            lake_mod.merge_new_rows(
                spark,
                _union(spark, frames),
                lake,
                "quarantine",
                dates=sorted({source for source, _ in quarantine}),
            )
            with self._lock:
                self._quarantine = self._quarantine[len(quarantine) :]
            for frame in frames:
                frame.unpersist()
        if ledger:
            rows = [row for _, source_rows, _ in ledger for row in source_rows]
            frame = spark.createDataFrame(rows, load_contract("ingest_ledger").schema)
            lake_mod.merge_new_rows(
                spark,
                frame,
                lake,
                "ingest_ledger",
                dates=sorted({source for source, _, _ in ledger}),
                within=("object_date", [d for _, _, days in ledger for d in days]),
            )
            with self._lock:
                self._ledger = self._ledger[len(ledger) :]
        if ends:
            end_runs(spark, lake, ends)
            with self._lock:
                self._ends = self._ends[len(ends) :]


def _union(spark, frames: list[Any]) -> Any:
    """The frames' rows as one frame of ``spark``'s session (they come from the ingests' sessions,
    and a merge finds its batch as a temporary view of the session that runs it)."""
    jdf = frames[0]._jdf
    for frame in frames[1:]:
        jdf = jdf.unionByName(frame._jdf)
    return lake_mod.rows_frame(spark, jdf)


def _recorded(spark, lake: str, key: tuple[str, str]) -> bool:
    """Whether ``job_runs`` holds a row of (run id, job) already (a retry given the same ``--run-id``)."""
    rows = lake_mod.read_table(spark, lake, "job_runs").where(
        (F.col("run_id") == key[0]) & (F.col("job") == key[1])
    )
    return bool(rows.limit(1).count())


def _job_rows(spark, lake: str, job: str, run_id: str) -> list[Any]:
    """One read of ``job_runs``: the rows of ``job`` that are running or are this run's own."""
    return (
        lake_mod.read_table(spark, lake, "job_runs")
        .where((F.col("job") == job) & ((F.col("status") == "running") | (F.col("run_id") == run_id)))
        .select("run_id", "source", "status", "driver", "started_at")
        .collect()
    )


def start_runs(spark, lake: str, recs: list[Any]) -> None:
    """Record several runs as running at once (the pipeline's ingests, before their threads start).

    One read of ``job_runs`` for all their jobs and one append of the new runs' rows, where each
    run alone reads and appends once: the ingests of a pipeline started together on a cold JVM,
    and three concurrent first reads and appends of ``job_runs`` cost each of them 16-23 s. Each
    run's own ``start_run`` then tags its commits and abandons dead runs from the rows read here.
    A run whose row exists already (a retry with the same run id) is updated as ``start_run`` would.
    """
    if not recs:
        return
    jobs = sorted({r.job for r in recs})
    ids = sorted({r.run_id for r in recs})
    rows = (
        lake_mod.read_table(spark, lake, "job_runs")
        .where(F.col("job").isin(jobs) & ((F.col("status") == "running") | F.col("run_id").isin(ids)))
        .select("run_id", "job", "source", "status", "driver", "started_at")
        .collect()
    )
    recorded = {(r["run_id"], r["job"]) for r in rows}
    fresh = []
    for rec in recs:
        rec.status = "running"
        key = (rec.run_id, rec.job)
        _ACTIVE.add(key)
        if key in recorded:
            write_run(spark, lake, rec, recorded=True)
        else:
            fresh.append(rec)
    if fresh:
        lake_mod.append_rows(spark, _runs_frame(spark, fresh), lake, "job_runs")
    for rec in recs:
        _STARTED_AHEAD[(rec.run_id, rec.job)] = [
            r for r in rows if r["job"] == rec.job and (r["status"] == "running" or r["run_id"] == rec.run_id)
        ]


def start_run(spark, lake: str, rec: Any, cfg: dict[str, Any] | None = None) -> list[str]:
    """Tag this session's commits with the run, record it as running, abandon dead runs.

    One read of the job's rows in ``job_runs`` serves both the start row (append or upsert) and
    the search for dead runs: on a cold JVM each read of the table costs seconds. A run that
    ``start_runs`` recorded already uses the rows that read.
    Returns the run ids marked abandoned.
    """
    commits.tag_commits(spark, rec.run_id, rec.job)
    rec.status = "running"
    rows = _STARTED_AHEAD.pop((rec.run_id, rec.job), None)
    if rows is None:
        rows = _job_rows(spark, lake, rec.job, rec.run_id)
        write_run(spark, lake, rec, recorded=any(r["run_id"] == rec.run_id for r in rows))
    hours = float(config_mod.get(cfg or {}, "runs.abandon_after_hours", DEFAULT_ABANDON_AFTER_HOURS))
    return mark_abandoned(
        spark,
        lake,
        job=rec.job,
        source=rec.source,
        current=rec.run_id,
        stale_after=dt.timedelta(hours=hours),
        rows=[r for r in rows if r["status"] == "running"],
    )


def _driver_gone(driver: str | None, run_id: str, job: str) -> bool:
    """Whether the run's driver process is known to be gone (only decidable on this host)."""
    if not driver or ":" not in driver:
        return False
    host, _, pid_text = driver.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return (run_id, job) not in _ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def mark_abandoned(
    spark,
    lake: str,
    *,
    job: str,
    source: str | None,
    current: str,
    stale_after: dt.timedelta,
    rows: list[Any],
) -> list[str]:
    """Mark ``running`` rows of ``job``/``source`` whose run is gone as ``abandoned``; return their ids.

    ``rows``: the job's ``running`` rows as ``start_run`` read them (``_job_rows``).
    """
    now = _now()
    gone = [
        r["run_id"]
        for r in rows
        if r["run_id"] != current
        and (source is None or r["source"] == source)
        and (
            _driver_gone(r["driver"], r["run_id"], job)
            or (r["started_at"] and now - r["started_at"] > stale_after)
        )
    ]
    if not gone:
        return []
    from delta.tables import DeltaTable

    table = DeltaTable.forPath(spark, lake_mod.table_uri(lake, "job_runs"))
    ids = ", ".join("'" + g.replace("'", "''") + "'" for g in gone)
    cond = f"job = '{job.replace(chr(39), chr(39) * 2)}' AND status = 'running' AND run_id IN ({ids})"
    commits.retry_on_conflict(
        lambda: table.update(
            cond,
            {
                "status": F.lit("abandoned"),
                "error": F.lit(f"abandoned: never ended; seen by run {current}"),
            },
        ),
        what="mark abandoned runs",
    )
    log.warning("marked %d run(s) of %s abandoned: %s", len(gone), job, ", ".join(sorted(gone)))
    return sorted(gone)
