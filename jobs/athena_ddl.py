"""Generate the Athena DDL for every auditlake table; optionally register the tables in Glue.

python jobs/athena_ddl.py --lake s3://bucket/lake --database auditlake [--out ddl.sql] [--register-glue]
"""

import sys
from pathlib import Path

# From a checkout, use the checkout's own package (also when another copy is installed);
# elsewhere (dist/, Glue, EMR) the installed package or the --py-files zip.
_CHECKOUT_LIB = Path(__file__).resolve().parents[1] / "lib"
if (_CHECKOUT_LIB / "auditlake" / "__init__.py").is_file():
    sys.path.insert(0, str(_CHECKOUT_LIB))

from auditlake.athena.job import add_arguments, run
from auditlake.cli import run_job

if __name__ == "__main__":
    raise SystemExit(
        run_job(
            "athena_ddl",
            run,
            add_arguments=add_arguments,
            needs_source=False,
            session_factory=lambda cfg, app: None,
        )
    )
