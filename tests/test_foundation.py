"""The runtime itself: Delta on local paths and on s3a against the loopback S3 server."""

from __future__ import annotations

import datetime as dt

from chispa import assert_df_equality
from pyspark.sql import types as T


def test_session_is_utc_with_delta(spark):
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert "DeltaSparkSessionExtension" in spark.conf.get("spark.sql.extensions")


def test_delta_round_trip_on_s3a(spark, s3, tmp_path):
    s3.create_bucket(Bucket="lake-roundtrip")
    schema = T.StructType([
        T.StructField("event_id", T.StringType(), False),
        T.StructField("event_date", T.DateType(), True),
        T.StructField("n", T.LongType(), True),
    ])
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
