"""The runtime itself: Delta on local paths and on s3a against the loopback S3 server."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality
from pyspark.sql import types as T


def test_session_is_utc_with_delta(spark):
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert "DeltaSparkSessionExtension" in spark.conf.get("spark.sql.extensions")


def test_delta_round_trip_on_s3a(spark, s3, tmp_path):
    s3.create_bucket(Bucket="lake-roundtrip")
    schema = T.StructType(
        [
            T.StructField("event_id", T.StringType(), False),
            T.StructField("event_date", T.DateType(), True),
            T.StructField("n", T.LongType(), True),
        ]
    )
    rows = [("a", dt.date(2024, 1, 2), 1), ("b", dt.date(2024, 1, 3), None)]
    df = spark.createDataFrame(rows, schema)
    path = "s3a://lake-roundtrip/tables/t1"
    df.write.format("delta").partitionBy("event_date").mode("overwrite").save(path)

    actual = spark.read.format("delta").load(path).select("event_id", "event_date", "n")
    expected = spark.createDataFrame(rows, schema)
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="lake-roundtrip")["Contents"]]
    assert "tables/t1/_delta_log/00000000000000000000.json" in keys
    assert any(k.startswith("tables/t1/event_date=2024-01-02/") for k in keys)


def test_delta_statistics_only_on_the_contract_stats_columns(spark, tmp_path):
    import json

    from auditlake import lake
    from auditlake.tables import load_contract

    contract = load_contract("s3_access_logs")
    assert contract.stats_columns == (
        "request_time",
        "bucket",
        "operation",
        "remote_ip",
        "requester",
        "http_status",
        "error_code",
    )
    row = {c: None for c in contract.column_names}
    row.update(
        bucket="b1",
        request_time=dt.datetime(2024, 3, 1, 12, 0, 0),
        request_date=dt.date(2024, 3, 1),
        operation="REST.GET.OBJECT",
        key="k",
        user_agent="curl/8",
        http_status=200,
        line_hash="a" * 64,
        source_object="file:/x",
    )
    df = spark.createDataFrame([row], contract.schema)
    lake.append_rows(spark, df, str(tmp_path), "s3_access_logs")

    props = {
        r.key: r.value for r in spark.sql(f"SHOW TBLPROPERTIES delta.`{tmp_path}/s3_access_logs`").collect()
    }
    assert (
        props["delta.dataSkippingStatsColumns"]
        == "request_time,bucket,operation,remote_ip,requester,http_status,error_code"
    )
    adds = [
        json.loads(line)["add"]
        for f in sorted((tmp_path / "s3_access_logs" / "_delta_log").glob("*.json"))
        for line in f.read_text().splitlines()
        if '"add"' in line
    ]
    assert len(adds) == 1
    stats = json.loads(adds[0]["stats"])
    assert stats["numRecords"] == 1
    # Statistics on the listed columns only: none on key, user_agent or line_hash.
    assert sorted(stats["nullCount"]) == [
        "bucket",
        "error_code",
        "http_status",
        "operation",
        "remote_ip",
        "request_time",
        "requester",
    ]
    assert stats["minValues"]["bucket"] == "b1" and stats["maxValues"]["http_status"] == 200


def test_session_settings_hold_for_the_block_then_are_put_back(spark):
    from auditlake.config import load_config
    from auditlake.session import session_settings

    # The ingests' own settings on a laptop (conf/local.yaml).
    assert load_config("local", {})["ingest"]["spark_conf"] == {"spark.sql.adaptive.enabled": False}
    before = spark.conf.get("spark.sql.adaptive.enabled")
    with session_settings(spark, {"spark.sql.adaptive.enabled": False, "spark.auditlake.test.k": 3}):
        assert spark.conf.get("spark.sql.adaptive.enabled") == "false"
        assert spark.conf.get("spark.auditlake.test.k") == "3"
    assert spark.conf.get("spark.sql.adaptive.enabled") == before
    assert spark.conf.get("spark.auditlake.test.k", None) is None
    with pytest.raises(RuntimeError), session_settings(spark, {"spark.auditlake.test.k": "x"}):
        raise RuntimeError("a failed run")
    assert spark.conf.get("spark.auditlake.test.k", None) is None
