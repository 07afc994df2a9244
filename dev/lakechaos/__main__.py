"""The kill matrix: every commit point of every job, killed, rerun, compared with a clean run.

    python -m lakechaos --out build/chaos [--scale 0.02] [--jobs ingest_cloudtrail,...] [--max-points N]

1. Synthetic raw logs for the three sources (``synth``, small scale).
2. Clean run: the three ingests, then the scheduled aggregates job; snapshot of every table. The
   commits each job made there are its kill points.
3. For each job and each of its commit points k: a fresh lake with the jobs before it done;
   the job is killed (SIGKILL of its process group) right after its k-th commit; then it is
   rerun, the jobs after it run, and the scheduled aggregates job runs with no window. Every
   table is compared with the clean run (rows lost, rows extra), every natural key is checked
   for duplicates, and the killed run must be marked abandoned in job_runs.
4. A concurrent round: the three ingests and the aggregates job started together on a new lake
   (and one ingest twice), then the aggregates job once more: same comparison.

Writes ``<out>/chaos.json`` and prints one line per case and the totals; exit 1 if any case lost
or duplicated a row or left its aggregates different from the clean run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from devtools import REPO, job_env
from lakechaos import (
    chronological,
    commit_files,
    compare,
    duplicate_keys,
    job_command,
    run_in_process,
    run_job,
    run_states,
    snapshot,
)

INGESTS = ("ingest_cloudtrail", "ingest_s3_access", "ingest_crawler_logs")
ORDER = (*INGESTS, "build_daily_aggregates")


def _spark():
    from auditlake.config import load_config
    from auditlake.session import build_session

    cfg = load_config("local", {"spark": {"master": "local[1]", "conf": {"spark.sql.shuffle.partitions": 1}}})
    return build_session(cfg, "auditlake-chaos")


def _must(outcome, what: str) -> None:
    if outcome.code != 0:
        tail = outcome.stderr.strip().splitlines()[-3:]
        raise SystemExit(f"chaos: {what} exited {outcome.code}: {' | '.join(tail)}")


def _must_code(code: int, what: str) -> None:
    if code != 0:
        raise SystemExit(f"chaos: {what} exited {code}")


def _points(n: int, at_most: int) -> list[int]:
    """Kill points 1..n, or ``at_most`` of them spread evenly (always the first and the last)."""
    if not at_most or at_most >= n:
        return list(range(1, n + 1))
    if at_most == 1:
        return [n // 2 + 1]
    step = (n - 1) / (at_most - 1)
    return sorted({round(1 + i * step) for i in range(at_most)})


def _generate(raw: Path, scale: float) -> None:
    from synth import generate

    generate(raw, scale=scale, seed=11)


def _verdict(spark, lake: Path, clean) -> dict:
    diff = compare(clean, snapshot(spark, str(lake)))
    dups = duplicate_keys(spark, str(lake))
    states = run_states(spark, str(lake))
    return {
        "lost": sum(d["lost"] for d in diff.values()),
        "extra": sum(d["extra"] for d in diff.values()),
        "duplicate_keys": sum(dups.values()),
        "aggregates_identical": all(
            d["lost"] == d["extra"] == 0 for t, d in diff.items() if t.startswith("agg_")
        ),
        "tables_differing": sorted(t for t, d in diff.items() if d["lost"] or d["extra"]),
        "run_states": dict(states),
    }


def _write_report(out: Path, report: dict) -> None:
    (out / "chaos.json").write_text(json.dumps(report, indent=2, default=str))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lakechaos", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="build/chaos")
    parser.add_argument("--scale", type=float, default=0.02)
    parser.add_argument("--jobs", default=",".join(ORDER), help="jobs whose commit points are killed")
    parser.add_argument(
        "--max-points", type=int, default=0, help="at most this many kill points per job (0: all)"
    )
    parser.add_argument("--no-concurrent", action="store_true", help="skip the concurrent round")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    raw = out / "raw"
    _generate(raw, args.scale)
    spark = _spark()
    t0 = time.monotonic()

    clean_lake = out / "clean"
    points: dict[str, list[str]] = {}
    for job in ORDER:
        t = time.monotonic()
        seen = commit_files(clean_lake)
        _must_code(run_in_process(spark, job, raw, clean_lake), f"clean {job}")
        points[job] = chronological(clean_lake, commit_files(clean_lake) - seen)
        print(f"clean {job}: {len(points[job])} commits, {time.monotonic() - t:.0f}s", flush=True)
    clean = snapshot(spark, str(clean_lake))
    report: dict = {
        "scale": args.scale,
        "clean_rows": {t: sum(c.values()) for t, c in clean.items()},
        "commit_points": points,
        "cases": [],
    }

    for job in [j for j in ORDER if j in args.jobs.split(",")]:
        before = ORDER[: ORDER.index(job)]
        base = out / f"base-{job}"
        for prior in before:
            _must_code(run_in_process(spark, prior, raw, base), f"{prior} before the kill")
        for k in _points(len(points[job]), args.max_points):
            lake = out / f"kill-{job}-{k}"
            if base.exists():
                shutil.copytree(base, lake)
            killed = run_job(job_command(job, raw, lake), lake, kill_at=k)
            case = {
                "job": job,
                "kill_at": k,
                "of": len(points[job]),
                "commit": points[job][k - 1],
                "killed": killed.code is None,
                "killed_after": killed.commits,
            }
            for rest in (job, *ORDER[ORDER.index(job) + 1 :]):
                _must_code(run_in_process(spark, rest, raw, lake), f"{rest} after the kill")
            if job != "build_daily_aggregates":
                # the scheduled aggregates run once more with no window, as the next schedule would
                _must_code(run_in_process(spark, "build_daily_aggregates", raw, lake), "aggregates")
            case.update(_verdict(spark, lake, clean))
            report["cases"].append(case)
            print(
                f"kill {job} at commit {k}/{len(points[job])} ({case['commit']}): killed={case['killed']} "
                f"lost={case['lost']} extra={case['extra']} dup_keys={case['duplicate_keys']} "
                f"aggregates_identical={case['aggregates_identical']} runs={case['run_states']}"
                + (f" differing={case['tables_differing']}" if case["tables_differing"] else ""),
                flush=True,
            )
            # Kept as it goes: a matrix stopped part way still has every finished case's split.
            _write_report(out, report)
            shutil.rmtree(lake, ignore_errors=True)

    if not args.no_concurrent:
        lake = out / "concurrent"
        cmds = [job_command(j, raw, lake) for j in (*INGESTS, "ingest_cloudtrail", "build_daily_aggregates")]
        # stderr to files, not pipes: a job's log fills a 64 KiB pipe long before the jobs
        # waited on first have ended, and a pipe nobody reads blocks the job for good.
        logs = [out / f"concurrent-{i}.log" for i in range(len(cmds))]
        procs = []
        for c, log_path in zip(cmds, logs, strict=True):
            with log_path.open("w") as err:
                procs.append(
                    subprocess.Popen(
                        c,
                        cwd=REPO,
                        stdout=subprocess.DEVNULL,
                        stderr=err,
                        env=job_env(),
                    )
                )
        codes = [p.wait() for p in procs]
        errs = [path.read_text(errors="replace").strip().splitlines()[-1:] for path in logs]
        _must(
            run_job(job_command("build_daily_aggregates", raw, lake), lake),
            "aggregates after the concurrent round",
        )
        case = {
            "job": "concurrent: 3 ingests + cloudtrail again + aggregates",
            "exit_codes": codes,
            "errors": [e for e in errs if e],
            "commits": len(commit_files(lake)),
        }
        case.update(_verdict(spark, lake, clean))
        report["cases"].append(case)
        print(
            f"concurrent: exit codes {codes} lost={case['lost']} extra={case['extra']} "
            f"dup_keys={case['duplicate_keys']} aggregates_identical={case['aggregates_identical']}"
            + (f" differing={case['tables_differing']}" if case["tables_differing"] else ""),
            flush=True,
        )

    bad = [
        c
        for c in report["cases"]
        if c["lost"]
        or c["extra"]
        or c["duplicate_keys"]
        or not c["aggregates_identical"]
        or any(code != 0 for code in c.get("exit_codes", []))
    ]
    kills = [c for c in report["cases"] if "kill_at" in c]
    report["summary"] = {
        "kill_points": len(kills),
        "killed": sum(c["killed"] for c in kills),
        "cases": len(report["cases"]),
        "failed_cases": len(bad),
        "seconds": round(time.monotonic() - t0),
    }
    _write_report(out, report)
    print("chaos:", json.dumps(report["summary"]))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
