"""Listing bounded by the window: request counts against moto's S3 server, and the ledger lookups."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import subprocess
import sys
import urllib.request
import uuid

import pytest

from auditlake import lake as lake_mod
from auditlake.cli import run_job
from auditlake.ingest import listing
from auditlake.ingest.objects import list_objects
from auditlake.ingest.runner import run_ingest
from auditlake.sources.cloudtrail import CloudTrailSource
from auditlake.sources.crawler_logs import CrawlerLogsSource
from auditlake.sources.s3_access import S3AccessSource
from auditlake.tables import load_contract
from devtools import free_port, wait_port

ACCOUNT = "111111111111"


@pytest.fixture(scope="module")
def recorded_s3(tmp_path_factory):
    """A moto server of its own on loopback with moto's request recorder; yields (endpoint, recording file)."""
    recording = tmp_path_factory.mktemp("moto") / "recording.jsonl"
    port = free_port()
    env = dict(
        os.environ,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        MOTO_RECORDER_FILEPATH=str(recording),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        wait_port(port, proc, "moto server", timeout=60)
        yield f"http://127.0.0.1:{port}", recording
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _bucket(spark, endpoint: str, name: str):
    """Create ``name`` on the server and point s3a at it for that bucket only (per-bucket options)."""
    import boto3

    hconf = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in {
        "endpoint": endpoint,
        "endpoint.region": "us-east-1",
        "path.style.access": "true",
        "connection.ssl.enabled": "false",
        "aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        "access.key": "testing",
        "secret.key": "testing",
        "change.detection.mode": "none",
    }.items():
        hconf.set(f"fs.s3a.bucket.{name}.{key}", value)
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=name)
    return client


def _record(event_id: str, day: dt.date) -> dict:
    return {
        "eventVersion": "1.08",
        "eventTime": f"{day.isoformat()}T12:00:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "awsRegion": "us-east-1",
        "eventID": event_id,
        "eventType": "AwsApiCall",
        "recipientAccountId": ACCOUNT,
        "sourceIPAddress": "10.0.0.1",
        "userIdentity": {"type": "IAMUser"},
    }


def _put_day(client, bucket: str, day: dt.date, *, digest: bool = True) -> None:
    folder = f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/{day:%Y/%m/%d}"
    body = gzip.compress(json.dumps({"Records": [_record(str(uuid.uuid4()), day)]}).encode())
    client.put_object(
        Bucket=bucket, Key=f"{folder}/{ACCOUNT}_CloudTrail_us-east-1_{day:%Y%m%d}T1200Z_a1.json.gz", Body=body
    )
    if not digest:
        return
    # Digests beside the days: a full listing pays for them, a bounded one never enters the folder.
    client.put_object(
        Bucket=bucket,
        Key=f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/us-east-1/{day:%Y/%m/%d}/"
        f"{ACCOUNT}_CloudTrail-Digest_us-east-1_x_{day:%Y%m%d}T1200Z.json.gz",
        Body=b"{}",
    )


def _seed_ledger(spark, lake: str, root: str, src=None) -> None:
    """The ledger of a lake that already loaded every object under ``root`` (as past runs leave it)."""
    src = src or CloudTrailSource()
    now = dt.datetime(2025, 1, 1)
    rows = [
        (src.name, o.uri, o.size, o.modified_at, src.object_date(o), "history", now)
        for o in list_objects(spark, root)
        if src.classify(o) is None
    ]
    lake_mod.append_rows(
        spark, spark.createDataFrame(rows, load_contract("ingest_ledger").schema), lake, "ingest_ledger"
    )


def _recorder(endpoint: str, action: str) -> None:
    req = urllib.request.Request(f"{endpoint}/moto-api/recorder/{action}", data=b"", method="POST")
    urllib.request.urlopen(req, timeout=10).read()


def _list_requests(recording) -> int:
    """S3 LIST requests (ListObjectsV2, with or without a delimiter) the server received."""
    n = 0
    for line in recording.read_text().splitlines():
        entry = json.loads(line)
        if entry["method"] == "GET" and "list-type=2" in entry["url"]:
            n += 1
    return n


def _history(spark, endpoint: str, tmp_path, bucket: str, history_days: int) -> tuple[str, str]:
    """A bucket with ``history_days`` days of CloudTrail files, all in the ledger, then one new day."""
    end = dt.date(2024, 6, 30)
    client = _bucket(spark, endpoint, bucket)
    for i in range(history_days):
        _put_day(client, bucket, end - dt.timedelta(days=history_days - 1 - i), digest=i >= history_days - 3)
    root = f"s3a://{bucket}/AWSLogs"
    lake = str(tmp_path / bucket)
    _seed_ledger(spark, lake, root)
    _put_day(client, bucket, end + dt.timedelta(days=1))  # the new hour's file
    return root, lake


def _recorded(endpoint: str, recording, action) -> tuple[object, int]:
    """Run ``action`` with moto's recorder on; return its result and the LIST requests it made."""
    _recorder(endpoint, "reset-recording")
    _recorder(endpoint, "start-recording")
    try:
        result = action()
    finally:
        _recorder(endpoint, "stop-recording")
    return result, _list_requests(recording)


def _listing_of_a_run(spark, root: str, lake: str, src=None) -> list[str]:
    """What the runner does before parsing: the window, the bounded listing, the ledger lookup."""
    src = src or CloudTrailSource()
    window = listing.resolve_window(spark, lake, src.name, None, None, 1)
    found = listing.list_window(spark, root, src, window, lake=lake)
    done = listing.ledger_done(spark, lake, src.name, found.objects, window)
    return [o.name for o in found.objects if (o.uri, o.size, o.modified_at) not in done]


def test_incremental_run_lists_the_same_whatever_the_history(spark, recorded_s3, tmp_path):
    endpoint, recording = recorded_s3
    year_root, year_lake = _history(spark, endpoint, tmp_path, "ct-year", 365)
    month_root, month_lake = _history(spark, endpoint, tmp_path, "ct-month", 30)
    new_file = f"{ACCOUNT}_CloudTrail_us-east-1_20240701T1200Z_a1.json.gz"

    todo, month_lists = _recorded(
        endpoint, recording, lambda: _listing_of_a_run(spark, month_root, month_lake)
    )
    assert todo == [new_file]
    todo, year_lists = _recorded(endpoint, recording, lambda: _listing_of_a_run(spark, year_root, year_lake))
    assert todo == [new_file]
    # One status of the root; one level each: AWSLogs, account, CloudTrail (regions), us-east-1
    # (years), 2024 (months), 06 and 07 (days); one recursive listing per day folder of the window
    # (06-29, 06-30, 07-01).
    assert (month_lists, year_lists) == (11, 11)

    # The whole incremental run over a year of history: the same listing, nothing else that grows.
    records = []
    rc, run_lists = _recorded(
        endpoint,
        recording,
        lambda: run_job(
            "ingest_cloudtrail",
            lambda ctx: records.append(run_ingest(ctx, CloudTrailSource())),
            argv=["--source", year_root, "--lake", year_lake, "--conf", "quality.enabled=false"],
            session_factory=lambda cfg, name: spark,
        ),
    )
    assert rc == 0
    rec = records[0]
    # Window = high-water mark (06-30) minus one day of slack, open-ended: 06-29, 06-30, 07-01.
    assert (rec.objects_listed, rec.objects_already_processed, rec.objects_processed) == (3, 2, 1)
    assert (rec.records_read, rec.records_loaded, rec.counters["list_calls"]) == (1, 1, 7 + 3)
    # The listing's 11, plus the status probes of Spark reading the one new object.
    assert run_lists == 13


def _flat_history(spark, endpoint: str, bucket: str, tmp_path, history_days: int) -> tuple[str, str]:
    """S3 access logs in the simple layout (one flat folder, the date in the names) up to yesterday,
    all in the ledger, then one new object of today."""
    today = dt.datetime.now(dt.UTC).date()
    client = _bucket(spark, endpoint, bucket)
    line = b'o1 b1 [30/Jun/2024:12:00:00 +0000] 10.0.0.1 - R1 REST.GET.OBJECT k "GET /k HTTP/1.1" 200 - 1 1 1 1 "-" "-" -\n'
    for i in range(history_days, 0, -1):
        day = today - dt.timedelta(days=i)
        client.put_object(Bucket=bucket, Key=f"access/logs-{day:%Y-%m-%d}-12-00-00-A{i:04d}", Body=line)
    root = f"s3a://{bucket}/access"
    lake = str(tmp_path / bucket)
    _seed_ledger(spark, lake, root, S3AccessSource())
    client.put_object(Bucket=bucket, Key=f"access/logs-{today:%Y-%m-%d}-00-15-00-NEW1", Body=line)
    return root, lake


def test_flat_dated_names_are_listed_by_day_whatever_the_history(spark, recorded_s3, tmp_path):
    endpoint, recording = recorded_s3
    today = dt.datetime.now(dt.UTC).date()
    new = f"logs-{today:%Y-%m-%d}-00-15-00-NEW1"
    year = _flat_history(spark, endpoint, "s3-flat-year", tmp_path, 365)
    month = _flat_history(spark, endpoint, "s3-flat-month", tmp_path, 30)
    src = S3AccessSource()
    todo, month_lists = _recorded(endpoint, recording, lambda: _listing_of_a_run(spark, *month, src))
    assert todo == [new]
    todo, year_lists = _recorded(endpoint, recording, lambda: _listing_of_a_run(spark, *year, src))
    assert todo == [new]
    # Window: the high-water mark (yesterday) minus one day of slack, to tomorrow: 4 days. The
    # status of the root, the first page of its listing (the names are dated: the listing stops
    # there), then one prefix listing per day.
    assert (month_lists, year_lists) == (6, 6)

    window = listing.Window(today - dt.timedelta(days=2), today, "arguments")
    found, lists = _recorded(endpoint, recording, lambda: listing.list_window(spark, year[0], src, window))
    assert [o.name for o in found.objects] == [
        f"logs-{today - dt.timedelta(days=2):%Y-%m-%d}-12-00-00-A0002",
        f"logs-{today - dt.timedelta(days=1):%Y-%m-%d}-12-00-00-A0001",
        new,
    ]
    assert found.objects[-1].uri == f"s3a://s3-flat-year/access/{new}"
    assert (found.flat_folders, lists) == (["s3a://s3-flat-year/access"], 2 + 3)


def test_first_run_lists_everything_once(spark, tmp_path):
    src = tmp_path / "raw"
    for day in ("2024/01/30", "2024/01/31", "2024/02/01"):
        folder = src / f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/{day}"
        folder.mkdir(parents=True)
        (folder / f"{ACCOUNT}_CloudTrail_us-east-1_{day.replace('/', '')}T0000Z_a.json.gz").write_bytes(b"x")
    window = listing.resolve_window(spark, str(tmp_path / "lake"), "cloudtrail", None, None, 1)
    assert window == listing.Window(None, None, "everything")
    found = listing.list_window(spark, str(src), CloudTrailSource(), window)
    assert (len(found.objects), found.list_calls) == (3, 1)


def test_explicit_window_enters_only_its_days_and_months(spark, tmp_path):
    src = tmp_path / "raw"
    part = src / "123456789012" / "us-west-1" / "b1"
    names = {
        "2023/12/31": "2023-12-31-23-00-00-AAAA",
        "2024/01/01": "2024-01-01-00-00-00-BBBB",
        "2024/01/02": "2024-01-02-00-00-00-CCCC",
        "2024/01/04": "2024-01-04-00-00-00-DDDD",
        "2024/02/01": "2024-02-01-00-00-00-EEEE",
    }
    for folder, name in names.items():
        (part / folder).mkdir(parents=True)
        (part / folder / name).write_text("x\n")
    (src / "notes").mkdir()
    (src / "notes" / "readme.txt").write_text("kept: not under a date root\n")
    window = listing.resolve_window(
        spark, str(tmp_path / "lake"), "s3_access", dt.date(2024, 1, 1), dt.date(2024, 1, 2), 1
    )
    assert window == listing.Window(dt.date(2024, 1, 1), dt.date(2024, 1, 3), "arguments")
    found = listing.list_window(spark, str(src), S3AccessSource(), window)
    assert [o.name for o in found.objects] == [
        "2024-01-01-00-00-00-BBBB",
        "2024-01-02-00-00-00-CCCC",
        "readme.txt",
    ]
    assert found.date_roots == [f"file:{part}"]


def test_completed_export_tasks_are_not_entered(spark, tmp_path):
    src = tmp_path / "raw"
    done_task, open_task = "0a1b2c3d-0000-4000-8000-000000000001", "0a1b2c3d-0000-4000-8000-000000000002"
    for task in (done_task, open_task):
        (src / "export" / task / "crawler-a").mkdir(parents=True)
        (src / "export" / task / "crawler-a" / "000000.gz").write_bytes(b"x")
    lake = str(tmp_path / "lake")
    objs = list_objects(spark, str(src / "export" / done_task))
    # Processed two hours after it was written: the task had finished.
    rows = [
        ("crawler_logs", o.uri, o.size, o.modified_at, None, "r1", o.modified_at + dt.timedelta(hours=2))
        for o in objs
    ]
    lake_mod.append_rows(
        spark, spark.createDataFrame(rows, load_contract("ingest_ledger").schema), lake, "ingest_ledger"
    )
    window = listing.Window(dt.date(2024, 1, 1), None, "high_water_mark")
    found = listing.list_window(spark, str(src), CrawlerLogsSource(), window, lake=lake)
    assert [o.uri for o in found.objects] == [f"file:{src}/export/{open_task}/crawler-a/000000.gz"]
    assert found.skipped_complete_tasks == 1


def test_ledger_lookup_returns_only_listed_objects(spark, tmp_path):
    lake = str(tmp_path / "lake")
    t = dt.datetime(2024, 1, 1, 12)
    rows = [
        ("cloudtrail", f"s3://b/k{i}", 10, t, dt.date(2024, 1, 1) + dt.timedelta(days=i), "r", t)
        for i in range(40)
    ]
    lake_mod.append_rows(
        spark, spark.createDataFrame(rows, load_contract("ingest_ledger").schema), lake, "ingest_ledger"
    )
    assert listing.ledger_high_water_mark(spark, lake, "cloudtrail") == dt.date(2024, 2, 9)
    assert listing.ledger_high_water_mark(spark, lake, "s3_access") is None
    # The pipeline's ingests share one read of the marks; a source outside the set reads its own.
    shared = listing.HighWaterMarks(spark, ["cloudtrail", "s3_access"])
    assert shared.get(lake, "cloudtrail") == dt.date(2024, 2, 9)
    assert shared.get(lake, "s3_access") is None
    assert shared.get(lake, "crawler_logs") is None
    window = listing.resolve_window(spark, lake, "cloudtrail", None, None, 2, marks=shared)
    assert window == listing.Window(dt.date(2024, 2, 7), None, "high_water_mark")
    from auditlake.ingest.objects import SourceObject

    cands = [
        SourceObject("s3://b/k39", 10, t),
        SourceObject("s3://b/k38", 11, t),
        SourceObject("s3://b/new", 1, t),
    ]
    window = listing.Window(dt.date(2024, 2, 8), None, "high_water_mark")
    assert listing.ledger_done(spark, lake, "cloudtrail", cands, window) == {("s3://b/k39", 10, t)}


def test_hadoop_listings_come_back_whole_from_the_jvm_helper_and_from_the_py4j_walk(spark, s3, monkeypatch):
    """``hadoop_fs`` hands a listing over as one string from our JVM helper (``Listings``) and,
    without it on the class path, walks py4j's iterator: the same entries either way, keys with
    spaces, a tab and non-ASCII letters included."""
    from auditlake import hadoop_fs

    bucket = f"listings-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    for key, body in {
        "logs/a b.log": b"12345",
        "logs/tab\there.log": b"1",
        "logs/\u00fcn\u00ef.log": b"123",
        "logs/sub/c.log": b"1234567",
    }.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    root = f"s3a://{bucket}/logs"
    expected_tree = [
        (f"{root}/a b.log", 5),
        (f"{root}/sub/c.log", 7),
        (f"{root}/tab\there.log", 1),
        (f"{root}/\u00fcn\u00ef.log", 3),
    ]
    expected_children = [
        (False, f"{root}/a b.log", 5),
        (True, f"{root}/sub", 0),
        (False, f"{root}/tab\there.log", 1),
        (False, f"{root}/\u00fcn\u00ef.log", 3),
    ]
    assert hadoop_fs._listings(spark) is not None
    for helper in (True, False):
        if not helper:
            monkeypatch.setattr(hadoop_fs, "_listings", lambda spark: None)
        listed = list(hadoop_fs.list_files(spark, root))
        assert sorted((uri, size) for uri, size, _ in listed) == expected_tree
        assert all(ms > 0 for _, _, ms in listed)
        path = hadoop_fs.hadoop_path(spark, root)
        children = hadoop_fs.list_status(spark, hadoop_fs.filesystem(spark, path), path)
        if helper:
            assert (
                sorted(((d, uri, size) for d, uri, size, _ in children), key=lambda e: e[1])
                == expected_children
            )
        else:
            assert children is None
        lister = listing._Lister(spark, root, lambda n: None)
        files, dirs, _ = lister.children(root)
        assert sorted((o.uri, o.size) for o in files) == [e for e in expected_tree if "/sub/" not in e[0]]
        assert dirs == [f"{root}/sub"]
        assert sorted((o.uri, o.size) for o in lister.tree(root)) == expected_tree
