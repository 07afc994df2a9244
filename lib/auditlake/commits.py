"""Delta commits as the record of what happened: run tags, bounded conflict retries, change feeds.

Every commit a job makes carries its run in the commit's ``userMetadata`` (a small JSON object
``{"run_id": ..., "job": ...}``), so the history of a table says which run wrote each version,
also for a run that was killed before it could write its own run record.

Writers are optimistic: two jobs that touch the same partitions of a table at the same time make
one of them fail with one of Delta's concurrent-modification exceptions. Every write in
``auditlake.lake`` is idempotent (insert-only merges on natural keys, run records keyed by run),
so :func:`retry_on_conflict` simply runs it again against the new snapshot, a bounded number of
times.

Downstream jobs decide their work from what the tables committed: :func:`changed_partitions`
reads the ``add``/``remove`` actions of the versions after a given one straight from the
``_delta_log`` and returns the partition values they touched.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

USER_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"

# Delta's optimistic-concurrency failures (io.delta.exceptions / org.apache.spark.sql.delta):
# the transaction wrote nothing, and running it again against the new snapshot is safe.
CONFLICT_NAMES = (
    "ConcurrentAppendException",
    "ConcurrentDeleteReadException",
    "ConcurrentDeleteDeleteException",
    "ConcurrentTransactionException",
    "ConcurrentWriteException",
    "MetadataChangedException",
    "ProtocolChangedException",
    "DeltaConcurrentModificationException",
)

# Every writer of the shared tables (job_runs above all) may collide with each of the others a
# few times while a schedule's jobs start and end together; past this many, something is wrong.
DEFAULT_ATTEMPTS = 20
MAX_DELAY_SECONDS = 5.0


def run_tag(run_id: str, job: str) -> str:
    """The ``userMetadata`` every commit of a run carries."""
    return json.dumps({"run_id": run_id, "job": job}, sort_keys=True, separators=(",", ":"))


def tag_commits(spark, run_id: str, job: str) -> str:
    """Make every Delta commit of this session carry the run's tag; return the tag.

    A session property, not a writer option: MERGE, UPDATE and DELETE through ``DeltaTable``
    take no writer options, and the property covers them all.
    """
    tag = run_tag(run_id, job)
    spark.conf.set(USER_METADATA_CONF, tag)
    return tag


def current_tag(spark) -> str | None:
    try:
        return spark.conf.get(USER_METADATA_CONF)
    except Exception:  # noqa: BLE001 - unset
        return None


def tag_run_id(user_metadata: str | None) -> str | None:
    """The run id of a commit's ``userMetadata`` (None for commits not made by a tagged run)."""
    if not user_metadata:
        return None
    try:
        value = json.loads(user_metadata)
    except ValueError:
        return None
    return value.get("run_id") if isinstance(value, dict) else None


def is_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` is one of Delta's concurrent-modification failures (Python or Py4J)."""
    names = {c.__name__ for c in type(exc).__mro__}
    if names & set(CONFLICT_NAMES):
        return True
    java = getattr(exc, "java_exception", None)
    text = str(java.getClass().getName()) if java is not None else ""
    head = (str(exc) or "")[:400]
    return any(name in text or name in head for name in CONFLICT_NAMES)


def retry_on_conflict(
    action: Callable[[], T], *, what: str, attempts: int = DEFAULT_ATTEMPTS, base_delay: float = 0.2
) -> T:
    """Run ``action``; on a Delta concurrent-modification failure run it again, at most ``attempts`` times.

    ``action`` must be idempotent (it re-reads the table each time). The wait grows with each
    attempt and is jittered, so writers that collided do not collide again in step.
    """
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as exc:
            if not is_conflict(exc) or attempt == attempts:
                raise
            delay = min(MAX_DELAY_SECONDS, base_delay * attempt) * (0.5 + random.random())
            log.info(
                "%s: concurrent commit (%s), attempt %d of %d, retrying in %.1f s",
                what,
                _conflict_name(exc),
                attempt,
                attempts,
                delay,
            )
            time.sleep(delay)
    raise AssertionError("unreachable")


def _conflict_name(exc: BaseException) -> str:
    text = f"{type(exc).__name__} {str(exc)[:400]}"
    return next((n for n in CONFLICT_NAMES if n in text), type(exc).__name__)


# --- what the tables committed -------------------------------------------------------------


@dataclass
class TableChanges:
    """The versions of one table after a watermark and the partitions they touched."""

    table: str
    latest: int  # -1: the table does not exist
    after: int  # the watermark the changes are counted from
    partitions: set[str] = field(default_factory=set)
    complete: bool = True  # False: some commits are gone from the log
    run_ids: set[str] = field(default_factory=set)

    @property
    def changed(self) -> bool:
        return self.latest > self.after


def latest_version(spark, uri: str) -> int:
    """The table's newest committed version; -1 when there is no Delta table at ``uri``.

    Asked of Delta's log itself (``DeltaLog.update``: it lists the log from the last checkpoint,
    as any read of the table does, and keeps the snapshot for the read that usually follows), not
    of ``DeltaTable.history``, which is a query and a Spark job over the commits (0.23-0.3 s warm,
    2.5 s on a cold JVM, against 5 ms). ``update``'s arguments are its own defaults, asked of it.
    """
    log_class = spark.sparkContext._jvm.org.apache.spark.sql.delta.DeltaLog
    delta_log = log_class.forTable(spark._jsparkSession, uri)
    defaults = [getattr(delta_log, f"update$default${i}")() for i in (1, 2, 3)]
    return int(delta_log.update(*defaults).version())


def _commit_files(spark, uri: str, after: int, latest: int) -> tuple[list[str], bool]:
    """Paths of the commit JSONs ``after+1 .. latest``; False when one is gone (log cleanup)."""
    from auditlake import hadoop_fs

    wanted = {f"{v:020d}.json" for v in range(after + 1, latest + 1)}
    present = {
        path.rsplit("/", 1)[-1]: path
        for path, _, _ in hadoop_fs.list_files(spark, f"{uri}/_delta_log")
        if path.rsplit("/", 1)[-1] in wanted and path.rstrip("/").rsplit("/", 2)[-2] == "_delta_log"
    }
    return [present[n] for n in sorted(present)], len(present) == len(wanted)


def changed_partitions(
    spark, uri: str, table: str, partition_column: str | None, after: int, latest: int | None = None
) -> TableChanges:
    """Partition values that the commits after version ``after`` (up to ``latest``) added or removed files in.

    Read from the commit files themselves, so a commit counts whatever run made it and whether
    or not that run lived to record itself. When commits are missing from the log (older than
    the log retention), ``complete`` is False and the caller must treat every partition as changed.
    """
    return changed_partitions_of(spark, [ChangeRequest(uri, table, partition_column, after, latest)])[table]


@dataclass
class ChangeRequest:
    """One table's commits to read for :func:`changed_partitions_of` (``latest`` None: the newest)."""

    uri: str
    table: str
    partition_column: str | None
    after: int
    latest: int | None = None


def changed_partitions_of(spark, requests: list[ChangeRequest]) -> dict[str, TableChanges]:
    """:func:`changed_partitions` of several tables, their commit files read in one query."""
    import pyspark.sql.functions as F

    out: dict[str, TableChanges] = {}
    reads = []
    schema = (
        "add struct<partitionValues: map<string,string>>, "
        "remove struct<partitionValues: map<string,string>>, "
        "commitInfo struct<userMetadata: string>"
    )
    for req in requests:
        latest = latest_version(spark, req.uri) if req.latest is None else req.latest
        changes = out[req.table] = TableChanges(table=req.table, latest=latest, after=req.after)
        if latest <= req.after:
            continue
        paths, changes.complete = _commit_files(spark, req.uri, req.after, latest)
        if paths:
            actions = spark.read.schema(schema).json(paths)
            reads.append(
                actions.select(
                    F.lit(req.table).alias("table"),
                    F.coalesce(F.col("add.partitionValues"), F.col("remove.partitionValues")).alias("pv"),
                    F.col("commitInfo.userMetadata").alias("meta"),
                ).where(F.col("pv").isNotNull() | F.col("meta").isNotNull())
            )
    if not reads:
        return out
    columns = {req.table: req.partition_column for req in requests}
    for table, pv, meta in functools.reduce(lambda a, b: a.unionByName(b), reads).collect():
        changes, column = out[table], columns[table]
        if pv is not None and column and pv.get(column) is not None:
            changes.partitions.add(pv[column])
        run_id = tag_run_id(meta)
        if run_id:
            changes.run_ids.add(run_id)
    return out


def days_between(since: dt.date, until: dt.date) -> list[dt.date]:
    """Every day of [since, until], in order (empty when until is before since)."""
    return [since + dt.timedelta(days=i) for i in range((until - since).days + 1)]


def as_dates(values: set[str]) -> set[dt.date]:
    """Partition values of a date column (as written in the log) as dates; others are ignored."""
    out: set[dt.date] = set()
    for v in values:
        try:
            out.add(dt.date.fromisoformat(v))
        except ValueError:
            log.warning("ignoring a partition value that is not a date in a date-partitioned table")
    return out
