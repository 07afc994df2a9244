"""The OCSF export job: CloudTrail events of a window as Security Lake custom-source Parquet.

Writes ``<out>/api_activity/`` (OCSF API Activity, class_uid 6003) and
``<out>/authentication/`` (OCSF Authentication, class_uid 3002), one Security Lake custom source
each (Security Lake takes one OCSF class per custom source), partitioned
``region=<region>/accountId=<account>/eventDay=<YYYYMMDD>/`` with the rows of a partition sorted
by ``time``. A rerun replaces exactly the partitions it writes (dynamic partition overwrite),
so exporting a window twice leaves the same files' contents. Events that no partition can hold
(no valid region or account) or that lack what the class requires go to the lake's
``quarantine`` table (source ``ocsf_export``) with the reason, once per event however often
the window is exported, never silently dropped.
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

import pyspark.sql.functions as F
from pyspark.sql import DataFrame

from auditlake import lake as lake_mod
from auditlake import ocsf
from auditlake.context import JobContext
from auditlake.errors import UsageError
from auditlake.ingest.objects import normalize_uri
from auditlake.ingest.quarantine import WHOLE_OBJECT, to_quarantine

log = logging.getLogger(__name__)

JOB_NAME = "export_ocsf"
QUARANTINE_SOURCE = "ocsf_export"
PARTITIONS = ("region", "accountId", "eventDay")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="root URI of the OCSF output (one folder per class)")


def _events(spark, lake: str, args: argparse.Namespace) -> DataFrame:
    events = lake_mod.read_table(spark, lake, "cloudtrail_events")
    if args.until is not None and args.since is None:
        raise UsageError(f"{JOB_NAME}: --until needs --since")
    if args.since is not None:
        events = events.where(F.col("event_date") >= F.lit(args.since))
    if args.until is not None:
        events = events.where(F.col("event_date") <= F.lit(args.until))
    return events


def write_class(rows: DataFrame, uri: str) -> int:
    """Write one class's placeable rows, replacing the partitions they fall in; returns the row count."""
    placed = ocsf.with_security_lake_partitions(rows).cache()
    try:
        n = placed.count()
        if n:
            (
                placed.repartition(*PARTITIONS)
                .sortWithinPartitions("time")
                .write.mode("overwrite")
                .option("partitionOverwriteMode", "dynamic")
                .partitionBy(*PARTITIONS)
                .parquet(uri)
            )
        return n
    finally:
        placed.unpersist()


def export_ocsf(ctx: JobContext) -> dict[str, Any]:
    """Job entry: export ``cloudtrail_events`` of ``--since/--until`` (all days without) to ``--out``."""
    spark, args = ctx.spark, ctx.args
    lake, out = normalize_uri(args.lake), normalize_uri(args.out)
    started = time.monotonic()
    events = _events(spark, lake, args).cache()
    counts: dict[str, Any] = {}
    try:
        frames = {
            ocsf.API_ACTIVITY: ocsf.to_api_activity(events),
            ocsf.AUTHENTICATION: ocsf.to_authentication(events),
        }
        bad = None
        for name, rows in frames.items():
            counts[name] = write_class(rows, f"{out}/{name}")
            rejected = ocsf.unplaceable(rows).select("_source_object", "_event_id", "_reason")
            bad = rejected if bad is None else bad.unionByName(rejected)
        quarantined = to_quarantine(
            bad,
            source=QUARANTINE_SOURCE,
            source_object="_source_object",
            record_index=WHOLE_OBJECT,
            # The event id, not the record: enough to find the event in cloudtrail_events.
            raw_text=F.concat(F.lit("eventID="), F.coalesce(F.col("_event_id"), F.lit(""))),
            # The event id in the reason keeps one quarantine row (its key) per event across reruns.
            reason=F.concat(
                F.lit("ocsf export: "),
                F.col("_reason"),
                F.lit(" (eventID="),
                F.coalesce(F.col("_event_id"), F.lit("")),
                F.lit(")"),
            ),
            run_id=ctx.run_id,
            max_chars=200,
        ).cache()
        counts["quarantined"] = quarantined.count()
        if counts["quarantined"]:
            counts["quarantine_rows_added"] = lake_mod.merge_new_rows(spark, quarantined, lake, "quarantine")
        quarantined.unpersist()
    finally:
        events.unpersist()
    counts["seconds"] = round(time.monotonic() - started, 1)
    log.info("ocsf export to %s: %s", out, counts)
    print(
        f"run {ctx.run_id} job={JOB_NAME} out={out} OCSF {ocsf.OCSF_VERSION}: "
        f"api_activity={counts[ocsf.API_ACTIVITY]} authentication={counts[ocsf.AUTHENTICATION]} "
        f"quarantined={counts['quarantined']} in {counts['seconds']}s"
    )
    return counts
