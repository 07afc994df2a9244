"""Fault tooling for the lake: kill a job at a Delta commit, compare every table with a clean run.

``python -m lakechaos --out build/chaos`` runs the kill matrix (``make chaos``); the helpers here
are shared with the tests (one kill point in ``make test``).

A kill point is "the k-th Delta commit the job makes": the job runs as a subprocess in its own
process group, a watcher polls every table's ``_delta_log`` for new commit files, and the whole
group gets SIGKILL as soon as the k-th one appears: the commit is durable, whatever the job meant
to do after it is not.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools import PYTHON, REPO, job_env

JOBS = {
    "ingest_cloudtrail": ("cloudtrail", "jobs/ingest_cloudtrail.py"),
    "ingest_s3_access": ("s3access", "jobs/ingest_s3_access.py"),
    "ingest_crawler_logs": ("crawler", "jobs/ingest_crawler_logs.py"),
    "build_daily_aggregates": (None, "jobs/build_daily_aggregates.py"),
}

# Columns that differ between two correct runs (when and by which run a row was written).
VOLATILE = {
    "ingest_ledger": {"run_id", "processed_at"},
    "quarantine": {"run_id", "quarantined_at"},
    "crawler_runs": {"updated_at"},
}
# Tables about runs, not data: checked for duplicate keys and run states, not compared.
RUN_TABLES = ("job_runs", "dq_results")

_COMMIT = re.compile(r"^(\d{20})\.json$")


def job_command(job: str, raw: Path | None, lake: Path, *extra: str) -> list[str]:
    """The command line of one job on the local lake (sources under ``raw/<source dir>``)."""
    source_dir, script = JOBS[job]
    cmd = [PYTHON, str(REPO / script), "--lake", str(lake), "--conf", "spark.master=local[1]", *extra]
    if source_dir is not None and raw is not None:
        cmd += ["--source", str(raw / source_dir)]
    return cmd


def job_main(job: str):
    """The function a job script hands to ``run_job`` (to run a job inside this process)."""
    from auditlake.aggregate_job import build_daily_aggregates
    from auditlake.ingest.runner import run_ingest

    if job == "build_daily_aggregates":
        return build_daily_aggregates
    if job == "ingest_cloudtrail":
        from auditlake.sources.cloudtrail import CloudTrailSource as source
    elif job == "ingest_s3_access":
        from auditlake.sources.s3_access import S3AccessSource as source
    else:
        from auditlake.sources.crawler_logs import CrawlerLogsSource as source
    return lambda ctx: run_ingest(ctx, source())


def run_in_process(spark, job: str, raw: Path, lake: Path, *extra: str) -> int:
    """Run one job in this process on ``spark`` (the reruns after a kill: no new JVM each time)."""
    from auditlake.cli import run_job as cli_run_job

    argv = job_command(job, raw, lake, *extra)[2:]
    return cli_run_job(
        job,
        job_main(job),
        argv=argv,
        needs_source=job != "build_daily_aggregates",
        session_factory=lambda cfg, name: spark,
    )


def commit_files(lake: Path) -> set[str]:
    """Every Delta commit file under the lake, as ``table/version``."""
    found: set[str] = set()
    if not lake.is_dir():
        return found
    for table in lake.iterdir():
        log_dir = table / "_delta_log"
        if log_dir.is_dir():
            found.update(f"{table.name}/{m.group(1)}" for n in os.listdir(log_dir) if (m := _COMMIT.match(n)))
    return found


def chronological(lake: Path, commits: set[str]) -> list[str]:
    """Commits (``table/version``) in the order they were written."""

    def written(commit: str) -> tuple[int, str]:
        table, version = commit.split("/")
        return (os.stat(lake / table / "_delta_log" / f"{version}.json").st_mtime_ns, commit)

    return sorted(commits, key=written)


@dataclass
class Outcome:
    """How a job run ended: exit code (None when killed), the commits it made, seconds."""

    code: int | None
    commits: list[str]
    seconds: float
    stderr: str = ""


def run_job(
    cmd: list[str], lake: Path, *, kill_at: int | str | None = None, timeout: float = 900, poll: float = 0.02
) -> Outcome:
    """Run a job; with ``kill_at=k`` SIGKILL its process group once its k-th commit is on disk.

    ``kill_at`` may also name one commit, ``table/version`` (version as 20 digits or a number).
    """
    if isinstance(kill_at, str):
        table, _, version = kill_at.partition("/")
        kill_at = f"{table}/{int(version):020d}"
    before = commit_files(lake)
    seen: list[str] = []
    t0 = time.monotonic()
    # stderr to a file, not a pipe: while the loop below watches the commits nobody reads the
    # job's log, and a full 64 KiB pipe would stop the job before its k-th commit.
    err_file = tempfile.TemporaryFile(mode="w+", errors="replace")
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env=job_env(),
        stdout=subprocess.DEVNULL,
        stderr=err_file,
        start_new_session=True,
    )

    def stderr_text() -> str:
        err_file.seek(0)
        return err_file.read()

    try:
        if kill_at is None:
            proc.wait(timeout=timeout)
            seen = sorted(commit_files(lake) - before)
            return Outcome(proc.returncode, seen, time.monotonic() - t0, stderr_text())
        while proc.poll() is None:
            new = commit_files(lake) - before - set(seen)
            seen += sorted(new)
            if (len(seen) >= kill_at) if isinstance(kill_at, int) else (kill_at in seen):
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return Outcome(None, seen, time.monotonic() - t0)
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(f"{cmd[1]} ran longer than {timeout}s")
            time.sleep(poll)
        err = stderr_text()
        seen += sorted(commit_files(lake) - before - set(seen))
        return Outcome(proc.returncode, seen, time.monotonic() - t0, err)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        err_file.close()


def snapshot(spark, lake: str) -> dict[str, Counter]:
    """Every table of the lake as a multiset of rows (volatile columns left out)."""
    from auditlake import lake as lake_mod
    from auditlake.tables import list_contracts

    out: dict[str, Counter] = {}
    for table in list_contracts():
        if table in RUN_TABLES:
            continue
        df = lake_mod.read_table(spark, lake, table)
        cols = [c for c in df.columns if c not in VOLATILE.get(table, set())]
        out[table] = Counter(tuple(_hashable(v) for v in r) for r in df.select(*cols).collect())
    return out


def _hashable(v: Any) -> Any:
    if isinstance(v, dict):
        return tuple(sorted((k, _hashable(x)) for k, x in v.items()))
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    if hasattr(v, "asDict"):
        return tuple(_hashable(x) for x in v)
    return v


def compare(clean: dict[str, Counter], other: dict[str, Counter]) -> dict[str, dict[str, int]]:
    """Per table: rows the clean run has and the other lacks (lost), and extra copies (duplicated/extra)."""
    out = {}
    for table in sorted(set(clean) | set(other)):
        a, b = clean.get(table, Counter()), other.get(table, Counter())
        out[table] = {"rows": sum(a.values()), "lost": sum((a - b).values()), "extra": sum((b - a).values())}
    return out


def duplicate_keys(spark, lake: str) -> dict[str, int]:
    """Per table with a natural key: how many keys occur more than once (must be 0 everywhere)."""
    import pyspark.sql.functions as F

    from auditlake import lake as lake_mod
    from auditlake.tables import list_contracts, load_contract

    out = {}
    for table in list_contracts():
        contract = load_contract(table)
        if not contract.keys:
            continue
        df = lake_mod.read_table(spark, lake, table)
        out[table] = df.groupBy(*contract.keys).count().where(F.col("count") > 1).count()
    return out


def run_states(spark, lake: str) -> Counter:
    """How many job_runs rows are in each status."""
    from auditlake import lake as lake_mod

    return Counter(r[0] for r in lake_mod.read_table(spark, lake, "job_runs").select("status").collect())
