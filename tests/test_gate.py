"""Row-level checks quarantine, batch-level checks gate; one error line; no user info anywhere."""

from __future__ import annotations

import datetime as dt
import gzip
import json

import pyspark.sql.functions as F
import pytest
from pyspark.sql import types as T

from auditlake import quality
from auditlake.cli import run_job
from auditlake.errors import ConfigError
from auditlake.ingest import gate
from auditlake.ingest.runner import run_ingest
from auditlake.sources.cloudtrail import CloudTrailSource
from auditlake.tables import load_contract

NOW = dt.datetime(2024, 5, 2, 12, 0, tzinfo=dt.UTC)
CFG = {"quality": {"enabled": True}}
ACCOUNT = "111122223333"


def ct_rows(spark, rows):
    contract = load_contract("cloudtrail_events")
    schema = T.StructType([T.StructField(f.name, f.dataType, True) for f in contract.schema.fields])
    full = []
    for event_id, when, day, obj in rows:
        row = {c: None for c in contract.column_names}
        row.update(
            event_id=event_id,
            event_time=when,
            event_date=day,
            recipient_account_id=ACCOUNT,
            source_object=obj,
        )
        full.append(tuple(row[c] for c in contract.column_names))
    return spark.createDataFrame(full, schema)


def test_row_checks_split_poison_rows_with_the_expectation_name(spark):
    t = dt.datetime(2024, 5, 1, 10, 0)
    df = ct_rows(
        spark,
        [
            ("ok", t, t.date(), "o1"),
            ("epoch", dt.datetime(1970, 1, 1), dt.date(1970, 1, 1), "o1"),
            ("future", dt.datetime(2999, 1, 1), dt.date(2999, 1, 1), "o1"),
            ("wrong-day", t, dt.date(2024, 5, 2), "o1"),
            ("no-object", t, t.date(), None),
            ("pre-2013", dt.datetime(2012, 12, 31, 23, 59), dt.date(2012, 12, 31), "o1"),
        ],
    )

    good, bad = quality.split_rows(df, quality.row_checks("cloudtrail_events", CFG, now=NOW))

    assert [r.event_id for r in good.collect()] == ["ok"]
    assert sorted((r.event_id, r[quality.REASON_COLUMN]) for r in bad.collect()) == [
        ("epoch", "event_time_in_plausible_window"),
        ("future", "event_time_in_plausible_window"),
        ("no-object", "expect_column_values_to_not_be_null(source_object)"),
        ("pre-2013", "event_time_in_plausible_window"),
        ("wrong-day", "event_date_is_utc_day_of_event_time"),
    ]


def test_plausible_window_is_configurable():
    cfg = {"quality": {"plausible_window": {"min": "2020-01-01T00:00:00Z", "max_ahead_hours": 2}}}
    assert quality.plausible_window(cfg, NOW) == (
        dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
        dt.datetime(2024, 5, 2, 14, 0, tzinfo=dt.UTC),
    )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {
                "type": "expect_column_values_to_not_be_null",
                "column": "a",
                "severity": "critical",
                "level": "rows",
            },
            "level must be one of",
        ),
        (
            {"type": "expect_table_row_count_to_equal", "value": 1, "severity": "critical", "level": "row"},
            "cannot be row-level",
        ),
        (
            {
                "type": "unexpected_rows_expectation",
                "unexpected_rows_query": "SELECT 1",
                "severity": "critical",
                "level": "row",
            },
            "needs `unexpected_row_predicate`",
        ),
    ],
)
def test_bad_level_declarations_are_config_errors(entry, message):
    with pytest.raises(ConfigError, match=message):
        quality.resolve_specs("t", {"expectations": [entry]}, now=NOW)


def test_schema_drift_is_named_column_by_column(spark):
    df = spark.createDataFrame([("e", "2024-05-01", 1)], "event_id string, event_time string, surprise int")
    problems = gate.schema_problems("cloudtrail_insights", df.withColumn("_record_index", F.lit(1)))
    assert "column event_time is string, contract says timestamp" in problems
    assert "unexpected column surprise" in problems
    assert "missing column recipient_account_id" in problems
    assert not any("_record_index" in p for p in problems)


# --------------------------------------------------------------------------- end to end


def record(i: int, when: str) -> dict:
    return {
        "eventVersion": "1.08",
        "eventTime": when,
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "awsRegion": "us-east-1",
        "eventID": f"ev-{i}",
        "eventType": "AwsApiCall",
        "recipientAccountId": ACCOUNT,
        "userIdentity": {"type": "IAMUser", "userName": "alice"},
        "eventCategory": "Data",
    }


def write_trail(root, records, name="f1"):
    folder = root / "AWSLogs" / ACCOUNT / "CloudTrail" / "us-east-1" / "2024" / "05" / "01"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{ACCOUNT}_CloudTrail_us-east-1_20240501T1000Z_{name}.json.gz"
    path.write_bytes(gzip.compress(json.dumps({"Records": records}).encode()))
    return path


def ingest(spark, source, lake, *extra):
    return run_job(
        "ingest_cloudtrail",
        lambda ctx: run_ingest(ctx, CloudTrailSource()),
        argv=["--source", str(source), "--lake", str(lake), *extra],
        session_factory=lambda cfg, name: spark,
    )


def table(spark, lake, name):
    return spark.read.format("delta").load(f"{lake}/{name}")


def test_poison_record_costs_one_quarantine_row_and_never_blocks(spark, tmp_path):
    raw, lake = tmp_path / "raw", tmp_path / "lake"
    write_trail(
        raw,
        [
            record(1, "2024-05-01T10:00:00Z"),
            record(2, "1970-01-01T00:00:00Z"),
            record(3, "2024-05-01T11:00:00Z"),
            record(4, "2999-01-01T00:00:00Z"),
        ],
    )

    assert ingest(spark, raw, lake) == 0

    assert sorted(r.event_id for r in table(spark, lake, "cloudtrail_events").collect()) == ["ev-1", "ev-3"]
    q = table(spark, lake, "quarantine").select("record_index", "reason").orderBy("record_index").collect()
    assert [tuple(r) for r in q] == [
        (1, "event_time_in_plausible_window"),
        (3, "event_time_in_plausible_window"),
    ]
    run = table(spark, lake, "job_runs").collect()[0]
    assert (run.status, run.records_read, run.records_loaded, run.records_quarantined) == (
        "succeeded",
        4,
        2,
        2,
    )
    dq = table(spark, lake, "dq_results").where("expectation = 'event_time_in_plausible_window'").collect()[0]
    assert (dq.success, dq.unexpected_count, dq.element_count) == (True, 2, 4)

    # A later run with new good data is not blocked, and reprocessing adds nothing twice.
    write_trail(raw, [record(5, "2024-05-01T12:00:00Z")], name="f2")
    assert ingest(spark, raw, lake) == 0
    assert ingest(spark, raw, lake, "--reprocess") == 0
    assert table(spark, lake, "cloudtrail_events").count() == 3
    assert table(spark, lake, "quarantine").count() == 2


def test_quarantine_share_over_the_limit_stops_the_batch(spark, tmp_path, capfd):
    raw, lake = tmp_path / "raw", tmp_path / "lake"
    write_trail(raw, [record(1, "2024-05-01T10:00:00Z"), record(2, "1970-01-01T00:00:00Z")])

    code = ingest(spark, raw, lake, "--conf", "quality.max_quarantine_share=0.25")

    assert code == 3
    err = capfd.readouterr().err
    assert "quarantine_share_at_most failed: 1 of 2 records quarantined (50.00%), limit 25.00%" in err
    for name in ("cloudtrail_events", "quarantine", "ingest_ledger"):
        assert not (lake / name).exists()
    run = table(spark, lake, "job_runs").collect()[0]
    assert run.status == "dq_failed"


def test_lake_at_a_file_fails_in_one_line(spark, tmp_path, capfd):
    raw = tmp_path / "raw"
    write_trail(raw, [record(1, "2024-05-01T10:00:00Z")])
    lake = tmp_path / "lake-is-a-file"
    lake.write_text("not a folder")

    code = ingest(spark, raw, lake)

    err = capfd.readouterr().err
    assert code != 0
    ours = [line for line in err.splitlines() if line.startswith("auditlake:")]
    assert len(ours) == 1, err
    assert "also could not write the failed run record" in ours[0]
    assert ours[0].index("failed") < ours[0].index("also could not write")
    assert "Traceback" not in err and "\tat " not in err


def test_user_info_in_the_source_uri_never_reaches_stderr_or_a_table(spark, s3, tmp_path, capfd):
    secret = "Pl4nted/Secret+Key"
    s3.create_bucket(Bucket="red-raw")
    body = gzip.compress(
        json.dumps(
            {"Records": [record(1, "2024-05-01T10:00:00Z"), record(2, "1970-01-01T00:00:00Z")]}
        ).encode()
    )
    key = f"logs/AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2024/05/01/{ACCOUNT}_CloudTrail_us-east-1_20240501T1000Z_a.json.gz"
    s3.put_object(Bucket="red-raw", Key=key, Body=body)
    s3.put_object(Bucket="red-raw", Key=key.replace("_a.json", "_b.json"), Body=b"not gzip")
    lake = tmp_path / "lake"

    assert ingest(spark, f"s3a://AKIAPLANTED:{secret}@red-raw/logs", lake) == 0
    # A failing run too: its error line and run record name the source.
    assert ingest(spark, f"s3a://AKIAPLANTED:{secret}@red-raw/missing", lake) != 0

    captured = capfd.readouterr()
    for text in (captured.err, captured.out):
        assert secret not in text and "AKIAPLANTED" not in text
    assert "s3a://red-raw/missing" in captured.err
    tables = [p.name for p in lake.iterdir() if (p / "_delta_log").is_dir()]
    assert {"cloudtrail_events", "quarantine", "ingest_ledger", "job_runs"} <= set(tables)
    for name in tables:
        df = table(spark, lake, name)
        text = df.select(F.to_json(F.struct(*df.columns)).alias("j"))
        assert text.where(F.col("j").contains("AKIAPLANTED") | F.col("j").contains("Pl4nted")).count() == 0, (
            name
        )
    uris = sorted(r.source_uri for r in table(spark, lake, "job_runs").collect())
    assert uris == ["s3a://red-raw/logs", "s3a://red-raw/missing"]
