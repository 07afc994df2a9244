"""Decoding untrusted input without recursion, and the reasons it gives (pure Python, no Spark)."""

from __future__ import annotations

import gzip
import json

import pytest

from auditlake.ingest.decoding import gunzip_members, json_shape_problem, loads_flat, scan_json
from auditlake.redact import error_line, redact
from auditlake.sources import cloudtrail as ct
from auditlake.sources.crawler_logs import decode_object


def test_scan_json_measures_depth_and_ends_without_recursion():
    text = '{"a": [1, {"b": "x]}\\"{"}]} {"c": 1}'
    first = scan_json(text)
    assert (text[first.start : first.end], first.depth, first.complete) == (
        '{"a": [1, {"b": "x]}\\"{"}]}',
        3,
        True,
    )
    second = scan_json(text, first.end)
    assert (text[second.start : second.end], second.depth) == ('{"c": 1}', 1)
    assert scan_json("[" * 5000 + "]" * 5000).depth == 5000
    assert scan_json('{"a": "never closed').complete is False


def test_loads_flat_refuses_deep_json_with_a_reason():
    with pytest.raises(ValueError, match="JSON nested deeper than 200 levels"):
        loads_flat("[" * 5000 + "]" * 5000)
    assert loads_flat('{"a": [[1]]}') == {"a": [[1]]}


def test_gunzip_members_reads_every_member_and_says_what_stopped_it():
    assert gunzip_members(gzip.compress(b"ab") + gzip.compress(b"cd")) == (b"abcd", 2, None)
    whole = gzip.compress(b"x" * 1000)
    assert gunzip_members(gzip.compress(b"ab") + whole[:20])[1:] == (1, "truncated gzip")
    assert gunzip_members(b"plain") == (b"", 0, "not gzip")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[1, 2, 3]", "top-level JSON value is an array, not an object with Records"),
        ('{"Records": {"a": 1}}', "Records is an object, not an array"),
        ('{"Records": "x"}', "Records is a string, not an array"),
        ('{"Records": [5]}', "Records is not an array of JSON objects"),
        ('{"Records": [' + "[" * 1500 + "]" * 1500 + "]}", "JSON nested deeper than 1000 levels (1502)"),
        (
            '{"Records": [{"a": "' + "x" * 200 + '"}]}',
            "record 0 is 209 bytes, over the 100-byte record limit",
        ),
        ('{"Records": []}{"Records": [1]}', "Records is not an array of JSON objects (document 2)"),
        ('{"Records": [', "invalid JSON"),
        ('{"Records": []}', None),
    ],
)
def test_json_shape_problem(text, reason):
    assert json_shape_problem(text, max_record_bytes=100) == reason


def test_cloudtrail_diagnosis_of_a_file_nested_5000_deep():
    data = gzip.compress(b'{"Records": [{"eventID": "x", "a": ' + b"[" * 5000 + b"]" * 5000 + b"}]}")
    reason, raw = ct.diagnose_object(data)
    assert reason == "JSON nested deeper than 1000 levels (5003)"
    assert raw.startswith('{"Records": [{"eventID": "x"')


def _envelope(stream: str, n: int) -> str:
    return json.dumps(
        {
            "messageType": "DATA_MESSAGE",
            "logStream": stream,
            "logEvents": [
                {"id": str(i), "timestamp": 1714557600000 + i, "message": f"m{i}"} for i in range(n)
            ],
        }
    )


def test_crawler_envelope_nested_5000_deep_is_quarantined_and_the_next_one_loads():
    deep = '{"messageType": "DATA_MESSAGE", "logEvents": ' + "[" * 5000 + "]" * 5000 + "}"
    data = gzip.compress(gzip.compress((deep + _envelope("c1", 2)).encode()))

    rows = list(decode_object("file:/raw/fh/2024/05/01/10/x", data))

    assert [(r[0], r[3], r[7]) for r in rows] == [
        ("bad", 1, "envelope JSON nested deeper than 200 levels (5001)"),
        ("event", 3, None),
        ("event", 4, None),
    ]
    assert len(rows[0][8]) == len(deep)  # the whole envelope goes to the quarantine, which cuts it


def test_crawler_keeps_the_whole_raw_text_of_a_2_000_000_character_line():
    text = "x" * 2_000_000 + "\n2024-05-01T10:00:00Z [r] INFO : ok\n"
    rows = list(decode_object("file:/raw/t/crawler-a/000000.gz", gzip.compress(text.encode())))
    assert [(r[0], r[7], len(r[8] or "")) for r in rows] == [
        ("bad", "continuation line without a preceding event", 2_000_000),
        ("event", None, 0),
    ]


def test_crawler_event_over_the_size_limit_is_quarantined():
    text = "2024-05-01T10:00:00Z [r] INFO : " + "y" * 500 + "\n2024-05-01T10:00:01Z [r] INFO : ok\n"
    rows = list(decode_object("file:/raw/t/crawler-a/000000.gz", gzip.compress(text.encode()), 100))
    assert [(r[0], r[7]) for r in rows] == [
        ("bad", "log event message of 511 bytes is over the 100-byte record limit"),
        ("event", None),
    ]


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        ("s3a://AKIA123:se/cr+et@bucket/logs/", "s3a://bucket/logs/"),
        ("see s3://user@bucket/key and s3a://k:s@b/p", "see s3://bucket/key and s3a://b/p"),
        ("s3a://bucket/path/a:b@c.json", "s3a://bucket/path/a:b@c.json"),
        ("file:/tmp/x@y", "file:/tmp/x@y"),
        ("https://u:p@host:443/x", "https://host:443/x"),
    ],
)
def test_redact_removes_user_info_only(text, clean):
    assert redact(text) == clean


def test_error_line_is_one_redacted_line():
    exc = RuntimeError("cannot list s3a://KEY:SECRET@bucket/x\n  at some.Java.frame")
    assert error_line(exc) == "cannot list s3a://bucket/x"
