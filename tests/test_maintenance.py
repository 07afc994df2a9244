"""Table maintenance: compaction to the target, contents unchanged, retention, a safe VACUUM."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections import Counter

from chispa import assert_df_equality

from auditlake import lake as lake_mod
from auditlake.cli import run_job
from auditlake.maintenance import JOB_NAME, maintain_tables, safe_retention_hours
from auditlake.tables import load_contract

D1, D2 = dt.date(2024, 3, 1), dt.date(2024, 3, 2)


def _insights(spark, i: int, days: tuple[dt.date, ...]):
    rows = [
        {
            "event_id": f"e{i}-{d.day}",
            "event_time": dt.datetime.combine(d, dt.time(1, 0, i % 60)),
            "event_date": d,
            "recipient_account_id": "111111111111",
            "source_object": f"s3://raw/{i}.json.gz",
        }
        for d in days
    ]
    schema = load_contract("cloudtrail_insights").schema
    return spark.createDataFrame(
        [tuple(r.get(f.name) for f in schema.fields) for r in rows], schema
    ).coalesce(1)


def _quarantine(spark, ats: list[dt.datetime]):
    schema = load_contract("quarantine").schema
    rows = [
        {
            "source": "cloudtrail",
            "source_object": f"s3://raw/{i}",
            "record_index": 1,
            "raw_text": "x",
            "raw_length": 1,
            "reason": "bad",
            "run_id": f"r{i}",
            "quarantined_at": at,
        }
        for i, at in enumerate(ats)
    ]
    return spark.createDataFrame(
        [tuple(r.get(f.name) for f in schema.fields) for r in rows], schema
    ).coalesce(1)


def _files_per_partition(spark, lake: str, table: str, column: str) -> dict[str, int]:
    files = spark.read.format("delta").load(f"{lake}/{table}").inputFiles()
    return dict(Counter(re.search(rf"{column}=([^/]+)/", f).group(1) for f in files))


def _maintain(spark, lake: str) -> int:
    return run_job(
        JOB_NAME,
        maintain_tables,
        argv=["--lake", lake],
        needs_source=False,
        session_factory=lambda cfg, name: spark,
    )


def _last_counters(spark, lake: str) -> dict[str, int]:
    runs = lake_mod.read_table(spark, lake, "job_runs").where(f"job = '{JOB_NAME}'").orderBy("started_at")
    row = runs.collect()[-1]
    assert row.status == "succeeded"
    return dict(row.counters)


def test_twenty_small_runs_compact_to_one_file_per_partition(spark, tmp_path):
    lake = str(tmp_path / "lake")
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for i in range(20):
        lake_mod.append_rows(spark, _insights(spark, i, (D1, D2)), lake, "cloudtrail_insights")
    # Every other quarantine row is past the 90-day retention.
    ats = [now - dt.timedelta(days=200) if i % 2 else now - dt.timedelta(days=1) for i in range(20)]
    lake_mod.append_rows(spark, _quarantine(spark, ats), lake, "quarantine")
    assert _files_per_partition(spark, lake, "cloudtrail_insights", "event_date") == {
        "2024-03-01": 20,
        "2024-03-02": 20,
    }
    before = spark.read.format("delta").load(f"{lake}/cloudtrail_insights").localCheckpoint()

    assert _maintain(spark, lake) == 0
    assert _files_per_partition(spark, lake, "cloudtrail_insights", "event_date") == {
        "2024-03-01": 1,
        "2024-03-02": 1,
    }
    after = spark.read.format("delta").load(f"{lake}/cloudtrail_insights")
    assert after.count() == 40
    assert_df_equality(after, before, ignore_row_order=True)
    quarantine = lake_mod.read_table(spark, lake, "quarantine")
    assert sorted(r.run_id for r in quarantine.collect()) == sorted(f"r{i}" for i in range(0, 20, 2))
    counters = _last_counters(spark, lake)
    assert {
        k: v
        for k, v in counters.items()
        if k.startswith("cloudtrail_insights.") and k != "cloudtrail_insights.version"
    } == {
        "cloudtrail_insights.files_added": 2,
        "cloudtrail_insights.files_removed": 40,
        "cloudtrail_insights.partitions_optimized": 2,
        "cloudtrail_insights.vacuumed": 0,  # a table younger than the retention has nothing to vacuum
    }
    assert counters["quarantine.rows_deleted"] == 10

    # One more run writes into D2 only: the next pass compacts that partition and nothing else.
    lake_mod.append_rows(spark, _insights(spark, 99, (D2,)), lake, "cloudtrail_insights")
    assert _maintain(spark, lake) == 0
    counters = _last_counters(spark, lake)
    assert (
        counters["cloudtrail_insights.partitions_optimized"],
        counters["cloudtrail_insights.files_removed"],
        counters["cloudtrail_insights.files_added"],
    ) == (1, 2, 1)
    assert "quarantine.files_removed" not in counters  # retention deleted nothing new, so nothing to compact
    assert _files_per_partition(spark, lake, "cloudtrail_insights", "event_date") == {
        "2024-03-01": 1,
        "2024-03-02": 1,
    }
    assert spark.read.format("delta").load(f"{lake}/cloudtrail_insights").count() == 41


def test_vacuum_retention_never_below_the_safe_minimum():
    assert safe_retention_hours(1, None) == 168
    assert safe_retention_hours(240, None) == 240
    assert safe_retention_hours(200, "interval 30 days") == 720
    assert safe_retention_hours(24, "interval 12 hours") == 24


def test_vacuum_waits_for_the_retention_age_then_removes_orphans(spark, tmp_path):
    lake = str(tmp_path / "lake")
    lake_mod.append_rows(spark, _insights(spark, 1, (D1, D2)), lake, "cloudtrail_insights")
    table = tmp_path / "lake" / "cloudtrail_insights"
    # What a write killed before its commit leaves behind: a data file no commit names, 10 days old.
    orphan = table / "event_date=2024-03-01" / "part-00000-orphan.c000.snappy.parquet"
    orphan.write_bytes(b"PAR1")
    ten_days_ago = dt.datetime.now().timestamp() - 10 * 86400
    os.utime(orphan, (ten_days_ago, ten_days_ago))

    # The table itself is new: nothing in it can be older than the 168 h retention but a leftover
    # from before its first commit, so VACUUM (a listing of every file) is skipped.
    assert _maintain(spark, lake) == 0
    counters = _last_counters(spark, lake)
    assert counters["cloudtrail_insights.vacuumed"] == 0
    assert "cloudtrail_insights.files_removed" not in counters  # one file per partition: nothing to pack
    assert orphan.exists()

    # Ten days on (the first commit backdated), the next pass vacuums and the orphan is gone.
    first_commit = table / "_delta_log" / "00000000000000000000.json"
    os.utime(first_commit, (ten_days_ago, ten_days_ago))
    assert _maintain(spark, lake) == 0
    counters = _last_counters(spark, lake)
    assert counters["cloudtrail_insights.vacuumed"] == 1
    assert not orphan.exists()
    assert spark.read.format("delta").load(str(table)).count() == 2
