"""Listing bounded by the run's window, and ledger lookups for that window only.

An hourly run must cost the same in its first week and its third year. Two things grow with a
bucket's history: the listing of the source prefix and the ledger of processed objects. Here:

- Keys that carry their delivery date in folders (CloudTrail ``.../<region>/YYYY/MM/DD/``, S3 access
  logs' partitioned layout ``.../<bucket>/YYYY/MM/DD/``, Firehose ``YYYY/MM/DD/HH/``) are walked
  one folder level at a time, and at the date levels only the years, months and days of the
  window are entered. A folder counts as a date root when every sub-folder of it is a year
  (four digits); below a day folder everything is listed recursively (Firehose hours).
- Export-task folders (``<prefix>/<task-id>/...``) are listed, and tasks the ledger shows as
  complete are not entered.
- Without ``--since``, the window starts at the ledger's high-water mark (the newest object date
  it holds for the source) minus the slack; a lake without one lists everything once.
- The ledger is read only through filters Delta can prune (the source partition and the window's
  ``object_date`` range) and a semi-join with the listed objects: the driver receives at most one
  row per listed object, never the whole ledger.

- Objects whose names carry the date in one flat folder (S3 access logs' simple layout,
  ``<TargetPrefix>YYYY-MM-DD-hh-mm-ss-<unique>``) are listed one day at a time by key prefix
  (``<folder>/<TargetPrefix>YYYY-MM-DD-``) through the S3 API, since the Hadoop FileSystem API
  cannot list by a partial name. A source offers ``flat_name_prefix(name)`` to recognise such a
  name; a folder whose first entry is one is treated as flat (the first page of its listing is the
  only request spent on finding out). On a local disk the folder is listed whole: there a listing
  costs no requests.

A run without a window (first load) keeps the single recursive listing: for S3 that is the
fewest requests when everything is wanted.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyspark.sql.functions as F

from auditlake import commits, hadoop_fs
from auditlake import lake as lake_mod
from auditlake.errors import SourceError
from auditlake.ingest.objects import (
    SourceObject,
    _from_ms,
    _list_local,
    is_local,
    list_objects,
    normalize_uri,
)

log = logging.getLogger(__name__)

_YEAR = re.compile(r"^(19|20|21)\d\d$")
_MONTH_DAY = re.compile(r"^\d{1,2}$")
# How long after an export task's newest object a run must have processed it before the task
# folder counts as complete (CloudWatch Logs export tasks finish writing within minutes).
DEFAULT_TASK_SETTLE_MINUTES = 60


@dataclass(frozen=True)
class Window:
    """Delivery days to list, inclusive; ``None`` ends are open. ``since`` None means list all."""

    since: dt.date | None
    until: dt.date | None
    origin: str  # "arguments", "high_water_mark" or "everything"

    @property
    def bounded(self) -> bool:
        return self.since is not None or self.until is not None


@dataclass
class Listing:
    """What a bounded listing found, and what it cost."""

    objects: list[SourceObject]
    list_calls: int = 0
    skipped_complete_tasks: int = 0
    date_roots: list[str] = field(default_factory=list)
    flat_folders: list[str] = field(default_factory=list)


def resolve_window(
    spark,
    lake: str,
    source: str,
    since: dt.date | None,
    until: dt.date | None,
    slack_days: int,
    *,
    reprocess: bool = False,
    marks: HighWaterMarks | None = None,
) -> Window:
    """The delivery-day window to list.

    Records in a file are never later than its folder's day, so the upper end gets the slack.
    Without ``--since`` (and without ``--until``) the window starts at the ledger's high-water
    mark minus the slack, so late objects of the last days are still seen. ``--reprocess``
    without dates is a backfill of everything. ``marks``: the marks the pipeline's ingests share
    (one read of the ledger for all of them); None reads this source's.
    """
    upper = until + dt.timedelta(days=slack_days) if until else None
    if since or until:
        return Window(since, upper, "arguments")
    if reprocess:
        return Window(None, None, "everything")
    hwm = marks.get(lake, source) if marks is not None else ledger_high_water_mark(spark, lake, source)
    if hwm is None:
        return Window(None, None, "everything")
    return Window(hwm - dt.timedelta(days=slack_days), None, "high_water_mark")


def ledger_high_water_mark(spark, lake: str, source: str) -> dt.date | None:
    """The newest ``object_date`` in the ledger for ``source`` (one aggregate row, pruned to the partition)."""
    return ledger_high_water_marks(spark, lake, [source])[source]


def ledger_high_water_marks(spark, lake: str, sources: list[str]) -> dict[str, dt.date | None]:
    """``ledger_high_water_mark`` of each of ``sources`` in one aggregate over their partitions."""
    uri = lake_mod.table_uri(lake, "ingest_ledger")
    marks: dict[str, dt.date | None] = dict.fromkeys(sources)
    if not sources or not lake_mod.delta_exists(spark, uri):
        return marks
    rows = (
        spark.read.format("delta")
        .load(uri)
        .where(F.col("source").isin(list(sources)))
        .groupBy("source")
        .agg(F.max("object_date"))
        .collect()
    )
    marks.update({r[0]: r[1] for r in rows})
    return marks


class HighWaterMarks:
    """The ledger's high-water marks of a set of sources, read once, by whichever ingest asks first.

    The pipeline's ingests list at the same time, in threads of one session: each read the ledger
    for its own mark, three planned and run queries of the same small table where one does. The
    others wait for the first one's read (a lock); should it fail, each asks again on its own.
    """

    def __init__(self, spark, sources: list[str]):
        self._spark = spark
        self._sources = list(sources)
        self._lock = threading.Lock()
        self._marks: dict[str, dt.date | None] | None = None

    def get(self, lake: str, source: str) -> dt.date | None:
        """``source``'s mark in the ledger of ``lake`` (every ingest of a pipeline has the same)."""
        with self._lock:
            if self._marks is None:
                self._marks = ledger_high_water_marks(self._spark, lake, self._sources)
        if source not in self._marks:
            return ledger_high_water_mark(self._spark, lake, source)
        return self._marks[source]


def ledger_done(
    spark, lake: str, source: str, candidates: list[SourceObject], window: Window
) -> set[tuple[str, int, dt.datetime]]:
    """(uri, size, modified) of the candidates the ledger already holds.

    Reads the source's partition, filtered to the window's ``object_date`` range (plus undated
    objects) so Delta skips files of other days, and semi-joins it with the candidates.
    """
    uri = lake_mod.table_uri(lake, "ingest_ledger")
    if not candidates or not lake_mod.delta_exists(spark, uri):
        return set()
    ledger = spark.read.format("delta").load(uri).where(F.col("source") == source)
    if window.bounded:
        in_range = F.lit(True)
        if window.since:
            in_range = in_range & (F.col("object_date") >= F.lit(window.since))
        if window.until:
            in_range = in_range & (F.col("object_date") <= F.lit(window.until))
        ledger = ledger.where(F.col("object_date").isNull() | in_range)
    wanted = spark.createDataFrame(
        [(o.uri, o.size, o.modified_at) for o in candidates],
        "object_uri string, object_size bigint, object_modified_at timestamp",
    )
    keys = ["object_uri", "object_size", "object_modified_at"]
    rows = ledger.select(*keys).join(wanted, on=keys, how="left_semi").collect()
    return {(r[0], int(r[1]), r[2]) for r in rows}


def complete_task_folders(spark, lake: str, source: str, settle_minutes: int) -> set[str]:
    """Export-task folders (URI of ``<prefix>/<task-id>``) the ledger shows as fully processed.

    A task folder is complete when a run processed objects of it at least ``settle_minutes``
    after its newest object was written: that run saw the finished task. One row per folder
    comes back, never one per object.
    """
    uri = lake_mod.table_uri(lake, "ingest_ledger")
    if not lake_mod.delta_exists(spark, uri):
        return set()
    ledger = (
        spark.read.format("delta")
        .load(uri)
        .where((F.col("source") == source) & F.col("object_date").isNull())
    )
    # <prefix>/<task-id>/<stream>/<file>: drop the last two path segments.
    folder = F.regexp_extract(F.col("object_uri"), r"^(.*)/[^/]+/[^/]+$", 1)
    rows = (
        ledger.groupBy(folder.alias("folder"))
        .agg(F.max("object_modified_at").alias("newest"), F.max("processed_at").alias("processed"))
        .where(F.col("processed") >= F.col("newest") + F.expr(f"INTERVAL {int(settle_minutes)} MINUTES"))
        .select("folder")
        .collect()
    )
    return {r[0] for r in rows if r[0]}


# --------------------------------------------------------------------------- the walk


class _Lister:
    """One-level and recursive listings over local folders or a Hadoop FileSystem; counts calls."""

    def __init__(self, spark, root: str, on_progress: Callable[[int], None]):
        self.spark = spark
        self.root = root
        self.local = is_local(root)
        self.calls = 0
        self.found = 0
        self._on_progress = on_progress
        if not self.local:
            self.fs = hadoop_fs.filesystem(spark, hadoop_fs.hadoop_path(spark, root))

    def _count(self, n: int) -> None:
        self.found += n
        self._on_progress(self.found)

    def kind(self, uri: str) -> str | None:
        """ "dir", "file" or None (missing): one status request."""
        if self.local:
            path = uri[len("file:") :]
            return "dir" if os.path.isdir(path) else "file" if os.path.exists(path) else None
        try:
            status = self.fs.getFileStatus(hadoop_fs.hadoop_path(self.spark, uri))
        except Exception as exc:  # py4j wraps the JVM's FileNotFoundException
            if "FileNotFoundException" in str(exc):
                return None
            raise
        return "dir" if status.isDirectory() else "file"

    def children(
        self, uri: str, flat_name_prefix: Callable[[str], str | None] | None = None
    ) -> tuple[list[SourceObject], list[str], str | None]:
        """Files and sub-folders (URIs) directly under ``uri``: one list request (paged).

        With ``flat_name_prefix`` (remote folders): when the folder's first entry is a file that
        it recognises, the listing stops there and returns ``([], [], <name prefix>)``.
        """
        self.calls += 1
        files: list[SourceObject] = []
        dirs: list[str] = []
        if self.local:
            with os.scandir(uri[len("file:") :]) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=True):
                        dirs.append("file:" + entry.path)
                    elif entry.is_file(follow_symlinks=True):
                        st = entry.stat()
                        files.append(
                            SourceObject("file:" + entry.path, st.st_size, _from_ms(int(st.st_mtime * 1000)))
                        )
        elif (
            flat_name_prefix is None
            and (listed := hadoop_fs.list_status(self.spark, self.fs, hadoop_fs.hadoop_path(self.spark, uri)))
            is not None
        ):
            for is_dir, path, size, ms in listed:
                if is_dir:
                    dirs.append(path)
                else:
                    files.append(SourceObject(path, size, _from_ms(ms)))
        else:
            # Walked here, entry by entry: a flat folder stops at its first file.
            entries = self.fs.listStatusIterator(hadoop_fs.hadoop_path(self.spark, uri))
            while entries.hasNext():
                st = entries.next()
                path = st.getPath().toString()
                if flat_name_prefix is not None and not files and not dirs and not st.isDirectory():
                    prefix = flat_name_prefix(_name(path))
                    if prefix is not None:
                        return [], [], prefix
                if st.isDirectory():
                    dirs.append(path)
                else:
                    files.append(
                        SourceObject(path, int(st.getLen()), _from_ms(int(st.getModificationTime())))
                    )
        self._count(len(files))
        return files, sorted(dirs), None

    def named_days(self, uri: str, name_prefix: str, days: list[dt.date]) -> list[SourceObject]:
        """Objects of the flat folder ``uri`` named ``<name_prefix>YYYY-MM-DD-...`` for ``days``: a
        prefix listing per day (one request per page of up to 1,000 keys)."""
        scheme, _, rest = uri.partition("://")
        bucket, _, folder = rest.partition("/")
        folder = folder.rstrip("/")
        client = _s3_client(self.spark, bucket)
        out: list[SourceObject] = []
        for day in days:
            prefix = f"{folder}/" if folder else ""
            prefix += f"{name_prefix}{day:%Y-%m-%d}-"
            for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix, Delimiter="/"
            ):
                self.calls += 1
                for obj in page.get("Contents", []):
                    modified = obj["LastModified"].astimezone(dt.UTC).replace(tzinfo=None)
                    out.append(SourceObject(f"{scheme}://{bucket}/{obj['Key']}", int(obj["Size"]), modified))
        self._count(len(out))
        return out

    def tree(self, uri: str) -> list[SourceObject]:
        """Every object under the folder ``uri`` (recursive): one flat listing on S3."""
        self.calls += 1
        if self.local:
            out = _list_local(uri[len("file:") :])
        else:
            path = hadoop_fs.hadoop_path(self.spark, uri)
            out = [
                SourceObject(p, size, _from_ms(ms))
                for p, size, ms in hadoop_fs.list_tree(self.spark, self.fs, path)
            ]
        self._count(len(out))
        return out


def window_days(window: Window) -> list[dt.date]:
    """Every delivery day of a bounded window; an open end runs to tomorrow (UTC)."""
    until = window.until or (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1))
    return commits.days_between(window.since or until, until)


def _s3_client(spark, bucket: str):
    """A boto3 S3 client that reaches ``bucket`` the way s3a does: the same endpoint and keys.

    Read from the Hadoop configuration (per-bucket ``fs.s3a.bucket.<bucket>.*`` first); without
    keys there, boto3's own chain (the instance or job role on EMR and Glue).
    """
    import boto3
    from botocore.config import Config

    hconf = spark.sparkContext._jsc.hadoopConfiguration()

    def opt(key: str) -> str | None:
        value = hconf.get(f"fs.s3a.bucket.{bucket}.{key}") or hconf.get(f"fs.s3a.{key}")
        return str(value) if value else None

    endpoint = opt("endpoint")
    if endpoint and "://" not in endpoint:
        endpoint = (
            "https://" if (opt("connection.ssl.enabled") or "true") == "true" else "http://"
        ) + endpoint
    kwargs: dict[str, Any] = {}
    if endpoint:
        kwargs["endpoint_url"] = endpoint
    region = opt("endpoint.region")
    if region:
        kwargs["region_name"] = region
    if opt("access.key") and opt("secret.key"):
        kwargs["aws_access_key_id"] = opt("access.key")
        kwargs["aws_secret_access_key"] = opt("secret.key")
    style = "path" if opt("path.style.access") == "true" else "auto"
    return boto3.client("s3", config=Config(s3={"addressing_style": style}), **kwargs)


def _name(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1]


def _in_range(value: tuple[int, ...], lo: tuple[int, ...] | None, hi: tuple[int, ...] | None) -> bool:
    n = len(value)
    return (lo is None or value >= lo[:n]) and (hi is None or value <= hi[:n])


def list_window(
    spark,
    root_uri: str,
    source: Any,
    window: Window,
    *,
    lake: str | None = None,
    cfg: dict[str, Any] | None = None,
    progress_every: int = 10000,
) -> Listing:
    """List the objects under ``root_uri`` that the window can need, sorted by URI.

    ``source`` may offer ``prune_folder(uri) -> bool`` (folders that never hold its objects,
    e.g. CloudTrail-Digest) and ``task_folder(name) -> bool`` (export-task folders, entered
    only when the ledger does not show them complete).
    """
    root = normalize_uri(root_uri)
    t0 = time.monotonic()
    next_report = [progress_every]

    def progress(found: int) -> None:
        if progress_every and found >= next_report[0]:
            log.info(
                "listing %s: %d objects so far, %d list calls, %.1fs",
                root,
                found,
                lister.calls,
                time.monotonic() - t0,
            )
            while next_report[0] <= found:
                next_report[0] += progress_every

    lister = _Lister(spark, root, progress)
    if not window.bounded:
        return Listing(list_objects(spark, root), 1)
    kind = lister.kind(root)
    if kind is None:
        raise SourceError(f"source not found: {root}")
    if kind == "file":
        return Listing(list_objects(spark, root), 1)
    lo = (window.since.year, window.since.month, window.since.day) if window.since else None
    hi = (window.until.year, window.until.month, window.until.day) if window.until else None
    prune = getattr(source, "prune_folder", None)
    is_task = getattr(source, "task_folder", None)
    settle = int((cfg or {}).get("ingest", {}).get("export_task_settle_minutes", DEFAULT_TASK_SETTLE_MINUTES))
    complete: set[str] | None = None
    listing = Listing([], 0)
    out = listing.objects

    flat = getattr(source, "flat_name_prefix", None) if not lister.local else None

    def walk(uri: str) -> None:
        nonlocal complete
        files, dirs, name_prefix = lister.children(uri, flat)
        if name_prefix is not None:
            listing.flat_folders.append(uri)
            out.extend(lister.named_days(uri, name_prefix, window_days(window)))
            return
        out.extend(files)
        if prune is not None:
            dirs = [d for d in dirs if not prune(d)]
        if dirs and all(_YEAR.match(_name(d)) for d in dirs):
            listing.date_roots.append(uri)
            for year in dirs:
                if _in_range((int(_name(year)),), lo, hi):
                    dates(year, (int(_name(year)),))
            return
        for d in dirs:
            if is_task is not None and lake is not None and is_task(_name(d)):
                if complete is None:
                    complete = complete_task_folders(spark, lake, source.name, settle)
                if d in complete:
                    listing.skipped_complete_tasks += 1
                    continue
                out.extend(lister.tree(d))
                continue
            walk(d)

    def dates(uri: str, prefix: tuple[int, ...]) -> None:
        files, dirs, _ = lister.children(uri)
        out.extend(files)  # files beside date folders carry no folder date: the runner decides
        for d in dirs:
            name = _name(d)
            if not _MONTH_DAY.match(name):
                out.extend(lister.tree(d))  # not a date level: keep everything, as a full listing would
                continue
            value = (*prefix, int(name))
            if not _in_range(value, lo, hi):
                continue
            if len(value) == 3:
                out.extend(lister.tree(d))
            else:
                dates(d, value)

    try:
        walk(root)
    except SourceError:
        raise
    except Exception as exc:  # py4j wraps the JVM's IOException
        java = getattr(exc, "java_exception", None)
        detail = str(java.toString()).splitlines()[0] if java is not None else str(exc).splitlines()[0]
        raise SourceError(f"cannot list {root}: {detail}") from exc
    out.sort(key=lambda o: o.uri)
    listing.list_calls = lister.calls
    log.info(
        "listed %d objects under %s in window %s..%s (%s): %d list calls, %d date roots, "
        "%d flat dated folders, %d complete export tasks not entered, %.1fs",
        len(out),
        root,
        window.since or "-",
        window.until or "-",
        window.origin,
        lister.calls,
        len(listing.date_roots),
        len(listing.flat_folders),
        listing.skipped_complete_tasks,
        time.monotonic() - t0,
    )
    return listing
