"""The nightly pipeline in one SparkSession: the three ingests, the daily aggregates, [detections].

Each job runs through the same entry function as when run alone (``run_ingest`` with its source,
``build_daily_aggregates``, and with ``--detect`` ``detect``), with its own job name, run id and
``job_runs`` row. They share one SparkContext (JVM start, first Delta use, the Great Expectations
import); each has a session of its own on it (``job_session``), so that its settings, above all
the run tag every Delta commit carries, are its own when jobs run side by side.

Failure policy: a failed ingest does not stop the others, and the aggregates job runs anyway. It
rebuilds the days of every ingest run recorded since its last run, failed ones included (a failed
run records the days it committed before it failed, and a failed run's rebuilt days are rebuilt
again next time at no cost). The detections (``--detect``) run last, whatever happened before
them: they read the event tables, and their window takes every day an ingest or aggregate run
wrote. The pipeline exits with the worst status: the highest exit code of its jobs (0 when all
succeeded), as each job alone would have exited.

The ingests run in threads of the one session (Spark schedules their jobs side by side; with
``--no-parallel`` one after another). A small run is bound by the driver (planning, Delta's commit
protocol), which a thread per ingest spreads over the cores: a new hour of all three sources,
aggregates included, took 174 s one after another and 124 s in threads on 2 cores. The tables
every ingest writes (run records, quality results, ledger, quarantine) are created and the
ingests' start rows written while the ingests list their objects, and before any of them writes,
so no two threads race to create the same Delta table. The aggregates job's start row goes in the
same append, and its watermark is read while the ingests run: on 2 cores its own read and append
of ``job_runs`` took 2 s, racing the deferred writes below. What the ingests record beside and after
their data (their passed gates' results, their quarantined rows, their objects in the ledger and
their end rows in ``job_runs``) the pipeline writes for all of them once they have ended, one
commit of each kind (``run_log.DeferredWrites``), in a thread of its own while the aggregates job
runs: that job reads the ingests' data tables, not those rows, and its planning leaves a core idle
that the writes use.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from auditlake.context import JobContext
from auditlake.errors import AuditlakeError, UsageError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from auditlake.ingest.source import Source

log = logging.getLogger(__name__)

JOB_NAME = "run_pipeline"
# (job name, command-line option naming its source, dest attribute)
INGESTS: tuple[tuple[str, str, str], ...] = (
    ("ingest_cloudtrail", "--cloudtrail-source", "cloudtrail_source"),
    ("ingest_s3_access", "--s3-access-source", "s3_access_source"),
    ("ingest_crawler_logs", "--crawler-source", "crawler_source"),
)
# Tables more than one ingest writes; created before ingests run in parallel.
SHARED_TABLES = ("job_runs", "dq_results", "ingest_ledger", "quarantine")


class PipelineError(AuditlakeError):
    """One or more jobs of the pipeline failed; the exit code is the worst of theirs."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class JobOutcome:
    """How one job of the pipeline ended."""

    job: str
    run_id: str
    exit_code: int = 0
    error: str | None = None
    seconds: float = 0.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The pipeline's own options, beside the shared ones of ``cli.base_parser``."""
    for job, option, dest in INGESTS:
        parser.add_argument(option, dest=dest, help=f"URI of the raw logs for {job} (omit to skip it)")
    parser.add_argument(
        "--parallel",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the ingests in parallel threads of the one session (the default; --no-parallel: "
        "one after another)",
    )
    parser.add_argument("--no-aggregates", action="store_true", help="run the ingests only")
    parser.add_argument(
        "--detect",
        action="store_true",
        help="then run the detection pack (as jobs/detect.py does) in the same session",
    )


def _ingest_source(job: str) -> Source:
    if job == "ingest_cloudtrail":
        from auditlake.sources.cloudtrail import CloudTrailSource

        return CloudTrailSource()
    if job == "ingest_s3_access":
        from auditlake.sources.s3_access import S3AccessSource

        return S3AccessSource()
    from auditlake.sources.crawler_logs import CrawlerLogsSource

    return CrawlerLogsSource()


def _ingest_main(job: str) -> Callable[[JobContext], Any]:
    from auditlake.ingest.runner import run_ingest

    source = _ingest_source(job)
    return lambda ctx: run_ingest(ctx, source)


def _run_id(base: str | None, job: str) -> str:
    if base:
        return f"{base}-{job}"
    return f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def _exit_code(exc: BaseException) -> int:
    return exc.exit_code if isinstance(exc, AuditlakeError) else 1


def _job_context(parent: JobContext, job: str, source: str | None) -> JobContext:
    """The context of one job of the pipeline: its own run id, arguments and session."""
    args = copy.copy(parent.args)
    args.source = source
    return JobContext(
        job=job,
        args=args,
        cfg=parent.cfg,
        spark=job_session(parent.spark),
        run_id=_run_id(parent.args.run_id, job),
        started_at=dt.datetime.now(dt.UTC),
    )


def _run_one(ctx: JobContext, main: Callable[[JobContext], Any]) -> JobOutcome:
    """Run one job in its context; never raises (the outcome says how it ended)."""
    job = ctx.job
    outcome = JobOutcome(job, ctx.run_id)
    started = time.monotonic()
    # Names this job's Spark jobs in the UI and event log (a thread-local property in pinned-thread mode).
    ctx.spark.sparkContext.setJobGroup(ctx.run_id, job, interruptOnCancel=False)
    try:
        main(ctx)
    except Exception as exc:  # noqa: BLE001 - one job's failure must not stop the others
        outcome.exit_code = _exit_code(exc)
        outcome.error = (
            f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ''}"
        )
        log.error(
            "%s (run %s) failed with exit code %d: %s", job, ctx.run_id, outcome.exit_code, outcome.error
        )
    finally:
        sc = ctx.spark.sparkContext
        for key in ("spark.jobGroup.id", "spark.job.description", "spark.job.interruptOnCancel"):
            sc.setLocalProperty(key, None)  # type: ignore[arg-type]  # None clears the property
    outcome.seconds = round(time.monotonic() - started, 2)
    return outcome


def job_session(spark: SparkSession) -> SparkSession:
    """A session of its own for one job of the pipeline: the same SparkContext (JVM, executors,
    cached frames, Delta's log cache), its own SQL settings and temporary views.

    Own settings because a job tags every Delta commit it makes with its run id through a session
    setting (``commits.tag_commits``): ingests in threads of one session overwrote each other's
    tag, and a table's commits named the wrong run. Settings set on ``spark`` after its context
    was made (on Glue, the job's settings applied to the session Glue made) are carried over;
    those the context was made with every session has. Read from the JVM, not with ``SET``,
    which masks the values of secret-looking keys.
    """
    session = spark.newSession()
    own = _settings(session)
    for key, value in _settings(spark).items():
        if own.get(key) == value:
            continue
        try:
            session.conf.set(key, value)
        except Exception:  # noqa: BLE001 - a static or Spark-core key cannot differ between sessions
            log.debug("not carried to the job's session: %s", key)
    return session


def _settings(spark: SparkSession) -> dict[str, str]:
    """Every setting of the session with its value as the JVM holds it."""
    scala_map = spark._jsparkSession.conf().getAll()
    converters = spark.sparkContext._jvm.scala.collection.JavaConverters
    return dict(converters.mapAsJavaMapConverter(scala_map).asJava())


def _prepare_shared_tables(parent: JobContext) -> None:
    from auditlake import lake as lake_mod
    from auditlake.ingest.objects import normalize_uri
    from auditlake.tables import load_contract

    lake = normalize_uri(parent.args.lake)
    for table in SHARED_TABLES:
        lake_mod.ensure_delta_table(parent.spark, lake, load_contract(table))


def _start_ahead(
    parent: JobContext, contexts: dict[str, JobContext], later: JobContext | None = None
) -> None:
    """Record the ingests, and the aggregates job that runs after them (``later``), as running in
    one read and one append of ``job_runs`` (``run_log.start_runs``).

    Best effort: should it fail, each job records its own start (and reports the error). An
    ingest whose record cannot be made (a malformed source URI) is left to fail on its own. The
    aggregates' row says ``running`` from here on; its end row carries the time it really started.
    """
    from auditlake import run_log
    from auditlake.ingest.objects import normalize_uri
    from auditlake.ingest.runner import run_record
    from auditlake.runs import RunRecord

    recs = []
    for job, ctx in contexts.items():
        try:
            recs.append(run_record(ctx, _ingest_source(job)))
        except Exception:  # noqa: BLE001 - the ingest reports it when it runs
            log.debug("%s: no start row ahead", job, exc_info=True)
    if later is not None:
        recs.append(RunRecord.for_job(later, "aggregates", normalize_uri(later.args.lake)))
    try:
        run_log.start_runs(parent.spark, normalize_uri(parent.args.lake), recs)
    except Exception as exc:  # noqa: BLE001 - each ingest then records its own start
        log.warning("could not record the ingests' start rows together (%s); each records its own", exc)


def run_ingests(
    parent: JobContext, meanwhile: Callable[[], None] | None = None, later: JobContext | None = None
) -> list[JobOutcome]:
    """Run every ingest whose source was given, in threads, or one after another (``--no-parallel``).

    ``meanwhile``: what runs once the ingests have ended (the aggregates). With the ingests in
    threads it runs while their deferred rows are written (``_flush``): it reads their data, not
    those rows. Not run when making the shared tables failed (that error is raised once the rows
    are written). ``later``: the context ``meanwhile``'s job runs in (the aggregates'): with the
    ingests in threads its start row is written with theirs, and its watermark read while they run.
    """
    todo = [(job, getattr(parent.args, dest)) for job, _, dest in INGESTS if getattr(parent.args, dest, None)]
    if not parent.args.parallel or len(todo) < 2:
        outcomes = [_run_one(_job_context(parent, job, src), _ingest_main(job)) for job, src in todo]
        if meanwhile is not None:
            meanwhile()
        return outcomes
    from pyspark import InheritableThread

    from auditlake import commits, run_log
    from auditlake.ingest import listing

    deferred = run_log.DeferredWrites()
    written = threading.Event()
    contexts = {job: _job_context(parent, job, src) for job, src in todo}
    marks = listing.HighWaterMarks(parent.spark, [_ingest_source(job).name for job in contexts])
    for ctx in contexts.values():
        ctx.deferred = deferred
        ctx.start_rows_written = written
        ctx.ledger_marks = marks
    results: dict[str, JobOutcome] = {}

    def work(job: str) -> None:
        results[job] = _run_one(contexts[job], _ingest_main(job))

    threads = [InheritableThread(target=work, args=(job,), name=job) for job, _ in todo]
    for t in threads:
        t.start()
    # While the ingests list (reads only), the shared tables are made and their start rows written;
    # each ingest waits for them before its first write (``runner._start_and_list``). Should making
    # the tables fail, the ingests go on (each makes what it writes to), what they did is recorded,
    # and the error is raised once they have ended.
    error: BaseException | None = None
    try:
        # The pipeline's own commits (the shared tables, the ingests' start rows) name its run.
        commits.tag_commits(parent.spark, parent.run_id, parent.job)
        _prepare_shared_tables(parent)
        _start_ahead(parent, contexts, later)
    except BaseException as exc:  # noqa: BLE001 - raised once the ingests have ended
        error = exc
    written.set()
    if error is None and later is not None:
        _read_watermark_ahead(later)
    for t in threads:
        t.join()
    # Their rows are written in a thread of their own (the pipeline's session, its commit tag), so
    # that the aggregates' planning and building overlap those commits.
    flush_errors: list[BaseException] = []

    def flush() -> None:
        try:
            _flush(parent, deferred, results)
        except BaseException as exc:  # noqa: BLE001 - raised in the pipeline's thread after the join
            flush_errors.append(exc)

    flusher = InheritableThread(target=flush, name="flush")
    flusher.start()
    try:
        if error is None and meanwhile is not None:
            meanwhile()
    finally:
        flusher.join()
    if error is not None:
        raise error
    if flush_errors:
        raise flush_errors[0]
    return [results[job] for job, _ in todo]


def _read_watermark_ahead(ctx: JobContext) -> None:
    """The aggregates' watermark (``aggregate_plan.last_versions``), read while the ingests run.

    It comes from the job's own past rows in ``job_runs``, which the ingests do not write, so it is
    the same read now as after them; a window run (``--since/--until``) needs none. Best effort:
    should it fail, the aggregates job reads it itself.
    """
    from auditlake import aggregate_plan
    from auditlake import lake as lake_mod
    from auditlake.aggregate_job import window_days
    from auditlake.ingest.objects import normalize_uri

    if window_days(ctx.args.since, ctx.args.until):
        return
    try:
        job_runs = lake_mod.read_table(ctx.spark, normalize_uri(ctx.args.lake), "job_runs")
        ctx.aggregate_watermark = aggregate_plan.last_versions(job_runs, ctx.job)
    except Exception as exc:  # noqa: BLE001 - the aggregates job reads its own
        log.warning("could not read the aggregates' watermark ahead (%s); the job reads it itself", exc)


def _flush(parent: JobContext, deferred: Any, results: dict[str, JobOutcome]) -> None:
    """Write the ingests' deferred rows (``run_log.DeferredWrites``) in the parent's session.

    Should that fail, the runs it would have ended are failed runs: each records its failure on
    its own (best effort) and the pipeline exits with the error's code.
    """
    from auditlake.ingest.objects import normalize_uri
    from auditlake.runs import record_failed_run

    lake = normalize_uri(parent.args.lake)
    try:
        deferred.flush(parent.spark, lake)
    except Exception as exc:  # noqa: BLE001 - reported as the failure of the runs it would have ended
        for rec in deferred.pending_ends():
            record_failed_run(parent.spark, lake, rec, exc)
            outcome = results.get(rec.job)
            if outcome is not None and not outcome.exit_code:
                outcome.exit_code = _exit_code(exc)
                outcome.error = f"could not record the end of the run: {type(exc).__name__}: {exc}"[:400]
                log.error("%s (run %s) failed: %s", rec.job, rec.run_id, outcome.error)


def run_pipeline(ctx: JobContext) -> list[JobOutcome]:
    """Job entry: the ingests of the given sources, then the aggregates; raise if any job failed."""
    if ctx.args.source:
        raise UsageError(
            f"{ctx.job}: name each source with " + ", ".join(o for _, o, _ in INGESTS) + ", not --source"
        )
    if not any(getattr(ctx.args, dest, None) for _, _, dest in INGESTS) and ctx.args.no_aggregates:
        raise UsageError(f"{ctx.job}: nothing to run: no source given and --no-aggregates")
    later: list[JobOutcome] = []
    agg_ctx: JobContext | None = None
    if not ctx.args.no_aggregates:
        from auditlake.aggregate_job import JOB_NAME as AGG_JOB

        agg_ctx = _job_context(ctx, AGG_JOB, None)

    def aggregates() -> None:
        from auditlake.aggregate_job import build_daily_aggregates

        assert agg_ctx is not None
        agg_ctx.started_at = dt.datetime.now(dt.UTC)
        later.append(_run_one(agg_ctx, build_daily_aggregates))

    outcomes = run_ingests(ctx, None if agg_ctx is None else aggregates, agg_ctx)
    outcomes += later
    if getattr(ctx.args, "detect", False):
        from auditlake.detect import JOB_NAME as DETECT_JOB
        from auditlake.detect import detect

        outcomes.append(_run_one(_job_context(ctx, DETECT_JOB, None), detect))
    from auditlake.runs import summary_log

    summary_log.info(
        "pipeline %s: %s",
        ctx.run_id,
        ", ".join(
            f"{o.job}={'ok' if o.exit_code == 0 else f'exit {o.exit_code}'} ({o.seconds:.1f}s, run {o.run_id})"
            for o in outcomes
        ),
    )
    failed = [o for o in outcomes if o.exit_code]
    if failed:
        raise PipelineError(
            "; ".join(f"{o.job} failed (exit {o.exit_code}): {o.error}" for o in failed),
            max(o.exit_code for o in failed),
        )
    return outcomes
