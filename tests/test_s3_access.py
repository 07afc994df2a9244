"""S3 server access logs: parser against hand-read fixture lines and AWS doc examples, quarantine, key layouts, runs."""

from __future__ import annotations

import datetime as dt
import gzip
import re
import shutil
from pathlib import Path

import pyspark.sql.functions as F
import pytest
from chispa import assert_df_equality

from auditlake.ingest.objects import SourceObject
from auditlake.sources.s3_access import (
    GROUPS,
    LINE_ID,
    LINE_PATTERN,
    REPLACEMENT,
    SEP,
    S3AccessSource,
    chunk_numbering,
    object_date_from_name,
    parse_lines,
    read_lines,
    split_lines,
    with_line_numbers,
)
from conftest import FIXTURES

S3 = FIXTURES / "s3access"
MINUTES = dt.timedelta(minutes=1)


def parse_file(spark, path: Path) -> list[dict]:
    obj = SourceObject("file:" + str(path), path.stat().st_size, dt.datetime(2024, 1, 1))
    parsed = read_lines(spark, [obj]).transform(parse_lines)
    numbered = with_line_numbers(parsed, chunk_numbering(parsed), LINE_ID, "line_number")
    return [r.asDict() for r in numbered.orderBy("line_number").collect()]


def parse_text(spark, *lines: str) -> list[dict]:
    df = spark.createDataFrame(
        [("mem:test", i + 1, line) for i, line in enumerate(lines)],
        "source_object string, line_number bigint, line string",
    )
    return [r.asDict() for r in parse_lines(df).orderBy("line_number").collect()]


FIXTURE_OWNER = "5b6e0f9c2d4a8e1f7c3b9a0d6e2f4c8a1b5d9e3f7a0c4e8b2d6f1a5c9e3b7d0f"
# Column -> value, for the first line of current_format.log, read off the line by hand.
CURRENT_LINE_1 = {
    "bucket_owner": FIXTURE_OWNER,
    "bucket": "logs-demo-bucket",
    "remote_ip": "198.51.100.7",
    "requester": "arn:aws:iam::111122223333:user/alice",
    "request_id": "5F1A2B3C4D5E6F70",
    "operation": "REST.GET.OBJECT",
    "key": "reports/q1.csv",
    "request_uri": "GET /logs-demo-bucket/reports/q1.csv?versionId=v1 HTTP/1.1",
    "http_method": "GET",
    "request_path": "/logs-demo-bucket/reports/q1.csv?versionId=v1",
    "http_version": "HTTP/1.1",
    "http_status": 200,
    "error_code": None,
    "bytes_sent": 5120,
    "object_size": 5120,
    "total_time_ms": 31,
    "turn_around_time_ms": 12,
    "referer": "https://console.example.com/",
    "user_agent": "aws-cli/2.15.0 Python/3.11.6",
    "version_id": "v1",
    "host_id": "hostIdOne0aaaa=",
    "signature_version": "SigV4",
    "cipher_suite": "TLS_AES_128_GCM_SHA256",
    "auth_type": "AuthHeader",
    "host_header": "logs-demo-bucket.s3.eu-west-1.amazonaws.com",
    "tls_version": "TLSv1.3",
    "access_point_arn": None,
    "acl_required": None,
    "extra_fields": ["eu-west-1"],
    "request_time": dt.datetime(2024, 3, 14, 9, 15, 2),
    "request_date": dt.date(2024, 3, 14),
    "reason": None,
}


def test_current_format_line_field_by_field(spark):
    row = parse_file(spark, S3 / "current_format.log")[0]
    assert {k: row[k] for k in CURRENT_LINE_1} == CURRENT_LINE_1


def test_error_line_with_access_point_and_acl_required(spark):
    row = parse_file(spark, S3 / "current_format.log")[1]
    assert (row["operation"], row["key"], row["http_status"], row["error_code"]) == (
        "REST.GET.BUCKETPOLICY",
        None,
        404,
        "NoSuchBucketPolicy",
    )
    assert (row["bytes_sent"], row["object_size"], row["total_time_ms"], row["turn_around_time_ms"]) == (
        297,
        None,
        38,
        None,
    )
    assert (row["referer"], row["version_id"]) == (None, None)
    assert row["access_point_arn"] == "arn:aws:s3:eu-west-1:111122223333:accesspoint/reports-ap"
    assert row["acl_required"] is True and row["extra_fields"] is None


def test_offset_time_and_asterisk_uri(spark):
    row = parse_file(spark, S3 / "current_format.log")[2]
    assert row["request_time"] == dt.datetime(2024, 3, 14, 9, 20, 0)  # 11:20 at +0200
    assert row["request_date"] == dt.date(2024, 3, 14)
    assert (row["http_method"], row["request_path"], row["http_version"]) == ("OPTIONS", "*", "HTTP/1.0")
    assert (row["requester"], row["operation"], row["object_size"], row["bytes_sent"]) == (
        None,
        "REST.OPTIONS.PREFLIGHT",
        5120,
        None,
    )


def test_batch_delete_lines_unquoted_dashes_one_request_id(spark):
    rows = parse_file(spark, S3 / "current_format.log")[3:5]
    assert [(r["key"], r["object_size"], r["http_status"]) for r in rows] == [
        ("tmp/old-1.bin", 2048, 204),
        ("tmp/old-2.bin", 4096, 204),
    ]
    for row in rows:
        assert row["operation"] == "BATCH.DELETE.OBJECT" and row["request_id"] == "8D9E0F1A2B3C4D53"
        assert row["request_uri"] is None and row["http_method"] is None and row["request_path"] is None
        assert row["referer"] is None and row["user_agent"] is None and row["bytes_sent"] is None
        assert row["host_header"] == "s3.eu-west-1.amazonaws.com" and row["access_point_arn"] is None


def test_anonymous_unsigned_line_with_appended_fields(spark):
    row = parse_file(spark, S3 / "current_format.log")[5]
    assert (
        row["requester"],
        row["signature_version"],
        row["cipher_suite"],
        row["auth_type"],
        row["tls_version"],
    ) == (None, None, None, None, None)
    assert (row["http_status"], row["error_code"], row["key"]) == (
        403,
        "AccessDenied",
        "uploads/new file.txt",
    )
    assert row["request_time"] == dt.datetime(2024, 3, 14, 23, 59, 59)
    assert row["extra_fields"] == ["eu-west-1", "future-field"]


def test_aws_docs_format_example(spark):
    rows = parse_file(spark, S3 / "docs_format_example.log")
    got = [
        (
            r["request_id"],
            r["operation"],
            r["key"],
            r["http_method"],
            r["request_path"],
            r["http_status"],
            r["error_code"],
            r["bytes_sent"],
            r["object_size"],
            r["total_time_ms"],
            r["turn_around_time_ms"],
            r["signature_version"],
            r["tls_version"],
            r["access_point_arn"],
            r["acl_required"],
            r["extra_fields"],
        )
        for r in rows
    ]
    assert got == [
        (
            "3E57427F3EXAMPLE",
            "REST.GET.VERSIONING",
            None,
            "GET",
            "/amzn-s3-demo-bucket1?versioning",
            200,
            None,
            113,
            None,
            7,
            None,
            "SigV2",
            "TLSV1.1",
            None,
            None,
            None,
        ),
        (
            "A1206F460EXAMPLE",
            "REST.GET.BUCKETPOLICY",
            None,
            "GET",
            "/amzn-s3-demo-bucket1?policy",
            404,
            "NoSuchBucketPolicy",
            297,
            None,
            38,
            None,
            "SigV2",
            "TLSV1.1",
            None,
            None,
            None,
        ),
        (
            "DD6CC733AEXAMPLE",
            "REST.PUT.OBJECT",
            "s3-dg.pdf",
            "PUT",
            "/amzn-s3-demo-bucket1/s3-dg.pdf",
            200,
            None,
            None,
            4406583,
            41754,
            28,
            "SigV4",
            "TLSV1.1",
            "arn:aws:s3:us-west-1:123456789012:accesspoint/example-AP",
            True,
            ["us-east-1"],
        ),
    ]
    assert [r["request_time"] for r in rows][-1] == dt.datetime(2019, 2, 6, 0, 1, 57)
    assert rows[0]["host_header"] == "amzn-s3-demo-bucket1.s3.us-west-1.amazonaws.com"
    assert rows[0]["auth_type"] == "AuthHeader" and rows[0]["cipher_suite"] == "ECDHE-RSA-AES128-GCM-SHA256"


def test_legacy_quotes_and_annotation_lines(spark):
    rows = parse_file(spark, S3 / "legacy_and_malformed.log")
    by_line = {r["line_number"]: r for r in rows}
    assert len(rows) == 8
    # '#' annotation lines are not log lines: quarantined with a reason, not lost
    for n in (1, 3, 5, 7):
        assert by_line[n]["reason"].startswith("unparseable line"), by_line[n]["reason"]
    assert (
        by_line[8]["reason"] == "unparseable line: expected >= 18 fields, found 6"
    )  # the time counts as two
    ua = by_line[2]
    assert ua["reason"] is None
    assert ua["user_agent"] == 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1"'
    assert (ua["referer"], ua["version_id"], ua["host_id"], ua["signature_version"], ua["auth_type"]) == (
        "https://shop.example,com/page",
        None,
        "hostIdX=",
        None,
        None,
    )
    assert (ua["tls_version"], ua["requester"], ua["bytes_sent"], ua["turn_around_time_ms"]) == (
        "TLSv1.2",
        None,
        1000,
        11,
    )
    q = by_line[4]
    assert q["reason"] is None
    assert (q["request_uri"], q["http_method"], q["request_path"], q["http_version"]) == (
        'GET /" HTTP/1.1',
        "GET",
        '/"',
        "HTTP/1.1",
    )
    assert q["key"] == "%22"  # logged as %2522: decoded once
    assert (q["http_status"], q["error_code"], q["referer"], q["user_agent"], q["requester"]) == (
        403,
        "AccessDenied",
        "referer test",
        "curl/7.88.1",
        None,
    )
    legacy = by_line[6]
    assert legacy["reason"] is None
    assert legacy["version_id"] is None and legacy["host_id"] is None and legacy["tls_version"] is None
    assert legacy["request_time"] == dt.datetime(2015, 5, 15, 0, 52, 49)
    assert legacy["user_agent"].startswith("aws-sdk-java/1.9.8 Linux/3.9.5 Java_HotSpot(TM)")


OWNER = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"
TAIL = "- HOSTID= SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader b1.s3.us-west-1.amazonaws.com TLSv1.2"


def test_built_lines_quirks(spark):
    oai = "arn:aws:iam::cloudfront:user/CloudFront Origin Access Identity E2EXAMPLEID"
    lines = [
        # 1 requester with spaces, +0530 offset, key with %20 and '+', status '-'
        f'{OWNER} b1 [06/Feb/2019:05:30:00 +0530] 192.0.2.3 {oai} REQ1 REST.GET.OBJECT a%20b+c.txt "GET /b1/a%20b+c.txt HTTP/1.1" - - - - - - "-" "-" {TAIL}',
        # 2 negative offset crosses midnight; quoted '-' request URI; malformed escape kept as logged
        f'{OWNER} b1 [31/Dec/2019:22:00:00 -0300] 192.0.2.3 - REQ2 REST.HEAD.OBJECT 100%zz "-" 200 - 0 5 1 1 "-" "x" {TAIL}',
        # 3 two fields appended by AWS after acl_required
        f'{OWNER} b1 [06/Feb/2019:00:00:38 +0000] 192.0.2.3 - REQ3 WEBSITE.GET.OBJECT k "GET /k HTTP/1.1" 200 - 1 1 1 1 "-" "ua" {TAIL} - - us-east-1 future',
        # 4 impossible date
        f'{OWNER} b1 [31/Feb/2019:00:00:38 +0000] 192.0.2.3 - REQ4 REST.GET.OBJECT k "GET /k HTTP/1.1" 200 - 1 1 1 1 "-" "ua" {TAIL}',
        # 5 number out of range
        f'{OWNER} b1 [06/Feb/2019:00:00:38 +0000] 192.0.2.3 - REQ5 REST.GET.OBJECT k "GET /k HTTP/1.1" 200 - 99999999999999999999 1 1 1 "-" "ua" {TAIL}',
        # 6 blank
        "   ",
        # 7 garbled time
        f'{OWNER} b1 [2019-02-06 00:00:38] 192.0.2.3 - REQ7 REST.GET.OBJECT k "GET /k HTTP/1.1" 200 - 1 1 1 1 "-" "ua" {TAIL}',
        # 8 line ending at host header (before TLS version was logged), CRLF
        f"{OWNER} b1 [06/Feb/2019:00:00:38 +0000] 192.0.2.3 - REQ8 S3.EXPIRE.OBJECT k - - - - - - - - - - HOSTID= SigV4 ECDHE AuthHeader b1.s3.amazonaws.com\r",
    ]
    rows = parse_text(spark, *lines)
    r1, r2, r3, r4, r5, r6, r7, r8 = rows
    assert r1["reason"] is None and r1["requester"] == oai and r1["request_id"] == "REQ1"
    assert r1["request_time"] == dt.datetime(2019, 2, 6, 0, 0, 0) and r1["request_date"] == dt.date(
        2019, 2, 6
    )
    assert r1["key"] == "a b c.txt" and r1["http_status"] is None and r1["request_path"] == "/b1/a%20b+c.txt"
    assert r2["reason"] is None and r2["request_date"] == dt.date(2020, 1, 1)
    assert r2["request_time"] == dt.datetime(2020, 1, 1, 1, 0, 0)
    assert r2["key"] == "100%zz" and r2["request_uri"] is None and r2["bytes_sent"] == 0
    assert (
        r3["reason"] is None and r3["extra_fields"] == ["us-east-1", "future"] and r3["acl_required"] is None
    )
    assert r4["reason"] == "bad time [31/Feb/2019:00:00:38 +0000]"
    assert r5["reason"] == "bad number in bytes_sent: 99999999999999999999"
    assert r6["reason"] == "blank line"
    assert r7["reason"] == "bad time [2019-02-06 00:00:38]"
    assert r8["reason"] is None and r8["host_header"] == "b1.s3.amazonaws.com" and r8["tls_version"] is None
    assert r8["operation"] == "S3.EXPIRE.OBJECT" and r8["request_uri"] is None
    # exactly-once key: one hash per distinct raw line
    assert len({r["line_hash"] for r in rows}) == len(rows)


def test_a_token_after_the_user_agent_ends_at_any_whitespace_and_holds_any_other_character(spark):
    # The tokens' class spells out Java's \s: a tab, vertical tab or form feed inside the host id
    # breaks the layout, as a space would; a non-ASCII character is part of the token.
    head = f'{OWNER} b1 [06/Feb/2019:00:00:38 +0000] 192.0.2.3 - REQ1 REST.GET.OBJECT k "GET /k HTTP/1.1" 200 - 1 1 1 1 "-" "ua" - '
    tail = " SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader b\u00e9.s3.us-west-1.amazonaws.com TLSv1.2"
    rows = parse_text(
        spark, *[head + f"HOST{ws}ID=" + tail for ws in ("\t", "\x0b", "\x0c")], head + "HOSTID=" + tail
    )
    assert [r["reason"][:18] for r in rows[:3]] == ["unparseable line: "] * 3
    assert rows[3]["reason"] is None and rows[3]["host_id"] == "HOSTID="
    assert (
        rows[3]["host_header"] == "b\u00e9.s3.us-west-1.amazonaws.com" and rows[3]["tls_version"] == "TLSv1.2"
    )


def test_the_rewrite_refers_to_every_named_group_by_its_number():
    # The replacement uses $1..$n: no unnamed capturing group may shift the numbers.
    assert not re.findall(r"(?<!\\)\((?!\?)", LINE_PATTERN)
    assert len(re.findall(r"\(\?<[a-zA-Z]", LINE_PATTERN)) == len(GROUPS) == 35
    assert REPLACEMENT.split(SEP) == [""] + [f"${i}" for i in range(1, 36)]


def test_line_ending_after_version_id_is_valid_and_an_open_referer_is_not(spark):
    # A BATCH.DELETE row (no request URI) that stops after the version id, with a trailing space,
    # is a whole legacy line; cut inside the referer's quotes it is not.
    head = (
        f"{OWNER} b1 [04/Mar/2024:17:16:29 +0000] 10.49.250.123 arn:aws:sts::111122223333:assumed-role/"
        "DataEngineer/alice 9D888A4B48CE9DC4 BATCH.DELETE.OBJECT k%3D1 - 204 - - 30268030 - - "
    )
    whole, cut = parse_text(spark, head + '"-" - - ', head + '"-')
    assert whole["reason"] is None and whole["key"] == "k=1" and whole["object_size"] == 30268030
    assert (whole["referer"], whole["user_agent"], whole["version_id"], whole["host_id"]) == (
        None,
        None,
        None,
        None,
    )
    assert cut["reason"] == "unparseable line: expected >= 18 fields, found 17"


def test_split_lines_keeps_exact_line_numbers(spark):
    df = spark.createDataFrame(
        [("o1", "a\n\nb\n"), ("o2", "c"), ("o3", "")], "source_object string, value string"
    )
    lines = split_lines(df)
    got = with_line_numbers(lines, chunk_numbering(lines), LINE_ID, "line_number")
    expected = spark.createDataFrame(
        [("o1", 1, "a"), ("o1", 2, ""), ("o1", 3, "b"), ("o2", 1, "c")],
        "source_object string, line_number bigint, line string",
    )
    assert_df_equality(
        got.select("source_object", "line_number", "line"),
        expected,
        ignore_row_order=True,
        ignore_nullable=True,
    )


def _obj(path: Path, size: int | None = None) -> SourceObject:
    return SourceObject(
        "file:" + str(path), path.stat().st_size if size is None else size, dt.datetime(2024, 1, 1)
    )


def test_line_numbers_are_exact_across_the_chunks_of_a_plain_object_and_in_a_gzip_one(spark, tmp_path):
    # 40 lines of 20-29 bytes; with 64-byte file splits the plain object is read in chunks of two
    # or three lines each, spread over the partitions: every line still gets its own number.
    text = "".join(f"line {i:02d} {'x' * (i % 10)}\n" for i in range(1, 41))
    plain = tmp_path / "2024-01-01-00-00-00-AAAA1111AAAA1111"
    plain.write_text(text)
    packed = tmp_path / "2024-01-01-00-00-00-BBBB2222BBBB2222.gz"
    packed.write_bytes(gzip.compress(text.encode()))
    old = spark.conf.get("spark.sql.files.maxPartitionBytes")
    spark.conf.set("spark.sql.files.maxPartitionBytes", "64")
    try:
        lines = read_lines(spark, [_obj(plain), _obj(packed)])
        chunks = lines.select("source_object", "_chunk_start").distinct().count()
        got = with_line_numbers(lines, chunk_numbering(lines), LINE_ID, "line_number").collect()
    finally:
        spark.conf.set("spark.sql.files.maxPartitionBytes", old)
    assert chunks >= 5  # the plain object was read in several chunks, the gzip one whole
    for obj in (plain, packed):
        rows = sorted((r["line_number"], r["line"]) for r in got if r["source_object"] == "file:" + str(obj))
        assert rows == [(i, f"line {i:02d} {'x' * (i % 10)}") for i in range(1, 41)]


def test_a_plain_object_read_short_is_quarantined_whole_and_none_of_its_lines_loaded(spark, tmp_path):
    good = tmp_path / "2019-02-06-00-10-00-AAAA1111AAAA1111"
    good.write_text(_line("A1", "06/Feb/2019:00:01:00") + "\n" + "garbage\n")
    grown = tmp_path / "2019-02-06-00-20-00-BBBB2222BBBB2222"
    grown.write_text(_line("B1", "06/Feb/2019:00:02:00") + "\n")
    newline = tmp_path / "2019-02-06-00-30-00-CCCC3333CCCC3333"
    newline.write_text("\n")
    blank = tmp_path / "2019-02-06-00-40-00-DDDD4444DDDD4444"
    blank.write_text("\n\n")
    listed_size = grown.stat().st_size + 500  # as if it had been listed at another size
    parsed = S3AccessSource().parse(
        spark,
        [_obj(good), _obj(grown, listed_size), _obj(newline), _obj(blank)],
        run_id="r1",
        cfg={},
    )
    try:
        assert [r["request_id"] for r in parsed.tables["s3_access_logs"].collect()] == ["A1"]
        q = sorted(
            (r["source_object"].rsplit("/", 1)[1], r["record_index"], r["reason"])
            for r in parsed.quarantine.collect()
        )
        size = grown.stat().st_size
        assert q == [
            ("2019-02-06-00-10-00-AAAA1111AAAA1111", 2, "unparseable line: expected >= 18 fields, found 1"),
            (
                "2019-02-06-00-20-00-BBBB2222BBBB2222",
                -1,
                f"read {size} of the object's {listed_size} bytes: the object was read short or changed "
                "since it was listed",
            ),
            ("2019-02-06-00-40-00-DDDD4444DDDD4444", 1, "blank line"),
            ("2019-02-06-00-40-00-DDDD4444DDDD4444", 2, "blank line"),
        ]
        assert parsed.counters == {"objects_unreadable": 0, "objects_read_short": 1}
    finally:
        for df in parsed.persisted:
            df.unpersist()


@pytest.mark.parametrize(
    ("name", "day"),
    [
        ("2021-04-26-18-11-21-8647E1080048E5CB", dt.date(2021, 4, 26)),
        ("logs-2021-04-26-18-11-21-8647E1080048E5CB", dt.date(2021, 4, 26)),
        ("2024-03-01-00-00-00-0000000000000000", dt.date(2024, 3, 1)),
        ("2021-13-26-18-11-21-8647E1080048E5CB", None),
        ("access.log", None),
    ],
)
def test_object_date_from_name(name, day):
    assert object_date_from_name(name) == day


def test_classify():
    src = S3AccessSource()
    when = dt.datetime(2024, 1, 1)
    assert src.classify(SourceObject("s3a://b/logs/2021-04-26-18-11-21-8647E1080048E5CB", 10, when)) is None
    assert src.classify(SourceObject("s3a://b/logs/x", 0, when)) == "empty_object"
    assert src.classify(SourceObject("s3a://b/logs/_$folder$", 0, when)) == "not_a_log_object"
    assert src.classify(SourceObject("file:/d/.DS_Store", 10, when)) == "not_a_log_object"
    part = SourceObject(
        "s3a://b/p/123456789012/us-west-1/src/2024/03/01/2024-03-01-00-00-00-ABCDEF0123456789", 9, when
    )
    assert src.object_date(part) == dt.date(2024, 3, 1)


def _line(req: str, when: str) -> str:
    return f'{OWNER} b1 [{when} +0000] 192.0.2.3 - {req} REST.GET.OBJECT k "GET /k HTTP/1.1" 200 - 1 1 1 1 "-" "ua" {TAIL}'


def test_ingest_runs_both_layouts_window_quarantine_balance_rerun(spark, tmp_path):
    from auditlake.cli import run_job
    from auditlake.ingest.runner import run_ingest
    from auditlake.lake import read_table

    src = tmp_path / "src"
    simple = src / "simple"
    part = src / "part" / "123456789012" / "us-west-1" / "b1"
    files = {
        simple / "2019-02-06-00-10-00-AAAA1111AAAA1111": [
            _line("A1", "06/Feb/2019:00:01:00"),
            "garbage line",
            _line("A2", "06/Feb/2019:00:02:00"),
        ],
        simple / "2019-01-01-00-00-00-BBBB2222BBBB2222": [
            _line("B1", "01/Jan/2019:00:00:00")
        ],  # before --since
        part / "2019/02/07/2019-02-07-00-00-00-CCCC3333CCCC3333": [
            _line("C1", "06/Feb/2019:23:59:00"),
            _line("A1", "06/Feb/2019:00:01:00"),
        ],
        part / "2019/03/20/2019-03-20-00-00-00-DDDD4444DDDD4444": [
            _line("D1", "20/Mar/2019:00:00:00")
        ],  # after --until + slack
        src / "other" / "access.log": [
            _line("E1", "07/Feb/2019:10:00:00")
        ],  # no date in the name: always read
    }
    for path, lines in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
    (src / "other" / "empty").write_text("")
    lake = tmp_path / "lake"
    records = []

    def run(*extra: str) -> int:
        argv = [
            "--source",
            str(src),
            "--lake",
            str(lake),
            "--since",
            "2019-02-06",
            "--until",
            "2019-02-07",
            *extra,
        ]
        return run_job(
            "ingest_s3_access",
            lambda ctx: records.append(run_ingest(ctx, S3AccessSource())),
            argv=argv,
            session_factory=lambda cfg, name: spark,
        )

    assert run() == 0
    first = records[-1]
    # The partitioned layout's 2019/03 folder is outside the window: never listed. The simple
    # layout's flat folder is listed whole and its old object skipped by its name's date.
    assert (first.objects_listed, first.objects_processed, first.skipped_by_reason) == (
        5,
        3,
        {"outside_window": 1, "empty_object": 1},
    )
    # A1 appears in two objects: one row
    assert (first.records_read, first.records_loaded, first.records_quarantined, first.records_duplicate) == (
        6,
        4,
        1,
        1,
    )
    table = read_table(spark, str(lake), "s3_access_logs")
    assert sorted(r[0] for r in table.select("request_id").collect()) == ["A1", "A2", "C1", "E1"]
    assert sorted((str(r[0]), r[1]) for r in table.groupBy("request_date").count().collect()) == [
        ("2019-02-06", 3),
        ("2019-02-07", 1),
    ]
    q = read_table(spark, str(lake), "quarantine").select(
        "source", "source_object", "record_index", "raw_text", "reason"
    )
    expected_q = spark.createDataFrame(
        [
            (
                "s3_access",
                "file:" + str(simple / "2019-02-06-00-10-00-AAAA1111AAAA1111"),
                2,
                "garbage line",
                "unparseable line: expected >= 18 fields, found 2",
            )
        ],
        "source string, source_object string, record_index bigint, raw_text string, reason string",
    )
    assert_df_equality(q, expected_q, ignore_row_order=True, ignore_nullable=True)

    # rerun: nothing new to read; forced re-read: everything is a duplicate; tables unchanged
    assert run() == 0
    assert (records[-1].objects_processed, records[-1].records_loaded) == (0, 0)
    assert run("--reprocess") == 0
    again = records[-1]
    assert (again.records_read, again.records_loaded, again.records_quarantined, again.records_duplicate) == (
        6,
        0,
        1,
        5,
    )
    assert read_table(spark, str(lake), "s3_access_logs").count() == 4
    assert read_table(spark, str(lake), "quarantine").count() == 1
    runs = read_table(spark, str(lake), "job_runs").where(F.col("job") == "ingest_s3_access")
    assert runs.count() == 3
    assert (
        runs.where(
            F.col("records_read")
            != F.col("records_loaded") + F.col("records_quarantined") + F.col("records_duplicate")
        ).count()
        == 0
    )
    shutil.rmtree(lake)


def test_a_line_failing_a_row_check_is_quarantined_with_its_line_number(spark, tmp_path):
    from auditlake.cli import run_job
    from auditlake.ingest.runner import run_ingest
    from auditlake.lake import read_table

    src, lake = tmp_path / "src", tmp_path / "lake"
    src.mkdir()
    lines = [_line(f"R{i}", "06/Feb/2019:00:01:00") for i in range(1, 6)]
    lines[2] = _line("R3", "06/Feb/1970:00:01:00")  # a poison time: outside the plausible window
    (src / "2019-02-06-00-10-00-AAAA1111AAAA1111").write_text("\n".join(lines) + "\n")
    argv = ["--source", str(src), "--lake", str(lake)]
    assert (
        run_job(
            "ingest_s3_access",
            lambda ctx: run_ingest(ctx, S3AccessSource()),
            argv=argv,
            session_factory=lambda cfg, name: spark,
        )
        == 0
    )
    q = read_table(spark, str(lake), "quarantine").select("record_index", "reason").collect()
    assert [tuple(r) for r in q] == [(3, "request_time_in_plausible_window")]
    loaded = read_table(spark, str(lake), "s3_access_logs").select("request_id").collect()
    assert sorted(r[0] for r in loaded) == ["R1", "R2", "R4", "R5"]


def test_job_on_s3a_numbers_lines_and_reads_gzip_whole(spark, s3, tmp_path):
    from auditlake.cli import run_job
    from auditlake.ingest.runner import run_ingest
    from auditlake.lake import read_table

    s3.create_bucket(Bucket="s3al-raw")
    s3.create_bucket(Bucket="s3al-lake")
    plain = [_line("P1", "06/Feb/2019:00:01:00"), "not a log line", _line("P2", "06/Feb/2019:00:02:00")]
    packed = [_line("G1", "06/Feb/2019:00:03:00"), _line("G2", "06/Feb/2019:00:04:00"), ""]
    s3.put_object(
        Bucket="s3al-raw", Key="logs/2019-02-06-00-10-00-AAAA1111AAAA1111", Body="\n".join(plain).encode()
    )
    s3.put_object(
        Bucket="s3al-raw",
        Key="logs/2019-02-06-00-20-00-BBBB2222BBBB2222.gz",
        Body=gzip.compress(("\n".join(packed) + "\n").encode()),
    )
    argv = ["--source", "s3a://s3al-raw/logs", "--lake", "s3a://s3al-lake/lake"]
    code = run_job(
        "ingest_s3_access",
        lambda ctx: run_ingest(ctx, S3AccessSource()),
        argv=argv,
        session_factory=lambda cfg, name: spark,
    )
    assert code == 0
    loaded = read_table(spark, "s3a://s3al-lake/lake", "s3_access_logs").select("request_id").collect()
    assert sorted(r[0] for r in loaded) == ["G1", "G2", "P1", "P2"]
    q = read_table(spark, "s3a://s3al-lake/lake", "quarantine").select(
        "source_object", "record_index", "reason"
    )
    assert sorted(tuple(r) for r in q.collect()) == [
        (
            "s3a://s3al-raw/logs/2019-02-06-00-10-00-AAAA1111AAAA1111",
            2,
            "unparseable line: expected >= 18 fields, found 4",
        ),
        ("s3a://s3al-raw/logs/2019-02-06-00-20-00-BBBB2222BBBB2222.gz", 3, "blank line"),
    ]
