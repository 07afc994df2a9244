"""The nightly pipeline in one SparkSession: ingest CloudTrail, S3 access and crawler logs, then the aggregates.

    python jobs/run_pipeline.py --lake s3://lake/ [--cloudtrail-source URI] [--s3-access-source URI]
        [--crawler-source URI] [--no-parallel] [--no-aggregates] [--detect] [--since D --until D]

``--detect`` runs the detection pack last, in the same session (one JVM instead of two).

Each job writes its own job_runs row with its own run id, exactly as when run alone; a failed
ingest does not stop the others, the aggregates still run, and the exit code is the worst one.
"""

import sys
from pathlib import Path

try:
    import auditlake  # noqa: F401
except ImportError:  # running from a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from auditlake.cli import run_job  # noqa: E402
from auditlake.pipeline import JOB_NAME, add_arguments, run_pipeline  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(run_job(JOB_NAME, run_pipeline, add_arguments=add_arguments, needs_source=False))
