"""S3 server access logs: plain-text objects, one request per line, into ``s3_access_logs``.

The line layout (AWS "Amazon S3 server access log format"): space-separated fields, the time in
brackets, three quoted strings (request URI, referer, user agent) whose inner quotes are NOT
escaped, and the requester may contain spaces (a CloudFront origin access identity). Fields were
added at the end over the years (host id ... TLS version, access point ARN, ACL required) and AWS
may append more at any time: older lines simply stop earlier, newer ones go to ``extra_fields``.

Parsing is one anchored regular expression evaluated once per line: ``regexp_replace`` rewrites a
matching line into its captured fields joined by a control character, and a plain ``split`` turns
that into an array. A line that does not match is left unchanged by the replace, which is how a
bad line is recognised without a second evaluation. The tricky fields are disambiguated by what
follows them: the requester ends where ``<request id> <OPERATION.LIKE.THIS>`` begins, the request
URI ends at the quote followed by a status code and the numeric fields, and the user agent ends at
a quote followed by quote-free tokens up to the end of the line.

Plain objects (how S3 delivers them) are read by Spark's line reader; each line keeps the chunk of
its object it was read in and its position in the read, and its exact 1-based line number is worked
out from those after the read (``chunk_numbering``), only for the lines that go to the quarantine.
Splitting whole objects into lines in the parse (``wholetext``, then ``split`` and ``posexplode``)
cost 22-24 s of a 2M-line batch where the line reader costs nothing over reading the text. The
bytes of every plain object's lines are checked against its listed size, so one read short is
quarantined and never half-loaded. Compressed objects are read whole, as one all-or-nothing read:
a truncated ``.gz`` then gives no line at all and is named by ``diagnose_unread``, where the line
reader would keep the lines before the truncation and say nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

import pyspark.sql.functions as F
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Window

from auditlake import config as config_mod
from auditlake import hadoop_fs
from auditlake import lake as lake_mod
from auditlake.ingest.decoding import DEFAULT_MAX_RECORD_BYTES, gunzip_members
from auditlake.ingest.objects import SourceObject, load_paths, object_uri_col, spark_path
from auditlake.ingest.quarantine import ROW_INDEX, quarantine_objects, to_quarantine, valid_utf8
from auditlake.ingest.source import ParsedBatch
from auditlake.tables import conform, load_contract

log = logging.getLogger(__name__)

SOURCE = "s3_access"
TABLE = "s3_access_logs"

# Joins the captured fields in the rewritten line; a line holding it is not trusted (see parse).
SEP = "\u0001"

# Java regex, named groups (letters and digits only: Java's rule). Tokens after the user agent
# cannot contain a quote: that is what stops a user agent with inner quotes from being cut short.
# The class is ``[^\s"]`` with ``\s`` spelled out (Java's \s is exactly these six characters):
# Java compiles a class of literal characters to a table lookup, where ``\s`` in a class is a
# chain of predicates per character. The whole pattern matched about 20% faster so (503,207
# lines to Spark's noop sink: 3.8-3.9 s to 3.1-3.2 s), with the same output on every line.
_TOKEN = r'[^ \t\n\x0B\f\r"]+'
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _trailing(names: list[str]) -> str:
    """Optional trailing fields, each present only if the ones before it are."""
    if not names:
        return r"(?: (?<extra>.*?))?"
    return f"(?: (?<{names[0]}>{_TOKEN}){_trailing(names[1:])})?"


LINE_PATTERN = (
    r"^(?<owner>\S+) (?<bucket>\S+) "
    r"\[(?<day>\d{2})/(?<mon>" + "|".join(_MONTHS) + r")/(?<year>\d{4})"
    r":(?<hms>\d{2}:\d{2}:\d{2}) (?<tzh>[+-]\d{2})(?<tzm>\d{2})\] "
    r"(?<ip>\S+) (?<requester>.+?) (?<reqid>\S+) (?<op>[A-Z][A-Za-z0-9_]*\.[A-Za-z0-9_.]+) (?<key>\S+) "
    r'(?:"(?<uri>(?<method>[A-Z]+) (?<path>.*?) (?<ver>HTTP/[0-9.]+)|.*?)"|-) '
    r"(?<status>\d+|-) (?<err>\S+) (?<bytes>\d+|-) (?<size>\d+|-) (?<total>\d+|-) (?<turn>\d+|-) "
    r'(?:"(?<referer>.*?)"|-) (?:"(?<ua>.*?)"|-) (?<versionid>'
    + _TOKEN
    + ")"
    + _trailing(["hostid", "sigv", "cipher", "auth", "hosthdr", "tls", "aparn", "acl"])
    + r" *\r?$"
)

# Capture group names in the order they appear in the rewritten line.
GROUPS: tuple[str, ...] = tuple(re.findall(r"\(\?<([a-zA-Z][a-zA-Z0-9]*)>", LINE_PATTERN))
# Every capturing group is named, so group i + 1 is GROUPS[i] (a test keeps it so). The replacement
# refers to them by number: Java parses the replacement again for every line, and a ``${name}``
# reference is a lookup by name each (the rewrite of the 503,207 lines above: 5.3-5.6 s by name,
# 4.9-5.1 s by number).
REPLACEMENT = SEP + SEP.join(f"${i}" for i in range(1, len(GROUPS) + 1))

# Used only on lines that failed the main pattern, to say why.
_LOOSE_TIME = r"^\S+ \S+ \[([^\]]*)\]"
_STRICT_TIME = r"^\d{2}/(?:" + "|".join(_MONTHS) + r")/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}$"
MIN_FIELDS = 18

# Names that are never access logs: folder markers, hidden and marker files.
_NOT_A_LOG = re.compile(r"(^[._])|(_\$folder\$$)")
# Object names in both layouts end with the delivery (or event) time and a unique string:
# TargetPrefixYYYY-mm-DD-HH-MM-SS-UniqueString, or
# [DestinationPrefix]SourceAccountId/SourceRegion/SourceBucket/YYYY/MM/DD/YYYY-MM-DD-hh-mm-ss-UniqueString
_KEY_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-[A-Za-z0-9]+$")


def object_date_from_name(name: str) -> dt.date | None:
    """The date in an access log object's name (either layout); None when it has none."""
    m = _KEY_TIME.search(name)
    if not m:
        return None
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def _field(name: str) -> Column:
    """One captured field as text; '' (group not matched) and '-' are null, bare or quoted."""
    v = F.col("parts").getItem(GROUPS.index(name) + 1)
    return F.when((v == "") | (v == "-"), F.lit(None)).otherwise(v)


def decode_key(raw: Column) -> Column:
    """URL-decode the logged key once; a key with a malformed %-escape is kept as logged.

    ``url_decode`` throws on a malformed escape ('%zz', a trailing '%'), hence the guard. It is
    form decoding ('+' is a space): S3 percent-encodes a literal '+' in the key as %2B.
    """
    return F.when(raw.rlike("%(?![0-9A-Fa-f]{2})"), raw).otherwise(F.url_decode(raw))


# A line's place in the read, carried from the read to the quarantine (never stored): the object's
# chunk (a plain object larger than a file split is read in several), the line's position in the
# read (increasing and gapless along a chunk), and its bytes as read (the object's completeness).
CHUNK = "_chunk_start"
LINE_ID = "_line_id"
LINE_BYTES = "_line_bytes"
# Extensions of the codecs Hadoop inflates by name: such objects are read whole (see the module).
COMPRESSED = (".gz", ".bz2", ".deflate", ".zst", ".lz4", ".snappy")


def read_whole(obj: SourceObject) -> bool:
    """Whether the object is compressed, so read whole (one all-or-nothing read), not by lines."""
    return obj.uri.lower().endswith(COMPRESSED)


# Spark's line reader drops a UTF-8 byte-order mark at the start of an object.
_BOM_BYTES = 3


def split_lines(raw: DataFrame) -> DataFrame:
    """(source_object, value = an object's whole text) -> one row per line, as ``read_lines`` gives.

    A whole object is one chunk (start 0) and its lines' positions are their 0-based numbers; the
    empty string after a final newline is not a line.
    """
    # Drop the final newline before splitting (one split per object, not one per reference).
    text = F.when(F.col("value").endswith("\n"), F.expr("substring(value, 1, length(value) - 1)")).otherwise(
        F.col("value")
    )
    lines = F.when(text == "", F.array().cast("array<string>")).otherwise(F.split(text, "\n"))
    return raw.select(
        F.col("source_object"),
        F.posexplode(lines).alias("pos", "line"),
    ).select(
        F.col("source_object"),
        F.lit(0).cast("bigint").alias(CHUNK),
        F.col("pos").cast("bigint").alias(LINE_ID),
        F.octet_length("line").alias(LINE_BYTES),
        F.col("line"),
    )


def read_lines(spark, objects: list[SourceObject]) -> DataFrame:
    """One row per line of the objects: ``source_object, _chunk_start, _line_id, _line_bytes, line``.

    Plain objects through the line reader (lines end at ``\\n`` only: a ``\\r`` before it stays in
    the line, as the layout's pattern allows), compressed ones whole (``read_objects``). The
    line's text is always valid UTF-8; its bytes are counted as read, before that repair.
    """
    plain = [spark_path(o.uri) for o in objects if not read_whole(o)]
    whole = [o for o in objects if read_whole(o)]
    parts = []
    if plain:
        parts.append(
            # An object Spark cannot open gives no row (checked on the driver).
            load_paths(spark, "text", plain, ignoreCorruptFiles=True, lineSep="\n").select(
                object_uri_col().alias("source_object"),
                F.col("_metadata.file_block_start").alias(CHUNK),
                # Partition index and position in it: along one chunk, consecutive numbers.
                F.monotonically_increasing_id().alias(LINE_ID),
                F.octet_length("value").alias(LINE_BYTES),
                valid_utf8(F.col("value")).alias("line"),
            )
        )
    if whole:
        parts.append(read_objects(spark, whole).transform(split_lines))
    if not parts:
        return spark.createDataFrame(
            [], f"source_object string, {CHUNK} bigint, {LINE_ID} bigint, {LINE_BYTES} int, line string"
        )
    return parts[0] if len(parts) == 1 else parts[0].unionByName(parts[1])


def chunk_numbering(lines: DataFrame) -> DataFrame:
    """Per chunk of each object read: its first line's position, lines, bytes (each line's plus its
    newline), and how many lines came before it in its object: ``source_object, _chunk_start,
    first_id, lines, bytes, before``. One small row per chunk; a line's number is
    ``_line_id - first_id + before + 1``.
    """
    earlier = Window.partitionBy("source_object").orderBy(CHUNK).rowsBetween(Window.unboundedPreceding, -1)
    return (
        lines.groupBy("source_object", CHUNK)
        .agg(
            F.min(LINE_ID).alias("first_id"),
            F.count(F.lit(1)).alias("lines"),
            F.sum(F.col(LINE_BYTES) + 1).alias("bytes"),
        )
        .withColumn("before", F.coalesce(F.sum("lines").over(earlier), F.lit(0)))
    )


def with_line_numbers(df: DataFrame, numbering: DataFrame, position: str, out: str) -> DataFrame:
    """``df`` (rows with ``source_object``, ``_chunk_start`` and a position column) with ``out``:
    each row's 1-based line number in its object (a broadcast join with ``chunk_numbering``)."""
    n = numbering.select("source_object", CHUNK, "first_id", "before")
    return (
        df.join(F.broadcast(n), ["source_object", CHUNK], "left")
        .withColumn(out, F.col(position) - F.col("first_id") + F.col("before") + 1)
        .drop("first_id", "before")
    )


def read_short(obj: SourceObject, lines: int, bytes_read: int) -> str | None:
    """Why a plain object's lines do not add up to its listed size (read short or changed since it
    was listed); None when they do: each line's bytes plus a newline, the last one's optional, and
    a byte-order mark the reader dropped. An object holding only a newline reads as one empty line,
    so a plain object the reader gave no line at all (an object of 0 bytes is never parsed) was
    not read.
    """
    if obj.size is None or read_whole(obj):
        return None
    missing = obj.size - bytes_read
    if missing in (0, -1, _BOM_BYTES, _BOM_BYTES - 1):
        return None
    return f"read {bytes_read} of the object's {obj.size} bytes: the object was read short or changed since it was listed"


def _numbers() -> dict[str, tuple[str, str]]:
    # output column -> (captured group, SQL type)
    return {
        "http_status": ("status", "int"),
        "bytes_sent": ("bytes", "bigint"),
        "object_size": ("size", "bigint"),
        "total_time_ms": ("total", "int"),
        "turn_around_time_ms": ("turn", "int"),
    }


def _reason_unmatched(line: Column) -> Column:
    """Why a line did not match the layout (evaluated only for lines that did not)."""
    logged_time = F.regexp_extract(line, _LOOSE_TIME, 1)
    n_fields = F.size(F.split(F.trim(line), " +"))
    return (
        F.when(F.trim(line) == "", F.lit("blank line"))
        .when(
            (logged_time != "") & ~logged_time.rlike(_STRICT_TIME),
            F.concat(F.lit("bad time ["), logged_time, F.lit("]")),
        )
        .when(
            n_fields < MIN_FIELDS,
            F.concat(
                F.lit(f"unparseable line: expected >= {MIN_FIELDS} fields, found "), n_fields.cast("string")
            ),
        )
        .when(line.contains(SEP), F.lit("unparseable line: contains the control character U+0001"))
        .otherwise(
            F.lit(
                "unparseable line: fields do not follow the S3 server access log layout "
                '(requester, request id, OPERATION, key, "request-URI", numeric status/bytes/times)'
            )
        )
    )


# output column -> captured group, for the fields kept as logged text ('-' and '' are null)
_TEXT_FIELDS = {
    "bucket_owner": "owner",
    "bucket": "bucket",
    "remote_ip": "ip",
    "requester": "requester",
    "request_id": "reqid",
    "operation": "op",
    "logged_key": "key",
    "request_uri": "uri",
    "http_method": "method",
    "request_path": "path",
    "http_version": "ver",
    "error_code": "err",
    "referer": "referer",
    "user_agent": "ua",
    "version_id": "versionid",
    "host_id": "hostid",
    "signature_version": "sigv",
    "cipher_suite": "cipher",
    "auth_type": "auth",
    "host_header": "hosthdr",
    "tls_version": "tls",
    "access_point_arn": "aparn",
}


def _group(name: str) -> Column:
    """One captured field exactly as logged ('' when its group did not match)."""
    return F.col("parts").getItem(GROUPS.index(name) + 1)


def matched_layout() -> Column:
    """Whether the line matched the layout: the rewrite left nothing before the first separator."""
    return (F.size(F.col("parts")) == len(GROUPS) + 1) & (F.col("parts").getItem(0) == "")


def logged_iso_time() -> Column:
    """The bracketed time as ISO-8601 with its logged offset (the cast to timestamp yields UTC)."""
    months = F.create_map(*[x for i, m in enumerate(_MONTHS) for x in (F.lit(m), F.lit(f"{i + 1:02d}"))])
    return F.concat(
        _group("year"),
        F.lit("-"),
        F.element_at(months, _group("mon")),
        F.lit("-"),
        _group("day"),
        F.lit("T"),
        _group("hms"),
        _group("tzh"),
        F.lit(":"),
        _group("tzm"),
    )


def acl_required() -> Column:
    """'Yes' when an ACL was required, '-' otherwise."""
    return F.when(_field("acl") == "Yes", F.lit(True))


def extra_fields() -> Column:
    """Fields AWS appended after the known layout, as a list ('-' is null)."""
    extra = _field("extra")
    return F.when(extra.isNotNull(), F.transform(F.split(extra, " "), lambda x: F.when(x != "-", x)))


def parse_reason() -> Column:
    """Null for a good line, otherwise why it belongs in the quarantine."""
    reason = F.when(~F.col("matched"), _reason_unmatched(F.col("line"))).when(
        F.col("request_time").isNull(),
        F.concat(F.lit("bad time ["), F.regexp_extract(F.col("line"), _LOOSE_TIME, 1), F.lit("]")),
    )
    for col in _numbers():
        reason = reason.when(
            F.col(f"logged_{col}").isNotNull() & F.col(col).isNull(),
            F.concat(F.lit(f"bad number in {col}: "), F.col(f"logged_{col}")),
        )
    return reason


def with_logged_fields(lines: DataFrame) -> DataFrame:
    """(source_object, line, the read's columns) -> the line's fields as logged text, and ``matched``."""
    parts = F.split(F.regexp_replace(F.col("line"), LINE_PATTERN, REPLACEMENT), SEP)
    carried = [c for c in lines.columns if c not in ("source_object", "line")]
    return lines.select("source_object", *carried, "line", parts.alias("parts")).select(
        "source_object",
        *carried,
        "line",
        matched_layout().alias("matched"),
        logged_iso_time().alias("iso_time"),
        *[_field(grp).alias(col) for col, grp in _TEXT_FIELDS.items()],
        *[_field(grp).alias(f"logged_{col}") for col, (grp, _) in _numbers().items()],
        acl_required().alias("acl_required"),
        extra_fields().alias("extra_fields"),
    )


def with_typed_values(fields: DataFrame) -> DataFrame:
    """Time and numbers typed with try_cast: null instead of an error (also under ANSI mode).

    A null from a present value is flagged by ``parse_reason``, so nothing out of range is lost.
    """
    return fields.withColumns(
        {
            "request_time": F.expr("try_cast(iso_time AS timestamp)"),
            **{
                col: F.expr(f"try_cast(logged_{col} AS {sql_type})")
                for col, (_, sql_type) in _numbers().items()
            },
        }
    )


def parse_lines(lines: DataFrame) -> DataFrame:
    """(source_object, line, the read's columns) -> every ``s3_access_logs`` column plus ``reason``.

    ``reason`` is null for a good line, otherwise why the line belongs in the quarantine; ``line``
    and the read's other columns (``read_lines``: the line's place in its object) are kept for it.
    """
    carried = [c for c in lines.columns if c not in ("source_object", "line")]
    typed = lines.transform(with_logged_fields).transform(with_typed_values)
    return typed.withColumns(
        {
            "request_date": F.to_date(F.col("request_time")),  # session time zone is UTC
            "key": decode_key(F.col("logged_key")),
            "line_hash": F.sha2(F.col("line"), 256),
            "reason": parse_reason(),
        }
    ).select(*load_contract(TABLE).column_names, *carried, "line", "reason")


def read_objects(spark, objects: list[SourceObject]) -> DataFrame:
    """One row per object: (source_object, value = its whole text, always valid UTF-8).

    Hadoop's codecs inflate ``.gz`` objects, every member of a multi-member file included.
    Invalid UTF-8 bytes become U+FFFD here, so no stored text (fields, quarantine) holds them.
    """
    paths = [spark_path(o.uri) for o in objects]
    return (
        # A compressed object Spark cannot inflate gives no row (checked on the driver).
        load_paths(spark, "text", paths, ignoreCorruptFiles=True, wholetext=True).select(
            object_uri_col().alias("source_object"), valid_utf8(F.col("value")).alias("value")
        )
    )


def with_size_limit(parsed: DataFrame, *, max_bytes: int) -> DataFrame:
    """Give a line over ``max_bytes`` (UTF-8) a quarantine reason of its own."""
    size = F.octet_length("line")
    over = F.col("reason").isNull() & (size > max_bytes)
    reason = F.concat(
        F.lit("line of "), size.cast("string"), F.lit(f" bytes is over the {max_bytes}-byte record limit")
    )
    return parsed.withColumn("reason", F.when(over, reason).otherwise(F.col("reason")))


def diagnose_unread(spark, obj: SourceObject) -> tuple[str | None, str]:
    """Why an object gave no line (cold path): ``(reason, raw text)``; no reason when it holds none.

    Hadoop picks a codec by the name's extension: a ``.gz`` object that is truncated or not gzip
    at all is skipped by the read and named here. An object the driver cannot read is named too; a
    plain one it can read gets no reason here (the caller compares the bytes read with its size).
    """
    try:
        data = hadoop_fs.read_bytes(spark, obj.uri)
    except Exception as exc:  # noqa: BLE001 - an unreadable object is quarantined, not fatal
        return "unreadable: " + str(exc).splitlines()[0][:200], ""
    if not obj.uri.endswith(".gz"):
        return None, ""
    payload, _, problem = gunzip_members(data)
    raw = (payload if payload else data[:4096]).decode("utf-8", errors="replace")
    return problem, raw


class S3AccessSource:
    """S3 server access logs, for ``auditlake.ingest.runner.run_ingest``."""

    name = SOURCE
    tables = (TABLE,)

    def classify(self, obj: SourceObject) -> str | None:
        if obj.uri.endswith("/") or _NOT_A_LOG.search(obj.name):
            return "not_a_log_object"
        if obj.size == 0:
            return "empty_object"
        return None

    def object_date(self, obj: SourceObject) -> dt.date | None:
        return object_date_from_name(obj.name)

    def flat_name_prefix(self, name: str) -> str | None:
        """The TargetPrefix part of a simple-layout name (``<prefix>YYYY-MM-DD-hh-mm-ss-<unique>``),
        which the bounded listing lists by day; None for any other name."""
        return name[: _KEY_TIME.search(name).start()] if object_date_from_name(name) else None

    def parse(self, spark, objects: list[SourceObject], *, run_id: str, cfg: dict[str, Any]) -> ParsedBatch:
        contract = load_contract(TABLE)
        max_chars = int(config_mod.get(cfg, "ingest.quarantine_raw_max_chars", 8192))
        parsed = (
            read_lines(spark, objects)
            .transform(parse_lines)
            .transform(
                with_size_limit,
                max_bytes=int(config_mod.get(cfg, "ingest.max_record_bytes", DEFAULT_MAX_RECORD_BYTES)),
            )
            # the raw line is kept only where the quarantine needs it
            .withColumn("line", F.when(F.col("reason").isNotNull(), F.col("line")))
            .persist(StorageLevel.MEMORY_AND_DISK)
        )
        log.info("s3_access: parsing %d objects", len(objects))
        # One small row per chunk read; its job fills the batch's cache too.
        numbering = lake_mod.cached_flat(chunk_numbering(parsed), 1)
        per_object: dict[str, list[int]] = {}
        for r in numbering.select("source_object", "lines", "bytes").collect():
            got = per_object.setdefault(r["source_object"], [0, 0])
            got[0] += int(r["lines"])
            got[1] += int(r["bytes"])
        problems, dropped, short_reads = [], [], 0
        for o in objects:
            lines, bytes_read = per_object.get(o.uri, (0, 0))
            if not lines:
                # No line: why, for a compressed object; an unreadable plain one, or one not read.
                reason, raw = diagnose_unread(spark, o)
                if reason:
                    problems.append((o.uri, raw, reason))
                    continue
            short = read_short(o, lines, bytes_read)
            if short:
                # Its lines are not loaded: the object is quarantined whole, for a --reprocess.
                problems.append((o.uri, "", short))
                dropped.append(o.uri)
                short_reads += 1
            elif (lines, bytes_read) == (1, 1):
                # Only a newline (the line reader's one empty line): no line, as a whole read gives.
                dropped.append(o.uri)
        kept = parsed.where(~F.col("source_object").isin(dropped)) if dropped else parsed
        good = (
            kept.where(F.col("reason").isNull())
            .withColumn(ROW_INDEX, F.col(LINE_ID))
            .transform(conform, contract, keep=(ROW_INDEX, CHUNK))
        )
        bad = to_quarantine(
            with_line_numbers(kept.where(F.col("reason").isNotNull()), numbering, LINE_ID, "line_number"),
            source=SOURCE,
            source_object="source_object",
            record_index=F.col("line_number"),
            raw_text="line",
            reason=F.col("reason"),
            run_id=run_id,
            max_chars=max_chars,
        )
        if problems:
            for uri, _, reason in problems:
                log.warning("quarantining %s: %s", uri, reason)
            bad = bad.unionByName(
                quarantine_objects(spark, problems, source=SOURCE, run_id=run_id, max_chars=max_chars)
            )
        return ParsedBatch(
            tables={TABLE: good},
            quarantine=bad,
            persisted=[parsed, numbering],
            counters={"objects_unreadable": len(problems) - short_reads, "objects_read_short": short_reads},
            # The table's rows carry their position in the read: numbered for the quarantine only.
            number_rows=lambda df: with_line_numbers(df, numbering, ROW_INDEX, ROW_INDEX),
        )

    def after_commit(
        self, spark, lake: str, deduped_tables: dict[str, DataFrame], *, run_id: str, cfg: dict[str, Any]
    ) -> dict[str, int]:
        """Nothing derived: every table of this source is loaded by the runner's merges."""
        return {}
