"""Concurrent writers on one S3 lake through Delta's DynamoDB log store (moto's server on loopback).

    python -m lakechaos.writers --endpoint http://127.0.0.1:PORT --lake s3a://bucket/lake \
        --ddb-table delta_log --writers 2 --rounds 3

Builds a session with ``delta.log_store: dynamodb`` pointed at the endpoint (S3 and DynamoDB on
one port), then starts ``--writers`` threads, each in its own Spark session with its own run tag,
each merging ``--rounds`` batches into one table through ``auditlake.lake`` (the same retried,
idempotent writes the jobs use). Every batch overlaps the other writers' keys, so their commits
conflict. Prints one JSON line: rows, distinct keys, commits and what each writer inserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import threading


def _session(endpoint: str, table: str):
    from auditlake.config import load_config
    from auditlake.session import build_session

    cfg = load_config(
        "local",
        {
            "spark": {"master": "local[2]", "conf": {"spark.sql.shuffle.partitions": 2}},
            "s3": {"endpoint": endpoint, "region": "us-east-1"},
            "delta": {
                "log_store": "dynamodb",
                "dynamodb": {
                    "table": table,
                    "region": "us-east-1",
                    "endpoint": endpoint,
                    "schemes": ["s3a"],
                    "credentials_provider": "com.amazonaws.auth.EnvironmentVariableCredentialsProvider",
                },
            },
        },
    )
    return build_session(cfg, "auditlake-ddb-writers")


def _batch(spark, writer: int, rnd: int):
    """Rows of cloudtrail_insights: 4 shared by every writer in this round, 2 of this writer's own."""
    from auditlake.tables import load_contract

    contract = load_contract("cloudtrail_insights")
    day = dt.date(2024, 5, 1 + rnd % 2)
    ids = [f"shared-{rnd}-{i}" for i in range(4)] + [f"own-{writer}-{rnd}-{i}" for i in range(2)]
    rows = []
    for event_id in ids:
        row = {c: None for c in contract.column_names}
        row.update(
            event_id=event_id,
            recipient_account_id="111122223333",
            event_date=day,
            event_time=dt.datetime(day.year, day.month, day.day, 12),
            source_object="s3a://raw/x.json.gz",
        )
        rows.append(tuple(row[c] for c in contract.column_names))
    return spark.createDataFrame(rows, contract.schema)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lakechaos.writers")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--lake", required=True)
    parser.add_argument("--ddb-table", default="delta_log")
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    from auditlake import commits
    from auditlake import lake as lake_mod
    from auditlake.tables import load_contract

    spark = _session(args.endpoint, args.ddb_table)
    # Created once up front: the race on a table's creation is covered by the local tests.
    lake_mod.ensure_delta_table(spark, args.lake, load_contract("cloudtrail_insights"))
    inserted: dict[int, int] = {}
    errors: list[str] = []
    barrier = threading.Barrier(args.writers)

    def write(writer: int) -> None:
        session = spark.newSession()
        commits.tag_commits(session, f"writer-{writer}", "ddb_writers")
        try:
            barrier.wait()
            total = 0
            for rnd in range(args.rounds):
                total += lake_mod.merge_new_rows(
                    session, _batch(session, writer, rnd), args.lake, "cloudtrail_insights"
                )
            inserted[writer] = total
        except Exception as exc:  # noqa: BLE001 - reported in the summary line
            errors.append(f"writer {writer}: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")

    threads = [threading.Thread(target=write, args=(w,)) for w in range(args.writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    df = lake_mod.read_table(spark, args.lake, "cloudtrail_insights")
    uri = lake_mod.table_uri(args.lake, "cloudtrail_insights")
    conf = spark.sparkContext.getConf()
    print(
        json.dumps(
            {
                "rows": df.count(),
                "distinct_keys": df.select("event_id", "recipient_account_id").distinct().count(),
                "latest_version": commits.latest_version(spark, uri),
                "inserted_by_writer": {str(k): v for k, v in sorted(inserted.items())},
                "errors": errors,
                "log_store": conf.get("spark.delta.logStore.s3a.impl", None),
            }
        )
    )
    spark.stop()
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
