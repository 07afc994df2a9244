"""The mutated corpus (dev/chaos/corpus.py): every object loaded or quarantined as expected, exit 0.

``make test`` runs the objects marked ``subset``; ``make chaos-corpus`` sets
``AUDITLAKE_CORPUS=full`` and runs all of them (over 100, across the three sources).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pyspark.sql.functions as F

from auditlake.cli import run_job
from auditlake.ingest.runner import run_ingest
from auditlake.sources.cloudtrail import CloudTrailSource
from auditlake.sources.crawler_logs import CrawlerLogsSource
from auditlake.sources.s3_access import S3AccessSource
from chaos.corpus import Entry, build, write

FULL = os.environ.get("AUDITLAKE_CORPUS", "subset") == "full"
JOBS = {
    "cloudtrail": ("ingest_cloudtrail", CloudTrailSource, ("cloudtrail_events", "cloudtrail_insights")),
    "s3_access": ("ingest_s3_access", S3AccessSource, ("s3_access_logs",)),
    "crawler_logs": ("ingest_crawler_logs", CrawlerLogsSource, ("crawler_log_events",)),
}


def _uri(root: Path, e: Entry) -> str:
    return "file:" + str(root / e.source / e.key)


def _mismatches(entries: list[Entry], root: Path, loaded: Counter, quarantined: dict[str, list]) -> list[str]:
    """What differs from each entry's expected outcome (empty when every object is as expected)."""
    out = []
    for e in entries:
        uri = _uri(root, e)
        got_rows = loaded.get(uri, 0)
        reasons = [r for r, _ in quarantined.get(uri, [])]
        left = list(reasons)
        missing = []
        for prefix in e.quarantined:
            hit = next((r for r in left if r.startswith(prefix)), None)
            if hit is None:
                missing.append(prefix)
            else:
                left.remove(hit)
        problems = []
        if got_rows != e.loaded:
            problems.append(f"loaded {got_rows}, expected {e.loaded}")
        if missing or left:
            problems.append(f"quarantined {reasons}, expected {e.quarantined}")
        if e.raw_length is not None and [n for _, n in quarantined.get(uri, [])] != [e.raw_length]:
            problems.append(
                f"raw_length {[n for _, n in quarantined.get(uri, [])]}, expected [{e.raw_length}]"
            )
        if problems:
            out.append(f"{e.source} {e.mutation!r}: " + "; ".join(problems))
    return out


def test_mutated_corpus_outcomes(spark, tmp_path, capfd):
    entries = build(subset=not FULL)
    root = tmp_path / "corpus"
    write(root, entries)
    lake = str(tmp_path / "lake")

    for source, (job, cls, _) in JOBS.items():
        code = run_job(
            job,
            lambda ctx, cls=cls: run_ingest(ctx, cls()),
            argv=["--source", str(root / source), "--lake", lake],
            session_factory=lambda cfg, name: spark,
        )
        err = capfd.readouterr().err
        assert code == 0, f"{job} exit {code}: {err[-2000:]}"
        assert "Traceback" not in err and "\tat " not in err, err[-2000:]

    def read(name):
        return spark.read.format("delta").load(f"{lake}/{name}")

    loaded: Counter = Counter()
    for _, _, tables in JOBS.values():
        for table in tables:
            loaded.update({r[0]: int(r[1]) for r in read(table).groupBy("source_object").count().collect()})
    quarantined: dict[str, list] = {}
    for r in read("quarantine").select("source_object", "reason", "raw_length").collect():
        quarantined.setdefault(r[0], []).append((r[1], r[2]))

    mismatches = _mismatches(entries, root, loaded, quarantined)
    assert mismatches == [], "\n".join(mismatches)
    # Nothing from an object the corpus does not list (no row invented, none misattributed).
    known = {_uri(root, e) for e in entries}
    assert sorted(set(loaded) - known) == [] and sorted(set(quarantined) - known) == []

    runs = {r.source: r for r in read("job_runs").collect()}
    for source in JOBS:
        run = runs[source]
        assert run.status == "succeeded"
        assert run.records_read == run.records_loaded + run.records_quarantined + run.records_duplicate
        skipped = Counter(e.skipped for e in entries if e.source == source and e.skipped)
        assert {k: v for k, v in (run.skipped_by_reason or {}).items() if k != "outside_window"} == dict(
            skipped
        )

    # Every stored text is valid UTF-8: decoding its bytes replaces nothing.
    q = read("quarantine")
    invalid = q.where(
        (F.decode(F.col("raw_text").cast("binary"), "UTF-8") != F.col("raw_text"))
        | (F.decode(F.col("reason").cast("binary"), "UTF-8") != F.col("reason"))
    )
    assert invalid.count() == 0
    agents = read("s3_access_logs").where(
        F.decode(F.col("user_agent").cast("binary"), "UTF-8") != F.col("user_agent")
    )
    assert agents.count() == 0
