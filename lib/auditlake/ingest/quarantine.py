"""Quarantine rows: what could not be parsed, with where it came from and why."""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame

# Record index used when the whole object is bad (not gzip, not JSON, unreadable).
WHOLE_OBJECT = -1


def to_quarantine(
    df: DataFrame,
    *,
    source: str,
    source_object: Column | str,
    record_index: Column | int,
    raw_text: Column | str,
    reason: Column | str,
    run_id: str,
    max_chars: int,
) -> DataFrame:
    """Shape bad rows into the ``quarantine`` contract (raw text cut at ``max_chars``, full length kept)."""

    def col(value: Column | str | int) -> Column:
        return value if isinstance(value, Column) else F.col(value) if isinstance(value, str) else F.lit(value)

    raw = col(raw_text)
    return df.select(
        F.lit(source).alias("source"),
        col(source_object).cast("string").alias("source_object"),
        (record_index if isinstance(record_index, Column) else F.lit(record_index)).cast("bigint").alias("record_index"),
        F.substring(raw, 1, max_chars).alias("raw_text"),
        F.length(raw).cast("bigint").alias("raw_length"),
        (reason if isinstance(reason, Column) else F.lit(reason)).alias("reason"),
        F.lit(run_id).alias("run_id"),
        F.current_timestamp().alias("quarantined_at"),
    )


def quarantine_objects(spark, rows: list[tuple[str, str, str]], *, source: str, run_id: str, max_chars: int) -> DataFrame:
    """Quarantine whole objects found bad on the driver: ``(uri, raw_text, reason)`` tuples."""
    df = spark.createDataFrame(rows, "source_object string, raw_text string, reason string")
    return to_quarantine(
        df, source=source, source_object="source_object", record_index=WHOLE_OBJECT,
        raw_text="raw_text", reason=F.col("reason"), run_id=run_id, max_chars=max_chars,
    )
