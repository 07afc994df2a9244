"""Glue crawler logs (log group ``/aws-glue/crawlers``) from CloudWatch Logs deliveries to S3.

Two delivery forms, detected per object from its bytes (not its name):

* export task output, ``<prefix>/<task-id>/<log-stream>/000000.gz``: gzipped text, one event per
  line ``<ISO-8601 timestamp> <message>``; a multi-line message continues on lines without a
  timestamp. The log stream (= crawler name) is the object's parent folder.
* subscription through Firehose: CloudWatch Logs JSON envelopes, gzipped by CloudWatch and maybe
  again by Firehose (detected by the gzip magic bytes, not the extension), several envelopes
  concatenated with no separator (``}{``). ``CONTROL_MESSAGE`` envelopes are counted, not loaded.

Cold path on purpose: crawler logs are a few lines per crawler run, so objects are read whole
with ``binaryFile`` and decoded by a plain Python function per object (gzip layers, envelope
splitting, continuation-line grouping: all inherently sequential within one object, and the
grouping must follow the physical line order of the file, because the event order inside an
export file is not guaranteed). Everything after that (crawler line shape, kinds, names,
keys) is vectorised Spark column logic.

Lines with a timestamp whose message is not a crawler line (``[uuid] LEVEL : text``) are kept as
events with a null level and kind ``other``: they are real log events of the log group, and the
seed's metric filter counts them too when they contain ``ERROR``. Only what cannot become an
event goes to quarantine: bad gzip, non-UTF-8 bytes, bad JSON envelopes, envelope events without
a usable timestamp or stream, timestamp-shaped lines whose timestamp does not parse, and
continuation lines with no event above them.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import logging
import re
import zlib
from collections.abc import Iterator
from typing import Any

import pyspark.sql.functions as F
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import types as T

from auditlake import commits
from auditlake import config as config_mod
from auditlake import lake as lake_mod
from auditlake.ingest.decoding import DEFAULT_MAX_RECORD_BYTES, scan_json, too_deep
from auditlake.ingest.objects import SourceObject, load_paths, object_uri_col, spark_path
from auditlake.ingest.quarantine import ROW_INDEX, to_quarantine
from auditlake.ingest.source import ParsedBatch
from auditlake.tables import conform

log = logging.getLogger(__name__)

SOURCE = "crawler_logs"
EVENTS_TABLE = "crawler_log_events"
RUNS_TABLE = "crawler_runs"
# after_commit: summary passes at most (one, plus one per concurrent run that added events meanwhile).
MAX_SUMMARY_PASSES = 4

WRITE_TEST_MARKER = "aws-logs-write-test"
GZIP_MAGIC = b"\x1f\x8b"
MAX_GZIP_LAYERS = 3
# Plausible CloudWatch timestamps only: a partition value must come from validated data.
MIN_MS = int(dt.datetime(2000, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)
MAX_MS = int(dt.datetime(2100, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)

# One row per decoded item of an object: an event, a bad item (quarantine) or a control message.
RAW_SCHEMA = T.StructType(
    [
        T.StructField("row_type", T.StringType(), False),  # event | bad | control
        T.StructField("delivery", T.StringType(), True),  # export | firehose | null (object unreadable)
        T.StructField("source_object", T.StringType(), False),
        T.StructField(
            "record_index", T.LongType(), False
        ),  # export: 1-based first line; firehose: item ordinal; -1 object
        T.StructField("crawler_name", T.StringType(), True),
        T.StructField("event_ms", T.LongType(), True),
        T.StructField("message", T.StringType(), True),
        T.StructField("reason", T.StringType(), True),
        T.StructField("raw_text", T.StringType(), True),
    ]
)

_TS_LINE = re.compile(
    r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})?)(?:[ \t]|$)"
)
# Looks like it starts with a date: a line like this is an event line, never a continuation.
_TS_LIKE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}[T ]\d")
_FIREHOSE_DATE = re.compile(r"/(\d{4})/(\d{2})/(\d{2})/(?:\d{2}/)?[^/]+$")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# CloudWatch Logs export task ids are UUIDs: ``<prefix>/<task-id>/<log-stream>/000000.gz``.
_TASK_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


# --------------------------------------------------------------------------- decoding (per object)


def parse_iso_ms(text: str) -> int | None:
    """Epoch milliseconds of an ISO-8601 timestamp (no zone means UTC); None if it does not parse."""
    try:
        value = dt.datetime.fromisoformat(text.replace(",", "."))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return (value - _EPOCH) // dt.timedelta(milliseconds=1)


def normalize_message(message: str) -> str:
    """The one message form both deliveries share: LF line ends, no trailing line ends."""
    return message.replace("\r\n", "\n").rstrip("\r\n")


def gunzip_layers(data: bytes) -> tuple[bytes, int]:
    """Strip every gzip layer (each may hold several members); return the payload and the layer count."""
    layers = 0
    while data[:2] == GZIP_MAGIC:
        if layers == MAX_GZIP_LAYERS:
            raise ValueError(f"more than {MAX_GZIP_LAYERS} gzip layers")
        data = gzip.decompress(data)
        layers += 1
    return data, layers


def _row(
    row_type: str,
    delivery: str | None,
    uri: str,
    index: int,
    crawler: str | None = None,
    ms: int | None = None,
    message: str | None = None,
    reason: str | None = None,
    raw: str | None = None,
) -> tuple:
    # The raw text goes whole to the quarantine, which cuts it and records its true length.
    return (row_type, delivery, uri, index, crawler, ms, message, reason, raw)


def stream_from_export_key(uri: str) -> str | None:
    """The log stream of an export object: its parent folder (``.../<task-id>/<stream>/000000.gz``)."""
    parts = uri.rstrip("/").split("/")
    return parts[-2] if len(parts) >= 2 and parts[-2] else None


def decode_object(
    uri: str, content: bytes, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
) -> Iterator[tuple]:
    """Decode one raw object into RAW_SCHEMA tuples (events, bad items, control messages).

    An event whose message is over ``max_record_bytes`` (UTF-8) is quarantined with that reason.
    """
    try:
        payload, _ = gunzip_layers(bytes(content))
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        yield _row(
            "bad",
            None,
            uri,
            -1,
            reason=f"not a readable gzip object: {exc}",
            raw=bytes(content[:4096]).decode("latin-1"),
        )
        return
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        yield _row(
            "bad",
            None,
            uri,
            -1,
            reason=f"not UTF-8 text: {exc.reason} at byte {exc.start}",
            raw=payload.decode("utf-8", errors="replace"),
        )
        return
    if text.startswith("\ufeff"):
        text = text[1:]
    if text.lstrip()[:1] == "{":
        rows = decode_envelopes(uri, text)
    else:
        rows = decode_export_lines(uri, text, stream_from_export_key(uri))
    for row in rows:
        yield _size_checked(row, max_record_bytes)


def _size_checked(row: tuple, max_record_bytes: int) -> tuple:
    """An event row, or its quarantine row when the message is over the size limit."""
    if row[0] != "event" or len(row[6]) * 4 <= max_record_bytes:  # a char is at most 4 bytes
        return row
    size = len(row[6].encode("utf-8"))
    if size <= max_record_bytes:
        return row
    return _row(
        "bad",
        row[1],
        row[2],
        row[3],
        reason=f"log event message of {size} bytes is over the {max_record_bytes}-byte record limit",
        raw=row[6],
    )


def decode_export_lines(uri: str, text: str, crawler: str | None) -> Iterator[tuple]:
    """Group export lines into events: a line without a timestamp continues the line above it.

    Grouping follows the physical order of lines in the file (events themselves may be out of
    time order). A timestamp-shaped line whose timestamp does not parse is quarantined together
    with its continuation lines; so are continuation lines at the top of the file.
    """
    current: dict[str, Any] | None = None

    def flush(item: dict[str, Any] | None) -> Iterator[tuple]:
        if item is None:
            return
        body = "\n".join(item["lines"])
        if item["reason"] is None:
            yield _row("event", "export", uri, item["line"], crawler, item["ms"], normalize_message(body))
        else:
            yield _row("bad", "export", uri, item["line"], reason=item["reason"], raw=body)

    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, start=1):
        line = line[:-1] if line.endswith("\r") else line
        m = _TS_LINE.match(line)
        if m is not None or _TS_LIKE.match(line):
            yield from flush(current)
            ms = parse_iso_ms(m.group(1)) if m is not None else None
            if ms is not None and not MIN_MS <= ms < MAX_MS:
                reason: str | None = "timestamp out of range"
            elif ms is None:
                reason = "invalid timestamp"
            else:
                reason = None
            if reason is None and crawler is None:
                reason = "export object key has no log stream folder"
            message = line[m.end() :] if m is not None and reason is None else line
            current = {"line": number, "ms": ms, "lines": [message], "reason": reason}
        elif current is None:
            current = {
                "line": number,
                "ms": None,
                "lines": [line],
                "reason": "continuation line without a preceding event",
            }
        else:
            current["lines"].append(line)
    yield from flush(current)


def decode_envelopes(uri: str, text: str) -> Iterator[tuple]:
    """Split concatenated CloudWatch Logs envelopes (``}{``) and yield their log events.

    Each envelope's nesting is measured first (``scan_json``, no recursion): one nested deeper
    than ``MAX_JSON_DEPTH`` is quarantined whole, and the envelopes after it still load.
    """
    decoder = json.JSONDecoder()
    pos, index, size = 0, 0, len(text)
    while True:
        while pos < size and text[pos] in " \t\r\n":
            pos += 1
        if pos >= size:
            return
        index += 1
        span = scan_json(text, pos)
        deep = too_deep(span.depth)
        if deep is not None:
            yield _row("bad", "firehose", uri, index, reason=f"envelope {deep}", raw=text[pos : span.end])
            if not span.complete:
                return
            pos = span.end
            continue
        try:
            env, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            yield _row(
                "bad", "firehose", uri, index, reason=f"invalid JSON envelope: {exc.msg}", raw=text[pos:]
            )
            return
        raw_env = text[pos:end]
        pos = end
        if not isinstance(env, dict):
            yield _row("bad", "firehose", uri, index, reason="envelope is not a JSON object", raw=raw_env)
            continue
        kind = env.get("messageType")
        if kind == "CONTROL_MESSAGE":
            yield _row("control", "firehose", uri, index, raw=raw_env)
            continue
        stream, events = env.get("logStream"), env.get("logEvents")
        if kind != "DATA_MESSAGE":
            yield _row(
                "bad", "firehose", uri, index, reason=f"unknown messageType {str(kind)[:40]!r}", raw=raw_env
            )
            continue
        if not isinstance(stream, str) or not stream or not isinstance(events, list):
            yield _row(
                "bad",
                "firehose",
                uri,
                index,
                reason="DATA_MESSAGE without logStream or logEvents",
                raw=raw_env,
            )
            continue
        for event in events:
            index += 1
            ts = event.get("timestamp") if isinstance(event, dict) else None
            message = event.get("message") if isinstance(event, dict) else None
            if isinstance(ts, bool) or not isinstance(ts, int) or not isinstance(message, str):
                yield _row(
                    "bad",
                    "firehose",
                    uri,
                    index,
                    reason="log event without integer timestamp and string message",
                    raw=json.dumps(event),
                )
            elif not MIN_MS <= ts < MAX_MS:
                yield _row(
                    "bad", "firehose", uri, index, reason="timestamp out of range", raw=json.dumps(event)
                )
            else:
                yield _row("event", "firehose", uri, index, stream, ts, normalize_message(message))


def read_raw(
    spark, objects: list[SourceObject], max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
) -> DataFrame:
    """Read the objects whole and decode them into RAW_SCHEMA rows."""
    files = load_paths(spark, "binaryFile", [spark_path(o.uri) for o in objects]).select(
        object_uri_col(F.col("path")).alias("uri"), "content"
    )
    rows = files.rdd.flatMap(lambda r: decode_object(r[0], r[1], max_record_bytes))
    return spark.createDataFrame(rows, RAW_SCHEMA)


# --------------------------------------------------------------------------- normalizing (vectorised)

LEVELS = "BENCHMARK|INFO|WARN|ERROR|TRACE"
# `[<run uuid>] LEVEL : text`; AWS's own grok for these lines is `\[%{MESSAGEPREFIX}\] %{LOGLEVEL} : ...`.
# The no-prefix form `LEVEL : text` is seen too (run_id stays null).
_LINE = rf"(?s)^(?:\[([^\]\n]*)\]\s+)?({LEVELS})\s+:\s?(.*)$"
_SUMMARY_HEADER = r"^Run Summary For (\w+)\s*:"
_SUMMARY_COUNT = r"^(ADD|UPDATE|DELETE)\s*:\s*(\d+)\s*$"
_NAME = r"([^\s,;]+?)[.,:;]?(?:\s|$)"


def _extract(col: Column, pattern: str, idx: int = 1) -> Column:
    value = F.regexp_extract(col, pattern, idx)
    return F.when(value != "", value)


def with_crawler_line(df: DataFrame) -> DataFrame:
    """Split ``[uuid] LEVEL : text`` into run_id, level and body (all null when the shape differs)."""
    matched = F.col("message").rlike(_LINE)
    return df.select(
        "*",
        F.when(matched, _extract(F.col("message"), _LINE, 1)).alias("run_id"),
        F.when(matched, _extract(F.col("message"), _LINE, 2)).alias("level"),
        F.when(matched, F.regexp_extract(F.col("message"), _LINE, 3)).alias("body"),
    )


def _summary_kind(entity: Column, action: Column) -> Column:
    return (
        F.when((entity == "TABLE") & (action == "ADD"), "table_created")
        .when((entity == "TABLE") & (action == "UPDATE"), "table_updated")
        .when((entity == "PARTITION") & (action == "ADD"), "partitions_added")
        .when((entity == "PARTITION") & (action == "UPDATE"), "partitions_updated")
        .otherwise("run_summary")
    )


def with_event_kind(df: DataFrame) -> DataFrame:
    """Classify crawler lines; pull database, table, final state and Run Summary counts.

    A Run Summary count line (``ADD: 2``) takes its meaning from the ``Run Summary For TABLE:`` or
    ``... PARTITION:`` header before it in the same run, ordered by time, then object and line
    (header and counts are written within a millisecond or two, and can share one).
    """
    body, level = F.col("body"), F.col("level")
    is_count = body.rlike(_SUMMARY_COUNT)
    run_order = (
        Window.partitionBy("crawler_name", "run_id")
        .orderBy("event_ms", "source_object", "record_index")
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    entity = F.last(_extract(body, _SUMMARY_HEADER), ignorenulls=True).over(run_order)
    kind = (
        F.when(level.isNull(), F.lit("other"))
        .when(body.startswith("Running Start Crawl for Crawler"), "run_started")
        .when(body.startswith("Crawler has finished running and is in state"), "run_finished")
        .when(body.startswith("Classification complete"), "classification_complete")
        .when(body.startswith("Finished writing to Catalog"), "catalog_written")
        .when(body.rlike(r"^Created table \S"), "table_created")
        .when(
            body.rlike(r"^(?:Table \S+ (?:in database \S+ )?(?:has been|was) updated|Updated table \S)"),
            "table_updated",
        )
        .when(body.rlike(r"^Table \S+ (?:in database \S+ )?is marked deprecated"), "table_deprecated")
        .when(body.rlike(r"^(?:Created|Added|Adding) partitions?\b"), "partitions_added")
        .when(body.rlike(r"^(?:Updated|Updating) partitions?\b"), "partitions_updated")
        .when(body.rlike(_SUMMARY_HEADER), "run_summary")
        .when(
            is_count & level.isin("INFO", "BENCHMARK"),
            _summary_kind(entity, _extract(body, _SUMMARY_COUNT, 1)),
        )
        .when(level == "ERROR", "error")
        .when(level == "WARN", "warning")
        .otherwise("other")
    )
    table = F.coalesce(
        _extract(body, r"^Table " + _NAME),
        _extract(body, r"\b(?:Created|Updated|Deleted|of|for|to|from) table " + _NAME),
    )
    database = _extract(body, r"\b(?:in|to) database " + _NAME)
    return df.select(
        "*",
        kind.alias("event_kind"),
        F.when(level.isNotNull(), database).alias("database_name"),
        F.when(level.isNotNull(), table).alias("table_name"),
        F.when(
            level.isNotNull(), _extract(body, r"^Crawler has finished running and is in state (\w+)")
        ).alias("final_state"),
        F.when(level.isNotNull() & is_count, _extract(body, _SUMMARY_COUNT, 2).cast("bigint")).alias(
            "summary_count"
        ),
    )


def error_filter_match(message: Column) -> Column:
    """What the metric filter pattern ``ERROR`` counts: events whose message contains ``ERROR``.

    Case-sensitive, and a term match is not a whole-word match (AWS's own example: ``ERROR``
    matches ``Exiting with ERRORCODE: -1``). One match per event, however often the term occurs.
    """
    return F.coalesce(message.contains("ERROR"), F.lit(False))


def with_event_key(df: DataFrame) -> DataFrame:
    """The exactly-once key, identical for an event whether it came by export or by Firehose.

    Exports carry no event id, so the key is sha256(crawler, timestamp ms, message, occurrence):
    occurrence numbers identical (crawler, ms, message) events within one object, so two real
    ``ADD: 1`` lines in the same millisecond stay two rows, while one event delivered in two
    objects (an export and a Firehose file, or two overlapping exports) is one row.
    """
    same = Window.partitionBy("crawler_name", "event_ms", "message", "source_object").orderBy("record_index")
    occurrence = F.row_number().over(same)
    key = F.sha2(
        F.concat_ws(
            "\u001f",
            F.col("crawler_name"),
            F.col("event_ms").cast("string"),
            F.col("message"),
            occurrence.cast("string"),
        ),
        256,
    )
    return df.withColumn("event_key", key)


def normalize_crawler_events(raw_events: DataFrame) -> DataFrame:
    """Decoded events (RAW_SCHEMA rows of type ``event``) -> the ``crawler_log_events`` contract."""
    event_time = F.timestamp_millis(F.col("event_ms"))
    return (
        raw_events.transform(with_crawler_line)
        .transform(with_event_kind)
        .transform(with_event_key)
        .withColumns(
            {
                "event_time": event_time,
                "event_date": F.to_date(event_time),
                "error_filter_match": error_filter_match(F.col("message")),
                ROW_INDEX: F.col("record_index"),
            }
        )
        .transform(conform, EVENTS_TABLE, keep=(ROW_INDEX,))
    )


# --------------------------------------------------------------------------- runs


def aggregate_crawler_runs(events: DataFrame) -> DataFrame:
    """All events of some runs -> one ``crawler_runs`` row per (crawler_name, run_id).

    Counts prefer the crawler's own Run Summary (``ADD: n`` under ``TABLE``/``PARTITION``) and fall
    back to counting the individual lines (``Created table ...``) when a run has no summary.
    """
    kind, level, n = F.col("event_kind"), F.col("level"), F.col("summary_count")
    ordered = F.struct(F.col("event_time"), F.col("event_key"))

    def counted(name: str) -> Column:
        summary = F.sum(F.when((kind == name) & n.isNotNull(), n))
        lines = F.count(F.when((kind == name) & n.isNull(), True))
        return F.coalesce(summary, lines).cast("bigint")

    error_body = F.regexp_replace(F.col("message"), r"(?s)^(?:\[[^\]\n]*\]\s+)?ERROR\s+:\s?", "")
    agg = (
        events.where(F.col("run_id").isNotNull())
        .groupBy("crawler_name", "run_id")
        .agg(
            F.min(F.when(kind == "run_started", F.col("event_time"))).alias("start_line_at"),
            F.min("event_time").alias("first_seen_at"),
            F.max(F.when(kind == "run_finished", F.col("event_time"))).alias("finished_at"),
            F.max_by(F.col("final_state"), F.when(kind == "run_finished", ordered)).alias("final_state"),
            F.count(F.when(F.col("error_filter_match"), True)).alias("error_count"),
            F.count(F.when(level == "ERROR", True)).alias("error_lines"),
            F.count(F.when(level == "WARN", True)).alias("warn_count"),
            counted("table_created").alias("tables_created"),
            counted("table_updated").alias("tables_updated"),
            counted("table_deprecated").alias("tables_deprecated"),
            counted("partitions_added").alias("partitions_added"),
            counted("partitions_updated").alias("partitions_updated"),
            F.min_by(error_body, F.when(level == "ERROR", ordered)).alias("first_error_message"),
        )
    )
    started = F.coalesce(F.col("start_line_at"), F.col("first_seen_at"))
    finished = F.col("finished_at")
    return agg.select(
        F.col("crawler_name"),
        F.col("run_id"),
        F.to_date(started).alias("run_date"),
        started.alias("started_at"),
        finished.alias("finished_at"),
        ((F.unix_micros(finished) - F.unix_micros(started)) / F.lit(1_000_000.0)).alias("duration_seconds"),
        F.col("final_state"),
        F.when(F.col("error_lines") > 0, "failed")
        .when(finished.isNotNull(), "succeeded")
        .otherwise("incomplete")
        .alias("status"),
        F.col("error_count").cast("bigint"),
        F.col("warn_count").cast("bigint"),
        F.col("tables_created"),
        F.col("tables_updated"),
        F.col("tables_deprecated"),
        F.col("partitions_added"),
        F.col("partitions_updated"),
        F.col("first_error_message"),
        F.current_timestamp().alias("updated_at"),
    )


def changed_runs(new: DataFrame, existing: DataFrame) -> DataFrame:
    """Rows of ``new`` that are not already in ``existing`` with the same values (updated_at aside)."""
    keys = ["crawler_name", "run_id"]
    compared = [c for c in new.columns if c not in keys and c != "updated_at"]
    same = F.lit(True)
    for c in compared:
        same = same & F.col(f"n.{c}").eqNullSafe(F.col(f"e.{c}"))
    joined = new.alias("n").join(existing.alias("e"), on=keys, how="left")
    # run_date is never null in the table: a null one means the run is new.
    return joined.where(F.col("e.run_date").isNull() | ~same).select(
        *keys, *[F.col(f"n.{c}").alias(c) for c in new.columns if c not in keys]
    )


# --------------------------------------------------------------------------- the Source


class CrawlerLogsSource:
    """Glue crawler logs from CloudWatch Logs export tasks and Firehose subscription deliveries."""

    name = SOURCE
    tables: tuple[str, ...] = (EVENTS_TABLE,)

    def __init__(self) -> None:
        self.errors_by_crawler: dict[str, int] = {}

    def classify(self, obj: SourceObject) -> str | None:
        if obj.uri.endswith("/"):
            return "folder_marker"
        if obj.name == WRITE_TEST_MARKER:
            return "export_write_test_marker"
        if obj.size == 0:
            return "empty_object"
        return None

    def task_folder(self, name: str) -> bool:
        """Whether a folder name is an export task id (a bounded listing skips completed tasks)."""
        return bool(_TASK_ID.match(name))

    def object_date(self, obj: SourceObject) -> dt.date | None:
        """Firehose keys carry the delivery day (``YYYY/MM/DD/HH/``); export keys carry none."""
        m = _FIREHOSE_DATE.search(obj.uri)
        if m is None:
            return None
        try:
            return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            return None

    def parse(self, spark, objects: list[SourceObject], *, run_id: str, cfg: dict[str, Any]) -> ParsedBatch:
        max_chars = int(config_mod.get(cfg, "ingest.quarantine_raw_max_chars", 8192))
        limit = int(config_mod.get(cfg, "ingest.max_record_bytes", DEFAULT_MAX_RECORD_BYTES))
        raw = read_raw(spark, objects, limit).persist(StorageLevel.MEMORY_AND_DISK)
        counts = {
            (r["row_type"], r["delivery"]): int(r["count"])
            for r in raw.groupBy("row_type", "delivery").count().collect()
        }
        counters = {
            "control_messages": sum(v for (t, _), v in counts.items() if t == "control"),
            "export_events": counts.get(("event", "export"), 0),
            "firehose_events": counts.get(("event", "firehose"), 0),
        }
        log.info("%s: decoded %s", SOURCE, counters)
        # Cached: the runner's gate, merge and after_commit all read it, and it holds windows.
        events = normalize_crawler_events(raw.where(F.col("row_type") == "event")).persist(
            StorageLevel.MEMORY_AND_DISK
        )
        quarantine = to_quarantine(
            raw.where(F.col("row_type") == "bad"),
            source=SOURCE,
            source_object="source_object",
            record_index=F.col("record_index"),
            raw_text=F.coalesce(F.col("raw_text"), F.lit("")),
            reason=F.col("reason"),
            run_id=run_id,
            max_chars=max_chars,
        )
        return ParsedBatch(
            tables={EVENTS_TABLE: events}, quarantine=quarantine, counters=counters, persisted=[raw, events]
        )

    def after_commit(
        self, spark, lake: str, deduped_tables: dict[str, DataFrame], *, run_id: str, cfg: dict[str, Any]
    ) -> dict[str, int]:
        """Recompute every run the batch touched from all its events in the lake; upsert what changed.

        A run's other events are read from the event days around the batch's own, ``ingest.
        crawler_run_span_days`` either side (a partition filter, so a year of events is not
        scanned for one hour's runs). The summary is read at one version of the events table, and
        the upsert is done when that version is still the newest after it: otherwise a concurrent
        run of this ingest added events in between, and the summary is made again.
        """
        batch = deduped_tables.get(EVENTS_TABLE)
        if batch is None:
            return {}
        # One job: per crawler, what the ERROR metric filter on the log group counts (published
        # as metrics), and the event days of the batch's run events.
        run_event_day = F.when(F.col("run_id").isNotNull(), F.col("event_date"))
        per_crawler = (
            batch.groupBy("crawler_name")
            .agg(
                F.sum(F.col("error_filter_match").cast("int")),
                F.min(run_event_day),
                F.max(run_event_day),
            )
            .collect()
        )
        self.errors_by_crawler = {r[0]: int(r[1]) for r in per_crawler}
        days = [d for r in per_crawler for d in (r[2], r[3]) if d is not None]
        if not days:
            return {RUNS_TABLE: 0}
        span = dt.timedelta(days=int(config_mod.get(cfg, "ingest.crawler_run_span_days", 7)))
        first, last = min(days) - span, max(days) + span
        touched = batch.where(F.col("run_id").isNotNull()).select("crawler_name", "run_id").distinct()
        uri = lake_mod.table_uri(lake, EVENTS_TABLE)
        upserted = 0
        for _ in range(MAX_SUMMARY_PASSES):
            version = commits.latest_version(spark, uri)
            events = (
                spark.read.format("delta")
                .option("versionAsOf", version)
                .load(uri)
                .where(F.col("event_date").between(F.lit(first), F.lit(last)))
                .join(F.broadcast(touched), on=["crawler_name", "run_id"], how="left_semi")
            )
            runs = aggregate_crawler_runs(events)
            # Cached behind a one-node plan: the emptiness check and the MERGE plan that node,
            # not the read, join and aggregation of the events again.
            changed = lake_mod.cached_flat(changed_runs(runs, lake_mod.read_table(spark, lake, RUNS_TABLE)))
            try:
                if changed.isEmpty():
                    break
                upserted += lake_mod.upsert_rows(spark, changed, lake, RUNS_TABLE)
            finally:
                changed.unpersist()
            if commits.latest_version(spark, uri) == version:
                break  # no events came in since the summary's read: the runs stored now are current
        return {RUNS_TABLE: upserted}
