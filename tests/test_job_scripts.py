"""The job scripts as a user runs them: README commands from a clean shell, Glue's session check, worker errors.

"Clean" means no ``PYTHONPATH``, no ``PYSPARK_PYTHON``, no ``SPARK_HOME``: only ``PATH`` (where
the system ``python3`` has neither pyspark nor auditlake, so a Python worker started with it
fails) and ``HOME``. The README commands run exactly as written, from the repository root,
through ``bash -c``.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pyspark.sql.functions as F
import pytest
from pyspark.sql import types as T

from auditlake import cli
from auditlake.config import get as config_get
from auditlake.config import load_config
from auditlake.runtime_checks import DELTA_CATALOG, DELTA_EXTENSION, missing_delta_parameters, require_delta

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


def clean_env() -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}


def readme_commands() -> list[str]:
    """Every command line of the README's ``sh`` blocks, as written (comments dropped)."""
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    lines = [line.split("  #", 1)[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_readme_shows_the_two_newcomer_commands_first():
    commands = readme_commands()
    assert commands[:2] == ["make demo", "make test"]
    assert [c for c in commands if c.startswith("make ")] == ["make demo", "make test"]


# The README's job commands in the order a reader runs them, grouped into steps whose commands do
# not read each other's output: the commands of one step run at the same time (their JVM start-up
# and small Spark jobs are latency, not CPU, so two cores overlap them), the steps one after another.
# Concurrent writers of the shared tables (job_runs) are part of what this exercises.
README_STEPS = (
    ("ingest_cloudtrail", "ingest_s3_access", "ingest_crawler_logs"),
    ("build_daily_aggregates", "athena_ddl"),
    ("detect", "export_ocsf"),
    ("audit_report", "maintain_tables"),
    ("run_pipeline",),
)


def _job_of(command: str) -> str:
    return re.search(r"jobs/(\w+)\.py", command).group(1)


def test_readme_job_commands_run_as_written_from_a_clean_shell(spark):
    """Each job script runs as a subprocess in a clean environment and writes its rows."""
    shutil.rmtree(REPO / "build" / "lake", ignore_errors=True)
    (REPO / "build" / "athena.sql").unlink(missing_ok=True)
    commands = [c for c in readme_commands() if not c.startswith("make ")]
    assert len(commands) == len(list((REPO / "jobs").glob("*.py"))), "one README command per job script"
    by_job = {_job_of(c): c for c in commands}
    assert [j for step in README_STEPS for j in step] == [_job_of(c) for c in commands], (
        "README_STEPS lists every README job command, in the README's order"
    )
    for step in README_STEPS:
        running = {
            job: subprocess.Popen(
                ["bash", "-c", by_job[job]],
                cwd=REPO,
                env=clean_env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for job in step
        }
        stderr = {}
        try:
            for job, proc in running.items():
                stderr[job] = proc.communicate(timeout=1800)[1]
        finally:
            for proc in running.values():
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        for job, proc in running.items():
            assert proc.returncode == 0, f"{by_job[job]}\n{stderr[job][-3000:]}"
            assert "Traceback" not in stderr[job], stderr[job][-3000:]
            # The JVM has stopped compiling: the rest runs interpreted, and may fail later.
            assert "CodeCache is full" not in stderr[job], stderr[job][-3000:]

    lake = REPO / "build" / "lake"
    counts = {
        t: spark.read.format("delta").load(str(lake / t)).count()
        for t in ("cloudtrail_events", "cloudtrail_insights", "s3_access_logs", "crawler_log_events")
    }
    # The generator's manifest (demo/raw/manifest.json) states these loads for the bundled logs.
    assert counts == {
        "cloudtrail_events": 1372,
        "cloudtrail_insights": 6,
        "s3_access_logs": 1258,
        "crawler_log_events": 273,
    }
    assert spark.read.parquet(str(lake / "agg_s3_requests_daily")).count() > 0
    assert "CREATE EXTERNAL TABLE IF NOT EXISTS" in (REPO / "build" / "athena.sql").read_text()


def test_python_worker_failure_is_one_line_naming_the_python_error(spark):
    @F.udf(T.StringType())
    def needs_missing_module(x):
        raise ModuleNotFoundError("No module named 'auditlake_missing'")

    df = spark.createDataFrame([("a",)], "v string").select(needs_missing_module("v"))
    with pytest.raises(Exception) as caught:  # noqa: B017 - PySpark's wrapper type is what is under test
        df.collect()
    assert (
        cli._one_line(caught.value)
        == "Python worker failed: ModuleNotFoundError: No module named 'auditlake_missing'"
    )

    def rdd_fails(_):
        raise ValueError("bad record 7")

    with pytest.raises(Exception) as caught_rdd:  # noqa: B017
        spark.sparkContext.parallelize([1], 1).map(rdd_fails).collect()
    assert cli._one_line(caught_rdd.value) == "Python worker failed: ValueError: bad record 7"


def test_local_session_points_workers_at_this_interpreter_and_package():
    from auditlake.session import spark_conf

    conf = spark_conf(load_config("local", {"spark": {"cds_archive": ""}}))
    assert conf["spark.pyspark.python"] == sys.executable
    assert conf["spark.pyspark.driver.python"] == sys.executable
    assert conf["spark.executorEnv.PYTHONPATH"].split(os.pathsep)[0] == str(REPO / "lib")
    # A local job's JVM compiles with C1 only and collects with the parallel collector (conf/local.yaml);
    # a long-lived session can set C2 back.
    assert (
        conf["spark.driver.extraJavaOptions"]
        == "-Duser.timezone=UTC -XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=512m -XX:+UseParallelGC"
    )
    tiered = spark_conf(load_config("local", {"spark": {"driver_java_options": "", "cds_archive": ""}}))
    assert tiered["spark.driver.extraJavaOptions"] == "-Duser.timezone=UTC"
    # A local master's executors are in the driver JVM: the pinned jars go on its class path (where
    # the class archive covers them); a cluster's executors get them through spark.jars.
    on_path = [Path(p) for p in conf["spark.driver.extraClassPath"].split(os.pathsep)]
    assert {p.parent for p in on_path} == {REPO / "jvm" / "jars"}
    assert any(p.name.startswith("delta-spark_") for p in on_path)
    assert REPO / "jvm" / "jars" / "auditlake-logstore.jar" in on_path
    assert "spark.jars" not in conf
    cluster = spark_conf(
        load_config("local", {"spark": {"master": "spark://127.0.0.1:7077", "cds_archive": ""}})
    )
    assert "spark.driver.extraClassPath" not in cluster
    assert [Path(p) for p in cluster["spark.jars"].split(",")] == on_path
    # Local files go through our local file system (no child process per call) on a local driver only.
    assert conf["spark.hadoop.fs.file.impl"] == "dev.auditlake.fs.ForklessLocalFileSystem"
    assert conf["spark.hadoop.fs.AbstractFileSystem.file.impl"] == "dev.auditlake.fs.ForklessLocalFs"
    assert "spark.hadoop.fs.file.impl" not in cluster
    hadoops = spark_conf(load_config("local", {"spark": {"forkless_local_fs": False, "cds_archive": ""}}))
    assert "spark.hadoop.fs.file.impl" not in hadoops


def test_the_sessions_jvm_view_resolves_each_class_name_once(spark):
    from pyspark import SparkContext

    jvm = spark.sparkContext._jvm
    assert jvm is SparkContext._jvm is spark._jvm
    # Resolved once, then the same object: no round trip that searches the classpath again.
    assert jvm.functions is jvm.functions
    assert jvm.org.apache.spark.sql.delta is jvm.org.apache.spark.sql.delta
    # The remembered names still reach the JVM.
    assert jvm.java.lang.Math.max(3, 7) == 7
    assert spark.range(3).where(F.col("id") > F.lit(0)).count() == 2
    # Python's own protocols stay in Python.
    assert not hasattr(jvm, "__deepcopy__")
    assert copy.copy(jvm).functions is jvm.functions


def test_a_spark_setting_can_be_set_from_the_command_line_and_the_environment(monkeypatch):
    """Below ``spark.conf`` a dotted name is one key: Spark's settings are dotted names themselves."""
    from auditlake.session import spark_conf

    overrides = cli._conf_overrides(
        ["spark.conf.spark.sql.codegen.wholeStage=false", "quality.enabled=false"]
    )
    assert overrides == {
        "spark": {"conf": {"spark.sql.codegen.wholeStage": False}},
        "quality": {"enabled": False},
    }
    monkeypatch.setenv("AUDITLAKE_CONF__SPARK__CONF__spark.sql.adaptive.enabled", "false")
    for name in [n for n in os.environ if n.lower() == "auditlake_conf__spark__conf__spark.driver.memory"]:
        monkeypatch.delenv(name)
    cfg = load_config("local", overrides)
    assert cfg["quality"]["enabled"] is False
    conf = spark_conf(cfg)
    assert conf["spark.sql.codegen.wholeStage"] == "false"
    assert conf["spark.sql.adaptive.enabled"] == "false"
    # Settings of conf/local.yaml stay beside the overridden ones.
    assert conf["spark.sql.shuffle.partitions"] == "4"
    # One path reads what one path set: config.get splits as --conf and the environment do.
    assert config_get(cfg, "spark.conf.spark.sql.codegen.wholeStage") is False
    assert config_get(cfg, "spark.conf.spark.sql.adaptive.enabled") is False
    assert config_get(cfg, "spark.conf.spark.driver.memory") == "2g"
    assert config_get(cfg, "spark.conf.spark.no.such.setting", "unset") == "unset"


def test_delta_check_names_each_missing_glue_parameter():
    def no_delta_jar(name: str) -> bool:
        return False

    def delta_jar(name: str) -> bool:
        return name == DELTA_EXTENSION

    assert missing_delta_parameters({}, no_delta_jar) == [
        "--datalake-formats delta",
        f"--conf spark.sql.extensions={DELTA_EXTENSION}",
        f"--conf spark.sql.catalog.spark_catalog={DELTA_CATALOG}",
    ]
    only_extension = {"spark.sql.extensions": f"com.example.Other, {DELTA_EXTENSION}"}
    assert missing_delta_parameters(only_extension, delta_jar) == [
        f"--conf spark.sql.catalog.spark_catalog={DELTA_CATALOG}"
    ]
    full = dict(only_extension, **{"spark.sql.catalog.spark_catalog": DELTA_CATALOG})
    assert missing_delta_parameters(full, delta_jar) == []


def test_delta_check_passes_on_the_delta_session(spark):
    require_delta(spark)  # the test session has Delta: no error


GLUE_LIKE = textwrap.dedent(
    """
    import sys
    from pyspark.sql import SparkSession
    # What GlueContext does first: a SparkContext from the job's own parameters, here without Delta.
    SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false").getOrCreate()
    from auditlake.cli import run_job
    sys.exit(run_job("ingest_cloudtrail", lambda ctx: None,
                     argv=["--env", "glue", "--source", sys.argv[1], "--lake", sys.argv[2]]))
    """
)


def test_glue_session_without_delta_stops_with_exit_2_and_one_line(tmp_path):
    env = dict(clean_env(), PYTHONPATH=str(REPO / "lib"))
    done = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "python"),
            "-c",
            GLUE_LIKE,
            str(tmp_path / "src"),
            str(tmp_path / "lake"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("auditlake:")]
    assert errors == [
        "auditlake: ingest_cloudtrail: error: Delta Lake is not active in the Glue session; add the job parameters: "
        f"--datalake-formats delta --conf spark.sql.extensions={DELTA_EXTENSION} "
        f"--conf spark.sql.catalog.spark_catalog={DELTA_CATALOG}"
    ]


def test_local_jobs_start_from_the_class_archive_setup_built(tmp_path):
    """``make setup`` writes the JVM class-data-sharing archive; local sessions start from it."""
    from auditlake.session import spark_conf
    from cds_archive import check

    archive = REPO / "jvm" / "cds" / "auditlake.jsa"
    assert archive.is_file(), "make setup builds it (dev/cds_archive.py)"
    options = spark_conf(load_config("local"))["spark.driver.extraJavaOptions"].split()
    assert f"-XX:SharedArchiveFile={archive}" in options
    off = spark_conf(load_config("local", {"spark": {"cds_archive": ""}}))["spark.driver.extraJavaOptions"]
    assert "SharedArchiveFile" not in off
    # Usable: a local session made to refuse to start without it (-Xshare:on) runs a query, and
    # Delta's classes (on the driver's class path, not in spark.jars) come from the archive too.
    classes = tmp_path / "classes.log"
    assert check(archive, class_log=classes) is None
    loaded = classes.read_text()
    assert "io.delta.sql.DeltaSparkSessionExtension source: shared objects file" in loaded
    assert "org.apache.spark.SparkContext source: shared objects file" in loaded
    # A truncated archive is not refused by the JVM but crashes it: the check catches it.
    truncated = tmp_path / "truncated.jsa"
    truncated.write_bytes(archive.read_bytes()[: 2**20])
    assert "could not start" in (check(truncated) or "")
