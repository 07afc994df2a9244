"""S3 access log ingest benchmark: listing, Spark parse, full job, and DuckDB's regex parse.

    python -m bench.s3_access --src build/bench-s3access/src/s3access --work build/bench-s3access/work [--skip-job]

Every phase runs on the same machine in the same run. DuckDB parses the same lines with one
regular expression (the parser's own pattern, in RE2 syntax) into request_date-partitioned
Parquet; Spark's "parse only" phase does the same with the source's transforms (no Delta, no
ledger), and the full job is ``jobs/ingest_s3_access.py`` end to end (Delta MERGE, quarantine,
ledger, run record).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from devtools import REPO, job_env


def duckdb_parse(src: str, out: str, threads: int) -> tuple[float, int]:
    import duckdb

    from auditlake.sources.s3_access import GROUPS, LINE_PATTERN

    pattern = LINE_PATTERN.replace("(?<", "(?P<")
    names = ", ".join(f"'{g}'" for g in GROUPS)
    con = duckdb.connect()
    con.execute(f"SET threads={threads}")
    t = time.monotonic()
    con.execute(f"""
        COPY (
          WITH lines AS (
            SELECT filename, line FROM read_csv('{src}/**', columns={{'line': 'VARCHAR'}}, delim='\\x01',
                   quote='', escape='', header=false, auto_detect=false, filename=true)
          ), p AS (
            SELECT filename, line, regexp_extract(line, $pat, [{names}]) AS r FROM lines
          ), t AS (
            SELECT *, try_strptime(r.day || '/' || r.mon || '/' || r.year || ':' || r.hms || ' ' || r.tzh || r.tzm,
                                   '%d/%b/%Y:%H:%M:%S %z') AS request_time FROM p
          )
          SELECT nullif(r.owner, '-') AS bucket_owner, nullif(r.bucket, '-') AS bucket, request_time,
                 CAST(request_time AS DATE) AS request_date, nullif(r.ip, '-') AS remote_ip,
                 nullif(r.requester, '-') AS requester, nullif(r.reqid, '-') AS request_id, r.op AS operation,
                 url_decode(nullif(r.key, '-')) AS key, nullif(r.uri, '') AS request_uri,
                 nullif(r.method, '') AS http_method, nullif(r.path, '') AS request_path,
                 nullif(r.ver, '') AS http_version, TRY_CAST(nullif(r.status, '-') AS INT) AS http_status,
                 nullif(r.err, '-') AS error_code, TRY_CAST(nullif(r.bytes, '-') AS BIGINT) AS bytes_sent,
                 TRY_CAST(nullif(r.size, '-') AS BIGINT) AS object_size,
                 TRY_CAST(nullif(r.total, '-') AS INT) AS total_time_ms,
                 TRY_CAST(nullif(r.turn, '-') AS INT) AS turn_around_time_ms,
                 nullif(r.referer, '') AS referer, nullif(r.ua, '') AS user_agent,
                 nullif(r.versionid, '-') AS version_id, nullif(r.hostid, '') AS host_id,
                 nullif(r.sigv, '') AS signature_version, nullif(r.cipher, '') AS cipher_suite,
                 nullif(r.auth, '') AS auth_type, nullif(r.hosthdr, '') AS host_header,
                 nullif(r.tls, '') AS tls_version, nullif(r.aparn, '') AS access_point_arn,
                 r.acl = 'Yes' AS acl_required, string_split(nullif(r.extra, ''), ' ') AS extra_fields,
                 filename AS source_object, sha256(line) AS line_hash
          FROM t WHERE request_time IS NOT NULL
        ) TO '{out}' (FORMAT parquet, PARTITION_BY (request_date), OVERWRITE_OR_IGNORE)
    """, {"pat": pattern})
    elapsed = time.monotonic() - t
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{out}/**/*.parquet')").fetchone()[0]
    return elapsed, rows


def spark_phases(src: str, work: str) -> dict[str, float]:

    from auditlake.config import load_config
    from auditlake.ingest.objects import list_objects
    from auditlake.session import build_session
    from auditlake.sources.s3_access import S3AccessSource, parse_lines, read_objects, split_lines

    cfg = load_config("local", {"spark": {"conf": {"spark.ui.showConsoleProgress": False}}})
    spark = build_session(cfg, "bench-s3access")
    out: dict[str, float] = {}
    t = time.monotonic()
    objects = list_objects(spark, src)
    out["list_objects_s"] = time.monotonic() - t
    src_ = S3AccessSource()
    todo = [o for o in objects if src_.classify(o) is None]
    out["objects"] = len(todo)
    t = time.monotonic()
    raw = read_objects(spark, todo)
    out["spark_file_index_s"] = time.monotonic() - t  # Spark's own listing of the explicit paths
    t = time.monotonic()
    parsed = raw.transform(split_lines).transform(parse_lines)
    # Every parsed line, good or bad, as the job's cached batch holds them. No filter on
    # `reason` here: Spark pushes such a filter below the projections and inlines the fields
    # into it, so the line regex would run once per field the reason reads (the job filters
    # its cached batch instead, so it never pays that).
    (parsed.drop("line")
     .write.mode("overwrite").partitionBy("request_date").parquet(os.path.join(work, "spark_parquet")))
    out["spark_parse_to_parquet_s"] = time.monotonic() - t
    spark.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--skip-job", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    lines = sum(1 for p in Path(args.src).rglob("*") if p.is_file() for _ in open(p, "rb"))
    result: dict[str, object] = {"lines": lines, "cpus": os.cpu_count(), "load_avg_at_start": os.getloadavg()[0]}

    duck_out = os.path.join(args.work, "duckdb_parquet")
    shutil.rmtree(duck_out, ignore_errors=True)
    result["duckdb_regex_to_parquet_s"], result["duckdb_rows"] = duckdb_parse(args.src, duck_out, os.cpu_count() or 2)
    result.update(spark_phases(args.src, args.work))

    if not args.skip_job:
        lake = os.path.join(args.work, "lake")
        shutil.rmtree(lake, ignore_errors=True)
        t = time.monotonic()
        proc = subprocess.run(
            [sys.executable, str(REPO / "jobs" / "ingest_s3_access.py"), "--source", args.src, "--lake", lake,
             "--conf", "spark.conf.spark.ui.showConsoleProgress=false"],
            capture_output=True, text=True, env=job_env(),
        )
        result["job_wall_s"] = time.monotonic() - t
        result["job_exit"] = proc.returncode
        result["job_summary"] = [ln for ln in proc.stdout.splitlines() if ln.startswith(("run ", "  "))]
        if proc.returncode:
            result["job_stderr_tail"] = proc.stderr.splitlines()[-5:]
        result["job_lines_per_s"] = round(lines / result["job_wall_s"])
        result["job_vs_duckdb"] = round(result["job_wall_s"] / result["duckdb_regex_to_parquet_s"], 2)
    result["spark_parse_lines_per_s"] = round(lines / result["spark_parse_to_parquet_s"])
    result["spark_parse_vs_duckdb"] = round(result["spark_parse_to_parquet_s"] / result["duckdb_regex_to_parquet_s"], 2)
    result["load_avg_at_end"] = os.getloadavg()[0]
    print(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
