"""Synthetic Glue crawler logs (log group /aws-glue/crawlers, one stream per crawler).

Two deliveries, as real accounts use them (see samples/crawler):
- CloudWatch Logs export tasks: ``export/<task-id>/<crawler-name>/000000.gz``, gzipped lines
  ``<ISO8601 ms Z> [<run uuid>] LEVEL : message``; a message with newlines (the pretty-printed
  "Crawler configured with Configuration {...}") continues on following lines without a timestamp.
  The export writes an ``aws-logs-write-test`` marker under its prefix.
- A subscription through Firehose: ``firehose/YYYY/MM/DD/HH/<stream>-1-YYYY-MM-DD-HH-MM-SS-<uuid>``,
  each object several gzip members concatenated, each member one CloudWatch Logs JSON envelope
  (DATA_MESSAGE with logEvents, or a CONTROL_MESSAGE health check).

The first days go through export tasks, the last day through Firehose. Planted: one export task run
again for one stream (the same lines twice), one Firehose object delivered twice, one Firehose object
that is not gzip and one whose only envelope is cut-off JSON.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from collections import Counter
from pathlib import Path
from typing import Any

from synth.common import Rng, day_counts_add, gzip_bytes, iso_ms_z, scaled, seeded, write_object

ACCOUNT = "111122223333"
CRAWLERS = [
    ("raw-orders-crawler", "sales_raw"),
    ("curated-sales-crawler", "sales_curated"),
    ("clickstream-crawler", "clickstream"),
    ("finance-gold-crawler", "finance_gold"),
    ("hr-restricted-crawler", "hr_restricted"),
    ("marketing-campaigns", "marketing"),
    ("partner-feed-crawler", "sales_raw"),
    ("athena-results-crawler", "clickstream"),
]
TABLES = [
    "orders",
    "customers",
    "invoices",
    "events",
    "sessions",
    "payroll",
    "campaigns",
    "ledger",
    "page_views",
]
FIREHOSE_STREAM = "crawler-logs-to-s3"
CONFIG_MULTILINE = (
    'Crawler configured with Configuration \n{\n    "Version": 1,\n    "CreatePartitionIndex": true\n}\n'
    ' and SchemaChangePolicy \n{\n    "UpdateBehavior": "UPDATE_IN_DATABASE",\n'
    '    "DeleteBehavior": "DEPRECATE_IN_DATABASE"\n}\n'
    ". Note that values in the Configuration override values in the SchemaChangePolicy for S3 Targets."
)
CONFIG_ONELINE = (
    'Crawler configured with SchemaChangePolicy {"UpdateBehavior":"UPDATE_IN_DATABASE",'
    '"DeleteBehavior":"DEPRECATE_IN_DATABASE"}.'
)


def _run(rng: Rng, crawler: str, db: str, start: dt.datetime) -> tuple[list[tuple[dt.datetime, str]], str]:
    """The log events of one crawler run: (time, message) with the [run id] prefix; and its outcome."""
    run = rng.uuid4()
    t = start
    out: list[tuple[dt.datetime, str]] = []

    def add(level: str, message: str, gap_ms: tuple[int, int] = (1, 40)) -> None:
        nonlocal t
        t = t + dt.timedelta(milliseconds=rng.randrange(*gap_ms))
        out.append((t, f"[{run}] {level} : {message}"))

    add("BENCHMARK", f"Running Start Crawl for Crawler {crawler}")
    add("BENCHMARK", f"Classification complete, writing results to database {db}", (15_000, 400_000))
    add("INFO", CONFIG_MULTILINE if rng.random() < 0.4 else CONFIG_ONELINE)
    r = rng.random()
    if r < 0.06:
        add(
            "ERROR",
            f"Insufficient Lake Formation permission(s) on {db} (Database name: {db}) (Service: AWSGlue; "
            f"Status Code: 400; Error Code: AccessDeniedException; Request ID: {rng.uuid4()}; Proxy: null)",
        )
        add("BENCHMARK", "Crawler has finished running and is in state READY", (500, 5000))
        return out, "failed"
    if r < 0.09:
        add("WARN", "OutOfMemoryError: Please submit a ticket to AWS Support", (60_000, 300_000))
        add("ERROR", "Internal Service Exception", (60_000, 300_000))
        add("BENCHMARK", "Crawler has finished running and is in state READY", (500, 5000))
        return out, "failed"
    tables = rng.sample(TABLES, rng.randrange(1, 4))
    created = updated = deprecated = 0
    for table in tables:
        kind = rng.random()
        if kind < 0.3:
            add("INFO", f"Created table {table} in database {db}", (500, 20_000))
            created += 1
        elif kind < 0.85:
            add(
                "INFO",
                f"Updating table {table} in database {db}"
                if rng.random() < 0.5
                else f"Found partition of table {table} with partition values [2024, 03, 0{rng.randrange(1, 7)}] "
                f"with no matching schema at the partition's S3 location",
                (500, 20_000),
            )
            updated += 1
        else:
            add(
                "INFO",
                f"Table {table} is marked deprecated because a matching schema was not found at the table's location.",
                (500, 20_000),
            )
            deprecated += 1
    if r < 0.12:
        add(
            "WARN",
            f"The table {tables[0]} has a schema mismatch between partitions; partitions were not added.",
        )
    add("BENCHMARK", "Finished writing to Catalog", (500, 10_000))
    if created:
        add("INFO", "Run Summary For TABLE:")
        add("INFO", f"ADD: {created}")
    if updated or deprecated:
        add("INFO", "Run Summary For TABLE:")
        add("INFO", f"UPDATE: {updated + deprecated}")
    parts = rng.randrange(0, 30)
    if parts:
        add("INFO", "Run Summary For PARTITION:")
        add("INFO", f"ADD: {parts}")
    if r > 0.98:
        return out, "incomplete"  # the last lines of a run not delivered yet
    add("BENCHMARK", "Crawler has finished running and is in state READY", (30_000, 80_000))
    return out, "succeeded"


def _envelope(rng: Rng, stream: str, events: list[tuple[dt.datetime, str, str]]) -> dict[str, Any]:
    return {
        "messageType": "DATA_MESSAGE",
        "owner": ACCOUNT,
        "logGroup": "/aws-glue/crawlers",
        "logStream": stream,
        "subscriptionFilters": ["crawlers-to-firehose"],
        "logEvents": [
            {"id": eid, "timestamp": int(t.replace(tzinfo=dt.UTC).timestamp() * 1000), "message": m}
            for t, m, eid in events
        ],
    }


def _control(ts: dt.datetime) -> dict[str, Any]:
    return {
        "messageType": "CONTROL_MESSAGE",
        "owner": "CloudwatchLogs",
        "logGroup": "",
        "logStream": "",
        "subscriptionFilters": [],
        "logEvents": [
            {
                "id": "",
                "timestamp": int(ts.replace(tzinfo=dt.UTC).timestamp() * 1000),
                "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose.",
            }
        ],
    }


def _members(envelopes: list[dict[str, Any]]) -> bytes:
    return b"".join(gzip_bytes(json.dumps(e, separators=(",", ":")).encode()) for e in envelopes)


def generate(root: Path, *, seed: int, scale: float, days: list[dt.date]) -> dict[str, Any]:
    """Write the crawler-log exports and Firehose deliveries under ``root``; return the manifest section."""
    rng = seeded(seed, "crawler")
    target_events = scaled(15_000, scale, 100)
    # ~12 events per run.
    runs_per_crawler_day = max(1, target_events // (12 * len(CRAWLERS) * len(days)))
    stream_events: dict[tuple[dt.date, str], list[tuple[dt.datetime, str]]] = {}
    outcomes = Counter()
    n_runs = 0
    by_date: dict[str, int] = {}
    for day in days:
        for crawler, db in CRAWLERS:
            every = 86400 / runs_per_crawler_day
            for k in range(runs_per_crawler_day):
                start = dt.datetime.combine(day, dt.time()) + dt.timedelta(
                    seconds=int(k * every + rng.random() * every * 0.5)
                )
                events, outcome = _run(rng, crawler, db, start)
                outcomes[outcome] += 1
                n_runs += 1
                # A run belongs to the day it started; its lines can cross midnight (kept in that export).
                stream_events.setdefault((day, crawler), []).extend(events)
                for t, _ in events:
                    day_counts_add(by_date, t.date())

    counts = Counter()
    planted: dict[str, list[Any]] = {"duplicate_objects": [], "corrupt_objects": []}
    multiline = 0

    # Export tasks: one per day before the last, each writing one 000000.gz per stream. The last day
    # comes by Firehose only (a one-day set, such as the benchmark's next hour, has no export).
    export_days = days[:-1]
    first_export: tuple[str, bytes, dt.datetime, int] | None = None
    for day in export_days:
        task = rng.uuid4()
        done = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(1, 30))
        for crawler, _ in CRAWLERS:
            events = sorted(stream_events.get((day, crawler), []))
            if not events:
                continue
            body = "".join(f"{iso_ms_z(t)} {m}\n" for t, m in events).encode()
            multiline += sum(1 for _, m in events if "\n" in m)
            key = f"export/{task}/{crawler}/000000.gz"
            data = gzip_bytes(body)
            write_object(root, key, data, done)
            counts["export_objects"] += 1
            counts["events"] += len(events)
            if first_export is None:
                first_export = (crawler, data, done, len(events))
    if export_days:
        write_object(
            root,
            "export/aws-logs-write-test",
            b"Permission Check Successful",
            dt.datetime.combine(export_days[0], dt.time(1, 29)),
        )
        counts["marker_objects"] += 1
    if first_export:
        # The same export task run again for one stream: every line delivered a second time.
        crawler, data, done, n = first_export
        key = f"export/{rng.uuid4()}/{crawler}/000000.gz"
        write_object(root, key, data, done + dt.timedelta(hours=2))
        planted["duplicate_objects"].append({"object": key, "records": n, "kind": "export task rerun"})
        counts["export_objects"] += 1
        counts["duplicates"] += n

    # Firehose: the last day, buffered into 15-minute objects of concatenated gzip envelopes.
    fh_day = days[-1]
    flat = sorted(
        (t, m, crawler) for (day, crawler), evs in stream_events.items() if day == fh_day for t, m in evs
    )
    buckets: dict[dt.datetime, list[tuple[dt.datetime, str, str]]] = {}
    for t, m, crawler in flat:
        slot = t.replace(minute=(t.minute // 15) * 15, second=0, microsecond=0)
        buckets.setdefault(slot, []).append((t, m, crawler))
    control = 0
    fh_objects: list[tuple[str, bytes, dt.datetime, int]] = []
    for slot, evs in sorted(buckets.items()):
        flushed = slot + dt.timedelta(minutes=15, seconds=rng.randrange(0, 50))
        envelopes: list[dict[str, Any]] = []
        if slot.minute == 0 and slot.hour % 6 == 0:
            envelopes.append(_control(slot))
            control += 1
        i = 0
        while i < len(evs):
            stream = evs[i][2]
            group = []
            while i < len(evs) and evs[i][2] == stream and len(group) < 20:
                t, m, _ = evs[i]
                group.append((t, m, "".join(str(rng.randrange(10)) for _ in range(56))))
                i += 1
            envelopes.append(_envelope(rng, stream, group))
        multiline += sum(1 for _, m, _ in evs if "\n" in m)
        key = f"firehose/{flushed:%Y/%m/%d/%H}/{FIREHOSE_STREAM}-1-{flushed:%Y-%m-%d-%H-%M-%S}-{rng.uuid4()}"
        data = _members(envelopes)
        write_object(root, key, data, flushed)
        fh_objects.append((key, data, flushed, len(evs)))
        counts["firehose_objects"] += 1
        counts["events"] += len(evs)
    plain = [o for o in fh_objects if not _has_control(o[1])]
    if plain:
        # Firehose retried a delivery: the same bytes again under a new key.
        key, data, flushed, n = plain[len(plain) // 2]
        again = flushed + dt.timedelta(minutes=5)
        dup_key = f"firehose/{again:%Y/%m/%d/%H}/{FIREHOSE_STREAM}-1-{again:%Y-%m-%d-%H-%M-%S}-{rng.uuid4()}"
        write_object(root, dup_key, data, again)
        planted["duplicate_objects"].append(
            {"object": dup_key, "copy_of": key, "records": n, "kind": "firehose retry"}
        )
        counts["firehose_objects"] += 1
        counts["duplicates"] += n
    bad_at = dt.datetime.combine(fh_day, dt.time(23, 59))
    k1 = f"firehose/{bad_at:%Y/%m/%d/%H}/{FIREHOSE_STREAM}-1-{bad_at:%Y-%m-%d-%H-%M-%S}-{rng.uuid4()}"
    write_object(root, k1, b"this object is not gzip\n", bad_at)
    k2 = f"firehose/{bad_at:%Y/%m/%d/%H}/{FIREHOSE_STREAM}-1-{bad_at:%Y-%m-%d-%H-%M-59}-{rng.uuid4()}"
    write_object(
        root,
        k2,
        gzip_bytes(b'{"messageType":"DATA_MESSAGE","owner":"111122223333","logGroup":"/aws-glue/crawl'),
        bad_at,
    )
    planted["corrupt_objects"] += [
        {"object": k1, "reason": "not gzip"},
        {"object": k2, "reason": "truncated JSON envelope"},
    ]
    counts["firehose_objects"] += 2

    quarantined = len(planted["corrupt_objects"])
    read = counts["events"] + counts["duplicates"] + quarantined
    processed = counts["export_objects"] + counts["firehose_objects"]
    return {
        "root": root.name,
        "expected": {
            "objects_listed": processed + counts["marker_objects"],
            "objects_skipped": counts["marker_objects"],
            "objects_processed": processed,
            "records_read": read,
            "records_loaded": counts["events"],
            "records_quarantined": quarantined,
            "records_duplicate": counts["duplicates"],
            "loaded_by_table": {"crawler_log_events": counts["events"]},
            "crawler_runs": n_runs,
            "control_messages": control,
        },
        "objects": {
            "export": counts["export_objects"],
            "firehose": counts["firehose_objects"],
            "marker": counts["marker_objects"],
        },
        "loaded_by_date": {"crawler_log_events": dict(sorted(by_date.items()))},
        "planted": planted,
        "mix": {"run_outcomes": dict(sorted(outcomes.items())), "multiline_events": multiline},
        "notes": "one log event (even a multi-line one) is one record; CONTROL_MESSAGEs are not records; "
        "each corrupt object counts as one quarantined record",
    }


def _has_control(data: bytes) -> bool:
    return b"CONTROL_MESSAGE" in gzip.decompress(data)
