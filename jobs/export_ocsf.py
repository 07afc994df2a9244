"""Export CloudTrail events as OCSF 1.1.0 (API Activity, Authentication) for Security Lake custom sources."""

import sys
from pathlib import Path

try:
    import auditlake  # noqa: F401
except ImportError:  # running from a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from auditlake.cli import run_job
from auditlake.ocsf_job import JOB_NAME, add_arguments, export_ocsf

if __name__ == "__main__":
    raise SystemExit(run_job(JOB_NAME, export_ocsf, add_arguments=add_arguments, needs_source=False))
