"""Rebuild the daily aggregates of the days the ingest runs touched (or --since/--until)."""

import sys
from pathlib import Path

# From a checkout, use the checkout's own package (also when another copy is installed);
# elsewhere (dist/, Glue, EMR) the installed package or the --py-files zip.
_CHECKOUT_LIB = Path(__file__).resolve().parents[1] / "lib"
if (_CHECKOUT_LIB / "auditlake" / "__init__.py").is_file():
    sys.path.insert(0, str(_CHECKOUT_LIB))

from auditlake.aggregate_job import JOB_NAME, build_daily_aggregates
from auditlake.cli import run_job

if __name__ == "__main__":
    raise SystemExit(run_job(JOB_NAME, build_daily_aggregates, needs_source=False))
