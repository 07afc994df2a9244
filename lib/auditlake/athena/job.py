"""``jobs/athena_ddl.py``: print or write the Athena DDL, optionally register the tables in Glue."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from auditlake.athena import ddl
from auditlake.context import JobContext
from auditlake.errors import UsageError

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database", required=True, help="Athena / Glue database name")
    parser.add_argument("--out", help="write the DDL to this file instead of printing it")
    parser.add_argument(
        "--projection-start",
        default=ddl.DEFAULT_PROJECTION_START,
        help="first day of the dt partition projection range (YYYY-MM-DD)",
    )
    parser.add_argument(
        "--register-glue",
        action="store_true",
        help="also create or update the database and tables in the Glue Data Catalog",
    )
    parser.add_argument("--region", help="AWS region for --register-glue (default: the boto3 default)")


def run(ctx: JobContext) -> dict[str, Any]:
    args = ctx.args
    try:
        specs = ddl.all_table_specs(args.lake, args.database, args.projection_start)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    text = ddl.render_ddl(specs)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8")
        log.info("wrote DDL for %d tables to %s", len(specs), args.out)
    else:
        print(text, end="")
    outcome: dict[str, str] = {}
    if args.register_glue:
        import boto3

        glue = boto3.client("glue", region_name=args.region) if args.region else boto3.client("glue")
        outcome = ddl.register_in_glue(glue, specs)
        log.info(
            "Glue database %s: %s", args.database, ", ".join(f"{t} {o}" for t, o in sorted(outcome.items()))
        )
    return {"tables": len(specs), "glue": outcome}
