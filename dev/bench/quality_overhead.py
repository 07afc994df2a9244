"""Time the data-quality gate on a cached synthetic cloudtrail_events batch against a plain count.

    PYTHONPATH=lib:dev python -m bench.quality_overhead [--rows 400000] [--repeat 3]

Prints: materialize (build + cache), plain count on the cached batch, validate_batch on a clean
batch (one flags-only pass) and on a batch with planted failures (adds the detail pass).
"""

from __future__ import annotations

import argparse
import logging
import time

import pyspark.sql.functions as F

from auditlake import quality
from auditlake.config import load_config
from auditlake.session import build_session
from auditlake.tables import load_contract

_FIXED = {
    "recipient_account_id": "111122223333",
    "event_category": "Management",
    "event_type": "AwsApiCall",
    "aws_region": "us-east-1",
    "source_object": "s3://logs/AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/x.json.gz",
}
_USER_TYPES = ["IAMUser", "AssumedRole", "AWSService", "Root"]


def synthetic_batch(spark, rows: int):
    contract = load_contract("cloudtrail_events")
    base = spark.range(rows).select(
        F.sha2(F.col("id").cast("string"), 256).alias("event_id"),
        (F.lit(1_700_000_000) + F.col("id") * 7).cast("timestamp").alias("event_time"),
        F.col("id"),
    )
    cols = []
    for col in contract.columns:
        if col.name in ("event_id", "event_time"):
            cols.append(F.col(col.name))
        elif col.name == "event_date":
            cols.append(F.to_date("event_time").alias(col.name))
        elif col.name in _FIXED:
            cols.append(F.lit(_FIXED[col.name]).alias(col.name))
        elif col.name == "user_type":
            cols.append(
                F.element_at(F.array(*map(F.lit, _USER_TYPES)), (F.col("id") % 4 + 1).cast("int")).alias(
                    col.name
                )
            )
        elif col.type == "string":
            cols.append(F.concat(F.lit(col.name + "-"), F.col("event_id").substr(1, 12)).alias(col.name))
        else:
            cols.append(F.lit(None).cast(contract.schema[col.name].dataType).alias(col.name))
    return base.select(*cols)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cfg = load_config(
        "local", {"spark": {"master": "local[2]", "conf": {"spark.ui.showConsoleProgress": False}}}
    )
    spark = build_session(cfg, "quality-overhead")
    spark.sparkContext.setLogLevel("ERROR")

    t = time.perf_counter()
    clean = synthetic_batch(spark, args.rows).cache()
    n = clean.count()
    print(f"rows={n} materialize+cache {time.perf_counter() - t:.2f}s")
    planted = (
        clean.withColumn(
            "user_type", F.when(F.col("event_id").startswith("ff"), "Alien").otherwise(F.col("user_type"))
        )
        .withColumn(
            "event_date",
            F.when(F.col("event_id").startswith("fe"), F.date_add("event_date", 1)).otherwise(
                F.col("event_date")
            ),
        )
        .cache()
    )
    planted.count()
    for i in range(args.repeat):
        t = time.perf_counter()
        clean.count()
        count_s = time.perf_counter() - t
        t = time.perf_counter()
        ok = quality.validate_batch(
            spark, "cloudtrail_events", clean, run_id="bench", cfg=cfg, expected_row_count=n
        )
        clean_s = time.perf_counter() - t
        t = time.perf_counter()
        bad = quality.validate_batch(
            spark, "cloudtrail_events", planted, run_id="bench", cfg=cfg, expected_row_count=n
        )
        bad_s = time.perf_counter() - t
        print(
            f"round {i}: plain count {count_s:.2f}s | validate clean {clean_s:.2f}s ({ok.status}, "
            f"{len(ok.results)} expectations) | validate planted {bad_s:.2f}s ({bad.status}: "
            f"{len(bad.failures)} critical, {len(bad.warnings)} warning)"
        )
    print(bad.message()[:400])
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
