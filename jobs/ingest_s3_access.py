"""Ingest S3 server access logs into the s3_access_logs table (exactly-once, quarantine, run record)."""

import sys
from pathlib import Path

try:
    import auditlake  # noqa: F401
except ImportError:  # running from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from auditlake.cli import run_job
from auditlake.ingest.runner import run_ingest
from auditlake.sources.s3_access import S3AccessSource

if __name__ == "__main__":
    raise SystemExit(run_job("ingest_s3_access", lambda ctx: run_ingest(ctx, S3AccessSource())))
