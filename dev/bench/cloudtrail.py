"""Time the CloudTrail ingest against DuckDB's bare JSON -> Parquet conversion of the same files.

    python -m synth --out build/ct-bench --scale 7 --sources cloudtrail
    python -m bench.cloudtrail --source build/ct-bench/cloudtrail --work build/ct-bench-out

DuckDB: ``read_json`` with explicit columns (no inference), unnest the Records, ``COPY ... TO``
Parquet partitioned by event day. auditlake: the whole ``ingest_cloudtrail`` run (list, parse,
dedupe, quality gate, Delta merges, ledger, run record), timed inside the job and end to end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path


def duckdb_convert(source: Path, out: Path) -> tuple[float, int]:
    """The same DuckDB conversion ``make bench`` measures (``bench.baselines``), timed in-process."""
    from bench.baselines import duckdb_convert as convert

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    # Log files only: the generator also plants digests, insights and other siblings.
    files = sorted(str(p) for p in source.rglob("*.json.gz") if "CloudTrail" in p.parts)
    t = time.monotonic()
    rows = convert("cloudtrail", {"json": files}, out)
    return time.monotonic() - t, rows


def auditlake_ingest(source: Path, lake: Path) -> dict:
    from auditlake.cli import run_job
    from auditlake.ingest.runner import run_ingest
    from auditlake.sources.cloudtrail import CloudTrailSource

    shutil.rmtree(lake, ignore_errors=True)
    out: dict = {}

    def main(ctx):
        t = time.monotonic()
        rec = run_ingest(ctx, CloudTrailSource())
        out["ingest_seconds"] = time.monotonic() - t
        out["record"] = rec
        return None

    t = time.monotonic()
    status = run_job("ingest_cloudtrail", main, argv=["--source", str(source), "--lake", str(lake)])
    out["job_seconds"] = time.monotonic() - t
    out["status"] = status
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", required=True)
    parser.add_argument("--work", required=True)
    args = parser.parse_args(argv)
    source, work = Path(args.source).resolve(), Path(args.work).resolve()
    duck_seconds, duck_rows = duckdb_convert(source, work / "duckdb")
    result = auditlake_ingest(source, work / "lake")
    rec = result["record"]
    summary = {
        "records": rec.records_read,
        "files": rec.objects_processed,
        "duckdb_seconds": round(duck_seconds, 2),
        "duckdb_rows": duck_rows,
        "ingest_seconds": round(result["ingest_seconds"], 2),
        "job_seconds_incl_session": round(result["job_seconds"], 2),
        "records_per_second": round(rec.records_read / result["ingest_seconds"]),
        "ratio_ingest_to_duckdb": round(result["ingest_seconds"] / duck_seconds, 2),
        "phases": {k: round(v, 2) for k, v in rec.phase_seconds.items()},
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
