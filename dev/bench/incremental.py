"""Benchmark scenario: one new hour on top of a long history costs the same as on a short one.

    python -m bench.incremental [--days 30] [--compare-days 7] [--files-per-day 24] [--work build/bench]

For each history length (``--compare-days`` and ``--days``), a CloudTrail layout with that many days
of hourly files is loaded into a fresh lake by the ingest job (not measured), one new hour's file
is added, and the ingest job runs again with no ``--since``: its wall time, list calls and objects
listed are reported, from the job's own ``job_runs`` row. Target: the same list calls and about the
same time for both histories (the window comes from the ledger's high-water mark).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import random
import shutil
from pathlib import Path
from typing import Any

from devtools import PYTHON as PY
from devtools import REPO as ROOT

JOB = "jobs/ingest_cloudtrail.py"
ACCOUNT = "123456789012"
END = dt.date(2024, 6, 30)


def _write_hour(raw: Path, hour: dt.datetime, records: int, rng: random.Random) -> None:
    folder = raw / "AWSLogs" / ACCOUNT / "CloudTrail" / "us-east-1" / f"{hour:%Y/%m/%d}"
    folder.mkdir(parents=True, exist_ok=True)
    recs = [
        {
            "eventVersion": "1.08",
            "eventTime": (hour + dt.timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": "s3.amazonaws.com",
            "eventName": "GetObject",
            "awsRegion": "us-east-1",
            "eventID": f"{rng.getrandbits(128):032x}",
            "eventType": "AwsApiCall",
            "recipientAccountId": ACCOUNT,
            "sourceIPAddress": "10.0.0.1",
            "userIdentity": {"type": "IAMUser", "accountId": ACCOUNT},
        }
        for i in range(records)
    ]
    name = f"{ACCOUNT}_CloudTrail_us-east-1_{hour:%Y%m%dT%H%M}Z_{rng.getrandbits(64):016x}.json.gz"
    (folder / name).write_bytes(gzip.compress(json.dumps({"Records": recs}).encode()))


def history_case(work: Path, days: int, files_per_day: int, records_per_file: int) -> dict[str, Any]:
    """Load ``days`` days, add one hour, measure the incremental run."""
    from bench.__main__ import job_run, measure

    raw, lake, logs = work / f"raw-{days}d", work / f"lake-{days}d", work / "logs"
    shutil.rmtree(raw, ignore_errors=True)
    shutil.rmtree(lake, ignore_errors=True)
    rng = random.Random(days)
    step = dt.timedelta(hours=24 / files_per_day)
    for d in range(days):
        day = dt.datetime.combine(END - dt.timedelta(days=days - 1 - d), dt.time())
        for f in range(files_per_day):
            _write_hour(raw, day + f * step, records_per_file, rng)
    load = measure(
        [PY, JOB, "--source", str(raw), "--lake", str(lake), "--run-id", f"load-{days}d"],
        log_path=logs / f"history-{days}d-load.log",
    )
    _write_hour(raw, dt.datetime.combine(END + dt.timedelta(days=1), dt.time()), records_per_file, rng)
    inc = measure(
        [PY, JOB, "--source", str(raw), "--lake", str(lake), "--run-id", f"hour-{days}d"],
        log_path=logs / f"history-{days}d-hour.log",
    )
    row = job_run(lake, f"hour-{days}d") or {}
    counters = row.get("counters") or {}
    return {
        "history_days": days,
        "history_objects": days * files_per_day,
        "load_seconds": load["wall_seconds"],
        "load_exit": load["exit_code"],
        "hour_seconds": inc["wall_seconds"],
        "hour_exit": inc["exit_code"],
        "list_calls": counters.get("list_calls"),
        "objects_listed": row.get("objects_listed"),
        "objects_processed": row.get("objects_processed"),
        "records_loaded": row.get("records_loaded"),
        "list_seconds": (row.get("phase_seconds") or {}).get("list"),
    }


def run_scenario(
    work: Path, *, days: int = 30, compare_days: int = 7, files_per_day: int = 24, records_per_file: int = 20
) -> dict[str, Any]:
    """Both history lengths, and whether the new hour cost the same."""
    work = work.resolve()
    cases = [history_case(work, n, files_per_day, records_per_file) for n in (compare_days, days)]
    short, long = cases
    return {
        "cases": cases,
        "same_list_calls": short["list_calls"] == long["list_calls"] and short["list_calls"] is not None,
        "hour_time_ratio": round(long["hour_seconds"] / short["hour_seconds"], 2)
        if short["hour_seconds"]
        else None,
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| history days | history objects | load s | new hour s | list calls | objects listed | processed |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in result["cases"]:
        lines.append(
            f"| {c['history_days']} | {c['history_objects']} | {c['load_seconds']} | {c['hour_seconds']} "
            f"| {c['list_calls']} | {c['objects_listed']} | {c['objects_processed']} |"
        )
    lines.append(
        f"\nSame list calls: {result['same_list_calls']}; new-hour time long/short history: "
        f"{result['hour_time_ratio']}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--compare-days", type=int, default=7)
    parser.add_argument("--files-per-day", type=int, default=24)
    parser.add_argument("--records-per-file", type=int, default=20)
    parser.add_argument("--work", default=str(ROOT / "build" / "bench" / "history"))
    args = parser.parse_args(argv)
    result = run_scenario(
        Path(args.work),
        days=args.days,
        compare_days=args.compare_days,
        files_per_day=args.files_per_day,
        records_per_file=args.records_per_file,
    )
    print(json.dumps(result, indent=1))
    print(markdown(result))
    ok = all(
        c["load_exit"] == 0 and c["hour_exit"] == 0 and c["objects_processed"] == 1 for c in result["cases"]
    )
    return 0 if ok and result["same_list_calls"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
