"""``JobContext``: what every job function gets from the entrypoint (``auditlake.cli``)."""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import dataclass
from typing import Any

from pyspark.sql import SparkSession


@dataclass
class JobContext:
    """Parsed arguments, config, session and run identity of one job run."""

    job: str
    args: argparse.Namespace
    cfg: dict[str, Any]
    spark: SparkSession
    run_id: str
    started_at: dt.datetime
    # ``run_log.DeferredWrites`` when the pipeline writes this job's ledger and end rows together
    # with those of the ingests beside it (``pipeline.run_ingests``); None: the job writes its own.
    deferred: Any = None
    # A ``threading.Event`` when the pipeline writes this ingest's start row while the ingest lists
    # (``pipeline.run_ingests``): set once that row is written (or could not be); None: the job
    # records its own start before it reads anything.
    start_rows_written: Any = None
    # ``listing.HighWaterMarks`` when the pipeline's ingests share one read of the ledger's
    # high-water marks (``pipeline.run_ingests``); None: the ingest reads its own source's.
    ledger_marks: Any = None
    # The aggregates job's watermark (``aggregate_plan.last_versions``) when the pipeline read it
    # while its ingests ran (``pipeline.run_ingests``); None: the job reads it when it plans.
    aggregate_watermark: dict[str, int] | None = None
