"""Generate synthetic S3 server access log objects for the benchmark (not for tests).

Lines follow the AWS layout with the quirks the parser must survive: quoted fields with spaces,
'-' for null, batch deletes sharing one request id, legacy 18-field lines, trailing fields, and
a small share of malformed lines. Objects use the partitioned key layout
``<prefix><account>/<region>/<bucket>/YYYY/MM/DD/YYYY-MM-DD-hh-mm-ss-UNIQUE`` or, with
``--layout simple``, ``<prefix>YYYY-MM-DD-hh-mm-ss-UNIQUE``.

    python tools/gen_s3_access.py OUT_DIR --lines 2000000 --objects 5000
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random

OPS = [
    ("REST.GET.OBJECT", "GET", 200, None),
    ("REST.PUT.OBJECT", "PUT", 200, None),
    ("REST.HEAD.OBJECT", "HEAD", 200, None),
    ("REST.GET.BUCKET", "GET", 200, None),
    ("REST.GET.OBJECT", "GET", 403, "AccessDenied"),
    ("REST.GET.OBJECT", "GET", 404, "NoSuchKey"),
    ("REST.COPY.OBJECT", "PUT", 200, None),
    ("WEBSITE.GET.OBJECT", "GET", 200, None),
]
AGENTS = [
    "S3Console/0.4",
    "aws-sdk-java/1.12.261 Linux/5.10.184 OpenJDK_64-Bit_Server_VM/25.372-b07 java/1.8.0_372 vendor/Amazon.com_Inc.",
    "aws-cli/2.13.0 Python/3.11.4 Linux/6.1 exe/x86_64.amzn.2 prompt/off command/s3.cp",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "Boto3/1.28.0 md/Botocore#1.31.0 ua/2.0 os/linux#5.10 md/arch#x86_64 lang/python#3.11.4 cfg/retry-mode#legacy",
]
REQUESTERS = [
    "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be",
    "arn:aws:iam::123456789012:user/alice",
    "arn:aws:sts::123456789012:assumed-role/etl-role/i-0abc123",
    "arn:aws:iam::cloudfront:user/CloudFront Origin Access Identity E2EXAMPLEID",
    "-",
]


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789ABCDEF") for _ in range(n))


def line(rng: random.Random, when: dt.datetime, bucket: str) -> str:
    op, method, status, err = rng.choice(OPS)
    key = f"data/part-{rng.randrange(100000):05d}%20copy.parquet" if rng.random() < 0.1 else f"data/part-{rng.randrange(100000):05d}.parquet"
    size = str(rng.randrange(1, 10_000_000))
    sent = size if method == "GET" and status == 200 else str(rng.randrange(100, 400))
    t = when.strftime("%d/%b/%Y:%H:%M:%S +0000")
    ip = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"
    fields = [
        "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be", bucket, f"[{t}]", ip,
        rng.choice(REQUESTERS), _hex(rng, 16), op, key, f'"{method} /{bucket}/{key} HTTP/1.1"', str(status),
        err or "-", sent, size if method == "PUT" else "-", str(rng.randrange(1, 500)), str(rng.randrange(1, 100)),
        '"-"', f'"{rng.choice(AGENTS)}"', "-",
        "s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234=", "SigV4",
        "TLS_AES_128_GCM_SHA256", "AuthHeader", f"{bucket}.s3.us-east-1.amazonaws.com", "TLSv1.3", "-", "-",
    ]
    r = rng.random()
    if r < 0.02:
        fields = fields[:18]  # legacy line
    elif r < 0.04:
        fields.append("us-east-1")  # a field AWS appended later
    elif r < 0.041:
        return " ".join(fields[:10])  # truncated: quarantine
    return " ".join(fields)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--objects", type=int, default=5_000)
    ap.add_argument("--layout", choices=["partitioned", "simple"], default="partitioned")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    start = dt.datetime(2024, 3, 1)
    per_object = args.lines // args.objects
    bucket = "amzn-s3-demo-bucket1"
    for i in range(args.objects):
        delivered = start + dt.timedelta(seconds=i * 60)
        stamp = delivered.strftime("%Y-%m-%d-%H-%M-%S")
        name = f"{stamp}-{_hex(rng, 16)}"
        if args.layout == "partitioned":
            folder = os.path.join(args.out, "logs", "123456789012", "us-east-1", bucket, delivered.strftime("%Y/%m/%d"))
        else:
            folder = os.path.join(args.out, "logs")
        os.makedirs(folder, exist_ok=True)
        n = per_object + (1 if i < args.lines - per_object * args.objects else 0)
        body = "\n".join(line(rng, delivered - dt.timedelta(seconds=rng.randrange(3600)), bucket) for _ in range(n))
        with open(os.path.join(folder, name), "w") as fh:
            fh.write(body + "\n")


if __name__ == "__main__":
    main()
