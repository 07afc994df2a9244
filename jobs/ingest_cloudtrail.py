"""Ingest CloudTrail log files into cloudtrail_events and cloudtrail_insights.

    python jobs/ingest_cloudtrail.py --source s3://bucket/AWSLogs/ --lake s3://lake/ [--since D --until D]
"""

import sys
from pathlib import Path

try:
    import auditlake  # noqa: F401
except ImportError:  # running from a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from auditlake.cli import run_job
from auditlake.ingest.runner import run_ingest
from auditlake.sources.cloudtrail import CloudTrailSource

if __name__ == "__main__":
    raise SystemExit(run_job("ingest_cloudtrail", lambda ctx: run_ingest(ctx, CloudTrailSource())))
