"""Rebuild the daily aggregates of the days the ingest runs touched (or --since/--until)."""

import sys
from pathlib import Path

try:
    import auditlake  # noqa: F401
except ImportError:  # running from a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from auditlake.aggregate_job import JOB_NAME, build_daily_aggregates
from auditlake.cli import run_job

if __name__ == "__main__":
    raise SystemExit(run_job(JOB_NAME, build_daily_aggregates, needs_source=False))
