"""Crash-safe runs and safe concurrent writers: a real kill, concurrent runs, the log store settings."""

from __future__ import annotations

import datetime as dt
import shutil
import threading
from argparse import Namespace

import pyspark.sql.functions as F
import pytest
from chispa import assert_df_equality
from delta.tables import DeltaTable

from auditlake import commits
from auditlake import lake as lake_mod
from auditlake.aggregate_job import build_daily_aggregates
from auditlake.cli import run_job
from auditlake.config import load_config
from auditlake.context import JobContext
from auditlake.ingest.runner import run_ingest
from auditlake.logstore import log_store_conf
from auditlake.sources.cloudtrail import CloudTrailSource
from devtools import REPO
from lakechaos import job_command
from lakechaos import run_job as run_job_process

CT_FIXTURES = REPO / "tests" / "fixtures" / "cloudtrail"
# What the CloudTrail fixtures hold (see test_cloudtrail.test_real_samples_golden).
EVENTS, INSIGHTS, QUARANTINED, READ = 9, 3, 7, 19


def _ingest(spark, source, lake) -> int:
    return run_job(
        "ingest_cloudtrail",
        lambda ctx: run_ingest(ctx, CloudTrailSource()),
        argv=["--source", str(source), "--lake", str(lake), "--conf", "quality.enabled=false"],
        session_factory=lambda cfg, name: spark,
    )


def _aggregates(spark, lake, run_id):
    cfg = load_config("local", {"quality": {"enabled": False}})
    args = Namespace(
        lake=str(lake),
        since=None,
        until=None,
        source=None,
        env="local",
        reprocess=False,
        run_id=run_id,
        conf=[],
        verbose=False,
    )
    return build_daily_aggregates(
        JobContext(
            job="build_daily_aggregates",
            args=args,
            cfg=cfg,
            spark=spark,
            run_id=run_id,
            started_at=dt.datetime.now(dt.UTC),
        )
    )


def _table(spark, lake, name):
    return lake_mod.read_table(spark, str(lake), name)


def _dup_keys(df, *keys) -> int:
    return df.groupBy(*keys).count().where(F.col("count") > 1).count()


def test_retry_on_conflict_retries_delta_conflicts_only(spark):  # Delta's exceptions need a JVM
    from delta.exceptions import ConcurrentAppendException

    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ConcurrentAppendException(
                desc="Files were added to partition [event_date=2024-01-01]", stackTrace=""
            )
        return "done"

    assert commits.retry_on_conflict(flaky, what="t", base_delay=0.01) == "done"
    assert len(calls) == 3

    def always():
        raise ConcurrentAppendException(desc="again", stackTrace="")

    with pytest.raises(ConcurrentAppendException):
        commits.retry_on_conflict(always, what="t", attempts=2, base_delay=0.01)

    def other():
        calls.append(1)
        raise ValueError("not a conflict")

    calls.clear()
    with pytest.raises(ValueError):
        commits.retry_on_conflict(other, what="t", base_delay=0.01)
    assert len(calls) == 1


def test_latest_version_sees_commits_made_outside_this_session(spark, tmp_path):
    """The newest version comes from the log as it is now, not from a snapshot this JVM cached."""
    table = tmp_path / "t"
    uri = f"file:{table}"
    assert commits.latest_version(spark, f"file:{tmp_path / 'missing'}") == -1
    (tmp_path / "plain").mkdir()
    assert commits.latest_version(spark, f"file:{tmp_path / 'plain'}") == -1
    rows = spark.createDataFrame([(1, "a")], "n int, s string")
    rows.write.format("delta").save(uri)
    rows.write.format("delta").mode("append").save(uri)
    assert commits.latest_version(spark, uri) == 1
    # Another writer's commit (another process, another JVM): version 2 appears in the log only.
    log_dir = table / "_delta_log"
    shutil.copy(log_dir / f"{1:020d}.json", log_dir / f"{2:020d}.json")
    assert commits.latest_version(spark, uri) == 2
    assert DeltaTable.forPath(spark, uri).history(1).collect()[0]["version"] == 2


def test_log_store_settings_per_scheme():
    cfg = load_config("emr")
    conf = log_store_conf(cfg)
    assert conf["spark.delta.logStore.s3.impl"] == "dev.auditlake.delta.DynamoDBLogStore"
    assert conf["spark.delta.logStore.s3a.impl"] == "dev.auditlake.delta.DynamoDBLogStore"
    assert conf["spark.hadoop.auditlake.logstore.ddb.tableName"] == "auditlake_delta_log"
    assert "spark.hadoop.auditlake.logstore.ddb.endpoint" not in conf
    loopback = {
        "delta": {
            "log_store": "dynamodb",
            "dynamodb": {"table": "t", "endpoint": "http://127.0.0.1:1", "schemes": "s3a", "ttl_seconds": 60},
        },
        "s3": {"region": "eu-west-1"},
    }
    assert log_store_conf(loopback) == {
        "spark.delta.logStore.s3a.impl": "dev.auditlake.delta.DynamoDBLogStore",
        "spark.hadoop.auditlake.logstore.ddb.tableName": "t",
        "spark.hadoop.auditlake.logstore.ddb.region": "eu-west-1",
        "spark.hadoop.auditlake.logstore.ddb.endpoint": "http://127.0.0.1:1",
        "spark.hadoop.auditlake.logstore.ddb.ttlSeconds": "60",
    }
    assert log_store_conf(load_config("local")) == {}
    from auditlake.errors import ConfigError

    with pytest.raises(
        ConfigError, match="delta.log_store must be one of default, dynamodb, not 'zookeeper'"
    ):
        log_store_conf({"delta": {"log_store": "zookeeper"}})


@pytest.mark.chaos
def test_killed_at_the_data_commit_then_rerun_matches_a_clean_run(spark, tmp_path):
    """SIGKILL right after the cloudtrail_events commit; rerun; the scheduled aggregates catch up."""
    source = tmp_path / "src"
    shutil.copytree(CT_FIXTURES, source)
    lake, clean = tmp_path / "lake", tmp_path / "clean"
    cmd = job_command(
        "ingest_cloudtrail", None, lake, "--source", str(source), "--conf", "quality.enabled=false"
    )
    killed = run_job_process(cmd, lake, kill_at="cloudtrail_events/1")
    assert killed.code is None, killed.stderr
    # The data commit survived; the run never ended and the ledger never heard of its objects.
    assert _table(spark, lake, "cloudtrail_events").count() == EVENTS
    runs = _table(spark, lake, "job_runs").collect()
    assert [(r.status, r.ended_at) for r in runs] == [("running", None)]
    killed_run = runs[0].run_id
    assert _table(spark, lake, "ingest_ledger").count() == 0
    # The commit says which run made it, though that run wrote no record of it.
    history = DeltaTable.forPath(spark, lake_mod.table_uri(str(lake), "cloudtrail_events")).history()
    meta = history.where(F.col("version") == 1).select("userMetadata").collect()[0][0]
    assert commits.tag_run_id(meta) == killed_run

    assert _ingest(spark, source, lake) == 0
    states = {r.run_id: r.status for r in _table(spark, lake, "job_runs").collect()}
    assert states.pop(killed_run) == "abandoned"
    assert list(states.values()) == ["succeeded"]
    rerun = _table(spark, lake, "job_runs").where(F.col("status") == "succeeded").collect()[0]
    assert (rerun.records_read, rerun.records_quarantined) == (READ, QUARANTINED)
    assert rerun.records_loaded + rerun.records_duplicate == EVENTS + INSIGHTS
    agg = _aggregates(spark, lake, "agg-after-kill")

    assert _ingest(spark, source, clean) == 0
    agg_clean = _aggregates(spark, clean, "agg-clean")
    assert agg.touched_dates == agg_clean.touched_dates
    assert len(agg.touched_dates) == 8
    for table in (
        "cloudtrail_events",
        "cloudtrail_insights",
        "quarantine",
        "agg_cloudtrail_daily",
        "agg_access_denied_daily",
    ):
        got = _table(spark, lake, table).drop("run_id", "quarantined_at")
        want = _table(spark, clean, table).drop("run_id", "quarantined_at")
        assert_df_equality(got, want, ignore_row_order=True, ignore_nullable=True)
    # 11 objects listed, 3 skipped (digest, not CloudTrail, not gzip): 8 in the ledger
    assert _table(spark, lake, "ingest_ledger").count() == _table(spark, clean, "ingest_ledger").count() == 8


def test_two_runs_of_one_ingest_at_once_leave_no_duplicate(spark, tmp_path):
    """Two runs of the same ingest on a new lake at the same time (threads, one session each)."""
    source, lake = tmp_path / "src", tmp_path / "lake"
    shutil.copytree(CT_FIXTURES, source)
    codes: list[int] = []
    barrier = threading.Barrier(2)

    def one():
        session = spark.newSession()
        barrier.wait()
        codes.append(_ingest(session, source, lake))

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [0, 0]
    events = _table(spark, lake, "cloudtrail_events")
    assert (events.count(), _dup_keys(events, "event_id", "recipient_account_id")) == (EVENTS, 0)
    assert _table(spark, lake, "cloudtrail_insights").count() == INSIGHTS
    q = _table(spark, lake, "quarantine")
    assert (q.count(), _dup_keys(q, "source", "source_object", "record_index", "reason")) == (QUARANTINED, 0)
    ledger = _table(spark, lake, "ingest_ledger")
    assert (
        ledger.count(),
        _dup_keys(ledger, "source", "object_uri", "object_size", "object_modified_at"),
    ) == (8, 0)
    runs = _table(spark, lake, "job_runs").collect()
    assert sorted(r.status for r in runs) == ["succeeded", "succeeded"]
    # Every row was inserted by exactly one of the two: nothing lost, nothing counted twice.
    assert sum(r.records_loaded for r in runs) == EVENTS + INSIGHTS
    assert all(r.records_read == READ for r in runs)


def test_run_rows_over_a_table_folder_left_without_its_first_commit(spark, tmp_path):
    """A creation that died after making ``_delta_log`` (or one still under way in another job):
    the run's start row still lands, its end row replaces it, a retry with the same run id too."""
    from auditlake import run_log
    from auditlake.runs import RunRecord, now_utc

    lake = tmp_path / "lake"
    (lake / "job_runs" / "_delta_log").mkdir(parents=True)
    started = now_utc()
    rec = RunRecord("r-1", "ingest_cloudtrail", "cloudtrail", "s3://b/ct", "local", started)
    run_log.write_run(spark, str(lake), rec)
    assert [(r.run_id, r.status) for r in _table(spark, lake, "job_runs").collect()] == [("r-1", "running")]

    rec.status, rec.ended_at, rec.records_read = "succeeded", now_utc(), 7
    run_log.write_run(spark, str(lake), rec)
    again = RunRecord("r-1", "ingest_cloudtrail", "cloudtrail", "s3://b/ct", "local", started)
    run_log.write_run(spark, str(lake), again)  # a retry given the same --run-id: still one row
    rows = _table(spark, lake, "job_runs").collect()
    assert [(r.run_id, r.status, r.records_read) for r in rows] == [("r-1", "running", 0)]
    assert DeltaTable.forPath(spark, str(lake / "job_runs")).history().count() == 4  # create, 3 writes


def test_runs_started_together_then_each_abandons_its_own_dead_runs(spark, tmp_path):
    """The pipeline records its ingests as running in one read and one append of ``job_runs``;
    each ingest's own start then reads and writes nothing more, a retried run id keeps one row,
    and each job's dead runs (a driver that is gone) are marked abandoned by that job's run only."""
    from auditlake import run_log
    from auditlake.runs import RunRecord, now_utc

    lake = str(tmp_path / "lake")
    started = now_utc()

    def rec(run_id: str, job: str, source: str) -> RunRecord:
        return RunRecord(run_id, job, source, f"s3://b/{source}", "local", started)

    dead = rec("dead-ct", "ingest_cloudtrail", "cloudtrail")
    run_log.write_run(spark, lake, dead)
    # As a killed run on this host leaves it: its driver process no longer exists.
    lake_mod.upsert_rows(
        spark,
        _table(spark, lake, "job_runs")
        .where(F.col("run_id") == "dead-ct")
        .withColumn("driver", F.lit(f"{run_log.socket.gethostname()}:999999999")),
        lake,
        "job_runs",
        within=("run_id", ["dead-ct"]),
    )
    run_log._ACTIVE.discard(("dead-ct", "ingest_cloudtrail"))
    retried = rec("p-s3", "ingest_s3_access", "s3_access")
    run_log.write_run(spark, lake, retried)  # a retry given the same --run-id
    versions = DeltaTable.forPath(spark, f"{lake}/job_runs").history().count()

    together = [rec("p-ct", "ingest_cloudtrail", "cloudtrail"), rec("p-s3", "ingest_s3_access", "s3_access")]
    run_log.start_runs(spark, lake, together)
    # One append for the new run, one update for the retried one.
    assert DeltaTable.forPath(spark, f"{lake}/job_runs").history().count() == versions + 2
    assert run_log.start_run(spark, lake, together[1]) == []
    assert run_log.start_run(spark, lake, together[0]) == ["dead-ct"]
    states = {r.run_id: r.status for r in _table(spark, lake, "job_runs").collect()}
    assert states == {"dead-ct": "abandoned", "p-ct": "running", "p-s3": "running"}
    # The rows read ahead served one start each: a later start of the same run reads again.
    assert run_log._STARTED_AHEAD == {}
