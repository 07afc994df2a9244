"""Generate the Athena DDL for every auditlake table; optionally register the tables in Glue.

    python jobs/athena_ddl.py --lake s3://bucket/lake --database auditlake [--out ddl.sql] [--register-glue]
"""

from auditlake.athena.job import add_arguments, run
from auditlake.cli import run_job

if __name__ == "__main__":
    raise SystemExit(run_job("athena_ddl", run, add_arguments=add_arguments, needs_source=False,
                             session_factory=lambda cfg, app: None))
