"""The one entrypoint shape every job in ``jobs/`` shares.

The same job file runs as ``spark-submit jobs/<job>.py ...`` on EMR, as a Glue job script
(Glue adds ``--JOB_NAME``-style arguments: unknown arguments are tolerated, and when
``awsglue`` is importable the Glue ``Job`` is initialised and committed), and as plain
``python jobs/<job>.py ...`` locally. Failures end in one clear line and a non-zero exit.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
import uuid
from collections.abc import Callable
from typing import Any

from auditlake import config as config_mod
from auditlake.context import JobContext
from auditlake.errors import AuditlakeError, UsageError
from auditlake.redact import error_line, install_log_filter, redact, redact_args

log = logging.getLogger(__name__)

__all__ = ["JobContext", "base_parser", "configure_logging", "parse_date", "run_job"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage wall
        raise UsageError(f"{self.prog}: {message}")


def parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def base_parser(job: str, *, needs_source: bool = True) -> argparse.ArgumentParser:
    parser = _Parser(prog=job, add_help=True, allow_abbrev=False)
    parser.add_argument(
        "--source", required=needs_source, help="URI of the raw logs (s3://, s3a://, local path)"
    )
    parser.add_argument("--lake", required=True, help="root URI; each table is <lake>/<table_name>")
    parser.add_argument("--env", default="local", help="local | emr | glue (selects conf/<env>.yaml)")
    parser.add_argument("--since", type=parse_date, help="first day (UTC) of the window, YYYY-MM-DD")
    parser.add_argument("--until", type=parse_date, help="last day (UTC) of the window, inclusive")
    parser.add_argument(
        "--reprocess", action="store_true", help="re-read objects of the window already in the ledger"
    )
    parser.add_argument("--run-id", help="run identifier (default: generated)")
    parser.add_argument(
        "--conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --conf quality.enabled=false",
    )
    parser.add_argument("--verbose", action="store_true", help="debug logging and full tracebacks")
    return parser


def _conf_overrides(pairs: list[str]) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise UsageError(f"--conf expects KEY=VALUE, got {pair!r}")
        key, raw = pair.split("=", 1)
        node = out
        parts = config_mod.split_key(key.strip())
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(raw)
    return out


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is when a record arrives (a redirected job log, a test's capture)."""

    @property
    def stream(self):  # noqa: D102
        return sys.stdout

    @stream.setter
    def stream(self, _value) -> None:
        pass


def configure_logging(verbose: bool = False) -> None:
    """Log lines to stderr; the end-of-run summary (logger ``auditlake.summary``) as plain text to stdout."""
    level = logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    summary = logging.getLogger("auditlake.summary")
    if not any(isinstance(h, _StdoutHandler) for h in summary.handlers):
        handler = _StdoutHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        summary.addHandler(handler)
    summary.setLevel(logging.INFO)
    summary.propagate = False
    for noisy in ("py4j", "botocore", "boto3", "urllib3", "great_expectations", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    install_log_filter()


def _python_error_line(text: str) -> str | None:
    """The exception line that ends the last Python traceback inside ``text``, if any.

    A Python worker's failure reaches the driver as a JVM ``PythonException`` whose message is
    the worker's whole traceback, wrapped in Spark's task-failure text.
    """
    found = None
    in_traceback = False
    for line in text.splitlines():
        if line.rstrip().endswith("Traceback (most recent call last):"):
            in_traceback = True
            continue
        if in_traceback and line and not line[0].isspace():
            found = line.strip()
            in_traceback = False
    return found


def _one_line(exc: BaseException) -> str:
    """The error's own line (redacted), then its notes on the same line.

    A Python worker's failure is named by the worker's own exception line. Notes say what went
    wrong afterwards (the failed-run record could not be written).
    """
    worker_error = _python_error_line(str(exc))
    first = redact(f"Python worker failed: {worker_error}"[:500]) if worker_error else error_line(exc)
    notes = [n.strip().splitlines()[0] for n in getattr(exc, "__notes__", []) if n and n.strip()]
    return "; ".join([first or "", *(redact(n[:500]) or "" for n in notes)])


def _glue_job() -> Any:
    """Initialise the Glue Job when running inside AWS Glue (from Glue's own ``sys.argv``); None elsewhere."""
    try:
        from awsglue.context import GlueContext  # type: ignore[import-not-found]
        from awsglue.job import Job  # type: ignore[import-not-found]
        from awsglue.utils import getResolvedOptions  # type: ignore[import-not-found]
    except ImportError:
        return None
    from pyspark.context import SparkContext

    glue_args = getResolvedOptions(sys.argv, ["JOB_NAME"])
    glue_context = GlueContext(SparkContext.getOrCreate())
    job = Job(glue_context)
    job.init(glue_args["JOB_NAME"], glue_args)
    return job


def run_job(
    job: str,
    main: Callable[[JobContext], dict[str, Any] | None],
    *,
    argv: list[str] | None = None,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    needs_source: bool = True,
    session_factory: Callable[[dict[str, Any], str], Any] | None = None,
) -> int:
    """Parse arguments, load config, build the session, call ``main``; return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in argv
    configure_logging(verbose)
    try:
        parser = base_parser(job, needs_source=needs_source)
        if add_arguments:
            add_arguments(parser)
        args, unknown = parser.parse_known_args(argv)
        # User info in a URI is never used, logged or stored: Hadoop takes credentials from
        # its configuration, and the URI ends up in logs, run records and every object's row.
        clean, changed = redact_args(vars(args))
        if changed:
            args = argparse.Namespace(**clean)
            log.warning(
                "removed user info from the URI in %s; configure credentials outside the URI",
                ", ".join(f"--{k.replace('_', '-')}" for k in changed),
            )
        unknown = [redact(a) or "" for a in unknown]
        if unknown:
            log.info(
                "ignoring arguments this job does not know (Glue adds its own): %s",
                " ".join(a for a in unknown if a.startswith("--")),
            )
        if args.since and args.until and args.since > args.until:
            raise UsageError(f"{job}: --since {args.since} is after --until {args.until}")
        cfg = config_mod.load_config(args.env, _conf_overrides(args.conf))
        glue = _glue_job() if args.env == "glue" else None
        if session_factory is None:
            from auditlake.session import build_session

            session_factory = build_session
        spark = session_factory(cfg, f"auditlake-{job}")
        ctx = JobContext(
            job=job,
            args=args,
            cfg=cfg,
            spark=spark,
            run_id=args.run_id or f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}",
            started_at=dt.datetime.now(dt.UTC),
        )
        main(ctx)
        if glue is not None:
            glue.commit()
        return 0
    except AuditlakeError as exc:
        print(f"auditlake: {job}: error: {_one_line(exc)}", file=sys.stderr)
        if verbose:
            log.exception("details")
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"auditlake: {job}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place that turns anything else into one line
        hint = "" if verbose else " (rerun with --verbose for the full traceback)"
        print(f"auditlake: {job}: failed: {type(exc).__name__}: {_one_line(exc)}{hint}", file=sys.stderr)
        if verbose:
            log.exception("details")
        return 1
