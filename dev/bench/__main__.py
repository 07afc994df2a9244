"""The auditlake benchmark: synthetic logs -> baselines -> ingest -> rerun -> aggregates, measured.

    python -m bench run   [--scale 1] [--seed 7] [--work build/bench] [--source-scale s3access=33]
    python -m bench scale [--scale 1] [--factor 4,16]

For each source, in one process tree and one run, every step is its own measured subprocess:
(1) the raw floor: Spark reading the same bytes and writing them as Parquet, no parsing;
(2) DuckDB doing the bare conversion to Parquet;
(2b) Spark's own bare conversion of the same bytes to partitioned Parquet (explicit schema): the
     yardstick of what the ingest adds over Spark itself;
(3) the auditlake ingest job (Delta commit and data quality included);
(4) the same job again with no new input (incremental);
then (5) the daily-aggregate job over the lake, and (6) the incremental pipeline: an increment the
size of one hour of every source (1/72 of the three-day set, generated with another seed) ingested
and aggregated by ``jobs/run_pipeline.py`` in one process and one SparkSession. Reported: wall time, records per second, peak RSS of
the process tree, split into the JVM and the Python processes (Spark runs locally, so executors live
inside the driver JVM: the JVM figure is driver and executors together), the ratios ingest/DuckDB and
ingest/floor, and whether the counts in the job_runs table match the generator's manifest.

Results: bench/results/<date>-<short commit>.json; a markdown table is printed and kept in
bench/README.md (the latest run, and a history with one row per commit that changed the numbers).
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil

from devtools import PYTHON as PY
from devtools import REPO as ROOT
from devtools import job_env
from synth import GENERATOR_VERSION, generate, load_manifest
from synth import window as synth_window
from synth.s3_access import MEAN_LINES_PER_OBJECT as S3_LINES_PER_OBJECT

SOURCES = {
    # source -> (ingest job, the tables it loads)
    "cloudtrail": "jobs/ingest_cloudtrail.py",
    "s3access": "jobs/ingest_s3_access.py",
    "crawler": "jobs/ingest_crawler_logs.py",
}
AGGREGATE_JOB = "jobs/build_daily_aggregates.py"
PIPELINE_JOB = "jobs/run_pipeline.py"
PIPELINE_OPTIONS = {
    "cloudtrail": "--cloudtrail-source",
    "s3access": "--s3-access-source",
    "crawler": "--crawler-source",
}
# One hour of the generator's three-day window.
HOUR_FRACTION = 1 / 72
COUNT_FIELDS = [
    "objects_skipped",
    "objects_processed",
    "records_read",
    "records_loaded",
    "records_quarantined",
    "records_duplicate",
]
TARGETS = {
    "cloudtrail_ingest_over_duckdb": 4.0,
    "s3access_ingest_over_duckdb": 4.0,
    "incremental_wall_seconds": 20.0,
    "ingest_over_spark": 1.5,
    "pipeline_hour_wall_seconds": 30.0,
    "scale_time_growth_4x": 4.4,
}


# ---------------------------------------------------------------------------------------------
# measuring a subprocess tree


def measure(
    cmd: list[str], *, log_path: Path, env: dict[str, str] | None = None, timeout: float = 3600
) -> dict[str, Any]:
    """Run ``cmd``; wall time, exit code and peak RSS of its process tree (sampled every 0.1 s)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = job_env(**(env or {}))
    peak = {"total": 0, "jvm": 0, "python": 0}
    # Which processes made each kind's peak (name, MB), so a figure out of line explains itself.
    peak_by: dict[str, list[tuple[str, int]]] = {"jvm": [], "python": []}
    cpu: dict[int, float] = {}
    with open(log_path, "wb") as log:
        t0 = time.monotonic()
        proc = psutil.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=ROOT)
        while True:
            try:
                procs = [proc, *proc.children(recursive=True)]
            except psutil.NoSuchProcess:
                procs = []
            sums = {"total": 0, "jvm": 0, "python": 0}
            members: dict[str, list[tuple[str, int]]] = {"jvm": [], "python": []}
            for p in procs:
                try:
                    rss = p.memory_info().rss
                    # By the executable the process runs now (the JVM starts as spark-class's bash).
                    exe = os.path.basename((p.cmdline() or [p.name()])[0]).lower()
                    kind = "jvm" if exe.startswith("java") else "python"
                    t = p.cpu_times()
                    cpu[p.pid] = t.user + t.system + t.children_user + t.children_system
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
                sums["total"] += rss
                sums[kind] += rss
                members[kind].append((exe, round(rss / (1024 * 1024))))
            for k, v in sums.items():
                if v > peak[k]:
                    peak[k] = v
                    if k in peak_by:
                        peak_by[k] = sorted(members[k], key=lambda m: -m[1])[:4]
            if proc.poll() is not None:
                break
            if time.monotonic() - t0 > timeout:
                proc.kill()
                break
            time.sleep(0.1)
        wall = time.monotonic() - t0
    mb = 1024 * 1024
    return {
        "wall_seconds": round(wall, 2),
        "exit_code": proc.returncode,
        "cpu_seconds": round(sum(cpu.values()), 1),
        "peak_rss_mb": round(peak["total"] / mb),
        "peak_rss_mb_jvm": round(peak["jvm"] / mb),
        "peak_rss_mb_python": round(peak["python"] / mb),
        "peak_processes": {k: [f"{name} {n} MB" for name, n in v] for k, v in peak_by.items()},
        "log": str(log_path.relative_to(ROOT)) if log_path.is_relative_to(ROOT) else str(log_path),
    }


def tail(path: Path, n: int = 6) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------------
# reading job_runs without Spark: the Delta log's add/remove actions name the live Parquet files


def read_delta(table: Path) -> list[dict[str, Any]]:
    """Rows of a local Delta table (JSON commits only; enough for an append-only run-record table)."""
    import duckdb

    log_dir = table / "_delta_log"
    if not log_dir.is_dir():
        return []
    live: dict[str, bool] = {}
    for commit in sorted(log_dir.glob("*.json")):
        for line in commit.read_text().splitlines():
            action = json.loads(line)
            if "add" in action:
                live[action["add"]["path"]] = True
            elif "remove" in action:
                live.pop(action["remove"]["path"], None)
    files = [str(table / _unquote(p)) for p in live]
    if not files:
        return []
    con = duckdb.connect()
    cur = con.execute("SELECT * FROM read_parquet(?, union_by_name=true)", [files])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=False)) for row in cur.fetchall()]


def _unquote(p: str) -> str:
    from urllib.parse import unquote

    return unquote(p)


def job_run(lake: Path, run_id: str) -> dict[str, Any] | None:
    try:
        rows = [r for r in read_delta(lake / "job_runs") if r.get("run_id") == run_id]
    except Exception as exc:  # noqa: BLE001 - report, do not fail the benchmark
        return {"_read_error": f"cannot read job_runs: {exc}"}
    if not rows:
        return None
    row = rows[-1]
    out = {}
    for k, v in row.items():
        if isinstance(v, dict | list) or v is None or isinstance(v, int | float | str | bool):
            out[k] = v
        else:
            out[k] = str(v)
    for k in ("loaded_by_table", "skipped_by_reason", "counters", "phase_seconds"):
        if isinstance(out.get(k), list):  # duckdb may hand maps back as key/value lists
            out[k] = {e["key"]: e["value"] for e in out[k]}
    return out


def check_counts(
    expected: dict[str, Any], got: dict[str, Any] | None, ignore: tuple[str, ...] = ()
) -> dict[str, Any]:
    if not got or "_read_error" in got:
        return {"ok": False, "mismatches": {"job_run": "no job_runs row" if not got else got["_read_error"]}}
    mismatches: dict[str, Any] = {}
    for f in COUNT_FIELDS:
        if f in expected and f not in ignore and got.get(f) != expected[f]:
            mismatches[f] = {"expected": expected[f], "got": got.get(f)}
    loaded = got.get("loaded_by_table") or {}
    for table, n in expected.get("loaded_by_table", {}).items():
        if loaded.get(table) != n:
            mismatches[f"loaded_by_table.{table}"] = {"expected": n, "got": loaded.get(table)}
    counters = got.get("counters") or {}
    if "crawler_runs" in expected and "crawler_runs_upserted" in counters:
        if counters["crawler_runs_upserted"] != expected["crawler_runs"]:
            mismatches["crawler_runs"] = {
                "expected": expected["crawler_runs"],
                "got": counters["crawler_runs_upserted"],
            }
    return {"ok": not mismatches, "mismatches": mismatches}


def check_incremental(expected: dict[str, Any], got: dict[str, Any] | None) -> dict[str, Any]:
    if not got or "_read_error" in got:
        return {"ok": False, "mismatches": {"job_run": "no job_runs row"}}
    # A rerun lists only its window (the days since the ledger's last object, #16), so it sees
    # fewer objects than the first run; every listed object that no skip reason took (outside_window
    # included, which objects_skipped leaves out) must already be done. complete_export_task counts
    # objects of task folders the listing never entered, so they are not among the listed.
    skipped = sum(n for k, n in (got.get("skipped_by_reason") or {}).items() if k != "complete_export_task")
    want = {
        "records_read": 0,
        "objects_processed": 0,
        "objects_already_processed": (got.get("objects_listed") or 0) - skipped,
    }
    mismatches = {k: {"expected": v, "got": got.get(k)} for k, v in want.items() if got.get(k) != v}
    return {"ok": not mismatches, "mismatches": mismatches}


# ---------------------------------------------------------------------------------------------
# the run


def source_files(data: Path, source: str, manifest: dict[str, Any]) -> dict[str, list[str]]:
    """The log objects of a source that the baselines read (what the ingest parses, minus corrupt objects)."""
    root = data / source
    planted = manifest["sources"][source]["planted"]
    corrupt = {
        str(root / (c["object"] if isinstance(c, dict) else c)) for c in planted.get("corrupt_objects", [])
    }
    files = sorted(str(p) for p in root.rglob("*") if p.is_file())
    files = [f for f in files if f not in corrupt]
    if source == "cloudtrail":
        return {"json": [f for f in files if "/CloudTrail/" in f and f.endswith(".json.gz")]}
    if source == "s3access":
        return {"text": files}
    return {
        "text_gz": [f for f in files if "/export/" in f and f.endswith(".gz")],
        "binary_gz": [f for f in files if "/firehose/" in f],
    }


def git_commit() -> tuple[str, bool]:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=ROOT,
                capture_output=True,
                text=True,
            ).stdout.strip()
        )
        return sha, dirty
    except (OSError, subprocess.CalledProcessError):
        return "unknown", False


def ensure_data(
    work: Path,
    scale: float,
    seed: int,
    sources: list[str] | None = None,
    *,
    days: tuple[dt.date, int] | None = None,
    s3_lines_per_object: int = S3_LINES_PER_OBJECT,
) -> tuple[Path, dict[str, Any]]:
    """The synthetic set of ``scale``/``seed`` under ``work`` (generated once); ``days``: (first day, count);
    ``s3_lines_per_object``: the S3 access-log objects' mean size in lines."""
    tag = "" if sources is None else "-" + "-".join(sources)
    if days is not None:
        tag += f"-{days[0].isoformat()}x{days[1]}"
    if s3_lines_per_object != S3_LINES_PER_OBJECT:
        tag += f"-lpo{s3_lines_per_object}"
    data = work / f"data-s{scale:g}-seed{seed}{tag}"
    try:
        manifest = load_manifest(data)
        if manifest.get("generator_version") == GENERATOR_VERSION:
            print(f"data: reusing {data}")
            return data, manifest
    except (OSError, ValueError):
        pass
    print(f"data: generating scale={scale:g} seed={seed} into {data} ...", flush=True)
    t = time.monotonic()
    kwargs: dict[str, Any] = {} if sources is None else {"sources": tuple(sources)}
    if days is not None:
        kwargs.update(first_day=days[0], n_days=days[1])
    if s3_lines_per_object != S3_LINES_PER_OBJECT:
        kwargs["s3_lines_per_object"] = s3_lines_per_object
    manifest = generate(data, scale=scale, seed=seed, **kwargs)
    print(f"data: generated in {time.monotonic() - t:.0f}s")
    return data, manifest


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def run_bench(
    scale: float,
    seed: int,
    work: Path,
    sources: list[str],
    skip: set[str],
    source_scales: dict[str, float] | None = None,
    s3_lines_per_object: int = S3_LINES_PER_OBJECT,
) -> dict[str, Any]:
    """One benchmark run; ``source_scales`` gives a source its own scale (its data set is generated apart);
    ``s3_lines_per_object``: the S3 access-log objects' mean size in lines (the same lines in fewer objects)."""
    work = work.resolve()
    source_scales = {s: v for s, v in (source_scales or {}).items() if s in sources and v != scale}
    lpo = {"s3_lines_per_object": s3_lines_per_object}
    data, manifest = ensure_data(work, scale, seed, **lpo)
    data_of = {s: (data, manifest) for s in sources}
    for source, sc in source_scales.items():
        data_of[source] = ensure_data(work, sc, seed, [source], **lpo)
    tag = f"s{scale:g}"
    lake = work / f"lake-{tag}"
    out = work / f"out-{tag}"
    logs = work / f"logs-{tag}"
    for d in (lake, out):
        shutil.rmtree(d, ignore_errors=True)
    sha, dirty = git_commit()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    result: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        "started_at": stamp,
        "commit": sha,
        "dirty": dirty,
        "scale": scale,
        "seed": seed,
        "source_scales": source_scales,
        "s3_lines_per_object": s3_lines_per_object,
        # The local driver JVM's options every Spark step ran with (the ingests and the baselines
        # alike): C1 only or the JVM's tiered compilers changes the times a lot, not alike.
        "driver_java_options": driver_java_options(),
        # The local driver JVM's heap (spark.driver.memory): its peak memory is this heap, as the
        # JVM grows it, plus about half a gigabyte (class data, GC structures, compiled code).
        "driver_memory": driver_memory(),
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_avg_at_start": [round(x, 1) for x in os.getloadavg()],
        },
        "notes": [
            "Spark runs local[*]: executors live in the driver JVM; peak_rss_mb_jvm is driver+executors",
            "floor and DuckDB read the log objects the ingest parses, minus planted corrupt objects",
            "every step is a fresh process: Spark steps include JVM start-up, DuckDB has none",
        ],
        "sources": {},
    }
    t_all = time.monotonic()
    for source in sources:
        data, manifest = data_of[source]
        section = manifest["sources"][source]
        expected = section["expected"]
        records = expected["records_read"]
        res: dict[str, Any] = {
            "records": records,
            "bytes": section["bytes"],
            "objects": expected["objects_listed"],
        }
        files = source_files(data, source, manifest)
        files_json = out / f"{source}-files.json"
        files_json.parent.mkdir(parents=True, exist_ok=True)
        files_json.write_text(json.dumps(files))
        for engine in ("floor", "duckdb", "spark"):
            if engine in skip:
                continue
            print(f"[{source}] {engine} ...", flush=True)
            m = measure(
                [
                    PY,
                    "-m",
                    "bench.baselines",
                    engine,
                    "--source",
                    source,
                    "--files",
                    str(files_json),
                    "--out",
                    str(out / engine / source),
                ],
                log_path=logs / f"{source}-{engine}.log",
            )
            if m["exit_code"] != 0:
                m["error"] = tail(logs / f"{source}-{engine}.log")
            res[engine] = m
            print(f"[{source}] {engine}: {m['wall_seconds']}s peak {m['peak_rss_mb']} MB", flush=True)
        job = SOURCES[source]
        if "ingest" not in skip and (ROOT / job).exists():
            for phase in ("ingest", "incremental"):
                run_id = f"bench-{source}-{phase}-{stamp}"
                print(f"[{source}] {phase} ...", flush=True)
                m = measure(
                    [PY, job, "--source", str(data / source), "--lake", str(lake), "--run-id", run_id],
                    log_path=logs / f"{source}-{phase}.log",
                )
                m["job_run"] = job_run(lake, run_id)
                if m["exit_code"] != 0:
                    m["error"] = tail(logs / f"{source}-{phase}.log")
                m["records_per_second"] = round(records / m["wall_seconds"]) if phase == "ingest" else None
                m["counts"] = (check_counts if phase == "ingest" else check_incremental)(
                    expected, m["job_run"]
                )
                res[phase] = m
                print(
                    f"[{source}] {phase}: {m['wall_seconds']}s exit={m['exit_code']} peak {m['peak_rss_mb']} MB "
                    f"counts {'ok' if m['counts']['ok'] else m['counts']['mismatches']}",
                    flush=True,
                )
                if m["exit_code"] != 0:
                    print(m.get("error", ""))
                    break
        elif "ingest" not in skip:
            res["ingest"] = {"missing": job}
            print(f"[{source}] ingest: {job} not in this checkout yet")
        ing = res.get("ingest", {})
        res["ratios"] = {
            "ingest_over_duckdb": _ratio(ing.get("wall_seconds"), res.get("duckdb", {}).get("wall_seconds")),
            "ingest_over_floor": _ratio(ing.get("wall_seconds"), res.get("floor", {}).get("wall_seconds")),
            "ingest_over_spark": _ratio(ing.get("wall_seconds"), res.get("spark", {}).get("wall_seconds")),
            "spark_over_duckdb": _ratio(
                res.get("spark", {}).get("wall_seconds"), res.get("duckdb", {}).get("wall_seconds")
            ),
        }
        for engine in ("floor", "duckdb", "spark"):
            if engine in res and res[engine].get("wall_seconds"):
                res[engine]["records_per_second"] = round(records / res[engine]["wall_seconds"])
        result["sources"][source] = res
    if "aggregates" not in skip:
        if (ROOT / AGGREGATE_JOB).exists():
            run_id = f"bench-aggregates-{stamp}"
            print("[aggregates] ...", flush=True)
            m = measure(
                [PY, AGGREGATE_JOB, "--lake", str(lake), "--run-id", run_id], log_path=logs / "aggregates.log"
            )
            m["job_run"] = job_run(lake, run_id)
            if m["exit_code"] != 0:
                m["error"] = tail(logs / "aggregates.log")
            result["aggregates"] = m
            print(
                f"[aggregates]: {m['wall_seconds']}s exit={m['exit_code']} peak {m['peak_rss_mb']} MB",
                flush=True,
            )
        else:
            result["aggregates"] = {"missing": AGGREGATE_JOB}
    if "history" not in skip and "cloudtrail" in sources:
        from bench.incremental import run_scenario

        print("[history] 7 and 30 days loaded, then one new hour each ...", flush=True)
        result["incremental_history"] = run_scenario(work / f"history-{tag}")
    if "pipeline" not in skip and (ROOT / PIPELINE_JOB).exists() and "ingest" not in skip:
        result["pipeline_hour"] = pipeline_hour(work, lake, logs, scale, seed, sources, stamp)
    result["total_seconds"] = round(time.monotonic() - t_all, 1)
    result["machine"]["load_avg_at_end"] = [round(x, 1) for x in os.getloadavg()]
    result["targets"] = evaluate_targets(result)
    return result


def pipeline_hour(
    work: Path, lake: Path, logs: Path, scale: float, seed: int, sources: list[str], stamp: str
) -> dict[str, Any]:
    """Time one incremental pipeline run: a new hour of every source, ingested and aggregated in one session.

    The increment is an hour's volume of the set (1/72 of it) from another seed, so its records are
    new to the lake, delivered on the day after the set's window as a real next hour is: the listing
    window (from the ledger's newest object) takes it in, and the aggregates rebuild the days it
    touches (its own and, through late events, the day before).
    """
    next_day = synth_window()[-1] + dt.timedelta(days=1)
    hour, manifest = ensure_data(work, scale * HOUR_FRACTION, seed + 1000, days=(next_day, 1))
    run_id = f"bench-pipeline-{stamp}"
    cmd = [PY, PIPELINE_JOB, "--lake", str(lake), "--run-id", run_id]
    for source in sources:
        cmd += [PIPELINE_OPTIONS[source], str(hour / source)]
    print("[pipeline] one new hour of every source, then the aggregates ...", flush=True)
    m = measure(cmd, log_path=logs / "pipeline-hour.log")
    if m["exit_code"] != 0:
        m["error"] = tail(logs / "pipeline-hour.log")
    m["records"] = sum(manifest["sources"][s]["expected"]["records_read"] for s in sources)
    m["jobs"] = {}
    for source in sources:
        job = Path(SOURCES[source]).stem
        got = job_run(lake, f"{run_id}-{job}")
        m["jobs"][job] = {
            "duration_seconds": (got or {}).get("duration_seconds"),
            # A windowed listing (from the ledger's high-water mark) enters only the folders of the
            # window's days: CloudTrail's digest folders, which a full listing skips object by
            # object, are never listed, so objects_skipped is not the manifest's.
            "counts": check_counts(manifest["sources"][source]["expected"], got, ignore=("objects_skipped",)),
        }
    agg = job_run(lake, f"{run_id}-build_daily_aggregates") or {}
    m["jobs"]["build_daily_aggregates"] = {
        "duration_seconds": agg.get("duration_seconds"),
        "status": agg.get("status"),
    }
    print(f"[pipeline]: {m['wall_seconds']}s exit={m['exit_code']} peak {m['peak_rss_mb']} MB", flush=True)
    return m


def evaluate_targets(result: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for source in ("cloudtrail", "s3access"):
        r = result["sources"].get(source, {}).get("ratios", {}).get("ingest_over_spark")
        out[f"{source}_ingest_over_spark"] = {
            "target": f"<= {TARGETS['ingest_over_spark']}",
            "value": r,
            "met": None if r is None else r <= TARGETS["ingest_over_spark"],
        }
    hour = (result.get("pipeline_hour") or {}).get("wall_seconds")
    out["pipeline_hour_wall_seconds"] = {
        "target": f"< {TARGETS['pipeline_hour_wall_seconds']:g}",
        "value": hour,
        "met": None if hour is None else hour < TARGETS["pipeline_hour_wall_seconds"],
    }
    for source in ("cloudtrail", "s3access"):
        r = result["sources"].get(source, {}).get("ratios", {}).get("ingest_over_duckdb")
        out[f"{source}_ingest_over_duckdb"] = {
            "target": f"<= {TARGETS[f'{source}_ingest_over_duckdb']}",
            "value": r,
            "met": None if r is None else r <= TARGETS[f"{source}_ingest_over_duckdb"],
        }
    incr = [s.get("incremental", {}).get("wall_seconds") for s in result["sources"].values()]
    incr = [x for x in incr if x is not None]
    worst = max(incr) if incr else None
    out["incremental_wall_seconds"] = {
        "target": "< 20",
        "value": worst,
        "met": None if worst is None else worst < TARGETS["incremental_wall_seconds"],
    }
    return out


# ---------------------------------------------------------------------------------------------
# reporting


JVM_OPTIONS_ENV = "AUDITLAKE_CONF__spark__driver_java_options"


def driver_java_options() -> str:
    """The local driver JVM options the steps run with (conf/local.yaml, or the environment's override)."""
    from auditlake import config as config_mod

    return str(config_mod.get(config_mod.load_config("local"), "spark.driver_java_options") or "")


DRIVER_MEMORY_ENV = "AUDITLAKE_CONF__spark__conf__spark.driver.memory"


def driver_memory() -> str:
    """The local driver JVM's heap the steps run with (conf/local.yaml, or the environment's override)."""
    from auditlake import config as config_mod

    return str(config_mod.get(config_mod.load_config("local"), "spark.conf.spark.driver.memory") or "")


def _fmt(v: Any, suffix: str = "") -> str:
    if v is None or v == "":
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}{suffix}" if v < 10 else f"{v:.1f}{suffix}" if v < 100 else f"{v:.0f}{suffix}"
    return f"{v}{suffix}"


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Run {result['started_at']} commit {result['commit']}{' (dirty)' if result['dirty'] else ''}, "
        f"scale {result['scale']:g}, seed {result['seed']}, {result['machine']['cpus']} CPUs, "
        + "".join(f"{s} at scale {v:g}, " for s, v in sorted((result.get("source_scales") or {}).items()))
        + (
            f"S3 access objects of {result['s3_lines_per_object']} lines on average, "
            if result.get("s3_lines_per_object", S3_LINES_PER_OBJECT) != S3_LINES_PER_OBJECT
            else ""
        )
        + f"driver JVM options `{result.get('driver_java_options') or '(none)'}`, "
        + (f"driver heap {result['driver_memory']}, " if result.get("driver_memory") else "")
        + f"total {result.get('total_seconds')} s, load average {result['machine']['load_avg_at_start'][0]} at start "
        f"and {result['machine'].get('load_avg_at_end', ['-'])[0]} at end (numbers under load > CPUs are not comparable)",
        "",
        "| source | records | MB | floor s | DuckDB s | Spark s | ingest s | ingest rec/s | rerun s "
        "| ingest peak MB (JVM / py) | ingest/DuckDB | ingest/Spark | ingest/floor | counts |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for source, r in result["sources"].items():
        ing, inc = r.get("ingest", {}), r.get("incremental", {})
        if "missing" in ing:
            counts = "job missing"
        elif ing:
            counts = (
                "ok"
                if ing.get("counts", {}).get("ok")
                else "MISMATCH " + ", ".join(ing.get("counts", {}).get("mismatches", {}))
            )
            if inc and not inc.get("counts", {}).get("ok"):
                counts += "; rerun " + ", ".join(inc.get("counts", {}).get("mismatches", {}))
        else:
            counts = "-"
        mem = (
            f"{ing['peak_rss_mb']} ({ing['peak_rss_mb_jvm']} / {ing['peak_rss_mb_python']})"
            if "peak_rss_mb" in ing
            else "-"
        )
        lines.append(
            f"| {source} | {r['records']} | {r['bytes'] / 1e6:.1f} | {_fmt(r.get('floor', {}).get('wall_seconds'))} "
            f"| {_fmt(r.get('duckdb', {}).get('wall_seconds'))} | {_fmt(r.get('spark', {}).get('wall_seconds'))} "
            f"| {_fmt(ing.get('wall_seconds'))} "
            f"| {_fmt(ing.get('records_per_second'))} | {_fmt(inc.get('wall_seconds'))} | {mem} "
            f"| {_fmt(r['ratios']['ingest_over_duckdb'])} | {_fmt(r['ratios'].get('ingest_over_spark'))} "
            f"| {_fmt(r['ratios']['ingest_over_floor'])} | {counts} |"
        )
    agg = result.get("aggregates")
    if agg:
        if "missing" in agg:
            lines += ["", f"Aggregates: {agg['missing']} not in this checkout yet."]
        else:
            lines += [
                "",
                f"Aggregates: {agg['wall_seconds']} s, exit {agg['exit_code']}, peak {agg['peak_rss_mb']} MB "
                f"(JVM {agg['peak_rss_mb_jvm']}).",
            ]
    hist = result.get("incremental_history")
    if hist:
        from bench.incremental import markdown as history_markdown

        lines += [
            "",
            "Incremental hour on a long history (CloudTrail, no --since):",
            "",
            history_markdown(hist),
        ]
    hour = result.get("pipeline_hour")
    if hour:
        per_job = ", ".join(
            f"{j} {_fmt(v.get('duration_seconds'))} s" for j, v in hour.get("jobs", {}).items()
        )
        lines += [
            "",
            f"Pipeline, one new hour ({hour.get('records')} records) in one session: {hour['wall_seconds']} s "
            f"end to end, exit {hour['exit_code']}, peak {hour['peak_rss_mb']} MB ({per_job}).",
        ]
    lines += [
        "",
        "Peak memory of the baselines (MB): "
        + ", ".join(
            f"{s} floor {r.get('floor', {}).get('peak_rss_mb', '-')} / DuckDB {r.get('duckdb', {}).get('peak_rss_mb', '-')}"
            for s, r in result["sources"].items()
        ),
    ]
    lines += [
        "",
        "Targets: "
        + "; ".join(
            f"{k} {v['target']}: {_fmt(v['value'])} ({'met' if v['met'] else 'not met' if v['met'] is False else 'n/a'})"
            for k, v in result["targets"].items()
        ),
    ]
    return "\n".join(lines)


HISTORY_HEADER = (
    "| date | commit | scale | CloudTrail ingest s | CT ingest/DuckDB | S3 ingest s | S3 ingest/DuckDB "
    "| crawler ingest s | max rerun s | aggregates s | max ingest peak MB | counts |"
)


def history_row(result: dict[str, Any]) -> tuple[str, list[float | None]]:
    s = result["sources"]

    def g(src: str, *path: str) -> Any:
        v: Any = s.get(src, {})
        for p in path:
            v = v.get(p, {}) if isinstance(v, dict) else {}
        return v if v != {} else None

    reruns = [g(x, "incremental", "wall_seconds") for x in s]
    reruns = [x for x in reruns if x is not None]
    peaks = [g(x, "ingest", "peak_rss_mb") for x in s]
    peaks = [x for x in peaks if x is not None]
    ok = all(g(x, "ingest", "counts", "ok") for x in s if g(x, "ingest", "wall_seconds") is not None)
    nums = [
        g("cloudtrail", "ingest", "wall_seconds"),
        g("cloudtrail", "ratios", "ingest_over_duckdb"),
        g("s3access", "ingest", "wall_seconds"),
        g("s3access", "ratios", "ingest_over_duckdb"),
        g("crawler", "ingest", "wall_seconds"),
        max(reruns) if reruns else None,
        (result.get("aggregates") or {}).get("wall_seconds"),
        max(peaks) if peaks else None,
    ]
    row = (
        f"| {result['date']} | {result['commit']}{'+' if result['dirty'] else ''} | {result['scale']:g} | "
        + " | ".join(_fmt(n) for n in nums)
        + f" | {'ok' if ok else 'mismatch'} |"
    )
    return row, nums


def _changed(old: list[str], new: list[float | None], tolerance: float = 0.10) -> bool:
    for a, b in zip(old, new, strict=False):
        try:
            fa = float(a)
        except ValueError:
            fa = None
        if (fa is None) != (b is None):
            return True
        if fa is not None and b is not None and abs(fa - b) > tolerance * max(abs(fa), 1.0):
            return True
    return False


def update_readme(result: dict[str, Any], table: str, readme: Path) -> None:
    """Replace the latest-run section; add a history row when this commit changed the numbers (>10 %)."""
    text = readme.read_text() if readme.exists() else ""
    head, _, rest = text.partition("<!-- latest -->")
    _, _, rest = rest.partition("<!-- /latest -->")
    hist_head, _, hist = rest.partition("<!-- history -->")
    hist_rows, _, _tail = hist.partition("<!-- /history -->")
    rows = [r for r in hist_rows.strip().splitlines() if r.startswith("| 2")]
    row, nums = history_row(result)
    commit_cell = row.split("|")[2].strip()
    same_scale = [r for r in rows if r.split("|")[3].strip() == f"{result['scale']:g}"]
    if rows and rows[-1].split("|")[2].strip() == commit_cell:
        rows[-1] = row
    elif not same_scale or _changed([c.strip() for c in same_scale[-1].split("|")[4:12]], nums):
        rows.append(row)
    if not head.strip():
        head = README_INTRO
    readme.write_text(
        head.rstrip()
        + "\n\n<!-- latest -->\n## Latest run\n\n"
        + table
        + "\n<!-- /latest -->\n\n"
        + "<!-- history -->\n## History (one row per commit that changed the numbers by more than 10 %)\n\n"
        + HISTORY_HEADER
        + "\n"
        + "|---" * 12
        + "|\n"
        + "\n".join(rows)
        + "\n<!-- /history -->\n"
    )


README_INTRO = """# Benchmark

`make bench` (scale `SCALE=`, default 1) generates deterministic synthetic raw logs of all three sources
(`python -m synth`, in `dev/synth/`, with a manifest of every planted malformed record, late file and duplicate
delivery), then for each source runs, each step as its own measured process:

1. the raw floor: Spark reading the same bytes and writing them as Parquet with no parsing;
2. DuckDB doing the bare conversion (CloudTrail `read_json` with explicit columns, S3 access lines with
   one regular expression, crawler export lines and Firehose envelopes) to Parquet partitioned by day;
3. Spark's own bare conversion of the same bytes to Parquet partitioned by day (explicit schema, the
   session settings of the ingest's large batches: code generation on, the same input splits; the
   ingest/Spark ratio is what the job adds over Spark itself);
4. the auditlake ingest job (parsing, quarantine, dedupe, data quality, Delta commit, ledger, run record);
5. the same job again with no new input;

and then the daily-aggregate job, and the incremental pipeline: one hour's volume of every source (1/72 of
the set, another seed, delivered on the day after the set as a real next hour is) ingested and aggregated
by `jobs/run_pipeline.py` in one process. It reports wall time, records per second, peak RSS of the process tree
(JVM and Python separately; Spark runs `local[*]`, so executors live inside the driver JVM) and the
ratios ingest/DuckDB and ingest/floor, and checks the counts in `job_runs` against the manifest.
Every Spark step includes its JVM start-up (~10 s); DuckDB has none.

`make bench-scale` runs the same at SCALE and 4 x SCALE and reports how time and memory grow.
`make bench-large` runs it at the sizes of the targets: scale 7 (about 400k CloudTrail records) with the
S3 access logs at scale 33 (about 2M lines; the generator's objects hold about 50 lines, so about 40k objects).

Targets (issue #13; goals, not test assertions): each ingest within 1.5x Spark's own bare conversion and
within 4x DuckDB; one new hour of every source through `jobs/run_pipeline.py`, aggregates included, under
30 s; a rerun with no new input under 20 s; 4x data costs at most 4.4x time; driver peak memory does
not grow with the input.

Full results: `bench/results/<date>-<commit>.json`.
"""


def save(result: dict[str, Any], suffix: str = "") -> Path:
    """Write the run's results as ``bench/results/<date>-<commit><suffix>.json``; a second run of the same
    day and commit (another scale, another source set) gets ``-2``, ``-3``... rather than replacing it."""
    stem = ROOT / "bench" / "results" / f"{result['date']}-{result['commit']}{suffix}"
    path, n = stem.with_name(stem.name + ".json"), 1
    while path.exists():
        n += 1
        path = stem.with_name(f"{stem.name}-{n}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, default=str) + "\n")
    return path


SCALE_STEPS = ("floor", "duckdb", "spark", "ingest", "incremental")


def _growth_row(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any] | None:
    if "wall_seconds" not in a or "wall_seconds" not in b:
        return None
    return {
        "wall_seconds": [a["wall_seconds"], b["wall_seconds"]],
        "time_growth": _ratio(b["wall_seconds"], a["wall_seconds"]),
        "peak_rss_mb_jvm": [a.get("peak_rss_mb_jvm"), b.get("peak_rss_mb_jvm")],
        "peak_rss_mb_python": [a.get("peak_rss_mb_python"), b.get("peak_rss_mb_python")],
        "memory_growth": _ratio(b.get("peak_rss_mb"), a.get("peak_rss_mb")),
    }


def scale_report(small: dict[str, Any], big: dict[str, Any], factor: float) -> dict[str, Any]:
    """Growth of every step from one run to a run on ``factor`` times its data; ``time_limit`` is the
    target's 4.4x per 4x, in proportion for another factor."""
    out: dict[str, Any] = {
        "factor": factor,
        "time_limit": round(TARGETS["scale_time_growth_4x"] * factor / 4, 2),
        "sources": {},
    }
    for source, a in small["sources"].items():
        b = big["sources"].get(source, {})
        row: dict[str, Any] = {"records": [a.get("records"), b.get("records")]}
        for step in SCALE_STEPS:
            g = _growth_row(a.get(step, {}), b.get(step, {}))
            if g is not None:
                row[step] = g
        out["sources"][source] = row
    for key in ("aggregates", "pipeline_hour"):
        g = _growth_row(small.get(key) or {}, big.get(key) or {})
        if g is not None:
            out[key] = g
    return out


def scale_curve(runs: list[tuple[float, dict[str, Any]]]) -> dict[str, Any]:
    """The curve over runs at increasing factors of one base scale: each step's growth (time and
    memory) from the run before, and the ingests whose time grew more than the limit."""
    steps = [
        {"from": fa, "to": fb, **scale_report(ra, rb, fb / fa)}
        for (fa, ra), (fb, rb) in itertools.pairwise(runs)
    ]
    over = [
        f"{source} ingest {s['from']:g}x -> {s['to']:g}x: {row['ingest']['time_growth']}x"
        for s in steps
        for source, row in s["sources"].items()
        if "ingest" in row
        and row["ingest"]["time_growth"] is not None
        and row["ingest"]["time_growth"] > s["time_limit"]
    ]
    return {"factors": [f for f, _ in runs], "steps": steps, "ingest_time_over_limit": over}


def scale_markdown(curve: dict[str, Any]) -> str:
    lines: list[str] = []
    for s in curve["steps"]:
        a, b = f"{s['from']:g}x", f"{s['to']:g}x"
        lines += [
            f"Scaling {a} -> {b} (target: time growth <= {s['time_limit']:.2f}, memory flat)",
            "",
            f"| source | step | {a} s | {b} s | time growth | peak MB JVM {a} / {b} | peak MB py {a} / {b} | memory growth |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        rows = [
            (src, step, row[step]) for src, row in s["sources"].items() for step in SCALE_STEPS if step in row
        ]
        rows += [("all", key, s[key]) for key in ("aggregates", "pipeline_hour") if key in s]
        for src, step, g in rows:
            lines.append(
                f"| {src} | {step} | {g['wall_seconds'][0]} | {g['wall_seconds'][1]} | {_fmt(g['time_growth'])} "
                f"| {g['peak_rss_mb_jvm'][0]} / {g['peak_rss_mb_jvm'][1]} "
                f"| {g['peak_rss_mb_python'][0]} / {g['peak_rss_mb_python'][1]} | {_fmt(g['memory_growth'])} |"
            )
        lines.append("")
    over = curve["ingest_time_over_limit"]
    lines.append("Ingest time over the limit: " + ("; ".join(over) if over else "none"))
    return "\n".join(lines)


def parse_factors(text: str) -> list[float]:
    """``"4,16"`` -> [1.0, 4.0, 16.0]: the base run and then each factor of it, increasing."""
    try:
        factors = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SystemExit(f"--factor: not a comma list of numbers: {text!r}") from None
    if not factors or any(b <= a for a, b in itertools.pairwise([1.0, *factors])):
        raise SystemExit(f"--factor: factors must increase from above 1, e.g. 4,16; got {text!r}")
    return [1.0, *factors]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=["run", "scale"])
    parser.add_argument("--scale", type=float, default=float(os.environ.get("SCALE", "1") or 1))
    parser.add_argument(
        "--factor",
        default="4,16",
        help="scale mode: comma list of factors of --scale, run after the base run (default 4,16: 1x, 4x, 16x)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", default=str(ROOT / "build" / "bench"))
    parser.add_argument("--sources", default=",".join(SOURCES))
    parser.add_argument(
        "--skip",
        default="",
        help="comma list of steps to skip: floor,duckdb,spark,ingest,aggregates,pipeline,history",
    )
    parser.add_argument(
        "--source-scale",
        action="append",
        default=[],
        metavar="SOURCE=SCALE",
        help="a source's own scale, e.g. s3access=33 (2M lines) beside cloudtrail at --scale 7",
    )
    parser.add_argument(
        "--s3-lines-per-object",
        type=int,
        default=S3_LINES_PER_OBJECT,
        help="mean lines in an S3 access-log object: 400 puts scale 33's 2M lines in about 5,000 objects",
    )
    parser.add_argument(
        "--jvm-options",
        default=None,
        metavar="OPTIONS",
        help="the local driver JVM's options for every Spark step (conf/local.yaml's "
        'spark.driver_java_options, C1 only); "" runs the JVM\'s own tiered compilers, as EMR and Glue do',
    )
    parser.add_argument(
        "--driver-memory",
        default=None,
        metavar="SIZE",
        help="the local driver JVM's heap for every Spark step (conf/local.yaml's spark.driver.memory, "
        "2g), e.g. 4g: the JVM's peak memory follows it",
    )
    parser.add_argument(
        "--no-record", action="store_true", help="do not write bench/results or bench/README.md"
    )
    args = parser.parse_args(argv)
    if args.jvm_options is not None:
        # Every step is a subprocess with this environment: the jobs and the baselines alike.
        os.environ[JVM_OPTIONS_ENV] = args.jvm_options
    if args.driver_memory is not None:
        os.environ[DRIVER_MEMORY_ENV] = args.driver_memory
    sources = [s for s in args.sources.split(",") if s]
    skip = {s for s in args.skip.split(",") if s}
    source_scales = {k: float(v) for k, _, v in (x.partition("=") for x in args.source_scale)}
    work = Path(args.work)
    if args.mode == "run":
        result = run_bench(
            args.scale, args.seed, work, sources, skip, source_scales, args.s3_lines_per_object
        )
        table = markdown(result)
        print("\n" + table)
        if not args.no_record:
            path = save(result)
            update_readme(result, table, ROOT / "bench" / "README.md")
            print(f"\nresults: {path.relative_to(ROOT)}; table kept in bench/README.md")
        failed = [
            s
            for s, r in result["sources"].items()
            for step in ("ingest", "incremental")
            if r.get(step, {}).get("exit_code") not in (None, 0)
        ]
        return 1 if failed else 0
    factors = parse_factors(args.factor)
    runs = [(f, run_bench(args.scale * f, args.seed, work, sources, skip)) for f in factors]
    curve = scale_curve(runs)
    text = scale_markdown(curve)
    print("\n" + "\n\n".join(markdown(r) for _, r in runs) + "\n\n" + text)
    if not args.no_record:
        base = runs[0][1]
        path = save(
            {
                "date": base["date"],
                "commit": base["commit"],
                "scale": args.scale,
                "runs": {f"{f:g}x": r for f, r in runs},
                "scaling": curve,
            },
            suffix="-scale" + "-".join(f"{f:g}x" for f in factors[1:]),
        )
        print(f"\nresults: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
