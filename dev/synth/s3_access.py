"""Synthetic S3 server access logs: very many small objects in both key layouts.

Simple layout ``<prefix>YYYY-mm-DD-HH-MM-SS-<16 hex>`` and date-partitioned layout
``<prefix><account>/<region>/<bucket>/YYYY/MM/DD/YYYY-MM-DD-hh-mm-ss-<16 hex>``. Lines carry the
26 documented fields; some older lines stop after the version id (18) or the TLS version (24), some
newer ones carry an extra trailing field. Awkward lines real logs contain are mixed in (requester
with spaces, quotes inside a quoted field, ``-`` status, +0200 offsets, URL-encoded keys,
BATCH.DELETE.OBJECT rows sharing a request id). Planted: malformed lines and lines delivered again
in a second object.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import Any

from synth.common import Rng, day_counts_add, scaled, seeded, write_object

OWNER_IDS = [
    "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be",
    "36c1f05b76016b78528454e6e0c60e2b7ff7aa20c0a5e4c748276e5b0a2debd2",
]
# (account, region, bucket, layout)
SOURCE_BUCKETS = [
    ("111122223333", "us-east-1", "datalake-raw-111122223333", "partitioned"),
    ("111122223333", "us-east-1", "datalake-curated-111122223333", "partitioned"),
    ("444455556666", "eu-west-1", "athena-results-444455556666", "simple"),
    ("777788889999", "eu-west-1", "finance-exports-777788889999", "simple"),
    ("111122223333", "us-east-1", "shared-landing-zone", "partitioned"),
]
REQUESTERS = [
    ("arn:aws:sts::111122223333:assumed-role/DataEngineer/alice", 20),
    ("arn:aws:sts::111122223333:assumed-role/GlueServiceRole/GlueJobRunnerSession", 25),
    ("arn:aws:sts::444455556666:assumed-role/AthenaQueryRole/AWSAthena-5f1c2a", 15),
    ("arn:aws:iam::111122223333:user/svc-airflow", 8),
    ("79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be", 6),
    ("svc:logging.s3.amazonaws.com", 2),
    ("-", 4),
    # CloudFront Origin Access Identity: a requester with spaces (elastic/integrations #20417).
    ("arn:aws:iam::cloudfront:user/CloudFront Origin Access Identity E2EXAMPLEID", 2),
]
OPERATIONS = [
    ("REST.GET.OBJECT", 40),
    ("REST.HEAD.OBJECT", 12),
    ("REST.PUT.OBJECT", 12),
    ("REST.GET.BUCKET", 8),
    ("REST.GET.LOCATION", 3),
    ("REST.GET.ACL", 1),
    ("REST.DELETE.OBJECT", 2),
    ("REST.COPY.OBJECT_GET", 1),
    ("REST.POST.UPLOAD", 1),
    ("REST.GET.BUCKETVERSIONS", 1),
    ("REST.GET.VERSIONING", 1),
    ("S3.EXPIRE.OBJECT", 1),
    ("BATCH.DELETE.OBJECT", 2),
]
AGENTS = [
    "aws-sdk-java/1.12.661 Linux/5.10.213 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS java/17.0.10 vendor/Amazon.com_Inc. cfg/retry-mode/standard",
    "Hadoop 3.3.6, aws-sdk-java/1.12.661 Linux/5.10.213 OpenJDK_64-Bit_Server_VM/17.0.10 java/17.0.10 vendor/Amazon.com_Inc.",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.10.213 md/arch#x86_64 lang/python#3.11.8 Botocore/1.34.69",
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.79 exe/x86_64.amzn.2023 prompt/off command/s3.cp",
    "AWS-Support-TrustedAdvisor, aws-internal/3 aws-sdk-java/1.11.590 Linux/4.9.137 OpenJDK_64-Bit_Server_VM/25.212-b03 java/1.8.0_212",
    "S3Console/0.4",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
]
KEYS = [
    "raw/orders/dt={d}/part-{n:05d}.snappy.parquet",
    "curated/sales/year=2024/month=03/{n:04d}.parquet",
    "exports/finance/Q1 summary {n}.csv",
    "landing/partner+feed/{d}/batch_{n}.json.gz",
    "athena/results/{u}.csv",
    "athena/results/{u}.csv.metadata",
    "tmp/ünïcode/{n}.txt",
]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def _time_field(t: dt.datetime, offset_minutes: int = 0) -> str:
    local = t + dt.timedelta(minutes=offset_minutes)
    sign = "+" if offset_minutes >= 0 else "-"
    hh, mm = divmod(abs(offset_minutes), 60)
    return f"[{local.day:02d}/{MONTHS[local.month - 1]}/{local.year}:{local:%H:%M:%S} {sign}{hh:02d}{mm:02d}]"


def _ip(rng: Rng) -> str:
    r = rng.random()
    if r < 0.5:
        return f"10.{rng.randrange(0, 255)}.{rng.randrange(0, 255)}.{rng.randrange(1, 255)}"
    if r < 0.6:
        return f"2001:db8:{rng.randrange(0, 65535):x}::{rng.randrange(1, 65535):x}"
    if r < 0.65:
        return "-"
    return f"{rng.choice([52, 54, 3, 18, 203, 198, 81])}.{rng.randrange(0, 255)}.{rng.randrange(0, 255)}.{rng.randrange(1, 255)}"


def _key(rng: Rng, day: dt.date) -> str:
    raw = rng.choice(KEYS).format(d=day.isoformat(), n=rng.randrange(0, 5000), u=rng.uuid4())
    # The key field is URL-encoded in the log ('=' -> %3D, ' ' -> %20, '+' -> %2B, UTF-8 bytes).
    return urllib.parse.quote(raw, safe="/")


class _Line:
    """Builds one access log line; ``kinds`` names the awkward features it carries."""

    def __init__(self, rng: Rng):
        self.rng = rng

    def fields(
        self,
        t: dt.datetime,
        bucket: str,
        region: str,
        *,
        op: str | None = None,
        request_id: str | None = None,
        key: str | None = None,
    ) -> tuple[list[str], set[str]]:
        rng = self.rng
        kinds: set[str] = set()
        op = op or rng.weighted(OPERATIONS)
        requester = rng.weighted(REQUESTERS)
        if " " in requester:
            kinds.add("requester_with_spaces")
        offset = 0
        if rng.random() < 0.01:
            offset = 120
            kinds.add("tz_offset")
        request_id = request_id or rng.hex_upper(16)
        bucket_level = op in (
            "REST.GET.BUCKET",
            "REST.GET.LOCATION",
            "REST.GET.ACL",
            "REST.GET.BUCKETVERSIONS",
            "REST.GET.VERSIONING",
        )
        if key is None:
            key = "-" if bucket_level else _key(rng, t.date())
        if "%" in key:
            kinds.add("url_encoded_key")
        method = {
            "GET": "GET",
            "HEAD": "HEAD",
            "PUT": "PUT",
            "DELETE": "DELETE",
            "POST": "POST",
            "COPY": "PUT",
        }.get(op.split(".")[1], "GET")
        status, error, sent, size = (
            "200",
            "-",
            str(rng.randrange(200, 9_000_000)),
            str(rng.randrange(200, 90_000_000)),
        )
        total, turn = str(rng.randrange(1, 900)), str(rng.randrange(1, 200))
        referer, agent = '"-"', f'"{rng.choice(AGENTS)}"'
        if op.startswith("BATCH.") or op.startswith("S3."):
            # Lifecycle and batch-delete rows: no Request-URI, referer or agent.
            uri = "-"
            status = "204" if op.startswith("BATCH.") else "-"
            if status == "-":
                kinds.add("dash_status")
            sent, size, total, turn, agent = "-", (size if op.startswith("BATCH.") else "-"), "-", "-", "-"
            if requester.startswith("arn:aws:iam::cloudfront"):
                requester = "arn:aws:sts::111122223333:assumed-role/DataEngineer/alice"
                kinds.discard("requester_with_spaces")
        else:
            sub = {
                "REST.GET.LOCATION": "location",
                "REST.GET.ACL": "acl",
                "REST.GET.VERSIONING": "versioning",
                "REST.GET.BUCKETVERSIONS": "versions&prefix=raw%2F",
                "REST.GET.BUCKET": "list-type=2&prefix=raw%2F&max-keys=1000",
            }.get(op, "")
            path = f"/{bucket}/{key}" if key != "-" else f"/{bucket}?{sub}"
            if bucket_level:
                size = "-"
            uri = f'"{method} {path} HTTP/1.1"'
            if op == "REST.COPY.OBJECT_GET":
                status = "-"
                kinds.add("dash_status")
            if method == "HEAD":
                sent = "-"
            if method == "PUT":
                sent = "-"
            if rng.random() < 0.05:
                error_status = rng.choice(
                    [
                        ("403", "AccessDenied"),
                        ("404", "NoSuchKey"),
                        ("503", "SlowDown"),
                        ("400", "InvalidArgument"),
                        ("304", "-"),
                    ]
                )
                status, error = error_status
                sent = str(rng.randrange(200, 400)) if status not in ("304",) else "-"
            if rng.random() < 0.05:
                referer = f'"https://console.aws.amazon.com/s3/buckets/{bucket}?region={region}&tab=objects"'
            if rng.random() < 0.003:
                # Unescaped double quote inside the Request-URI (cocoonlife/s3-log-parse #1).
                uri = f'"GET /{bucket}/%2522" HTTP/1.1"'
                key = "%2522"
                kinds.add("quote_in_request_uri")
            elif rng.random() < 0.003:
                # A User-Agent ending in a stray extra quote (siem-on-amazon-opensearch-service #34).
                agent = '"Mozilla/5.0 (iPad; CPU OS 13_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.0.1 Mobile/15E148 Safari/604.1""'
                kinds.add("quote_in_user_agent")
        anonymous = requester == "-"
        version_id = rng.chars(32) if rng.random() < 0.03 else "-"
        fields = [
            rng.choice(OWNER_IDS),
            bucket,
            _time_field(t, offset),
            _ip(rng),
            requester,
            request_id,
            op,
            key,
            uri,
            status,
            error,
            sent,
            size,
            total,
            turn,
            referer,
            agent,
            version_id,
            rng.b64(76) + "=",
            "-" if anonymous else rng.choice(["SigV4", "SigV4", "SigV4", "SigV2"]),
            rng.choice(["ECDHE-RSA-AES128-GCM-SHA256", "TLS_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-SHA"]),
            "-" if anonymous else rng.choice(["AuthHeader", "AuthHeader", "QueryString"]),
            rng.choice(
                [
                    f"{bucket}.s3.{region}.amazonaws.com",
                    f"s3.{region}.amazonaws.com",
                    f"{bucket}.s3.amazonaws.com",
                ]
            ),
            rng.choice(["TLSv1.2", "TLSv1.3"]),
            f"arn:aws:s3:{region}:111122223333:accesspoint/analytics-ap" if rng.random() < 0.03 else "-",
            "Yes" if rng.random() < 0.02 else "-",
        ]
        r = rng.random()
        if r < 0.01:
            fields = fields[:18]  # legacy line: ends after the version id (matomo #86)
            kinds.add("legacy_18_fields")
        elif r < 0.04:
            fields = fields[:24]  # before access point ARN / ACL-required were added
            kinds.add("legacy_24_fields")
        elif r < 0.06:
            fields.append(region)  # a field AWS appended after acl-required
            kinds.add("extra_trailing_field")
        return fields, kinds


MALFORMED = [
    "truncated",  # object cut mid-line: unbalanced quote, too few fields
    "bad_time",  # bracketed time that is not a time
    "garbage",  # not an access log line at all
]


def _malformed(rng: Rng, good_line: str, kind: str) -> str:
    if kind == "truncated":
        # Cut inside the first quoted field, so the quote stays open. Cutting past its closing
        # quote could leave a whole line: on a BATCH/S3.* row (no request URI) the first quoted
        # field is the referer '"-"', and 8 characters on is '"-" - - ', a valid legacy line
        # that ends after the version id.
        if '"' not in good_line:
            return good_line[: len(good_line) // 3]
        start = good_line.index('"')
        return good_line[: min(start + 8, good_line.index('"', start + 1))]
    if kind == "bad_time":
        start, end = good_line.index("["), good_line.index("]")
        return good_line[:start] + "[31/Foo/2024:25:61:00 +0000]" + good_line[end + 1 :]
    return rng.choice(
        [
            '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code></Error>',
            "\x00\x00\x00\x1f\x8b binary junk",
            "# this line was written by a log shipper test",
        ]
    )


# Lines in an access-log object on average: S3 delivers one object per few minutes of a bucket's
# requests, most of them small.
MEAN_LINES_PER_OBJECT = 50


def generate(
    root: Path,
    *,
    seed: int,
    scale: float,
    days: list[dt.date],
    lines_per_object: int = MEAN_LINES_PER_OBJECT,
) -> dict[str, Any]:
    """Write the access-log target bucket under ``root``; return its manifest section.

    ``lines_per_object``: the objects' mean size in lines, so that the same lines come in fewer,
    larger objects (2M lines in 5,000 objects is 400) or in many small ones (the default).
    """
    if lines_per_object < 1:
        raise ValueError(f"lines_per_object must be at least 1, not {lines_per_object}")
    rng = seeded(seed, "s3_access")
    liner = _Line(rng)
    target_lines = scaled(60_000, scale, 200)
    mean_lines = lines_per_object
    n_objects = max(len(SOURCE_BUCKETS) * 2, target_lines // mean_lines)
    seconds_in_window = len(days) * 86400
    counts = Counter()
    kinds_seen = Counter()
    by_date: dict[str, int] = {}
    planted: dict[str, list[Any]] = {"malformed_lines": [], "duplicate_objects": []}
    layouts = Counter()
    clean_objects: list[tuple[str, list[str], dt.datetime, tuple[str, str, str, str]]] = []

    def key_for(src: tuple[str, str, str, str], delivered: dt.datetime) -> str:
        acct, region, bucket, layout = src
        stamp = f"{delivered:%Y-%m-%d-%H-%M-%S}-{rng.hex_upper(16)}"
        if layout == "simple":
            return f"simple/{bucket}/{stamp}"
        return f"partitioned/{acct}/{region}/{bucket}/{delivered:%Y/%m/%d}/{stamp}"

    line_no = 0
    for i in range(n_objects):
        src = SOURCE_BUCKETS[i % len(SOURCE_BUCKETS)]
        _, region, bucket, layout = src
        offset = int((i + rng.random()) * seconds_in_window / n_objects)
        delivered = dt.datetime.combine(days[0], dt.time()) + dt.timedelta(seconds=offset)
        # Most objects are small; a few are large (a busy minute).
        n = max(1, int(rng.expovariate(1 / mean_lines)))
        n = min(n, mean_lines * 8)
        lines: list[str] = []
        bad_list: list[dict[str, Any]] = []
        j = 0
        while j < n:
            t = delivered - dt.timedelta(seconds=rng.randrange(60, 3600))
            fields, kinds = liner.fields(t, bucket, region)
            batch = [(fields, kinds)]
            if fields[6] == "BATCH.DELETE.OBJECT":
                # One multi-object delete logs one row per key, all with the same request id.
                for _ in range(rng.randrange(1, 6)):
                    batch.append(
                        liner.fields(t, bucket, region, op="BATCH.DELETE.OBJECT", request_id=fields[5])
                    )
                kinds_seen["batch_delete_shared_request_id"] += len(batch)
            for f, k in batch:
                text = " ".join(f)
                line_no += 1
                if line_no % 500 == 0:
                    kind = rng.choice(MALFORMED)
                    lines.append(_malformed(rng, text, kind))
                    bad_list.append({"line": len(lines) - 1, "reason": kind})
                    continue
                lines.append(text)
                for kk in k:
                    kinds_seen[kk] += 1
                utc = t  # offsets are written as local time of the same instant
                day_counts_add(by_date, utc.date())
            j += len(batch)
        key = key_for(src, delivered)
        planted["malformed_lines"].extend({"object": key, **b} for b in bad_list)
        bad_here = len(bad_list)
        modified = delivered + dt.timedelta(seconds=rng.randrange(5, 600))
        write_object(root, key, ("\n".join(lines) + "\n").encode(), modified)
        layouts[layout] += 1
        counts["objects"] += 1
        counts["lines"] += len(lines)
        counts["malformed"] += bad_here
        if not bad_here:
            clean_objects.append((key, lines, delivered, src))

    # Redelivery: some lines of an earlier object arrive again inside a later object.
    for key, lines, delivered, src in clean_objects[min(3, len(clean_objects) - 1) :: 80]:
        copied = lines[: max(1, len(lines) // 2)]
        again = delivered + dt.timedelta(minutes=rng.randrange(10, 50))
        t = again - dt.timedelta(minutes=5)
        fresh = []
        for _ in range(rng.randrange(1, 10)):
            fields, kinds = liner.fields(t, src[2], src[1], op="REST.GET.OBJECT")
            fresh.append(" ".join(fields))
            for kk in kinds:
                kinds_seen[kk] += 1
            day_counts_add(by_date, t.date())
        dup_key = key_for(src, again)
        write_object(
            root, dup_key, ("\n".join(copied + fresh) + "\n").encode(), again + dt.timedelta(seconds=30)
        )
        planted["duplicate_objects"].append(
            {"object": dup_key, "copy_of": key, "duplicate_lines": len(copied), "new_lines": len(fresh)}
        )
        layouts[src[3]] += 1
        counts["objects"] += 1
        counts["lines"] += len(copied) + len(fresh)
        counts["duplicates"] += len(copied)

    loaded = counts["lines"] - counts["malformed"] - counts["duplicates"]
    return {
        "root": root.name,
        "expected": {
            "objects_listed": counts["objects"],
            "objects_skipped": 0,
            "objects_processed": counts["objects"],
            "records_read": counts["lines"],
            "records_loaded": loaded,
            "records_quarantined": counts["malformed"],
            "records_duplicate": counts["duplicates"],
            "loaded_by_table": {"s3_access_logs": loaded},
        },
        "objects": {
            "by_layout": dict(layouts),
            "mean_lines_per_object": round(counts["lines"] / counts["objects"], 1),
        },
        "loaded_by_date": {"s3_access_logs": dict(sorted(by_date.items()))},
        "planted": planted,
        "mix": {"awkward_lines": dict(sorted(kinds_seen.items()))},
        "notes": "every line ends in a newline; awkward lines are valid and expected to load; "
        "+0200 lines carry local time of the same UTC instant",
    }
