"""Which days the scheduled aggregates run rebuilds: decided by the input tables' commit history.

The aggregates job keeps, in its own ``job_runs`` row (``table_versions``), the version of every
input table it read. The next scheduled run reads the commits after those versions from each
table's ``_delta_log``, takes the partitions (days) their ``add``/``remove`` actions touched, and
rebuilds those days, reading every input pinned at the version it recorded. What counts is what
the tables committed, whoever committed it: a killed ingest whose rows landed, a concurrent run,
a late file, a manual fix. Nothing depends on an ingest run having lived to write its record.

A run with ``--since/--until`` records no versions: a window rebuild must not move the watermark
of the scheduled run past days outside its window.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import pyspark.sql.functions as F
from pyspark.sql import DataFrame

from auditlake import commits
from auditlake import lake as lake_mod
from auditlake.tables import load_contract

log = logging.getLogger(__name__)


@dataclass
class CommitPlan:
    """Days to rebuild per input table, the versions read and the input frames pinned to them."""

    days: dict[str, set[dt.date]] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    inputs: dict[str, DataFrame] = field(default_factory=dict)
    run_ids: set[str] = field(default_factory=set)
    full_rebuilds: list[str] = field(default_factory=list)


def last_versions(job_runs: DataFrame, job: str) -> dict[str, int]:
    """The input table versions the job's last succeeded scheduled run read (empty before the first)."""
    own = job_runs.where(
        (F.col("job") == job)
        & (F.col("status") == "succeeded")
        & F.col("table_versions").isNotNull()
        & (F.size("table_versions") > 0)
    )
    row = own.orderBy(F.col("started_at").desc()).select("table_versions").limit(1).collect()
    return {k: int(v) for k, v in (row[0][0] if row else {}).items()}


def plan_from_commits(spark, lake: str, tables: Iterable[str], watermark: dict[str, int]) -> CommitPlan:
    """Days each input table's commits after ``watermark`` touched, with the inputs pinned at their latest version."""
    plan = CommitPlan()
    requests: list[commits.ChangeRequest] = []
    for table in sorted(set(tables)):
        uri = lake_mod.table_uri(lake, table)
        latest = commits.latest_version(spark, uri)
        plan.versions[table] = latest
        if latest < 0:
            plan.days[table] = set()
            continue
        contract = load_contract(table)
        part = contract.partition_by[0] if contract.partition_by else None
        plan.inputs[table] = spark.read.format("delta").option("versionAsOf", latest).load(uri)
        after = watermark.get(table, -1)
        if latest < after:
            # The table was recreated below the version last read: its history restarted.
            log.warning(
                "%s is at version %d, below the %d last read: rebuilding all its days", table, latest, after
            )
            after = -1
        requests.append(commits.ChangeRequest(uri, table, part, after, latest))
    # One query reads every table's new commit files.
    changed = commits.changed_partitions_of(spark, requests)
    for req in requests:
        table, part, changes = req.table, req.partition_column, changed[req.table]
        plan.run_ids |= changes.run_ids
        if not changes.complete and part:
            # Commits older than the log retention are gone: every day the table holds counts.
            plan.full_rebuilds.append(table)
            values = {str(v) for v in lake_mod.partition_values(plan.inputs[table].select(part), part)}
            plan.days[table] = commits.as_dates(values)
        else:
            plan.days[table] = commits.as_dates(changes.partitions)
        log.info(
            "%s: versions %d..%d, %d days changed", table, req.after + 1, req.latest, len(plan.days[table])
        )
    return plan
