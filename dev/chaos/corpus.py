"""A generated corpus of mutated raw objects for the three sources, each with its expected outcome.

    python dev/chaos/corpus.py --out build/chaos-corpus [--subset]

writes ``<out>/<source>/...`` (the objects, in each source's real key layout) and
``<out>/manifest.json`` (one entry per object: source, key, expected rows loaded, expected
quarantine reasons, or the skip reason). Mutations: truncations, wrong encodings, wrong shapes,
oversize records, event-time outliers, deep nesting, multi-member gzip, path-shaped values.
Everything is synthetic and deterministic: no real log is copied.

``tests/test_chaos_corpus.py`` ingests it and asserts every object's outcome; ``--subset`` (and
the test's default) keeps the objects marked for ``make test``, ``make chaos-corpus`` runs all.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

ACCOUNT = "111122223333"
DAY = "2024/05/01"
BIG = 1_500_000  # over the default 1 MiB record limit
HUGE_LINE = 2_000_000


@dataclass
class Entry:
    """One mutated object and what the ingest must make of it."""

    source: str  # cloudtrail | s3_access | crawler_logs
    key: str  # path under <out>/<source>/
    mutation: str
    loaded: int = 0  # rows in the source's tables with this source_object
    quarantined: list[str] = field(default_factory=list)  # reason prefixes, one per quarantine row
    skipped: str | None = None  # the classify() reason when the object is not parsed
    subset: bool = False  # part of the small corpus `make test` runs
    raw_length: int | None = None  # the quarantine row's raw_length, when it matters
    data: bytes = field(default=b"", repr=False)


# --------------------------------------------------------------------------- CloudTrail


def ct_record(n: int, i: int, **over: object) -> dict:
    rec = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLE",
            "arn": f"arn:aws:iam::{ACCOUNT}:user/alice",
            "accountId": ACCOUNT,
            "userName": "alice",
        },
        "eventTime": f"2024-05-01T10:{i % 60:02d}:{n % 60:02d}Z",
        "eventSource": "glue.amazonaws.com",
        "eventName": "GetTable",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "10.1.2.3",
        "userAgent": "aws-cli/2.15",
        "requestParameters": {"databaseName": "sales", "name": f"t{n}"},
        "responseElements": None,
        "requestID": f"req-{n}-{i}",
        "eventID": f"ev-{n:04d}-{i:04d}",
        "readOnly": True,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }
    rec.update(over)
    return rec


def ct_doc(records: list[dict]) -> bytes:
    return json.dumps({"Records": records}).encode()


def ct_key(n: int, name: str | None = None) -> str:
    base = name or f"{ACCOUNT}_CloudTrail_us-east-1_20240501T10{n % 60:02d}Z_m{n:04d}.json.gz"
    return f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/{DAY}/{base}"


def cloudtrail_entries() -> list[Entry]:
    out: list[Entry] = []
    n = 0

    def add(
        mutation: str,
        data: bytes,
        loaded: int = 0,
        quarantined: list[str] | None = None,
        *,
        subset: bool = False,
        key: str | None = None,
        skipped: str | None = None,
    ) -> None:
        nonlocal n
        out.append(
            Entry(
                "cloudtrail",
                key or ct_key(n),
                mutation,
                loaded,
                quarantined or [],
                skipped,
                subset,
                data=data,
            )
        )
        n += 1

    def recs(k: int, **over: object) -> list[dict]:
        return [ct_record(n, i, **over) for i in range(k)]

    add("clean", gzip.compress(ct_doc(recs(3))), 3)
    add(
        "two gzip members",
        gzip.compress(ct_doc(recs(2))) + gzip.compress(ct_doc([ct_record(n, 10 + i) for i in range(2)])),
        4,
        subset=True,
    )
    add(
        "two gzip members, newline between documents",
        gzip.compress(ct_doc(recs(2)) + b"\n")
        + gzip.compress(ct_doc([ct_record(n, 10 + i) for i in range(3)])),
        5,
    )
    add(
        "three gzip members",
        b"".join(gzip.compress(ct_doc([ct_record(n, 10 * m + i) for i in range(2)])) for m in range(3)),
        6,
    )
    add("two documents in one gzip member", gzip.compress(ct_doc(recs(1)) + ct_doc([ct_record(n, 7)])), 2)
    full = gzip.compress(ct_doc(recs(40)))
    for cut in (0.1, 0.5, 0.9):
        add(
            f"gzip truncated at {cut:.0%}",
            full[: int(len(full) * cut)],
            0,
            ["truncated gzip"],
            subset=cut == 0.5,
        )
    add("not gzip (plain JSON)", ct_doc(recs(2)), 0, ["not gzip"])
    add("zero bytes", b"", 0, ["empty object"])
    add("gzip of nothing", gzip.compress(b""), 0, ["no Records array"])
    text = ct_doc(recs(5))
    for cut in (0.3, 0.7):
        add(f"JSON truncated at {cut:.0%}", gzip.compress(text[: int(len(text) * cut)]), 0, ["invalid JSON"])
    add("top-level array", gzip.compress(b"[1, 2, 3]"), 0, ["top-level JSON value is an array"], subset=True)
    add("top-level string", gzip.compress(b'"Records"'), 0, ["top-level JSON value is a string"])
    add(
        "Records is an object",
        gzip.compress(b'{"Records": {"eventID": "x"}}'),
        0,
        ["Records is an object, not an array"],
    )
    add(
        "Records is a string", gzip.compress(b'{"Records": "none"}'), 0, ["Records is a string, not an array"]
    )
    add(
        "Records holds a number",
        gzip.compress(json.dumps({"Records": [5, ct_record(n, 1)]}).encode()),
        0,
        ["Records is not an array of JSON objects"],
    )
    add("no Records key", gzip.compress(b'{"records": []}'), 0, ["no Records array"])
    add("Records empty", gzip.compress(b'{"Records": []}'), 0, [])
    deep = "[" * 5000 + "]" * 5000
    add(
        "record nested 5000 deep",
        gzip.compress(
            b'{"Records": ['
            + json.dumps(ct_record(n, 0))[:-1].encode()
            + b', "additionalEventData": '
            + deep.encode()
            + b"}]}"
        ),
        0,
        ["JSON nested deeper than 1000 levels"],
        subset=True,
    )
    add(
        "record nested 300 deep (fine)",
        gzip.compress(ct_doc([ct_record(n, 0, additionalEventData=json.loads("[" * 300 + "]" * 300))])),
        1,
    )
    add(
        "record over the size limit among good ones",
        gzip.compress(ct_doc([*recs(2), ct_record(n, 9, requestParameters={"policy": "x" * BIG})])),
        2,
        ["record of at least"],
        subset=True,
    )
    add(
        "invalid UTF-8 bytes in a value",
        gzip.compress(ct_doc(recs(1)).replace(b"aws-cli/2.15", b"aws-cli/\xff\xfe")),
        1,
    )
    add(
        "Latin-1 encoded file",
        gzip.compress(
            json.dumps({"Records": [ct_record(n, 0, userAgent="caf\u00e9")]}, ensure_ascii=False).encode(
                "latin-1"
            )
        ),
        1,
    )
    add("UTF-8 byte order mark", gzip.compress(b"\xef\xbb\xbf" + ct_doc(recs(2))), 2)
    add(
        "UTF-16 encoded file", gzip.compress(ct_doc(recs(2)).decode().encode("utf-16")), 0, ["not UTF-8 text"]
    )
    for label, when in (
        ("1970", "1970-01-01T00:00:00Z"),
        ("2999", "2999-01-01T00:00:00Z"),
        ("2012", "2012-12-31T23:59:59Z"),
        ("next year", "2027-06-01T00:00:00Z"),
    ):
        add(
            f"eventTime {label} among good records",
            gzip.compress(ct_doc([*recs(2), ct_record(n, 5, eventTime=when)])),
            2,
            ["event_time_in_plausible_window"],
            subset=label == "1970",
        )
    add(
        "missing eventID",
        gzip.compress(
            ct_doc([ct_record(n, 0), {k: v for k, v in ct_record(n, 1).items() if k != "eventID"}])
        ),
        1,
        ["missing eventID"],
    )
    add(
        "eventTime not a time",
        gzip.compress(ct_doc([ct_record(n, 0, eventTime="yesterday")])),
        0,
        ["unparseable eventTime"],
    )
    add(
        "eventTime as epoch number",
        gzip.compress(ct_doc([ct_record(n, 0, eventTime=1714557600)])),
        0,
        ["unparseable eventTime"],
    )
    add(
        "eventVersion 2.0",
        gzip.compress(ct_doc([ct_record(n, 0, eventVersion="2.0")])),
        0,
        ["unsupported eventVersion"],
    )
    add("null record", gzip.compress(b'{"Records": [null]}'), 0, ["Records is not an array of JSON objects"])
    add(
        "eventTime with offset",
        gzip.compress(ct_doc([ct_record(n, 0, eventTime="2024-05-01T12:00:00+02:00")])),
        1,
    )
    add(
        "path-shaped values",
        gzip.compress(
            ct_doc(
                [
                    ct_record(
                        n, 0, eventID="../../../etc/passwd", awsRegion="../../us-east-1", eventName="a/b\\c"
                    )
                ]
            )
        ),
        1,
    )
    add("duplicate eventID in one file", gzip.compress(ct_doc([ct_record(n, 0), ct_record(n, 0)])), 1)
    add(
        "key with spaces, plus and percent",
        gzip.compress(ct_doc(recs(1))),
        1,
        key=ct_key(0, f"{ACCOUNT}_CloudTrail_us-east-1_20240501T1000Z_a b+c%20d.json.gz"),
    )
    add(
        "digest file",
        gzip.compress(b"{}"),
        key=f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/us-east-1/{DAY}/d.json.gz",
        skipped="digest",
    )
    add(
        "insight record",
        gzip.compress(
            ct_doc(
                [
                    {
                        "eventVersion": "1.07",
                        "eventTime": "2024-05-01T10:00:00Z",
                        "awsRegion": "us-east-1",
                        "eventID": f"insight-{n}",
                        "eventType": "AwsCloudTrailInsight",
                        "recipientAccountId": ACCOUNT,
                        "sharedEventID": "s-1",
                        "eventCategory": "Insight",
                        "insightDetails": {
                            "state": "Start",
                            "eventSource": "glue.amazonaws.com",
                            "eventName": "GetTable",
                            "insightType": "ApiCallRateInsight",
                        },
                    }
                ]
            )
        ),
        1,
    )
    return out


# --------------------------------------------------------------------------- S3 server access logs


def s3_line(
    n: int,
    i: int,
    *,
    when: str = "01/May/2024:10:00:00 +0000",
    key: str | None = None,
    agent: str = "aws-cli/2.15",
    bytes_sent: str = "1024",
) -> str:
    obj = key or f"data/part-{n}-{i}.parquet"
    return (
        f"79a59df900b949e55d96a1e698fbaced bucket-a [{when}] 10.1.2.3 "
        f"arn:aws:iam::{ACCOUNT}:user/alice REQ{n:04d}{i:04d} REST.GET.OBJECT {obj} "
        f'"GET /bucket-a/{obj} HTTP/1.1" 200 - {bytes_sent} 2048 15 12 "-" "{agent}" - '
        f"hostid{n}{i}= SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader bucket-a.s3.amazonaws.com TLSv1.2 - -"
    )


def s3_key(n: int, suffix: str = "") -> str:
    return f"logs/2024-05-01-10-{n // 60 % 60:02d}-{n % 60:02d}-ABCDEF{n:04d}{suffix}"


def s3_entries() -> list[Entry]:
    out: list[Entry] = []
    n = 0

    def add(
        mutation: str,
        data: bytes,
        loaded: int = 0,
        quarantined: list[str] | None = None,
        *,
        subset: bool = False,
        key: str | None = None,
        skipped: str | None = None,
        raw_length: int | None = None,
    ) -> None:
        nonlocal n
        out.append(
            Entry(
                "s3_access",
                key or s3_key(n),
                mutation,
                loaded,
                quarantined or [],
                skipped,
                subset,
                raw_length,
                data,
            )
        )
        n += 1

    def lines(k: int, **kw: object) -> list[str]:
        return [s3_line(n, i, **kw) for i in range(k)]

    def text(ls: list[str]) -> bytes:
        return ("\n".join(ls) + "\n").encode()

    add("clean", text(lines(3)), 3)
    add(
        "gzip, two members",
        gzip.compress(text(lines(2))) + gzip.compress(text([s3_line(n, 9)])),
        3,
        key=s3_key(n, ".gz"),
        subset=True,
    )
    whole = gzip.compress(text(lines(30)))
    add("gzip truncated", whole[: len(whole) // 2], 0, ["truncated gzip"], key=s3_key(n, ".gz"))
    add("gzip name, plain bytes", text(lines(2)), 0, ["not gzip"], key=s3_key(n, ".gz"))
    line = s3_line(n, 1)
    for cut in (0.2, 0.6):
        add(
            f"last line cut at {cut:.0%}",
            text([s3_line(n, 0), line[: int(len(line) * cut)]]),
            1,
            ["unparseable line"],
            subset=cut == 0.6,
        )
    # Cut among the optional trailing fields: still a valid (older, shorter) line.
    add("last line cut in its trailing fields", text([s3_line(n, 0), line[: int(len(line) * 0.95)]]), 2)
    for label, when in (
        ("1970", "01/Jan/1970:00:00:00 +0000"),
        ("2999", "01/Jan/2999:00:00:00 +0000"),
        ("2012", "31/Dec/2012:23:00:00 +0000"),
    ):
        add(
            f"request time {label}",
            text([*lines(2), s3_line(n, 7, when=when)]),
            2,
            ["request_time_in_plausible_window"],
            subset=label == "1970",
        )
    add("bad month", text([s3_line(n, 0, when="01/Foo/2024:10:00:00 +0000")]), 0, ["bad time ["])
    add("31 February", text([s3_line(n, 0, when="31/Feb/2024:10:00:00 +0000")]), 0, ["bad time ["])
    add(
        "invalid UTF-8 in the user agent",
        text(lines(1)).replace(b"aws-cli/2.15", b"aws-cli/\xc3\x28\xff"),
        1,
        subset=True,
    )
    add("Latin-1 encoded key", ("\n".join(lines(1, key="data/caf\u00e9.csv")) + "\n").encode("latin-1"), 1)
    add("UTF-16 encoded file", "\n".join(lines(1)).encode("utf-16"), 0, ["unparseable line"])
    add(
        "line over the size limit",
        text([s3_line(n, 0), s3_line(n, 1, agent="x" * BIG)]),
        1,
        ["line of "],
        raw_length=None,
    )
    add("blank line in the middle", text([s3_line(n, 0), "", s3_line(n, 1)]), 2, ["blank line"])
    add("CRLF line ends", "\r\n".join(lines(2)).encode() + b"\r\n", 2)
    add("new trailing fields", text([s3_line(n, 0) + " NewField1 NewField2"]), 1)
    add("path-shaped key", text(lines(1, key="../../../etc/passwd")), 1)
    add("key with %2F and spaces", text(lines(1, key="a%2F..%2Fb%20c")), 1)
    add("control character U+0001", text([s3_line(n, 0, agent="a\u0001b")]), 0, ["unparseable line"])
    add(
        "bytes sent over bigint",
        text([s3_line(n, 0, bytes_sent="99999999999999999999")]),
        0,
        ["bad number in bytes_sent"],
    )
    add("duplicate line", text([s3_line(n, 0), s3_line(n, 0)]), 1)
    add("only a newline", b"\n", 0)
    add("empty object", b"", skipped="empty_object")
    add("hidden file", text(lines(1)), key="logs/.hidden", skipped="not_a_log_object")
    add("garbage binary", bytes(range(256)) * 4, 0, ["unparseable line"] * 5)
    return out


# --------------------------------------------------------------------------- Glue crawler logs


def crawler_lines(n: int, k: int, start: int = 0) -> list[tuple[str, str]]:
    return [
        (
            f"2024-05-01T10:{(start + i) % 60:02d}:{n % 60:02d}.000Z",
            f"[run-{n:04d}] INFO : step {start + i} of object {n}",
        )
        for i in range(k)
    ]


def export_text(lines: list[tuple[str, str]]) -> bytes:
    return "".join(f"{ts} {msg}\n" for ts, msg in lines).encode()


def envelope(stream: str, events: list[tuple[int, str]], kind: str = "DATA_MESSAGE") -> str:
    return json.dumps(
        {
            "messageType": kind,
            "owner": ACCOUNT,
            "logGroup": "/aws-glue/crawlers",
            "logStream": stream,
            "subscriptionFilters": ["all"],
            "logEvents": [{"id": str(i), "timestamp": ts, "message": m} for i, (ts, m) in enumerate(events)],
        }
    )


MAY1 = 1714557600000  # 2024-05-01T10:00:00Z in ms


def crawler_entries() -> list[Entry]:
    out: list[Entry] = []
    n = 0

    def add(
        mutation: str,
        data: bytes,
        loaded: int = 0,
        quarantined: list[str] | None = None,
        *,
        subset: bool = False,
        firehose: bool = False,
        key: str | None = None,
        skipped: str | None = None,
        raw_length: int | None = None,
    ) -> None:
        nonlocal n
        default = (
            f"firehose/2024/05/01/10/delivery-{n:04d}"
            if firehose
            else f"exports/task-{n:04d}/crawler-{n}/000000.gz"
        )
        out.append(
            Entry(
                "crawler_logs",
                key or default,
                mutation,
                loaded,
                quarantined or [],
                skipped,
                subset,
                raw_length,
                data,
            )
        )
        n += 1

    def fh(*envs: str) -> bytes:
        return gzip.compress(gzip.compress("".join(envs).encode()))

    def events(k: int, base: int = 0) -> list[tuple[int, str]]:
        return [
            (MAY1 + 1000 * (base + i), f"[run-{n:04d}] INFO : firehose step {base + i} of object {n}")
            for i in range(k)
        ]

    add("export, clean", gzip.compress(export_text(crawler_lines(n, 3))), 3)
    add(
        "export, two gzip members",
        gzip.compress(export_text(crawler_lines(n, 2)))
        + gzip.compress(export_text(crawler_lines(n, 2, start=10))),
        4,
        subset=True,
    )
    add("export, plain text (no gzip)", export_text(crawler_lines(n, 2)), 2)
    whole = gzip.compress(export_text(crawler_lines(n, 50)))
    for cut in (0.3, 0.8):
        add(
            f"export, gzip truncated at {cut:.0%}",
            whole[: int(len(whole) * cut)],
            0,
            ["not a readable gzip object"],
        )
    add(
        "export, invalid UTF-8",
        gzip.compress(export_text(crawler_lines(n, 2)).replace(b"INFO", b"IN\xffO", 1)),
        0,
        ["not UTF-8 text"],
    )
    add(
        "export, UTF-16",
        gzip.compress(export_text(crawler_lines(n, 2)).decode().encode("utf-16")),
        0,
        ["not UTF-8 text"],
    )
    add(
        "export, 2,000,000-character continuation line first",
        gzip.compress(("x" * HUGE_LINE + "\n").encode() + export_text(crawler_lines(n, 1))),
        1,
        ["continuation line without a preceding event"],
        raw_length=HUGE_LINE,
        subset=True,
    )
    add(
        "export, event message over the size limit",
        gzip.compress(
            export_text([*crawler_lines(n, 1), ("2024-05-01T10:30:00Z", "[run-x] INFO : " + "y" * BIG)])
        ),
        1,
        ["log event message of"],
    )
    add(
        "export, invalid timestamp",
        gzip.compress(export_text([("2024-13-45T10:00:00Z", "[r] INFO : x"), *crawler_lines(n, 1)])),
        1,
        ["invalid timestamp"],
    )
    add(
        "export, year 1999",
        gzip.compress(export_text([("1999-01-01T00:00:00Z", "[r] INFO : old"), *crawler_lines(n, 1)])),
        1,
        ["timestamp out of range"],
    )
    for label, when in (("2012", "2012-06-01T00:00:00Z"), ("2099", "2099-01-01T00:00:00Z")):
        add(
            f"export, time {label}",
            gzip.compress(export_text([(when, f"[r] INFO : {label}"), *crawler_lines(n, 2)])),
            2,
            ["event_time_in_plausible_window"],
            subset=label == "2012",
        )
    add(
        "export, four gzip layers",
        gzip.compress(gzip.compress(gzip.compress(gzip.compress(export_text(crawler_lines(n, 1)))))),
        0,
        ["not a readable gzip object: more than 3 gzip layers"],
    )
    add("export, CRLF", gzip.compress(export_text(crawler_lines(n, 2)).replace(b"\n", b"\r\n")), 2)
    add(
        "write-test marker",
        b"x",
        key="exports/task-marker/aws-logs-write-test",
        skipped="export_write_test_marker",
    )
    add("firehose, clean", fh(envelope("crawler-a", events(3))), 3, firehose=True)
    add(
        "firehose, three envelopes",
        fh(
            envelope("crawler-a", events(2)),
            envelope("crawler-a", events(2, 5)),
            envelope("crawler-b", events(1, 9)),
        ),
        5,
        firehose=True,
    )
    add(
        "firehose, single gzip layer",
        gzip.compress(envelope("crawler-a", events(2)).encode()),
        2,
        firehose=True,
    )
    deep = '{"messageType": "DATA_MESSAGE", "logEvents": ' + "[" * 5000 + "]" * 5000 + "}"
    add(
        "firehose, envelope nested 5000 deep before a good one",
        fh(deep, envelope("crawler-a", events(2))),
        2,
        ["envelope JSON nested deeper than 200 levels"],
        firehose=True,
        subset=True,
    )
    add(
        "firehose, unclosed nesting",
        fh(envelope("crawler-a", events(1)), "[" * 5000),
        1,
        ["envelope JSON nested deeper than 200 levels"],
        firehose=True,
    )
    add(
        "firehose, envelope nested 150 deep",
        fh('{"messageType": "DATA_MESSAGE", "x": ' + "[" * 150 + "]" * 150 + "}"),
        0,
        ["DATA_MESSAGE without logStream or logEvents"],
        firehose=True,
    )
    env = envelope("crawler-a", events(3))
    for cut in (0.4, 0.9):
        add(
            f"firehose, JSON truncated at {cut:.0%}",
            fh(env[: int(len(env) * cut)]),
            0,
            ["invalid JSON envelope"],
            firehose=True,
        )
    # Only text starting with '{' is read as envelopes; anything else as export lines.
    add(
        "firehose, top-level array",
        fh("[1, 2, 3]"),
        0,
        ["continuation line without a preceding event"],
        firehose=True,
    )
    add(
        "firehose, logEvents is an object",
        fh(json.dumps({"messageType": "DATA_MESSAGE", "logStream": "c", "logEvents": {"a": 1}})),
        0,
        ["DATA_MESSAGE without logStream or logEvents"],
        firehose=True,
    )
    add(
        "firehose, unknown messageType",
        fh(envelope("crawler-a", events(1), kind="SURPRISE")),
        0,
        ["unknown messageType"],
        firehose=True,
    )
    add(
        "firehose, CONTROL_MESSAGE only",
        fh(envelope("crawler-a", [(MAY1, "CWL CONTROL MESSAGE")], kind="CONTROL_MESSAGE")),
        0,
        firehose=True,
    )
    add(
        "firehose, event without timestamp",
        fh(
            json.dumps(
                {"messageType": "DATA_MESSAGE", "logStream": "c", "logEvents": [{"id": "1", "message": "x"}]}
            )
        ),
        0,
        ["log event without integer timestamp"],
        firehose=True,
    )
    for label, ts in (("epoch 0", 0), ("year 2999", 32472144000000)):
        add(
            f"firehose, timestamp {label}",
            fh(envelope("crawler-a", [(ts, "[r] INFO : t"), *events(1)])),
            1,
            ["timestamp out of range"],
            firehose=True,
        )
    add(
        "firehose, path-shaped log stream",
        fh(envelope("../../etc/passwd", events(1))),
        1,
        firehose=True,
        subset=True,
    )
    add(
        "firehose, message over the size limit",
        fh(envelope("crawler-a", [*events(1), (MAY1 + 5, "z" * BIG)])),
        1,
        ["log event message of"],
        firehose=True,
    )
    add(
        "firehose, invalid UTF-8",
        gzip.compress(
            gzip.compress(envelope("crawler-a", events(1)).encode().replace(b"firehose", b"fire\xffhose"))
        ),
        0,
        ["not UTF-8 text"],
        firehose=True,
    )
    return out


# --------------------------------------------------------------------------- writing

BUILDERS: dict[str, Callable[[], list[Entry]]] = {
    "cloudtrail": cloudtrail_entries,
    "s3_access": s3_entries,
    "crawler_logs": crawler_entries,
}


def build(subset: bool = False) -> list[Entry]:
    """Every corpus entry (only the ``make test`` subset when asked), data included."""
    entries = [e for make in BUILDERS.values() for e in make()]
    return [e for e in entries if e.subset] if subset else entries


def write(out: Path, entries: list[Entry]) -> Path:
    """Write the objects under ``out/<source>/<key>`` and ``out/manifest.json``; return the manifest path."""
    keys = set()
    for e in entries:
        path = out / e.source / e.key
        if path in keys:
            raise ValueError(f"two corpus objects at {path}")
        keys.add(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(e.data)
    manifest = out / "manifest.json"
    manifest.write_text(
        json.dumps([{k: v for k, v in asdict(e).items() if k != "data"} for e in entries], indent=1)
    )
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--subset", action="store_true", help="only the objects `make test` uses")
    args = parser.parse_args(argv)
    entries = build(args.subset)
    write(args.out, entries)
    by_source: dict[str, int] = {}
    for e in entries:
        by_source[e.source] = by_source.get(e.source, 0) + 1
    print(f"{len(entries)} objects under {args.out}: " + ", ".join(f"{k}={v}" for k, v in by_source.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
