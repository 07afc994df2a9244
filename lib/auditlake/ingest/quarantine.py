"""Quarantine rows: what could not be parsed, with where it came from and why.

Every text stored here is valid UTF-8 (readers other than Spark reject anything else): invalid
bytes become U+FFFD, and ``raw_length`` keeps the byte length of the raw text as it was read,
before any cut or replacement. Object URIs carry no user info.
"""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame

from auditlake.redact import redact_col

# Record index used when the whole object is bad (not gzip, not JSON, unreadable).
WHOLE_OBJECT = -1
# Optional column of a source's table frames: the row's record index (line number) in its
# object, for the quarantine row of a row that fails a row-level quality check. Never stored.
ROW_INDEX = "_record_index"


def valid_utf8(col: Column) -> Column:
    """The text with every invalid UTF-8 byte sequence replaced by U+FFFD.

    Spark strings are raw bytes and pass invalid UTF-8 through; decoding those bytes into a Java
    string replaces what is malformed (the cast to binary copies the bytes as they are).
    """
    return F.decode(col.cast("binary"), "UTF-8")


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
    raw_length: Column | None = None,
) -> DataFrame:
    """Shape bad rows into the ``quarantine`` contract (raw text cut at ``max_chars``, full length kept).

    ``raw_length`` is for a caller that already cut the raw text: the byte length it had before.
    """

    def col(value: Column | str | int) -> Column:
        return (
            value if isinstance(value, Column) else F.col(value) if isinstance(value, str) else F.lit(value)
        )

    raw = col(raw_text)
    length = raw_length if raw_length is not None else F.octet_length(raw)
    return df.select(
        F.lit(source).alias("source"),
        redact_col(col(source_object).cast("string")).alias("source_object"),
        (record_index if isinstance(record_index, Column) else F.lit(record_index))
        .cast("bigint")
        .alias("record_index"),
        valid_utf8(F.substring(raw, 1, max_chars)).alias("raw_text"),
        length.cast("bigint").alias("raw_length"),
        valid_utf8(reason if isinstance(reason, Column) else F.lit(reason)).alias("reason"),
        F.lit(run_id).alias("run_id"),
        F.current_timestamp().alias("quarantined_at"),
    )


def quarantine_objects(
    spark,
    rows: list[tuple],
    *,
    source: str,
    run_id: str,
    max_chars: int,
) -> DataFrame:
    """Quarantine items found bad on the driver.

    ``rows`` are ``(uri, raw_text, reason)`` (the whole object, record index -1) or
    ``(uri, raw_text, reason, record_index, raw_length)``.
    """
    full = [(r[0], r[1], r[2], WHOLE_OBJECT, None) if len(r) == 3 else tuple(r) for r in rows]
    df = spark.createDataFrame(
        full, "source_object string, raw_text string, reason string, record_index bigint, raw_length bigint"
    )
    return to_quarantine(
        df,
        source=source,
        source_object="source_object",
        record_index=F.col("record_index"),
        raw_text="raw_text",
        reason=F.col("reason"),
        run_id=run_id,
        max_chars=max_chars,
        raw_length=F.coalesce(F.col("raw_length"), F.octet_length("raw_text")),
    )
