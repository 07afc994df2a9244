"""Run the detection pack (detections/*.yaml) over the window and merge the findings into <lake>/findings."""

import sys
from pathlib import Path

try:
    import auditlake  # noqa: F401
except ImportError:  # running from a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from auditlake.cli import run_job
from auditlake.detect import JOB_NAME, detect

if __name__ == "__main__":
    raise SystemExit(run_job(JOB_NAME, detect, needs_source=False))
