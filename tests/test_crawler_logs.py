"""Glue crawler logs: export and Firehose decoding, kinds, keys, runs, end-to-end ingest.

Fixtures are built here from real crawler messages in samples/crawler (console copies: their
prefixes are display artefacts, so only the messages are reused, with export-format timestamps).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json

import pyspark.sql.functions as F
from chispa import assert_df_equality
from pyspark.sql import types as T

from auditlake.ingest.objects import SourceObject
from auditlake.sources.crawler_logs import (
    RAW_SCHEMA,
    CrawlerLogsSource,
    aggregate_crawler_runs,
    decode_object,
    normalize_crawler_events,
)

ONU = "[0f2f2a30-c09d-4485-ba3c-d37e8fe0148b]"
KOR = "[0123456-7890-1234-5678-1234567890]"
WS = "[3eeda126-0cf9-4128-b9f5-4d807bc10e9b]"
NBA = "[713e4a13]"
ONU_ID, KOR_ID, WS_ID, NBA_ID = ONU[1:-1], KOR[1:-1], WS[1:-1], NBA[1:-1]

ONU_CONFIG = (
    f'{ONU} INFO : Crawler configured with Configuration\n{{\n    "Version": 1,\n'
    '    "CreatePartitionIndex": true\n}\n and SchemaChangePolicy\n{\n'
    '    "UpdateBehavior": "UPDATE_IN_DATABASE",\n    "DeleteBehavior": "DEPRECATE_IN_DATABASE"\n}\n'
    ". Note that values in the Configuration override values in the SchemaChangePolicy for S3 Targets."
)


def ms(text: str) -> int:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(value.timestamp() * 1000)


def export_object(events: list[tuple[str, str]]) -> bytes:
    """An export-task object: ``<ISO timestamp> <message>`` lines, gzipped."""
    return gzip.compress("".join(f"{ts} {msg}\n" for ts, msg in events).encode("utf-8"))


def envelope(stream: str, events: list[tuple[str, str]], message_type: str = "DATA_MESSAGE") -> str:
    return json.dumps(
        {
            "messageType": message_type,
            "owner": "111111111111",
            "logGroup": "/aws-glue/crawlers",
            "logStream": stream,
            "subscriptionFilters": ["to-firehose"],
            "logEvents": [
                {
                    "id": f"3195310660696698337880902507980421114328961542429822{i:04d}",
                    "timestamp": ms(ts),
                    "message": msg,
                }
                for i, (ts, msg) in enumerate(events)
            ],
        },
        separators=(",", ":"),
    )


CONTROL = (
    '{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"",'
    '"subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1680683189085,'
    '"message":"CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}'
)


def firehose_object(*records: str, firehose_gzip: bool = True) -> bytes:
    """Each record gzipped by CloudWatch Logs, concatenated by Firehose, optionally gzipped again."""
    body = b"".join(gzip.compress(r.encode("utf-8")) for r in records)
    return gzip.compress(body) if firehose_gzip else body


# ----------------------------------------------------------------------------- decoding, no Spark


def test_export_joins_continuation_lines_in_file_order():
    data = export_object(
        [
            (
                "2024-07-05T13:30:55.009Z",
                f"{WS} BENCHMARK : Crawler has finished running and is in state READY",
            ),
            ("2024-07-05T13:29:39.674Z", ONU_CONFIG),
            ("2024-07-05T13:29:39.715Z", f"{WS} INFO : Run Summary For PARTITION:"),
        ]
    )
    rows = list(decode_object("file:/raw/exp/task-1/my-crawler/000000.gz", data))
    assert rows == [
        (
            "event",
            "export",
            "file:/raw/exp/task-1/my-crawler/000000.gz",
            1,
            "my-crawler",
            1720186255009,
            f"{WS} BENCHMARK : Crawler has finished running and is in state READY",
            None,
            None,
        ),
        (
            "event",
            "export",
            "file:/raw/exp/task-1/my-crawler/000000.gz",
            2,
            "my-crawler",
            1720186179674,
            ONU_CONFIG,
            None,
            None,
        ),
        (
            "event",
            "export",
            "file:/raw/exp/task-1/my-crawler/000000.gz",
            13,
            "my-crawler",
            1720186179715,
            f"{WS} INFO : Run Summary For PARTITION:",
            None,
            None,
        ),
    ]


def test_export_bad_timestamp_and_orphan_continuation_are_quarantined():
    text = (
        "\tFROM sample1 JOIN sample2 ON sample1.id = sample2.id\n"
        "2024-07-05T13:29:39.674Z [a-b-c-d-e] INFO : ADD: 1\n"
        "2024-07-05T25:61:39.674Z [a-b-c-d-e] ERROR : broken clock\n"
        "  continuation of the broken one\n"
        "2024-07-05T13:29:40.000Z plain line, not a crawler line\n"
    )
    rows = list(decode_object("file:/raw/t/c/000001.gz", gzip.compress(text.encode())))
    assert rows == [
        (
            "bad",
            "export",
            "file:/raw/t/c/000001.gz",
            1,
            None,
            None,
            None,
            "continuation line without a preceding event",
            "\tFROM sample1 JOIN sample2 ON sample1.id = sample2.id",
        ),
        (
            "event",
            "export",
            "file:/raw/t/c/000001.gz",
            2,
            "c",
            1720186179674,
            "[a-b-c-d-e] INFO : ADD: 1",
            None,
            None,
        ),
        (
            "bad",
            "export",
            "file:/raw/t/c/000001.gz",
            3,
            None,
            None,
            None,
            "invalid timestamp",
            "2024-07-05T25:61:39.674Z [a-b-c-d-e] ERROR : broken clock\n  continuation of the broken one",
        ),
        (
            "event",
            "export",
            "file:/raw/t/c/000001.gz",
            5,
            "c",
            1720186180000,
            "plain line, not a crawler line",
            None,
            None,
        ),
    ]


def test_firehose_concatenated_double_gzip_and_control_message():
    one = envelope(
        "nba-data-crawler",
        [("2025-10-01T23:34:03Z", f"{NBA} BENCHMARK : Running Start Crawl for Crawler nba-data-crawler")],
    )
    two = envelope(
        "nba-data-crawler",
        [
            ("2025-10-02T00:03:17Z", f"{NBA} ERROR : Internal Service Exception"),
            ("2025-10-02T00:05:17Z", f"{NBA} BENCHMARK : Crawler has finished running and is in state READY"),
        ],
    )
    uri = "file:/raw/fh/2025/10/02/00/crawlers-1-2025-10-02-00-06-00-abcd"
    # Two CWL records in one Firehose record: `}{` with no separator, then a control message.
    rows = list(decode_object(uri, firehose_object(one + two, CONTROL)))
    assert rows == [
        (
            "event",
            "firehose",
            uri,
            2,
            "nba-data-crawler",
            1759361643000,
            f"{NBA} BENCHMARK : Running Start Crawl for Crawler nba-data-crawler",
            None,
            None,
        ),
        (
            "event",
            "firehose",
            uri,
            4,
            "nba-data-crawler",
            1759363397000,
            f"{NBA} ERROR : Internal Service Exception",
            None,
            None,
        ),
        (
            "event",
            "firehose",
            uri,
            5,
            "nba-data-crawler",
            1759363517000,
            f"{NBA} BENCHMARK : Crawler has finished running and is in state READY",
            None,
            None,
        ),
        ("control", "firehose", uri, 6, None, None, None, None, CONTROL),
    ]
    # Same content gzipped once only (Firehose compression off) decodes the same.
    assert list(decode_object(uri, firehose_object(one + two, CONTROL, firehose_gzip=False))) == rows


def test_firehose_bad_gzip_bad_json_and_bad_event():
    bad_gzip = list(decode_object("file:/raw/fh/x", b"\x1f\x8b\x08\x00garbage"))
    assert [(r[0], r[3]) for r in bad_gzip] == [("bad", -1)]
    assert bad_gzip[0][7].startswith("not a readable gzip object")

    good = envelope("c1", [("2024-01-02T03:04:05.006Z", f"{WS} INFO : ADD: 1")])
    broken_event = good.replace('"timestamp":1704164645006', '"timestamp":"soon"')
    rows = list(
        decode_object(
            "file:/raw/fh/y", gzip.compress((good + broken_event + '{"messageType": "DATA_').encode())
        )
    )
    assert [(r[0], r[3], r[7]) for r in rows] == [
        ("event", 2, None),
        ("bad", 4, "log event without integer timestamp and string message"),
        ("bad", 5, "invalid JSON envelope: Unterminated string starting at"),
    ]


def test_classify_skips_write_test_marker_and_dates_firehose_keys():
    src = CrawlerLogsSource()
    now = dt.datetime(2024, 7, 5)
    assert (
        src.classify(SourceObject("s3://b/exports/aws-logs-write-test", 27, now))
        == "export_write_test_marker"
    )
    assert src.classify(SourceObject("s3://b/exports/task/crawler-a/000000.gz", 100, now)) is None
    assert src.classify(SourceObject("s3://b/exports/task/crawler-a/000001.gz", 0, now)) == "empty_object"
    assert src.object_date(
        SourceObject("s3://b/fh/2024/07/05/13/crawlers-1-2024-07-05-13-30-55-ab", 9, now)
    ) == dt.date(2024, 7, 5)
    assert src.object_date(SourceObject("s3://b/exports/task/crawler-a/000000.gz", 9, now)) is None


# ----------------------------------------------------------------------------- normalizing


def raw_frame(spark, rows: list[tuple]):
    return spark.createDataFrame(rows, RAW_SCHEMA)


def ev(crawler: str, ts: str, message: str, index: int, obj: str = "file:/raw/a/000000.gz") -> tuple:
    return ("event", "export", obj, index, crawler, ms(ts), message, None, None)


KIND_COLUMNS = [
    "crawler_name",
    "run_id",
    "level",
    "event_kind",
    "database_name",
    "table_name",
    "final_state",
    "summary_count",
    "error_filter_match",
]
KIND_SCHEMA = T.StructType(
    [
        T.StructField("crawler_name", T.StringType()),
        T.StructField("run_id", T.StringType()),
        T.StructField("level", T.StringType()),
        T.StructField("event_kind", T.StringType()),
        T.StructField("database_name", T.StringType()),
        T.StructField("table_name", T.StringType()),
        T.StructField("final_state", T.StringType()),
        T.StructField("summary_count", T.LongType()),
        T.StructField("error_filter_match", T.BooleanType()),
    ]
)


def test_kinds_names_and_final_state_from_real_messages(spark):
    t = "2024-07-05T13:29:39.{:03d}Z"
    rows = [
        ev(
            "onudb-crawler",
            t.format(1),
            f"{ONU} BENCHMARK : Running Start Crawl for Crawler onudb-crawler",
            1,
        ),
        ev(
            "onudb-crawler",
            t.format(2),
            f"{ONU} BENCHMARK : Classification complete, writing results to database onudb",
            2,
        ),
        ev("onudb-crawler", t.format(3), ONU_CONFIG, 3),
        ev("onudb-crawler", t.format(4), f"{ONU} INFO : Created table export in database onudb", 16),
        ev("onudb-crawler", t.format(5), f"{ONU} BENCHMARK : Finished writing to Catalog", 17),
        ev(
            "onudb-crawler",
            t.format(6),
            f"{ONU} BENCHMARK : Crawler has finished running and is in state READY",
            18,
        ),
        ev(
            "k",
            t.format(7),
            f"{KOR} INFO : Table {{테이블명}} is marked deprecated because a matching schema was not found at the table's location.",
            1,
        ),
        ev(
            "k",
            t.format(8),
            f"{KOR} INFO : Found partition of table {{테이블명}} with partition values [1, A, C, 2] with no matching schema at the partition's S3 location",
            2,
        ),
        ev(
            "k",
            t.format(9),
            f'{KOR} INFO : Crawler configured with SchemaChangePolicy {{"UpdateBehavior":"LOG","DeleteBehavior":"DEPRECATE_IN_DATABASE"}}.',
            3,
        ),
        # Run Summary: the count lines take the meaning of the header before them; .716 is shared.
        ev("ws", t.format(715), f"{WS} INFO : Run Summary For PARTITION:", 3),
        ev("ws", t.format(716), f"{WS} INFO : ADD: 1", 4),
        ev("ws", t.format(716), f"{WS} INFO : Run Summary For TABLE:", 5),
        ev("ws", t.format(717), f"{WS} INFO : UPDATE: 3", 6),
        ev("nba", t.format(10), f"{NBA} WARN : OutOfMemoryError: Please submit a ticket to AWS Support", 1),
        ev("nba", t.format(11), f"{NBA} ERROR : Internal Service Exception", 2),
        ev(
            "nba",
            t.format(12),
            "ERROR : Insufficient Lake Formation permission(s) on csc (Database name: csc)",
            3,
        ),
        ev("nba", t.format(13), "a line some other writer put in the log group", 4),
    ]
    actual = normalize_crawler_events(raw_frame(spark, rows)).select(*KIND_COLUMNS)
    expected = spark.createDataFrame(
        [
            ("onudb-crawler", ONU_ID, "BENCHMARK", "run_started", None, None, None, None, False),
            (
                "onudb-crawler",
                ONU_ID,
                "BENCHMARK",
                "classification_complete",
                "onudb",
                None,
                None,
                None,
                False,
            ),
            ("onudb-crawler", ONU_ID, "INFO", "other", None, None, None, None, False),
            ("onudb-crawler", ONU_ID, "INFO", "table_created", "onudb", "export", None, None, False),
            ("onudb-crawler", ONU_ID, "BENCHMARK", "catalog_written", None, None, None, None, False),
            ("onudb-crawler", ONU_ID, "BENCHMARK", "run_finished", None, None, "READY", None, False),
            ("k", KOR_ID, "INFO", "table_deprecated", None, "{테이블명}", None, None, False),
            ("k", KOR_ID, "INFO", "other", None, "{테이블명}", None, None, False),
            ("k", KOR_ID, "INFO", "other", None, None, None, None, False),
            ("ws", WS_ID, "INFO", "run_summary", None, None, None, None, False),
            ("ws", WS_ID, "INFO", "partitions_added", None, None, None, 1, False),
            ("ws", WS_ID, "INFO", "run_summary", None, None, None, None, False),
            ("ws", WS_ID, "INFO", "table_updated", None, None, None, 3, False),
            ("nba", NBA_ID, "WARN", "warning", None, None, None, None, False),
            ("nba", NBA_ID, "ERROR", "error", None, None, None, None, True),
            ("nba", None, "ERROR", "error", None, None, None, None, True),
            ("nba", None, None, "other", None, None, None, None, False),
        ],
        KIND_SCHEMA,
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_event_key_is_the_same_for_export_and_firehose(spark):
    ts, msg = "2024-07-05T13:29:39.716Z", f"{WS} INFO : ADD: 1"
    from_export = list(decode_object("file:/raw/exp/t1/ws/000000.gz", export_object([(ts, msg), (ts, msg)])))
    from_firehose = list(
        decode_object("file:/raw/fh/2024/07/05/13/f-1", firehose_object(envelope("ws", [(ts, msg)])))
    )
    keys = normalize_crawler_events(raw_frame(spark, from_export + from_firehose)).select(
        "source_object", "event_key"
    )
    by_object = {}
    for r in keys.collect():
        by_object.setdefault(r[0], []).append(r[1])
    export_keys, firehose_keys = (
        by_object["file:/raw/exp/t1/ws/000000.gz"],
        by_object["file:/raw/fh/2024/07/05/13/f-1"],
    )
    # Two real same-millisecond lines in one export stay two; the Firehose copy is the first of them.
    assert len(set(export_keys)) == 2
    assert set(firehose_keys) < set(export_keys)


def test_error_count_equals_metric_filter_count(spark):
    """Hand count of what the metric filter ``ERROR`` matches in these events: 4."""
    day1, day2 = "2024-07-05T{}Z", "2024-07-06T{}Z"
    rows = [
        ev("c", day1.format("10:00:00.000"), f"{WS} ERROR : Internal Service Exception", 1),  # 1
        ev(
            "c", day1.format("10:00:01.000"), f"{WS} INFO : Exiting with ERRORCODE: -1", 2
        ),  # 2: not a whole word, still counts
        ev(
            "c", day1.format("10:00:02.000"), f"{WS} WARN : OutOfMemoryError: Please submit a ticket", 3
        ),  # no: case-sensitive
        ev(
            "c", day1.format("10:00:03.000"), f"{WS} INFO : detail\nERROR in line two\nERROR again", 4
        ),  # 3: one per event
        ev("c", day1.format("10:00:04.000"), f"{WS} INFO : error, Error, eRRoR", 7),  # no
        ev(
            "c",
            day2.format("00:00:01.000"),
            "ERROR : Insufficient Lake Formation permission(s)",
            1,
            "file:/raw/b/000000.gz",
        ),  # 4
        ev(
            "c",
            day2.format("00:00:02.000"),
            f"{WS} BENCHMARK : Crawler has finished running and is in state READY",
            2,
            "file:/raw/b/000000.gz",
        ),
    ]
    events = normalize_crawler_events(raw_frame(spark, rows))
    actual = events.groupBy("event_date").agg(
        F.sum(F.col("error_filter_match").cast("bigint")).alias("crawler_error_count")
    )
    expected = spark.createDataFrame(
        [(dt.date(2024, 7, 5), 3), (dt.date(2024, 7, 6), 1)], "event_date date, crawler_error_count bigint"
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
    runs = aggregate_crawler_runs(events).select("run_id", "error_count", "warn_count", "status")
    assert_df_equality(
        runs,
        spark.createDataFrame(
            [(WS_ID, 3, 1, "failed")], "run_id string, error_count bigint, warn_count bigint, status string"
        ),
        ignore_nullable=True,
    )


RUN_COLUMNS = [
    "crawler_name",
    "run_id",
    "run_date",
    "started_at",
    "finished_at",
    "duration_seconds",
    "final_state",
    "status",
    "error_count",
    "warn_count",
    "tables_created",
    "tables_updated",
    "tables_deprecated",
    "partitions_added",
    "partitions_updated",
    "first_error_message",
]
RUN_SCHEMA = (
    "crawler_name string, run_id string, run_date date, started_at timestamp, finished_at timestamp, "
    "duration_seconds double, final_state string, status string, error_count bigint, warn_count bigint, "
    "tables_created bigint, tables_updated bigint, tables_deprecated bigint, partitions_added bigint, "
    "partitions_updated bigint, first_error_message string"
)


def test_runs_prefer_run_summary_and_fall_back_to_lines(spark):
    rows = [
        # onudb: two Created table lines and a Run Summary ADD: 2 -> 2, not 4.
        ev(
            "onudb-crawler",
            "2024-07-05T13:29:00.000Z",
            f"{ONU} BENCHMARK : Running Start Crawl for Crawler onudb-crawler",
            1,
        ),
        ev(
            "onudb-crawler",
            "2024-07-05T13:29:40.000Z",
            f"{ONU} INFO : Created table export in database onudb",
            2,
        ),
        ev(
            "onudb-crawler",
            "2024-07-05T13:29:41.000Z",
            f"{ONU} INFO : Created table hdi in database onudb",
            3,
        ),
        ev("onudb-crawler", "2024-07-05T13:29:42.001Z", f"{ONU} INFO : Run Summary For TABLE:", 4),
        ev("onudb-crawler", "2024-07-05T13:29:42.002Z", f"{ONU} INFO : ADD: 2", 5),
        ev(
            "onudb-crawler",
            "2024-07-05T13:30:00.500Z",
            f"{ONU} BENCHMARK : Crawler has finished running and is in state READY",
            6,
        ),
        # pokemon: no summary seen -> the lines count; not finished yet -> incomplete.
        ev(
            "pokemon-csv-crawler",
            "2024-07-05T23:59:54.000Z",
            "[ebd0cfd9] BENCHMARK : Running Start Crawl for Crawler pokemon-csv-crawler",
            1,
        ),
        ev(
            "pokemon-csv-crawler",
            "2024-07-06T00:00:46.000Z",
            "[ebd0cfd9] INFO : Created table pokemon_v1 in database pokemons",
            2,
        ),
        ev(
            "pokemon-csv-crawler",
            "2024-07-06T00:00:48.000Z",
            "[ebd0cfd9] INFO : Created table pokemons_v2 in database pokemons",
            3,
        ),
        # korean notes: deprecated line + summary UPDATE: 1, failed by its ERROR line.
        ev(
            "k",
            "2022-01-01T00:00:00.000Z",
            f"{KOR} INFO : Table t1 is marked deprecated because a matching schema was not found at the table's location.",
            1,
        ),
        ev("k", "2022-01-01T00:00:01.000Z", f"{KOR} ERROR : first failure", 2),
        ev("k", "2022-01-01T00:00:02.000Z", f"{KOR} ERROR : second failure", 3),
        ev("k", "2022-01-01T00:00:03.000Z", f"{KOR} INFO : Run Summary For TABLE:", 4),
        ev("k", "2022-01-01T00:00:03.001Z", f"{KOR} INFO : UPDATE: 1", 5),
        ev(
            "k",
            "2022-01-01T00:00:04.000Z",
            f"{KOR} BENCHMARK : Crawler has finished running and is in state READY",
            6,
        ),
        # no run id: never a run
        ev("k", "2022-01-01T00:00:05.000Z", "ERROR : Insufficient Lake Formation permission(s)", 7),
    ]
    actual = aggregate_crawler_runs(normalize_crawler_events(raw_frame(spark, rows))).select(*RUN_COLUMNS)
    expected = spark.createDataFrame(
        [
            (
                "onudb-crawler",
                ONU_ID,
                dt.date(2024, 7, 5),
                dt.datetime(2024, 7, 5, 13, 29),
                dt.datetime(2024, 7, 5, 13, 30, 0, 500000),
                60.5,
                "READY",
                "succeeded",
                0,
                0,
                2,
                0,
                0,
                0,
                0,
                None,
            ),
            (
                "pokemon-csv-crawler",
                "ebd0cfd9",
                dt.date(2024, 7, 5),
                dt.datetime(2024, 7, 5, 23, 59, 54),
                None,
                None,
                None,
                "incomplete",
                0,
                0,
                2,
                0,
                0,
                0,
                0,
                None,
            ),
            (
                "k",
                KOR_ID,
                dt.date(2022, 1, 1),
                dt.datetime(2022, 1, 1),
                dt.datetime(2022, 1, 1, 0, 0, 4),
                4.0,
                "READY",
                "failed",
                2,
                0,
                0,
                1,
                1,
                0,
                0,
                "first failure",
            ),
        ],
        RUN_SCHEMA,
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


# ----------------------------------------------------------------------------- end to end


def _ingest(spark, source, lake, **kw):
    from auditlake.config import load_config
    from auditlake.context import JobContext
    from auditlake.ingest.runner import run_ingest

    args = argparse.Namespace(
        source=str(source),
        lake=str(lake),
        env="local",
        since=None,
        until=None,
        reprocess=kw.get("reprocess", False),
        run_id=None,
        conf=[],
        verbose=False,
    )
    cfg = load_config("local", {"quality": {"enabled": False}})
    ctx = JobContext(
        job="ingest_crawler_logs",
        args=args,
        cfg=cfg,
        spark=spark,
        run_id=kw["run_id"],
        started_at=dt.datetime.now(dt.UTC),
    )
    return run_ingest(ctx, CrawlerLogsSource())


def _runs(spark, lake):
    return spark.read.format("delta").load(f"{lake}/crawler_runs")


def test_ingest_end_to_end_split_run_quarantine_and_rerun(spark, tmp_path):
    src, lake = tmp_path / "raw", tmp_path / "lake"
    first = src / "exports" / "4f15b84a-1adb-492a-820c-c0cedcaf1933" / "onudb-crawler"
    first.mkdir(parents=True)
    (src / "exports" / "aws-logs-write-test").write_text("Permission Check Successful")
    (first / "000000.gz").write_bytes(
        export_object(
            [
                (
                    "2024-07-05T23:59:00.000Z",
                    f"{ONU} BENCHMARK : Running Start Crawl for Crawler onudb-crawler",
                ),
                (
                    "2024-07-05T23:59:30.000Z",
                    f"{ONU} BENCHMARK : Classification complete, writing results to database onudb",
                ),
                ("2024-07-05T23:59:31.000Z", ONU_CONFIG),
            ]
        )
    )
    fh = src / "firehose" / "2025" / "10" / "02" / "00"
    fh.mkdir(parents=True)
    nba = [
        ("2025-10-01T23:34:03Z", f"{NBA} BENCHMARK : Running Start Crawl for Crawler nba-data-crawler"),
        ("2025-10-01T23:58:04Z", f"{NBA} WARN : OutOfMemoryError: Please submit a ticket to AWS Support"),
        ("2025-10-02T00:03:17Z", f"{NBA} ERROR : Internal Service Exception"),
        ("2025-10-02T00:05:17Z", f"{NBA} BENCHMARK : Crawler has finished running and is in state READY"),
    ]
    (fh / "crawlers-1-2025-10-02-00-06-00-0001").write_bytes(
        firehose_object(
            envelope("nba-data-crawler", nba[:2]) + envelope("nba-data-crawler", nba[2:]), CONTROL
        )
    )
    (fh / "crawlers-1-2025-10-02-00-07-00-0002").write_bytes(b"\x1f\x8b\x08\x00 not gzip at all")

    rec1 = _ingest(spark, src, lake, run_id="r1")
    assert (rec1.records_read, rec1.records_loaded, rec1.records_quarantined, rec1.records_duplicate) == (
        8,
        7,
        1,
        0,
    )
    assert rec1.counters["control_messages"] == 1
    assert rec1.skipped_by_reason == {"export_write_test_marker": 1}

    # The rest of the onudb run arrives in a later export (and the next day): still one run.
    second = src / "exports" / "7a1c0b2e-0000-4000-8000-00000000beef" / "onudb-crawler"
    second.mkdir(parents=True)
    (second / "000000.gz").write_bytes(
        export_object(
            [
                ("2024-07-06T00:00:42.002Z", f"{ONU} INFO : ADD: 2"),
                ("2024-07-06T00:00:40.000Z", f"{ONU} INFO : Created table export in database onudb"),
                ("2024-07-06T00:00:41.000Z", f"{ONU} INFO : Created table hdi in database onudb"),
                ("2024-07-06T00:00:42.001Z", f"{ONU} INFO : Run Summary For TABLE:"),
                (
                    "2024-07-06T00:01:00.000Z",
                    f"{ONU} BENCHMARK : Crawler has finished running and is in state READY",
                ),
                # overlap with the first export: the same event again is no new row
                (
                    "2024-07-05T23:59:30.000Z",
                    f"{ONU} BENCHMARK : Classification complete, writing results to database onudb",
                ),
            ]
        )
    )
    rec2 = _ingest(spark, src, lake, run_id="r2")
    assert (rec2.records_read, rec2.records_loaded, rec2.records_quarantined, rec2.records_duplicate) == (
        6,
        5,
        0,
        1,
    )

    runs_after_2 = _runs(spark, lake)
    expected = spark.createDataFrame(
        [
            (
                "onudb-crawler",
                ONU_ID,
                dt.date(2024, 7, 5),
                dt.datetime(2024, 7, 5, 23, 59),
                dt.datetime(2024, 7, 6, 0, 1),
                120.0,
                "READY",
                "succeeded",
                0,
                0,
                2,
                0,
                0,
                0,
                0,
                None,
            ),
            (
                "nba-data-crawler",
                NBA_ID,
                dt.date(2025, 10, 1),
                dt.datetime(2025, 10, 1, 23, 34, 3),
                dt.datetime(2025, 10, 2, 0, 5, 17),
                1874.0,
                "READY",
                "failed",
                1,
                1,
                0,
                0,
                0,
                0,
                0,
                "Internal Service Exception",
            ),
        ],
        RUN_SCHEMA,
    )
    assert_df_equality(
        runs_after_2.select(*RUN_COLUMNS), expected, ignore_row_order=True, ignore_nullable=True
    )

    quarantine = spark.read.format("delta").load(f"{lake}/quarantine").select("source_object", "record_index")
    assert_df_equality(
        quarantine,
        spark.createDataFrame(
            [(f"file:{fh}/crawlers-1-2025-10-02-00-07-00-0002", -1)],
            "source_object string, record_index bigint",
        ),
        ignore_nullable=True,
    )

    # Reruns add nothing: ledger skip, then a forced re-read of everything.
    snapshot = runs_after_2.collect()
    rec3 = _ingest(spark, src, lake, run_id="r3")
    assert (rec3.objects_processed, rec3.records_loaded) == (0, 0)
    rec4 = _ingest(spark, src, lake, run_id="r4", reprocess=True)
    assert (rec4.records_read, rec4.records_loaded, rec4.records_quarantined, rec4.records_duplicate) == (
        14,
        0,
        1,
        13,
    )
    assert rec4.counters["crawler_runs_upserted"] == 0
    assert sorted(_runs(spark, lake).collect()) == sorted(snapshot)
    assert spark.read.format("delta").load(f"{lake}/crawler_log_events").count() == 12

    balance = (
        spark.read.format("delta")
        .load(f"{lake}/job_runs")
        .where(
            F.col("records_read")
            != F.col("records_loaded") + F.col("records_quarantined") + F.col("records_duplicate")
        )
    )
    assert balance.count() == 0


def test_summary_is_made_again_when_a_concurrent_run_adds_events_of_the_run_in_between(
    spark, tmp_path, monkeypatch
):
    """The upsert of crawler_runs is current only if no events came in since the summary's read:
    here another run of the ingest commits the run's last event right after this run's upsert,
    so the stored summary (still ``incomplete``) must be made again from the events as they are."""
    from auditlake import lake as lake_mod

    src, lake = tmp_path / "raw", tmp_path / "lake"
    task = src / "exports" / "0b9d2c4e-1111-4222-8333-444455556666" / "onudb-crawler"
    task.mkdir(parents=True)
    (task / "000000.gz").write_bytes(
        export_object(
            [
                (
                    "2024-07-05T10:00:00.000Z",
                    f"{ONU} BENCHMARK : Running Start Crawl for Crawler onudb-crawler",
                ),
                ("2024-07-05T10:00:30.000Z", f"{ONU} INFO : Created table export in database onudb"),
            ]
        )
    )
    finished = ev(
        "onudb-crawler",
        "2024-07-05T10:02:00.000Z",
        f"{ONU} BENCHMARK : Crawler has finished running and is in state READY",
        0,
        obj="file:/elsewhere/0b9d2c4e/onudb-crawler/000001.gz",
    )
    late = normalize_crawler_events(raw_frame(spark, [finished]))
    upserts: list[int] = []
    upsert = lake_mod.upsert_rows

    def upsert_then_a_concurrent_commit(spark_, df, lake_, table, **kw):
        n = upsert(spark_, df, lake_, table, **kw)
        if table == "crawler_runs":
            upserts.append(n)
            if len(upserts) == 1:
                lake_mod.merge_new_rows(
                    spark_, late, lake_, "crawler_log_events", dates=[dt.date(2024, 7, 5)]
                )
        return n

    monkeypatch.setattr(lake_mod, "upsert_rows", upsert_then_a_concurrent_commit)
    rec = _ingest(spark, src, lake, run_id="r1")

    assert rec.records_loaded == 2
    assert upserts == [1, 1]  # the stale summary, then the one made again
    assert rec.counters["crawler_runs_upserted"] == 2
    got = _runs(spark, lake).select(
        "run_id",
        "status",
        F.date_format("finished_at", "yyyy-MM-dd HH:mm:ss"),
        "duration_seconds",
        "tables_created",
    )
    assert [tuple(r) for r in got.collect()] == [(ONU_ID, "succeeded", "2024-07-05 10:02:00", 120.0, 1)]
