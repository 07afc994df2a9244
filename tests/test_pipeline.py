"""The one-session pipeline on the bundled demo logs: each job's run record and rows per table."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from delta.tables import DeltaTable

from auditlake import commits
from auditlake import lake as lake_mod
from auditlake.cli import run_job
from auditlake.pipeline import JOB_NAME, add_arguments, job_session, run_pipeline

RAW = Path(__file__).resolve().parents[1] / "demo" / "raw"
AGG = "build_daily_aggregates"


def _pipeline(spark, argv: list[str]) -> int:
    return run_job(
        JOB_NAME,
        run_pipeline,
        argv=argv,
        add_arguments=add_arguments,
        needs_source=False,
        session_factory=lambda cfg, app: spark,
    )


def _runs(spark, lake: Path) -> dict[str, object]:
    rows = lake_mod.read_table(spark, str(lake), "job_runs").collect()
    return {r["job"]: r for r in rows}


def _rows(spark, lake: Path, table: str) -> int:
    return lake_mod.read_table(spark, str(lake), table).count()


def _commit_runs(spark, lake: Path, table: str) -> set[str | None]:
    history = DeltaTable.forPath(spark, lake_mod.table_uri(str(lake), table)).history()
    return {commits.tag_run_id(r["userMetadata"]) for r in history.select("userMetadata").collect()}


def test_pipeline_runs_every_job_in_one_session(spark, tmp_path, capsys):
    lake = tmp_path / "lake"
    code = _pipeline(
        spark,
        [
            "--lake",
            str(lake),
            "--run-id",
            "nightly",
            "--cloudtrail-source",
            str(RAW / "cloudtrail"),
            "--s3-access-source",
            str(RAW / "s3access"),
            "--crawler-source",
            str(RAW / "crawler"),
            "--detect",
            # One after another here; the test below runs the ingests in threads (the default).
            "--no-parallel",
        ],
    )
    assert code == 0, capsys.readouterr().err
    runs = _runs(spark, lake)
    assert sorted(runs) == sorted(
        ["ingest_cloudtrail", "ingest_s3_access", "ingest_crawler_logs", AGG, "detect"]
    )
    assert {j: r["run_id"] for j, r in runs.items()} == {
        "ingest_cloudtrail": "nightly-ingest_cloudtrail",
        "ingest_s3_access": "nightly-ingest_s3_access",
        "ingest_crawler_logs": "nightly-ingest_crawler_logs",
        AGG: f"nightly-{AGG}",
        "detect": "nightly-detect",
    }
    assert {j: r["status"] for j, r in runs.items()} == dict.fromkeys(runs, "succeeded")
    got = {
        j: (
            r["objects_processed"],
            r["records_read"],
            r["records_loaded"],
            r["records_quarantined"],
            r["records_duplicate"],
        )
        for j, r in runs.items()
        if j not in (AGG, "detect")
    }
    assert got == {
        "ingest_cloudtrail": (13, 1568, 1378, 3, 187),
        "ingest_s3_access": (25, 1281, 1258, 2, 21),
        "ingest_crawler_logs": (30, 295, 273, 2, 20),
    }
    assert dict(runs["ingest_cloudtrail"]["loaded_by_table"]) == {
        "cloudtrail_events": 1372,
        "cloudtrail_insights": 6,
    }
    assert runs["ingest_crawler_logs"]["counters"]["crawler_runs_upserted"] == 24
    # The aggregates ran after the ingests and took all three runs.
    assert runs[AGG]["counters"]["ingest_runs"] == 3
    assert runs[AGG]["started_at"] > max(r["ended_at"] for j, r in runs.items() if j.startswith("ingest_"))
    # --detect: the detection pack ran last, in the same session, over the days the ingests wrote.
    assert runs["detect"]["started_at"] > runs[AGG]["ended_at"]
    assert runs["detect"]["counters"]["rules"] == 12
    assert runs["detect"]["records_loaded"] == _rows(spark, lake, "findings") > 0
    assert {
        t: _rows(spark, lake, t)
        for t in (
            "cloudtrail_events",
            "cloudtrail_insights",
            "s3_access_logs",
            "crawler_log_events",
            "crawler_runs",
            "quarantine",
        )
    } == {
        "cloudtrail_events": 1372,
        "cloudtrail_insights": 6,
        "s3_access_logs": 1258,
        "crawler_log_events": 273,
        "crawler_runs": 24,
        "quarantine": 7,
    }
    assert "pipeline nightly: ingest_cloudtrail=ok" in capsys.readouterr().out


def _record_start_order(monkeypatch) -> list[str]:
    """Record, in order, each ingest's listing ending, the start rows written ahead, each run's start
    and the flush of the ingests' deferred rows.

    The start rows wait (up to a minute) until every ingest has listed: they are written while
    the ingests list, not before their threads start. The flush waits (up to a minute) until the
    aggregates job has started: it runs while the aggregates do, not before them."""
    from auditlake import pipeline, run_log
    from auditlake.ingest import runner

    events: list[str] = []
    listed = threading.Condition()
    from auditlake import aggregate_plan

    real_list, real_ahead, real_start = runner._list, pipeline._start_ahead, run_log.start_run
    real_versions = aggregate_plan.last_versions

    def list_(ctx, source, lake, rec):
        try:
            return real_list(ctx, source, lake, rec)
        finally:
            with listed:
                events.append(f"listed {source.name}")
                listed.notify_all()

    def ahead(parent, contexts, later=None):
        with listed:
            listed.wait_for(lambda: sum(e.startswith("listed") for e in events) == len(contexts), timeout=60)
        events.append("start rows ahead")
        real_ahead(parent, contexts, later)

    def versions(job_runs, job):
        with listed:
            events.append(f"watermark read by {threading.current_thread().name}")
        return real_versions(job_runs, job)

    def start(spark, lake, rec, cfg=None):
        with listed:
            events.append(f"started {AGG if rec.job == AGG else rec.source}")
            listed.notify_all()
        return real_start(spark, lake, rec, cfg)

    def flush(self, spark, lake):
        with listed:
            listed.wait_for(lambda: f"started {AGG}" in events, timeout=60)
        events.append("ingests' rows flushed")
        return real_flush(self, spark, lake)

    real_flush = run_log.DeferredWrites.flush
    monkeypatch.setattr(runner, "_list", list_)
    monkeypatch.setattr(pipeline, "_start_ahead", ahead)
    monkeypatch.setattr(run_log, "start_run", start)
    monkeypatch.setattr(run_log.DeferredWrites, "flush", flush)
    monkeypatch.setattr(aggregate_plan, "last_versions", versions)
    return events


def test_parallel_failed_ingest_does_not_stop_the_others(spark, tmp_path, capsys, monkeypatch):
    lake = tmp_path / "lake"
    order = _record_start_order(monkeypatch)
    code = _pipeline(
        spark,
        [
            "--lake",
            str(lake),
            "--run-id",
            "par",
            "--cloudtrail-source",
            str(RAW / "cloudtrail"),
            "--s3-access-source",
            str(RAW / "s3access"),
            "--crawler-source",
            str(tmp_path / "missing"),
        ],
    )
    # The crawler source does not exist: a SourceError (exit 4) is the worst status of the run.
    assert code == 4
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("auditlake: run_pipeline: error: ingest_crawler_logs failed (exit 4): SourceError")
    runs = _runs(spark, lake)
    assert {j: r["status"] for j, r in runs.items()} == {
        "ingest_cloudtrail": "succeeded",
        "ingest_s3_access": "succeeded",
        "ingest_crawler_logs": "failed",
        AGG: "succeeded",
    }
    assert runs["ingest_s3_access"]["records_loaded"] == 1258
    assert _rows(spark, lake, "s3_access_logs") == 1258
    # Ingests in threads each tag their commits with their own run (a session each): every commit
    # of a table names the run that wrote it, and the aggregates count the two runs that wrote.
    assert {t: _commit_runs(spark, lake, t) for t in ("cloudtrail_events", "s3_access_logs")} == {
        "cloudtrail_events": {"par-ingest_cloudtrail"},
        "s3_access_logs": {"par-ingest_s3_access"},
    }
    # The pipeline recorded the three ingests as running in a commit of its own, and after them the
    # two that succeeded as ended, with their objects in the ledger, in one commit of each table
    # (run_log.DeferredWrites); the failed ingest wrote its own end row. Every commit names its run.
    assert _commit_runs(spark, lake, "job_runs") == {"par", "par-ingest_crawler_logs", f"par-{AGG}"}
    assert _commit_runs(spark, lake, "ingest_ledger") == {"par"}
    ledger = lake_mod.read_table(spark, str(lake), "ingest_ledger")
    assert {
        r["source"]: r["n"]
        for r in ledger.groupBy("source").count().withColumnRenamed("count", "n").collect()
    } == {
        "cloudtrail": 13,
        "s3_access": 25,
    }
    assert {r["run_id"] for r in ledger.select("run_id").collect()} == {
        "par-ingest_cloudtrail",
        "par-ingest_s3_access",
    }
    # Their passed gates' results and their quarantined rows too: one commit of each, the
    # pipeline's (the aggregates job records its own results).
    assert _commit_runs(spark, lake, "quarantine") == {"par"}
    assert _commit_runs(spark, lake, "dq_results") == {"par", f"par-{AGG}"}
    quarantined = lake_mod.read_table(spark, str(lake), "quarantine").groupBy("source", "run_id").count()
    assert {(r["source"], r["run_id"]): r["count"] for r in quarantined.collect()} == {
        ("cloudtrail", "par-ingest_cloudtrail"): 3,
        ("s3_access", "par-ingest_s3_access"): 2,
    }
    assert {j: r["records_quarantined"] for j, r in runs.items() if j.startswith("ingest_")} == {
        "ingest_cloudtrail": 3,
        "ingest_s3_access": 2,
        "ingest_crawler_logs": 0,
    }
    # 15 expectations on each of the two CloudTrail tables, 17 on the S3 access table.
    results = lake_mod.read_table(spark, str(lake), "dq_results").where("run_id LIKE 'par-ingest_%'")
    assert {r["run_id"]: r["count"] for r in results.groupBy("run_id").count().collect()} == {
        "par-ingest_cloudtrail": 30,
        "par-ingest_s3_access": 17,
    }
    assert runs["ingest_crawler_logs"]["started_at"] < runs["ingest_crawler_logs"]["ended_at"]
    # The ingests listed (the crawler's failed) while their start rows were written, and each run
    # started, its first write, only after those rows: the failed crawler run too.
    assert sorted(order[:3]) == ["listed cloudtrail", "listed crawler_logs", "listed s3_access"]
    assert order[3] == "start rows ahead"
    # While they ran, the pipeline's own thread read the aggregates' watermark, once.
    assert sorted(order[4:8]) == [
        "started cloudtrail",
        "started crawler_logs",
        "started s3_access",
        "watermark read by MainThread",
    ]
    # Their deferred rows were written while the aggregates job ran (it reads their data only).
    assert order[8:] == [f"started {AGG}", "ingests' rows flushed"]
    # The aggregates' running row was written with the ingests', in the pipeline's commit; its end
    # row says when it really started, after the ingests had ended.
    history = DeltaTable.forPath(spark, lake_mod.table_uri(str(lake), "job_runs")).history()
    first = min(
        r["version"]
        for r in history.select("version", "userMetadata").collect()
        if commits.tag_run_id(r["userMetadata"]) == "par" and r["version"] > 0
    )
    started = (
        spark.read.format("delta")
        .option("versionAsOf", first)
        .load(lake_mod.table_uri(str(lake), "job_runs"))
    )
    assert sorted((r["job"], r["status"]) for r in started.collect()) == [
        (AGG, "running"),
        ("ingest_cloudtrail", "running"),
        ("ingest_crawler_logs", "running"),
        ("ingest_s3_access", "running"),
    ]
    assert runs[AGG]["started_at"] > max(r["ended_at"] for j, r in runs.items() if j.startswith("ingest_"))
    # The failed crawler run wrote nothing: the aggregates rebuild the days of the other two.
    assert runs[AGG]["counters"]["ingest_runs"] == 2
    assert runs[AGG]["counters"]["agg_s3_requests_daily_days_replaced"] == 3
    assert _rows(spark, lake, "agg_s3_requests_daily") > 0

    # Again with nothing new: the watermark read ahead is the first run's, so nothing is rebuilt.
    order.clear()
    code = _pipeline(
        spark,
        ["--lake", str(lake), "--run-id", "par2"]
        + ["--cloudtrail-source", str(RAW / "cloudtrail"), "--s3-access-source", str(RAW / "s3access")],
    )
    assert code == 0, capsys.readouterr().err
    again = {
        r["job"]: r
        for r in lake_mod.read_table(spark, str(lake), "job_runs").where("run_id LIKE 'par2-%'").collect()
    }
    assert {j: (r["status"], r["records_loaded"]) for j, r in again.items()} == {
        "ingest_cloudtrail": ("succeeded", 0),
        "ingest_s3_access": ("succeeded", 0),
        AGG: ("succeeded", 0),
    }
    assert again[AGG]["counters"]["ingest_runs"] == 0
    assert [e for e in order if e.startswith("watermark")] == ["watermark read by MainThread"]


def test_ingests_whose_end_rows_cannot_be_written_are_failed_runs(spark, tmp_path, capsys, monkeypatch):
    """The pipeline writes its ingests' ledger rows and end rows after them (run_log.DeferredWrites):
    when the end rows cannot be written, the runs are recorded failed and the pipeline fails; their
    objects are in the ledger already, so the next run has nothing left to do."""
    from auditlake import run_log

    def unavailable(*args, **kwargs):
        raise RuntimeError("job_runs unavailable")

    lake = tmp_path / "lake"
    argv = [
        "--lake",
        str(lake),
        "--cloudtrail-source",
        str(RAW / "cloudtrail"),
        "--s3-access-source",
        str(RAW / "s3access"),
        "--no-aggregates",
    ]
    with monkeypatch.context() as m:
        m.setattr(run_log, "end_runs", unavailable)
        assert _pipeline(spark, [*argv, "--run-id", "first"]) == 1
    assert (
        "ingest_cloudtrail failed (exit 1): could not record the end of the run: RuntimeError: job_runs unavailable"
        in (capsys.readouterr().err)
    )
    runs = _runs(spark, lake)
    assert {j: (r["status"], r["error"]) for j, r in runs.items()} == {
        "ingest_cloudtrail": ("failed", "job_runs unavailable"),
        "ingest_s3_access": ("failed", "job_runs unavailable"),
    }
    assert (_rows(spark, lake, "cloudtrail_events"), _rows(spark, lake, "ingest_ledger")) == (1372, 38)
    assert _pipeline(spark, [*argv, "--run-id", "second"]) == 0
    second = {
        r["job"]: (r["status"], r["objects_processed"], r["records_loaded"])
        for r in lake_mod.read_table(spark, str(lake), "job_runs").where("run_id LIKE 'second-%'").collect()
    }
    assert second == {"ingest_cloudtrail": ("succeeded", 0, 0), "ingest_s3_access": ("succeeded", 0, 0)}


def test_a_job_session_has_its_own_settings_and_the_parent_s_runtime_ones(spark):
    secret = "spark.auditlake.test.secret.key"  # a key SET would show masked
    partitions = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set(secret, "s3cr3t")
    spark.conf.set("spark.sql.shuffle.partitions", "3")
    try:
        job = job_session(spark)
        assert job is not spark
        assert (job.conf.get(secret), job.conf.get("spark.sql.shuffle.partitions")) == ("s3cr3t", "3")
        tag = commits.tag_commits(job, "r-1", "ingest_cloudtrail")
        assert commits.current_tag(job) == tag != commits.current_tag(spark)
    finally:
        spark.conf.unset(secret)
        spark.conf.set("spark.sql.shuffle.partitions", partitions)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--source", "x"], "name each source with --cloudtrail-source"),
        (["--no-aggregates"], "nothing to run"),
    ],
)
def test_bad_invocations_are_one_line(spark, tmp_path, capsys, argv, message):
    assert _pipeline(spark, ["--lake", str(tmp_path / "lake"), *argv]) == 2
    assert message in capsys.readouterr().err
