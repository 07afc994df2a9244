"""Maintain the lake's Delta tables: retention, compaction of recent partitions, VACUUM.

    python jobs/maintain_tables.py --lake s3://lake/ [--tables quarantine,dq_results] [--env emr]

Schedule it daily, away from the top of the hour (see docs/operations.md).
"""

import sys
from pathlib import Path

try:
    import auditlake  # noqa: F401
except ImportError:  # running from a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from auditlake.cli import run_job  # noqa: E402
from auditlake.maintenance import JOB_NAME, maintain_tables  # noqa: E402


def _arguments(parser):
    parser.add_argument("--tables", help="comma-separated tables to maintain (default: every Delta table)")


if __name__ == "__main__":
    raise SystemExit(run_job(JOB_NAME, maintain_tables, needs_source=False, add_arguments=_arguments))
