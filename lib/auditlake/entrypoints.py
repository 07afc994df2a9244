"""The ``auditlake`` console command: ``auditlake <job> [job arguments]``.

The installed wheel's way to run a job without a checkout; the ``jobs/*.py`` scripts stay
the way to run one under ``spark-submit`` and as a Glue job script, and take the same
arguments.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


def _ingest(source_class: str) -> Callable[[list[str]], int]:
    def run(argv: list[str]) -> int:
        from importlib import import_module

        from auditlake.cli import run_job
        from auditlake.ingest.runner import run_ingest

        module, _, name = source_class.rpartition(".")
        source = getattr(import_module(module), name)
        job = JOB_OF_SOURCE[source_class]
        return run_job(job, lambda ctx: run_ingest(ctx, source()), argv=argv)

    return run


def _aggregates(argv: list[str]) -> int:
    from auditlake.aggregate_job import JOB_NAME, build_daily_aggregates
    from auditlake.cli import run_job

    return run_job(JOB_NAME, build_daily_aggregates, argv=argv, needs_source=False)


def _athena_ddl(argv: list[str]) -> int:
    from auditlake.athena.job import add_arguments, run
    from auditlake.cli import run_job

    return run_job("athena_ddl", run, argv=argv, add_arguments=add_arguments, needs_source=False,
                   session_factory=lambda cfg, app: None)


JOB_OF_SOURCE = {
    "auditlake.sources.cloudtrail.CloudTrailSource": "ingest_cloudtrail",
    "auditlake.sources.s3_access.S3AccessSource": "ingest_s3_access",
    "auditlake.sources.crawler_logs.CrawlerLogsSource": "ingest_crawler_logs",
}

# One entry per jobs/<name>.py script (a test keeps the two in step).
JOBS: dict[str, Callable[[list[str]], int]] = {
    **{job: _ingest(source) for source, job in JOB_OF_SOURCE.items()},
    "build_daily_aggregates": _aggregates,
    "athena_ddl": _athena_ddl,
}

_USAGE = "usage: auditlake <job> [--source URI] --lake URI [--env local|emr|glue] ...\njobs: " + ", ".join(JOBS)


def main(argv: list[str] | None = None) -> int:
    """Run the job named by the first argument with the remaining arguments."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_USAGE)
        return 0 if argv else 2
    job, rest = argv[0].replace("-", "_"), argv[1:]
    if job not in JOBS:
        print(f"auditlake: unknown job {argv[0]!r}\n{_USAGE}", file=sys.stderr)
        return 2
    return JOBS[job](rest)


if __name__ == "__main__":
    raise SystemExit(main())
