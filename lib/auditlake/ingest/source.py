"""What a log source is to the ingest runner: the ``Source`` protocol and the ``ParsedBatch`` it returns.

A source module (``auditlake.sources.<name>``) imports this and nothing above it, so importing a
parser does not import the runner, the quality gate or the CLI.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pyspark.sql import DataFrame, SparkSession

from auditlake.ingest.objects import SourceObject


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
    # For a parser whose table rows carry in ``ROW_INDEX`` a row's position in the read rather than
    # its record's index in its object (S3 access lines are numbered only after the read): rows ->
    # the same rows with the record's index in ``ROW_INDEX``, applied to the rows a row-level
    # check sends to the quarantine, never to the whole batch.
    number_rows: Callable[[DataFrame], DataFrame] | None = None


class Source(Protocol):
    """A log source: how to recognise its objects, parse them, and finish after the commit.

    Optional, read by the bounded listing (``auditlake.ingest.listing``) when present:
    ``prune_folder(uri) -> bool`` for folders that never hold the source's objects, and
    ``task_folder(name) -> bool`` for export-task folders a completed run need not list again.
    """

    name: str  # e.g. "cloudtrail"; the `source` value in ledger, quarantine, job_runs
    tables: tuple[str, ...]

    def classify(self, obj: SourceObject) -> str | None:
        """None for an object to parse; otherwise the reason it is skipped (counted)."""

    def object_date(self, obj: SourceObject) -> dt.date | None:
        """Delivery date from the key, for --since/--until listing bounds; None if the key has none."""

    def parse(
        self, spark: SparkSession, objects: list[SourceObject], *, run_id: str, cfg: dict[str, Any]
    ) -> ParsedBatch:
        """Read and parse the objects (one pass, explicit schema) into table rows and quarantine rows."""

    def after_commit(
        self,
        spark: SparkSession,
        lake: str,
        deduped_tables: dict[str, DataFrame],
        *,
        run_id: str,
        cfg: dict[str, Any],
    ) -> dict[str, int]:
        """Derive further tables from the committed batch; rows upserted per table ({} when none).

        Runs after the batch's merges and before the ledger, so a crash here makes the rerun read
        the objects again and repeat it: it must be idempotent.
        """
