"""The shared ingest machinery, driven by a tiny line source defined in the test."""

from __future__ import annotations

import datetime as dt
import os

import pyspark.sql.functions as F
import pytest
from chispa import assert_df_equality

from auditlake.cli import run_job
from auditlake.ingest import runner
from auditlake.ingest.objects import list_objects, load_paths, object_uri_col, spark_path
from auditlake.ingest.quarantine import to_quarantine
from auditlake.ingest.runner import run_ingest
from auditlake.ingest.source import ParsedBatch


class LinesSource:
    """Test source: lines ``<event_id>,<recipient>,<iso time>`` into the quarantine-free insight table."""

    name = "testlines"
    tables = ("cloudtrail_insights",)

    def classify(self, obj):
        return None if obj.uri.endswith(".log") else "not_a_log"

    def object_date(self, obj):
        return None

    def parse(self, spark, objects, *, run_id, cfg):
        raw = spark.read.text([o.uri for o in objects]).select(
            F.col("value").alias("line"), object_uri_col().alias("source_object")
        )
        parts = F.split("line", ",")
        parsed = raw.select(
            "*",
            parts[0].alias("event_id"),
            parts[1].alias("recipient_account_id"),
            F.to_timestamp(parts[2]).alias("event_time"),
        ).persist()
        ok = F.col("event_time").isNotNull() & (F.size(parts) == 3)
        good = parsed.where(ok).select(
            "event_id",
            "event_time",
            F.to_date("event_time").alias("event_date"),
            *[
                F.lit(None).cast("string").alias(c)
                for c in ("event_version", "event_type", "event_category", "aws_region")
            ],
            "recipient_account_id",
            *[
                F.lit(None).cast("string").alias(c)
                for c in (
                    "shared_event_id",
                    "insight_state",
                    "insight_type",
                    "insight_event_source",
                    "insight_event_name",
                    "insight_error_code",
                    "insight_details",
                )
            ],
            "source_object",
        )
        bad = to_quarantine(
            parsed.where(~ok),
            source=self.name,
            source_object="source_object",
            record_index=F.lit(0),
            raw_text="line",
            reason=F.lit("bad line"),
            run_id=run_id,
            max_chars=10,
        )
        return ParsedBatch(tables={"cloudtrail_insights": good}, quarantine=bad, persisted=[parsed])

    def after_commit(self, spark, lake, deduped_tables, *, run_id, cfg):
        return {}


@pytest.fixture()
def raw(tmp_path):
    src = tmp_path / "raw"
    (src / "day1").mkdir(parents=True)
    (src / "day1" / "a.log").write_text(
        "e1,111,2024-01-01T10:00:00Z\ne2,111,2024-01-02T00:00:01Z\nbroken line here\n"
    )
    (src / "day1" / "b.log").write_text("e1,111,2024-01-01T10:00:00Z\ne1,222,2024-01-01T11:00:00Z\n")
    (src / "day1" / "digest.txt").write_text("not a log\n")
    return src


def _run(raw, lake, *extra):
    return run_job(
        "ingest_testlines",
        lambda ctx: run_ingest(ctx, LinesSource()),
        argv=["--source", str(raw), "--lake", str(lake), "--conf", "quality.enabled=false", *extra],
        session_factory=lambda cfg, name: _SPARK[0],
    )


_SPARK: list = []


def _table(spark, lake, name):
    return spark.read.format("delta").load(f"{lake}/{name}")


def test_listing_names_objects_like_spark(spark, raw):
    objs = list_objects(spark, str(raw))
    assert [o.name for o in objs] == ["a.log", "b.log", "digest.txt"]
    assert objs[0].uri == f"file:{raw}/day1/a.log"
    assert objs[0].size == len("e1,111,2024-01-01T10:00:00Z\ne2,111,2024-01-02T00:00:01Z\nbroken line here\n")


def test_paths_handed_to_the_jvm_at_once_read_what_spark_reads(spark, tmp_path):
    """``load_paths`` joins the paths into one string split in the JVM; a path holding the
    separator (a newline) goes through PySpark's list instead. Either way: the files asked for."""
    names = ["a.log", "b [1].log", "c\nd.log", "e.log"]
    for i, name in enumerate(names):
        (tmp_path / name).write_text(f"line {i}\nmore {i}\n")
    uris = {name: spark_path(f"file:{tmp_path}/{name}") for name in names}

    def read(paths, **options):
        df = load_paths(spark, "text", paths, ignoreCorruptFiles=True, **options)
        rows = df.select(object_uri_col().alias("uri"), "value").collect()
        return sorted((r["uri"].rsplit("/", 1)[-1], r["value"]) for r in rows)

    joined = [uris["a.log"], uris["b [1].log"], uris["e.log"]]
    assert read(joined, lineSep="\n") == [
        ("a.log", "line 0"),
        ("a.log", "more 0"),
        ("b [1].log", "line 1"),
        ("b [1].log", "more 1"),
        ("e.log", "line 3"),
        ("e.log", "more 3"),
    ]
    assert read([uris["c\nd.log"], uris["e.log"]], wholetext=True) == [
        ("c\nd.log", "line 2\nmore 2\n"),
        ("e.log", "line 3\nmore 3\n"),
    ]
    assert read(joined[:1], wholetext=True) == [("a.log", "line 0\nmore 0\n")]
    assert load_paths(spark, "binaryFile", joined).count() == 3


def test_run_is_exactly_once_and_balances(spark, raw, tmp_path, capsys):
    _SPARK[:] = [spark]
    lake = tmp_path / "lake"
    assert _run(raw, lake) == 0
    rows = _table(spark, lake, "cloudtrail_insights").select("event_id", "recipient_account_id", "event_date")
    expected = spark.createDataFrame(
        [
            ("e1", "111", dt.date(2024, 1, 1)),
            ("e2", "111", dt.date(2024, 1, 2)),
            ("e1", "222", dt.date(2024, 1, 1)),
        ],
        "event_id string, recipient_account_id string, event_date date",
    )
    assert_df_equality(rows, expected, ignore_row_order=True, ignore_nullable=True)
    q = _table(spark, lake, "quarantine").collect()
    assert [(r.raw_text, r.raw_length, r.reason, r.source) for r in q] == [
        ("broken lin", 16, "bad line", "testlines")
    ]
    run = _table(spark, lake, "job_runs").collect()[0]
    assert (run.objects_listed, run.objects_skipped, run.objects_processed) == (3, 1, 2)
    assert (run.records_read, run.records_loaded, run.records_quarantined, run.records_duplicate) == (
        5,
        3,
        1,
        1,
    )
    assert sorted(run.touched_dates) == [dt.date(2024, 1, 1), dt.date(2024, 1, 2)]
    assert run.status == "succeeded"
    assert "records: read=5 loaded=3 quarantined=1 duplicates=1" in capsys.readouterr().out

    # Rerun: nothing new is listed as unprocessed, nothing changes.
    assert _run(raw, lake) == 0
    assert _table(spark, lake, "cloudtrail_insights").count() == 3
    second = _table(spark, lake, "job_runs").orderBy("started_at").collect()[-1]
    assert (second.objects_already_processed, second.objects_processed, second.records_read) == (2, 0, 0)

    # Reprocess re-reads every object: all duplicates, still 3 rows and 1 quarantine row.
    assert _run(raw, lake, "--reprocess") == 0
    third = _table(spark, lake, "job_runs").orderBy("started_at").collect()[-1]
    assert (third.records_read, third.records_loaded, third.records_quarantined, third.records_duplicate) == (
        5,
        0,
        1,
        4,
    )
    assert _table(spark, lake, "quarantine").count() == 1


def test_killed_before_ledger_then_rerun_matches_clean_run(spark, raw, tmp_path, monkeypatch):
    _SPARK[:] = [spark]
    lake = tmp_path / "lake"
    real_frame = runner._ledger_rows

    def boom(*a, **k):
        raise RuntimeError("killed")

    monkeypatch.setattr(runner, "_ledger_rows", boom)
    assert _run(raw, lake) == 1
    assert _table(spark, lake, "cloudtrail_insights").count() == 3
    failed = _table(spark, lake, "job_runs").collect()[0]
    assert failed.status == "failed" and failed.error == "killed"
    monkeypatch.setattr(runner, "_ledger_rows", real_frame)
    assert _run(raw, lake) == 0
    assert _table(spark, lake, "cloudtrail_insights").count() == 3
    assert _table(spark, lake, "quarantine").count() == 1
    assert _table(spark, lake, "ingest_ledger").count() == 2


def test_bad_invocations_are_one_line(tmp_path, capsys):
    def never(ctx):
        raise AssertionError("must not run")

    assert run_job("ingest_x", never, argv=["--lake", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["auditlake: ingest_x: error: ingest_x: the following arguments are required: --source"]
    assert run_job("ingest_x", never, argv=["--source", "x", "--lake", "y", "--env", "mars"]) == 2
    assert capsys.readouterr().err.strip() == (
        "auditlake: ingest_x: error: unknown --env 'mars': expected one of local, emr, glue"
    )


def test_unreadable_source_is_one_line(spark, tmp_path, capsys):
    _SPARK[:] = [spark]
    assert _run(tmp_path / "nope", tmp_path / "lake") == 4
    assert (
        capsys.readouterr().err.strip().splitlines()[-1]
        == f"auditlake: ingest_testlines: error: source not found: {tmp_path}/nope"
    )


def test_in_batch_duplicates_keep_the_same_copy_whatever_the_row_order(spark):
    """Copies of one key that differ outside it: the least by the other columns is kept, always."""
    schema = "event_key string, message string, source_object string, n bigint"
    rows = [
        ("k1", "m", "s3://b/firehose/2024/03/01/part-2", 1),
        ("k1", "m", "s3://b/export/task/stream/000000.gz", 1),
        ("k2", "x", "s3://b/export/a", 2),
        ("k1", "m", "s3://b/export/task/stream/000000.gz", None),
        ("k3", "y", "s3://b/export/b", 3),
    ]
    expected = [
        ("k1", "m", "s3://b/export/task/stream/000000.gz", 1),
        ("k2", "x", "s3://b/export/a", 2),
        ("k3", "y", "s3://b/export/b", 3),
    ]
    for ordered in (rows, rows[::-1]):
        df = spark.createDataFrame(ordered, schema).coalesce(1)
        kept, read, dropped, _ = runner._dedupe(df, ("event_key",))
        assert (read, dropped) == (5, 2)
        assert sorted(tuple(r) for r in kept.collect()) == expected

    unique = spark.createDataFrame(expected, schema)
    same, read, dropped, _ = runner._dedupe(unique, ("event_key",))
    assert same is unique and (read, dropped) == (3, 0)


def test_dedupe_caches_the_repeated_keys_and_their_kept_copies_not_the_batch_again(spark, monkeypatch):
    """The deduplicated frame is the batch less its repeated keys plus one copy of each: the only
    frames cached are those two small ones (one row each here), never a second copy of the batch.
    Above the broadcast limit the deduplicated frame itself is cached, with the same rows."""
    schema = "event_key string, detail string"
    rows = [("k1", "b"), ("k2", "x"), ("k1", "a"), ("k3", "y"), ("k1", "c")]
    expected = [("k1", "a"), ("k2", "x"), ("k3", "y")]
    df = spark.createDataFrame(rows, schema).coalesce(1)
    held: list = []
    kept, read, dropped, _ = runner._dedupe(df, ("event_key",), held=held)
    assert (read, dropped) == (5, 2)
    assert sorted(tuple(r) for r in kept.collect()) == expected
    assert [h.is_cached for h in held] == [True, True]
    assert held[0].columns == ["_dedupe_key_hash"] and held[0].count() == 1
    assert [tuple(r) for r in held[1].collect()] == [("k1", "a")]
    assert not kept.is_cached
    for h in held:
        h.unpersist()

    monkeypatch.setattr(runner, "REPEATED_KEYS_BROADCAST_MAX", 0)
    held = []
    kept, read, dropped, _ = runner._dedupe(df, ("event_key",), held=held)
    assert (read, dropped) == (5, 2)
    assert held == [kept] and kept.is_cached
    assert sorted(tuple(r) for r in kept.collect()) == expected
    for h in held:
        h.unpersist()


def test_keys_sharing_a_hash_are_told_apart_by_their_real_key(spark, monkeypatch):
    """The dedupe groups by a hash of the key; keys that share one (here every key: the hash is a
    constant) are still deduplicated by their real key, and only real copies are counted dropped."""
    monkeypatch.setattr(runner, "_key_hash", lambda keys: F.lit(7).cast("bigint"))
    schema = "bucket string, request_id string, line string"
    rows = [("b1", "r1", "z"), ("b1", "r2", "y"), ("b1", "r1", "a"), ("b2", "r1", "x"), (None, "r1", "w")]
    for limit in (200_000, 0):  # the broadcast split, and the shuffle join above the limit
        monkeypatch.setattr(runner, "REPEATED_KEYS_BROADCAST_MAX", limit)
        held: list = []
        kept, read, dropped, _ = runner._dedupe(
            spark.createDataFrame(rows, schema), ("bucket", "request_id"), held=held
        )
        assert (read, dropped) == (5, 1)
        assert sorted((tuple(r) for r in kept.collect()), key=str) == [
            ("b1", "r1", "a"),
            ("b1", "r2", "y"),
            ("b2", "r1", "x"),
            (None, "r1", "w"),
        ]
        for h in held:
            h.unpersist()

    unique = spark.createDataFrame(rows[:2], schema)
    held = []
    same, read, dropped, _ = runner._dedupe(unique, ("bucket", "request_id"), held=held)
    assert same is not unique and (read, dropped) == (2, 0)
    assert sorted(tuple(r) for r in same.collect()) == [("b1", "r1", "z"), ("b1", "r2", "y")]
    for h in held:
        h.unpersist()


def test_in_batch_duplicates_of_a_compound_key_with_a_null_part_are_one_key(spark):
    """Only the repeated keys' rows are ranked; a null key part matches a null (a null repeats too)."""
    schema = "bucket string, request_id string, line string"
    rows = [
        ("b1", None, "z"),
        ("b1", None, "a"),
        ("b1", "r1", "only"),
        ("b2", "r1", "q"),
        ("b2", "r1", "p"),
        (None, "r9", "solo"),
    ]
    kept, read, dropped, _ = runner._dedupe(spark.createDataFrame(rows, schema), ("bucket", "request_id"))
    assert (read, dropped) == (6, 2)
    got = [tuple(r) for r in kept.collect()]
    assert len(got) == 4
    assert set(got) == {("b1", None, "a"), ("b1", "r1", "only"), ("b2", "r1", "p"), (None, "r9", "solo")}


def test_dedupe_returns_the_partition_values_of_the_rows_it_keeps(spark):
    """The dedupe's one job also gives the merge its partitions: the non-null days of the batch.
    When copies of a key disagree on the day (or one has none), which day survives depends on the
    copy kept, so it returns None and the runner asks the deduplicated frame instead."""
    schema = "event_id string, event_date date, detail string"
    d1, d2, d3 = dt.date(2024, 3, 1), dt.date(2024, 3, 2), dt.date(2024, 3, 3)
    rows = [("a", d2, "x"), ("b", d1, "y"), ("a", d2, "z"), ("c", None, "n"), ("e", d2, "w")]
    kept, read, dropped, parts = runner._dedupe(
        spark.createDataFrame(rows, schema), ("event_id",), "event_date"
    )
    assert (read, dropped, parts) == (5, 1, [d1, d2])
    assert sorted(r["event_id"] for r in kept.collect()) == ["a", "b", "c", "e"]

    unique = spark.createDataFrame([("a", d3, "x"), ("b", d1, "y")], schema)
    same, read, dropped, parts = runner._dedupe(unique, ("event_id",), "event_date")
    assert same is unique and (read, dropped, parts) == (2, 0, [d1, d3])

    for other in (d3, None):
        mixed = spark.createDataFrame([("a", d2, "x"), ("a", other, "y"), ("b", d1, "z")], schema)
        _, read, dropped, parts = runner._dedupe(mixed, ("event_id",), "event_date")
        assert (read, dropped, parts) == (3, 1, None)

    _, _, _, parts = runner._dedupe(unique, ("event_id",))
    assert parts is None


def test_ledger_merge_reads_only_the_ledger_files_of_its_objects_dates(spark, tmp_path):
    """The ledger holds a source's whole history in one partition. A run's ledger merge compares
    only the files whose ``object_date`` statistics can hold its objects: with another day's file
    gone from disk it still commits, where a merge over the whole partition fails to read it."""
    from types import SimpleNamespace

    from auditlake import lake as lake_mod
    from auditlake.ingest.objects import SourceObject

    lake = str(tmp_path / "lake")
    source = SimpleNamespace(name="cloudtrail")
    modified = dt.datetime(2024, 1, 9, 12, 0)

    def commit(day: dt.date, names: list[str], run_id: str) -> None:
        todo = [
            SourceObject(f"s3://logs/AWSLogs/1/CloudTrail/{day:%Y/%m/%d}/{n}.json.gz", 10, modified)
            for n in names
        ]
        ctx = SimpleNamespace(spark=spark, run_id=run_id, deferred=None)
        runner._commit_ledger(ctx, source, lake, runner._Selected(todo, {o.uri: day for o in todo}))

    day1, day2 = dt.date(2024, 1, 1), dt.date(2024, 1, 2)
    commit(day1, ["a", "b"], "r1")
    commit(day2, ["c"], "r2")
    ledger = spark.read.format("delta").load(f"{lake}/ingest_ledger")
    (day1_file,) = ledger.where(F.col("object_date") == day1).inputFiles()
    os.remove(day1_file.removeprefix("file:"))

    commit(day2, ["c", "d"], "r3")  # c is in the ledger already: only d is new

    rows = ledger.where(F.col("object_date") == day2).select("object_uri", "run_id").collect()
    assert sorted((r.object_uri.rsplit("/", 1)[-1], r.run_id) for r in rows) == [
        ("c.json.gz", "r2"),
        ("d.json.gz", "r3"),
    ]
    # The same merge without the date condition reads day 1's file, and fails on it.
    again = spark.createDataFrame(
        [("cloudtrail", "s3://logs/x/e.json.gz", 10, modified, day2, "r4", modified)],
        "source string, object_uri string, object_size bigint, object_modified_at timestamp, "
        "object_date date, run_id string, processed_at timestamp",
    )
    with pytest.raises(Exception, match="(?i)file.*(not exist|not found)|FileNotFound"):
        lake_mod.merge_new_rows(spark, again, lake, "ingest_ledger", dates=["cloudtrail"])


class _SettingsSpy(LinesSource):
    """The line source, noting the session's code-generation, cache-compression, merge and
    input-split settings while it parses."""

    def __init__(self) -> None:
        self.seen: list[tuple[str | None, ...]] = []

    def parse(self, spark, objects, *, run_id, cfg):
        self.seen.append(
            (
                spark.conf.get("spark.sql.codegen.wholeStage", None),
                spark.conf.get("spark.sql.inMemoryColumnarStorage.compressed", None),
                spark.conf.get("spark.databricks.delta.merge.repartitionBeforeWrite.enabled", None),
                spark.conf.get("spark.sql.files.openCostInBytes"),
            )
        )
        return super().parse(spark, objects, run_id=run_id, cfg=cfg)


def test_a_large_batch_runs_with_its_own_settings_which_are_then_put_back(spark, raw, tmp_path):
    from auditlake.config import load_config

    # On a laptop, code generation is off (conf/local.yaml), and back on for a batch of 8 MB or more,
    # whose cached copy is not compressed.
    local = load_config("local", {})
    assert local["spark"]["conf"]["spark.sql.codegen.wholeStage"] is False
    assert local["ingest"]["large_batch"] == {
        "bytes": 8 * 2**20,
        "spark_conf": {
            "spark.sql.codegen.wholeStage": True,
            "spark.sql.codegen.factoryMode": "FALLBACK",
            "spark.sql.inMemoryColumnarStorage.compressed": False,
            "spark.databricks.delta.merge.repartitionBeforeWrite.enabled": False,
            "spark.sql.files.openCostInBytes": 524288,
        },
    }
    # The raw fixture's two log objects hold 73 + 56 bytes (digest.txt is skipped, never parsed).
    assert sum(os.path.getsize(raw / "day1" / n) for n in ("a.log", "b.log")) == 129
    spy = _SettingsSpy()
    for lake, threshold in (("under", 130), ("at", 129)):
        code = run_job(
            "ingest_testlines",
            lambda ctx: run_ingest(ctx, spy),
            argv=[
                "--source",
                str(raw),
                "--lake",
                str(tmp_path / lake),
                "--conf",
                "quality.enabled=false",
                "--conf",
                f"ingest.large_batch.bytes={threshold}",
            ],
            session_factory=lambda cfg, name: spark,
        )
        assert code == 0
        assert spark.conf.get("spark.sql.codegen.wholeStage") == "false"
        assert spark.conf.get("spark.sql.inMemoryColumnarStorage.compressed") == "true"
        assert spark.conf.get("spark.databricks.delta.merge.repartitionBeforeWrite.enabled", None) is None
        assert spark.conf.get("spark.sql.files.openCostInBytes") == "4194304b"
    # None: not set, Delta's default (true); "4194304b": Spark's default open cost (4 MB), not set
    assert spy.seen == [("false", None, None, "4194304b"), ("true", "false", "false", "524288")]
    assert _table(spark, tmp_path / "at", "cloudtrail_insights").count() == 3


def test_a_large_batch_setting_that_is_not_a_size_is_a_config_error():
    from auditlake.errors import ConfigError
    from auditlake.ingest.objects import SourceObject

    objs = [SourceObject(uri="file:/x/a.log", size=10, modified_at=dt.datetime(2024, 1, 1))]
    on = {"spark.sql.codegen.wholeStage": True}
    assert (
        runner.batch_settings(
            {"ingest": {"large_batch": {"bytes": 10, "spark_conf": on}}}, LinesSource(), objs
        )
        == on
    )
    assert (
        runner.batch_settings(
            {"ingest": {"large_batch": {"bytes": 11, "spark_conf": on}}}, LinesSource(), objs
        )
        == {}
    )
    assert runner.batch_settings({"ingest": {}}, LinesSource(), objs) == {}
    with pytest.raises(
        ConfigError, match="ingest.large_batch.bytes must be a whole number of bytes, not '8MB'"
    ):
        runner.batch_settings(
            {"ingest": {"large_batch": {"bytes": "8MB", "spark_conf": on}}}, LinesSource(), objs
        )
    with pytest.raises(ConfigError, match="ingest.large_batch must be a mapping"):
        runner.batch_settings({"ingest": {"large_batch": 8388608}}, LinesSource(), objs)
