"""Ingest CloudTrail log files into cloudtrail_events and cloudtrail_insights.

python jobs/ingest_cloudtrail.py --source s3://bucket/AWSLogs/ --lake s3://lake/ [--since D --until D]
"""

import sys
from pathlib import Path

# From a checkout, use the checkout's own package (also when another copy is installed);
# elsewhere (dist/, Glue, EMR) the installed package or the --py-files zip.
_CHECKOUT_LIB = Path(__file__).resolve().parents[1] / "lib"
if (_CHECKOUT_LIB / "auditlake" / "__init__.py").is_file():
    sys.path.insert(0, str(_CHECKOUT_LIB))

from auditlake.cli import run_job
from auditlake.ingest.runner import run_ingest
from auditlake.sources.cloudtrail import CloudTrailSource

if __name__ == "__main__":
    raise SystemExit(run_job("ingest_cloudtrail", lambda ctx: run_ingest(ctx, CloudTrailSource())))
