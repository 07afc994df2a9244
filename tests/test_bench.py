"""The benchmark: the growth curve (each step from the run before it, against the limit), the baselines' settings."""

from __future__ import annotations

import os

import pytest

from bench.__main__ import parse_factors, scale_curve, scale_markdown

# A run's result as far as the header of its table reads it.
_RUN = {
    "started_at": "20261205T000000Z",
    "commit": "abc1234",
    "dirty": False,
    "scale": 7.0,
    "seed": 7,
    "machine": {"cpus": 2, "load_avg_at_start": [0.1]},
    "sources": {},
    "targets": {},
}


def _run(records: int, ingest_s: float, ingest_mb: int, agg_s: float) -> dict:
    step = {"wall_seconds": ingest_s, "peak_rss_mb": ingest_mb, "peak_rss_mb_jvm": ingest_mb - 400}
    step["peak_rss_mb_python"] = 400
    return {
        "sources": {
            "cloudtrail": {
                "records": records,
                "ingest": step,
                "duckdb": {"wall_seconds": ingest_s / 10, "peak_rss_mb": 300},
            }
        },
        "aggregates": {"wall_seconds": agg_s, "peak_rss_mb": 2000},
    }


def test_the_curve_measures_each_step_from_the_run_before_and_names_an_ingest_over_the_limit():
    runs = [
        (1.0, _run(60_000, 20.0, 2000, 30.0)),
        (4.0, _run(240_000, 50.0, 2200, 80.0)),
        (16.0, _run(960_000, 230.0, 2400, 300.0)),
    ]
    curve = scale_curve(runs)

    assert curve["factors"] == [1.0, 4.0, 16.0]
    first, second = curve["steps"]
    assert (first["from"], first["to"], first["time_limit"]) == (1.0, 4.0, 4.4)
    assert first["sources"]["cloudtrail"]["records"] == [60_000, 240_000]
    assert first["sources"]["cloudtrail"]["ingest"]["time_growth"] == 2.5
    assert first["sources"]["cloudtrail"]["ingest"]["memory_growth"] == 1.1
    assert second["sources"]["cloudtrail"]["ingest"]["wall_seconds"] == [50.0, 230.0]
    assert second["sources"]["cloudtrail"]["ingest"]["time_growth"] == 4.6
    assert second["aggregates"]["time_growth"] == 3.75
    # DuckDB has no JVM figure: the row keeps None rather than failing
    assert first["sources"]["cloudtrail"]["duckdb"]["peak_rss_mb_jvm"] == [None, None]
    assert curve["ingest_time_over_limit"] == ["cloudtrail ingest 4x -> 16x: 4.6x"]

    text = scale_markdown(curve)
    assert "Scaling 1x -> 4x (target: time growth <= 4.40, memory flat)" in text
    assert "| cloudtrail | ingest | 50.0 | 230.0 | 4.60 |" in text
    assert text.endswith("Ingest time over the limit: cloudtrail ingest 4x -> 16x: 4.6x")


def test_factors_are_read_as_a_rising_list_after_the_base_run():
    assert parse_factors("4,16") == [1.0, 4.0, 16.0]
    assert parse_factors("2") == [1.0, 2.0]
    for bad in ("16,4", "1,4", "four", ""):
        with pytest.raises(SystemExit, match="--factor"):
            parse_factors(bad)


def test_spark_baselines_run_with_the_settings_of_an_ingests_large_batch():
    from bench.baselines import _baseline_config

    conf = _baseline_config()["spark"]["conf"]
    # conf/local.yaml turns code generation off for small runs; a large batch (and so the
    # baseline it is measured against) has it on, and packs its objects into the same splits.
    assert conf["spark.sql.codegen.wholeStage"] is True
    assert conf["spark.sql.codegen.factoryMode"] == "FALLBACK"
    assert conf["spark.sql.files.openCostInBytes"] == 524288
    # The local settings a large batch does not replace stay, such as the shuffle partitions.
    assert conf["spark.sql.shuffle.partitions"] == 4


def test_each_run_records_the_driver_jvm_options_its_steps_ran_with(monkeypatch):
    from bench.__main__ import JVM_OPTIONS_ENV, driver_java_options, markdown

    monkeypatch.delenv(JVM_OPTIONS_ENV, raising=False)
    assert (
        driver_java_options() == "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=512m -XX:+UseParallelGC"
    )
    # What --jvm-options "" sets for every step's process: the JVM's own tiered compilers.
    monkeypatch.setenv(JVM_OPTIONS_ENV, "")
    assert driver_java_options() == ""
    monkeypatch.setenv(JVM_OPTIONS_ENV, "-XX:ReservedCodeCacheSize=256m")
    assert driver_java_options() == "-XX:ReservedCodeCacheSize=256m"

    run = _RUN
    header = markdown({**run, "driver_java_options": ""}).splitlines()[0]
    assert "driver JVM options `(none)`" in header
    header = markdown({**run, "driver_java_options": "-XX:TieredStopAtLevel=1"}).splitlines()[0]
    assert "driver JVM options `-XX:TieredStopAtLevel=1`" in header


def test_each_run_records_the_driver_heap_its_steps_ran_with(monkeypatch):
    from bench.__main__ import DRIVER_MEMORY_ENV, driver_memory, main, markdown

    # Set, then removed: monkeypatch puts back its absence after the test, also of what main sets.
    monkeypatch.setenv(DRIVER_MEMORY_ENV, "1g")
    monkeypatch.delenv(DRIVER_MEMORY_ENV)
    assert driver_memory() == "2g"

    # What --driver-memory sets for every step's process (each reads conf/local.yaml itself).
    def stop(*args, **kwargs):
        raise SystemExit(3)

    monkeypatch.setattr("bench.__main__.run_bench", stop)
    with pytest.raises(SystemExit) as stopped:
        main(["run", "--driver-memory", "4g", "--no-record"])
    assert stopped.value.code == 3
    assert os.environ[DRIVER_MEMORY_ENV] == "4g"
    assert driver_memory() == "4g"

    run = {**_RUN, "driver_java_options": ""}
    assert "driver heap 4g, " in markdown({**run, "driver_memory": "4g"}).splitlines()[0]
    assert "driver heap" not in markdown(run).splitlines()[0]
