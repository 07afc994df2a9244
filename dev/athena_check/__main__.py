"""`make athena-check`: judge everything auditlake hands to Athena with a real Trino server.

Steps (each failure names the table, column or query):

1. raw logs: the test fixtures (tests/fixtures) plus a scenario with known answers (dev/athena_check/scenario.py);
2. a lake built from them with the real jobs (``jobs/run_pipeline.py --detect``: the ingests, the aggregates and the detections in one session);
3. the Athena DDL that ``jobs/athena_ddl.py`` generates for ``s3://<check bucket>/lake``;
4. the answers to every query of ``queries/`` computed with Spark from the lake tables, plus each
   table's row count and the row count of one partition;
5. a single-node Trino (dev/athena_check/trino_server.py) over the same folder: the DDL, translated where
   Trino's DDL differs from Athena's (athena_check.trino_ddl says which and why), then
   - every column's type read back from Trino against the schema file,
   - every table's partition column declared as such and usable in WHERE,
   - every query run and its rows compared with Spark's.
   The server is stopped at the end, also on failure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ["TZ"] = "UTC"  # Spark's collect() turns timestamps into local-time datetimes
time.tzset()

from athena_check import expected as athena_expected  # noqa: E402
from athena_check import scenario, trino_ddl  # noqa: E402
from athena_check.trino_server import trino_server  # noqa: E402
from auditlake.athena import ddl, queries  # noqa: E402
from auditlake.pipeline import INGESTS  # noqa: E402
from auditlake.tables import TableContract, list_contracts, load_contract  # noqa: E402
from devtools import REPO, job_env  # noqa: E402

log = logging.getLogger("athena_check")

CHECK_LAKE = "s3://auditlake-athena-check/lake"
DATABASE = "auditlake"
LOCAL_ROOT = "local:///lake"  # Trino's view of <work>/root/lake

INGEST_JOBS = (
    ("ingest_cloudtrail", "cloudtrail"),
    ("ingest_s3_access", "s3access"),
    ("ingest_crawler_logs", "crawler"),
)
PIPELINE_JOB = "run_pipeline"  # the three ingests, then the aggregates, in one session

# Parameter values per query, chosen so that the scenario gives each query rows to return.
PARAMS: dict[str, dict[str, Any] | list[dict[str, Any]]] = {
    "who_deleted_table": {
        "database": "sales",
        "table": "orders",
        "start_date": "2024-03-01",
        "end_date": "2024-03-31",
    },
    "permission_changes": {"start_date": "2024-03-01", "end_date": "2024-03-31"},
    "data_access_by_principal": {"start_date": "2024-03-01", "end_date": "2024-03-31"},
    "queries_from_untrusted_networks": {
        "start_date": "2024-03-01",
        "end_date": "2024-03-31",
        "trusted_cidrs": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"],
    },
    "top_remote_ips": {"bucket": scenario.BUCKET, "day": scenario.DAY1},
    "requests_by_status": {"bucket": scenario.BUCKET, "start_date": "2024-03-01", "end_date": "2024-03-31"},
    "object_requests": {
        "bucket": scenario.BUCKET,
        "key": "exports/orders.csv",
        "start_date": "2024-03-01",
        "end_date": "2024-03-31",
    },
    "requests_by_operation": {
        "bucket": scenario.BUCKET,
        "start_date": "2024-03-01",
        "end_date": "2024-03-31",
    },
    "distinct_requesters": {"bucket": scenario.BUCKET, "start_date": "2024-03-01", "end_date": "2024-03-31"},
    "failed_crawlers": {"day": scenario.DAY1},
    "crawler_error_count_daily": {"start_date": "2024-03-01", "end_date": "2024-03-31"},
    "access_denied_spikes": {"start_date": "2024-03-01", "end_date": "2024-03-31", "min_denied": 3},
    # One case per kind of entity; the scenario plants each in both CloudTrail and S3 access logs.
    "entity_timeline": [
        {"entity": scenario.ERIN_ROLE, "start_date": "2024-03-01", "end_date": "2024-03-31"},
        {"entity": scenario.TIMELINE_IP, "start_date": "2024-03-01", "end_date": "2024-03-31"},
        # A role ARN with a path still finds the sessions (their ARNs name the role without it).
        {
            "entity": scenario.ERIN_ROLE.replace(":role/", ":role/analytics/"),
            "start_date": "2024-03-01",
            "end_date": "2024-03-31",
        },
    ],
}
# Queries whose ORDER BY is part of the answer: rows are compared in order, not as a set.
ORDERED = {"entity_timeline"}


def query_cases(name: str) -> list[tuple[str, dict[str, Any]]]:
    """(label, parameter values) for each run of a query: one, or one per case of a list."""
    params = PARAMS[name]
    if isinstance(params, list):
        return [(f"{name}[{i}]", p) for i, p in enumerate(params)]
    return [(name, params)]


class CheckFailed(Exception):
    pass


# --- 1-2: sources and lake ---------------------------------------------------------------------


def build_lake(work: Path, fixtures: Path) -> Path:
    """The lake the check reads, built by the job scripts as deployed.

    The nightly pipeline (``jobs/run_pipeline.py``: the three ingests in parallel threads of one
    session, then the aggregates, then with ``--detect`` the detections): one JVM instead of five.
    """
    sources = scenario.write_sources(work / "source", fixtures)
    lake = work / "root" / "lake"
    env = job_env()
    options = {job: option for job, option, _ in INGESTS}
    pipeline = [f"{options[job]}={sources[src]}" for job, src in INGEST_JOBS]
    # One JVM for three ingests, the aggregates and the detections: long-lived enough for C2 to
    # pay off (docs/operations.md, "Local JVM"), so not conf/local.yaml's C1 only.
    tiered = ["--conf", "spark.driver_java_options="]
    for job, extra in ((PIPELINE_JOB, [*pipeline, "--parallel", "--detect", *tiered]),):
        script = REPO / "jobs" / f"{job}.py"
        cmd = [sys.executable, str(script), "--lake", str(lake), *extra]
        started = time.monotonic()
        proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
        log.info("job %s: exit %d in %.0fs", job, proc.returncode, time.monotonic() - started)
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or "").strip().splitlines()[-15:])
            raise CheckFailed(f"job {job} failed with exit {proc.returncode}:\n{tail}")
    return lake


# --- value normalisation for comparing Spark and Trino rows ----------------------------------


def norm(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.replace(microsecond=value.microsecond // 1000 * 1000).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, list | tuple):
        return tuple(norm(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((norm(k), norm(v)) for k, v in value.items()))
    if hasattr(value, "asDict"):
        return tuple(norm(v) for v in value)
    return value


def norm_rows(rows: list, ordered: bool = False) -> list[tuple]:
    normed = [tuple(norm(v) for v in r) for r in rows]
    return normed if ordered else sorted(normed, key=repr)


# --- 4: Spark side ---------------------------------------------------------------------------


def spark_expectations(lake: Path, contracts: list[TableContract]) -> dict[str, Any]:
    from auditlake.config import load_config
    from auditlake.lake import read_table
    from auditlake.session import build_session

    # Small-data settings (as in tests/conftest.py): the lake is a few hundred rows.
    cfg = load_config(
        "local",
        {
            "spark": {
                "master": "local[2]",
                "conf": {
                    "spark.sql.shuffle.partitions": 2,
                    "spark.default.parallelism": 2,
                    "spark.databricks.delta.snapshotPartitions": 2,
                    "spark.sql.adaptive.coalescePartitions.initialPartitionNum": 2,
                    "spark.ui.enabled": False,
                    "spark.ui.showConsoleProgress": False,
                },
            }
        },
    )
    spark = build_session(cfg, "auditlake-athena-check")
    out: dict[str, Any] = {"tables": {}, "queries": {}}
    try:
        cache: dict[str, Any] = {}

        def read(name: str):
            if name not in cache:
                cache[name] = read_table(spark, str(lake), name).cache()
            return cache[name]

        for c in contracts:
            df = read(c.name)
            info: dict[str, Any] = {"rows": df.count(), "partition": None}
            if c.partition_by:
                part = c.partition_by[0]
                first = df.where(df[part].isNotNull()).groupBy(part).count().orderBy(part).limit(1).collect()
                if first:
                    info["partition"] = (part, first[0][0], first[0][1])
            out["tables"][c.name] = info
        for name in queries.list_queries():
            fn = athena_expected.EXPECTED.get(name)
            if fn is None:
                raise CheckFailed(f"query {name}: no Spark computation in dev/athena_check/expected.py")
            for label, params in query_cases(name):
                df = fn(spark, read, params)
                out["queries"][label] = {
                    "columns": df.columns,
                    "rows": norm_rows(df.collect(), name in ORDERED),
                }
    finally:
        spark.stop()
    return out


# --- 5: Trino side ---------------------------------------------------------------------------


def expected_trino_type(type_text: str, connector: str) -> str:
    """The type Trino must report for a contract column, per connector.

    Hive (Parquet external tables) reads ``timestamp`` as ``timestamp(3)`` (Athena's precision);
    Trino's Delta connector reports Delta's UTC-adjusted ``timestamp`` as
    ``timestamp(3) with time zone``. Everything else maps one to one.
    """
    from auditlake.tables import parse_type

    spelled = trino_ddl.trino_type(parse_type(type_text)).replace('"', "")
    if connector == "delta":
        spelled = spelled.replace("timestamp(3)", "timestamp(3) with time zone")
    return spelled


def _fetch(cur, sql: str, wait_for_nodes: float = 60.0) -> list:
    """Run ``sql`` and return its rows.

    Trino announces a catalog's nodes a few seconds after the server reports it is up: until
    then a query that scans that catalog fails with "No nodes available to run query". Such a
    query is retried for up to ``wait_for_nodes`` seconds; every other error is raised at once.
    """
    deadline = time.monotonic() + wait_for_nodes
    while True:
        try:
            cur.execute(sql)
            return cur.fetchall()
        except Exception as exc:
            if "No nodes available to run query" not in str(exc) or time.monotonic() > deadline:
                raise
            log.info("Trino has no active node for the catalog yet; retrying")
            time.sleep(1)


def check_in_trino(
    server,
    statements: list[tuple[str, str]],
    contracts: list[TableContract],
    expected: dict[str, Any],
    failures: list[str],
) -> dict[str, float]:
    timings: dict[str, float] = {}
    conn = server.connect(catalog="hive", schema=DATABASE)
    cur = conn.cursor()
    for obj, sql in statements:
        try:
            _fetch(cur, sql)
        except Exception as exc:  # noqa: BLE001 - reported with the table's name
            failures.append(f"table {obj}: Trino rejected the translated DDL: {_msg(exc)}\n{sql}")
    for c in contracts:
        connector = "delta" if c.format == "delta" else "hive"
        try:
            cols = _fetch(
                cur,
                "SELECT column_name, data_type FROM information_schema.columns "
                f"WHERE table_schema = '{DATABASE}' AND table_name = '{c.name}' ORDER BY ordinal_position",
            )
        except Exception as exc:  # noqa: BLE001
            failures.append(f"table {c.name}: cannot describe: {_msg(exc)}")
            continue
        got = {name: dtype.replace('"', "") for name, dtype in cols}
        if not got:
            failures.append(f"table {c.name}: not visible in Trino")
            continue
        for col in c.columns:
            want = expected_trino_type(col.type, connector)
            if col.name not in got:
                failures.append(f"table {c.name} column {col.name}: missing in Trino")
            elif got[col.name] != want:
                failures.append(
                    f"table {c.name} column {col.name}: Trino reads {got[col.name]}, schema promises "
                    f"{col.type} (expected {want})"
                )
        extra = set(got) - set(c.column_names)
        if extra:
            failures.append(f"table {c.name}: columns not in the schema file: {sorted(extra)}")
        info = expected["tables"][c.name]
        try:
            n = _fetch(cur, f'SELECT count(*) FROM "{c.name}"')[0][0]
            if n != info["rows"]:
                failures.append(f"table {c.name}: Trino counts {n} rows, Spark {info['rows']}")
            if c.partition_by:
                create = _fetch(cur, f'SHOW CREATE TABLE "{c.name}"')[0][0]
                if f"partitioned_by = ARRAY['{c.partition_by[0]}']" not in create:
                    failures.append(f"table {c.name}: {c.partition_by[0]} is not a partition column in Trino")
            if info["partition"]:
                part, value, count = info["partition"]
                lit = (
                    f"DATE '{value.isoformat()}'"
                    if isinstance(value, dt.date)
                    else "'" + str(value).replace("'", "''") + "'"
                )
                n = _fetch(cur, f'SELECT count(*) FROM "{c.name}" WHERE "{part}" = {lit}')[0][0]
                if n != count:
                    failures.append(
                        f"table {c.name}: WHERE {part} = {lit} gives {n} rows in Trino, {count} in Spark"
                    )
            _fetch(cur, f'SELECT * FROM "{c.name}" LIMIT 5')  # every column decodes
        except Exception as exc:  # noqa: BLE001
            failures.append(f"table {c.name}: query failed in Trino: {_msg(exc)}")
    cases = [(q, label, p) for q in queries.list_queries() for label, p in query_cases(q)]
    for qname, name, params in cases:
        query = queries.load_query(qname)
        sql = queries.render(query, params)
        want = expected["queries"][name]
        started = time.monotonic()
        try:
            rows = _fetch(cur, sql)
            columns = [d[0] for d in cur.description]
        except Exception as exc:  # noqa: BLE001
            failures.append(f"query {name}: Trino rejected it: {_msg(exc)}")
            continue
        timings[name] = time.monotonic() - started
        if columns != want["columns"]:
            failures.append(f"query {name}: columns {columns}, Spark computed {want['columns']}")
        got = norm_rows(rows, qname in ORDERED)
        if got != want["rows"]:
            failures.append(
                f"query {name}: {len(got)} rows differ from Spark's {len(want['rows'])}:\n"
                f"  trino: {got[:5]}\n  spark: {want['rows'][:5]}"
            )
        elif not got:
            failures.append(f"query {name}: no rows in the check lake, so the check proves nothing")
        else:
            log.info("query %s: %d rows match Spark (%.1fs)", name, len(got), timings[name])
    return timings


def _msg(exc: Exception) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return " ".join(str(text).split())[:400]


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=str(REPO / "build" / "athena-check"))
    parser.add_argument(
        "--fixtures",
        default=str(REPO / "tests" / "fixtures"),
        help="the fixture tree the lake is built from, with the scenario",
    )
    parser.add_argument("--lake", help="use this existing lake instead of building one with the jobs")
    args = parser.parse_args(argv)
    # SIGTERM (CI timeout, kill) unwinds like Ctrl-C, so the server's `finally` stops Trino.
    signal.signal(signal.SIGTERM, _terminate)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("py4j", "urllib3", "trino"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    work = Path(args.work).resolve()
    t0 = time.monotonic()
    failures: list[str] = []
    try:
        if args.lake:
            root = work / "root"
            if root.exists():
                shutil.rmtree(root)
            root.mkdir(parents=True)
            shutil.copytree(Path(args.lake).resolve(), root / "lake")
            lake = root / "lake"
        else:
            if work.exists():
                shutil.rmtree(work)
            lake = build_lake(work, Path(args.fixtures))
        t_lake = time.monotonic()
        contracts = [load_contract(n) for n in list_contracts()]
        missing = [
            c.name for c in contracts if c.format == "delta" and not (lake / c.name / "_delta_log").is_dir()
        ]
        if missing:
            raise CheckFailed(f"tables not in the lake after the jobs: {', '.join(missing)}")
        specs = ddl.all_table_specs(CHECK_LAKE, DATABASE)
        script = ddl.render_ddl(specs)
        (work / "athena_ddl.sql").write_text(script)
        statements = trino_ddl.translate_script(script, CHECK_LAKE, LOCAL_ROOT)
        (work / "trino_ddl.sql").write_text("".join(f"-- {o}\n{s};\n\n" for o, s in statements))
        # An S3 prefix always "exists" for Athena; Trino's local file system needs the folder of
        # an external table to exist, and an aggregate with no rows yet has none.
        for c in contracts:
            (lake / c.name).mkdir(parents=True, exist_ok=True)
        expected = spark_expectations(lake, contracts)
        t_spark = time.monotonic()
        with trino_server(work / "root", work / "trino") as server:
            t_up = time.monotonic()
            check_in_trino(server, statements, contracts, expected, failures)
        t_end = time.monotonic()
        log.info(
            "timings: lake %.0fs, spark %.0fs, trino start %.0fs, trino checks %.0fs, total %.0fs",
            t_lake - t0,
            t_spark - t_lake,
            t_up - t_spark,
            t_end - t_up,
            t_end - t0,
        )
    except CheckFailed as exc:
        failures.append(str(exc))
    for f in failures:
        print(f"athena-check: FAIL: {f}", file=sys.stderr)
    if failures:
        print(f"athena-check: {len(failures)} failure(s)", file=sys.stderr)
        return 1
    print(
        f"athena-check: OK: {len(list_contracts())} tables and {len(queries.list_queries())} queries "
        f"agree between Trino and Spark"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
