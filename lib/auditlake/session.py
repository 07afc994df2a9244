"""One SparkSession factory for the three runtimes: local, EMR and Glue.

Local: ``local[*]`` (or the configured master), UTC, Delta's extension and catalog, and the
pinned jars from ``jvm/jars`` (fetched by ``make setup`` through Maven, never through Ivy).
When an S3 endpoint is configured (a loopback moto server in tests) s3a is set up for it with
path-style access. On EMR and Glue the platform supplies Delta and S3, so no jars are added.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from auditlake import config as config_mod
from auditlake.errors import ConfigError
from auditlake.logstore import LOG_STORE_JAR, log_store_conf

log = logging.getLogger(__name__)

_REPO_ROOT = Path(__file__).resolve().parents[2]


def local_jars(jars_dir: str | None = None) -> list[str]:
    """The pinned JVM jars for a local session (``jvm/jars`` unless told otherwise)."""
    folder = Path(jars_dir or os.environ.get("AUDITLAKE_JARS_DIR") or _REPO_ROOT / "jvm" / "jars")
    jars = sorted(str(p) for p in folder.glob("*.jar")) if folder.is_dir() else []
    if not jars:
        raise ConfigError(
            f"no JVM jars in {folder}: run `make setup` (fetches Delta and hadoop-aws via Maven)"
        )
    return jars


def cds_options(archive: str | None) -> list[str]:
    """JVM options that start a local driver from the class-data-sharing archive, if it is there.

    ``archive``: ``spark.cds_archive`` (relative to the repository), written by ``make setup``
    (``dev/cds_archive.py``). Absent or unset: the JVM starts from the JDK's own archive only.
    """
    if not archive:
        return []
    path = Path(archive) if Path(archive).is_absolute() else _REPO_ROOT / archive
    return [f"-XX:SharedArchiveFile={path}"] if path.is_file() else []


def local_jar_conf(cfg: dict[str, Any]) -> dict[str, str]:
    """How a local session gets the pinned jars.

    A ``local`` master runs its executors inside the driver JVM, so the jars go on the driver's
    own class path (``spark.driver.extraClassPath``): classes of the JVM's application class loader
    are what a class-data-sharing archive can hold, so Delta's and hadoop-aws's classes load from
    the archive too (through ``spark.jars`` they came from Spark's own class loader, which JDK 17's
    archive does not cover). Measured on 2 cores, the pipeline hour 81.8 / 75.0 / 73.7 s ->
    79.7 / 70.3 / 71.6 s (alternating runs). Any other master (a standalone cluster) ships them to
    its executors with ``spark.jars``.
    """
    jars = local_jars(config_mod.get(cfg, "spark.jars_dir"))
    if str(config_mod.get(cfg, "spark.master", "local[*]")).startswith("local"):
        return {"spark.driver.extraClassPath": os.pathsep.join(jars), **forkless_fs_conf(cfg, jars)}
    return {"spark.jars": ",".join(jars)}


FORKLESS_FS = {
    "spark.hadoop.fs.file.impl": "dev.auditlake.fs.ForklessLocalFileSystem",
    "spark.hadoop.fs.AbstractFileSystem.file.impl": "dev.auditlake.fs.ForklessLocalFs",
}


def forkless_fs_conf(cfg: dict[str, Any], jars: list[str]) -> dict[str, str]:
    """Local files through our Hadoop local file system, which starts no child process per call.

    Without Hadoop's native library, its local file system runs ``chmod`` for each file it
    creates, ``readlink`` for both sides of each rename (every Delta commit) and ``ls`` for a
    listed file's permission: about 15 ms of CPU each on 2 cores, 432 of them in a pipeline hour
    (``jvm/logstore``: ``dev.auditlake.fs``). Only for a local driver, which has our jar on its
    class path; ``spark.forkless_local_fs: false`` keeps Hadoop's own.
    """
    if not config_mod.get(cfg, "spark.forkless_local_fs", True):
        return {}
    if not any(Path(j).name == LOG_STORE_JAR for j in jars):
        return {}
    return dict(FORKLESS_FS)


def under_spark_submit() -> bool:
    """True when spark-submit started this Python driver: it owns master, jars and the JVM."""
    return bool(os.environ.get("PYSPARK_GATEWAY_PORT"))


def spark_conf(cfg: dict[str, Any]) -> dict[str, str]:
    """The Spark settings for ``cfg`` (pure: testable without a JVM)."""
    env = cfg.get("env", "local")
    conf: dict[str, str] = {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    }
    if env == "local" and not under_spark_submit():
        conf.update(
            {
                **local_jar_conf(cfg),
                "spark.ui.enabled": "false",
                "spark.driver.extraJavaOptions": " ".join(
                    [
                        "-Duser.timezone=UTC",
                        *str(config_mod.get(cfg, "spark.driver_java_options") or "").split(),
                        *cds_options(config_mod.get(cfg, "spark.cds_archive")),
                    ]
                ),
                "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
            }
        )
        conf.update(local_python_conf())
    for key, value in (config_mod.get(cfg, "spark.conf", {}) or {}).items():
        conf[str(key)] = str(value).lower() if isinstance(value, bool) else str(value)
    conf.update(s3a_conf(cfg))
    conf.update(log_store_conf(cfg))
    return conf


def local_python_conf() -> dict[str, str]:
    """Make local Python workers run this interpreter and import this copy of the package.

    Without it a plain ``python jobs/<job>.py`` starts workers with the system ``python3``,
    which lacks the job's dependencies and ``auditlake`` itself.
    """
    import auditlake

    package_parent = str(Path(auditlake.__file__).resolve().parents[1])
    inherited = os.environ.get("PYTHONPATH")
    return {
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        "spark.executorEnv.PYTHONPATH": os.pathsep.join(
            [package_parent, *([inherited] if inherited else [])]
        ),
    }


def s3a_conf(cfg: dict[str, Any]) -> dict[str, str]:
    """s3a settings for a custom endpoint (loopback S3 in tests); empty when none is configured."""
    endpoint = config_mod.get(cfg, "s3.endpoint")
    if not endpoint:
        return {}
    out = {
        "spark.hadoop.fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3a.endpoint": str(endpoint),
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": str(str(endpoint).startswith("https")).lower(),
        "spark.hadoop.fs.s3a.change.detection.mode": "none",
        "spark.hadoop.fs.s3a.attempts.maximum": "3",
        "spark.hadoop.fs.s3a.retry.limit": "3",
    }
    region = config_mod.get(cfg, "s3.region")
    if region:
        out["spark.hadoop.fs.s3a.endpoint.region"] = str(region)
    key = config_mod.get(cfg, "s3.access_key") or os.environ.get("AWS_ACCESS_KEY_ID")
    secret = config_mod.get(cfg, "s3.secret_key") or os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        out["spark.hadoop.fs.s3a.aws.credentials.provider"] = (
            "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
        )
        out["spark.hadoop.fs.s3a.access.key"] = str(key)
        out["spark.hadoop.fs.s3a.secret.key"] = str(secret)
    return out


def build_session(cfg: dict[str, Any], app_name: str = "auditlake"):
    """Create (or reuse) the SparkSession for ``cfg['env']``."""
    from pyspark.sql import SparkSession

    env = cfg.get("env", "local")
    builder = SparkSession.builder.appName(app_name)
    if env == "local" and not under_spark_submit():
        builder = builder.master(str(config_mod.get(cfg, "spark.master", "local[*]")))
    conf = spark_conf(cfg)
    for key, value in conf.items():
        builder = builder.config(key, value)
    if "spark.pyspark.python" in conf:
        # PySpark picks the worker interpreter from this variable when the context starts.
        os.environ.setdefault("PYSPARK_PYTHON", conf["spark.pyspark.python"])
    spark = builder.getOrCreate()
    if env == "glue":
        from auditlake.runtime_checks import require_delta

        require_delta(spark)
    remember_jvm_names(spark)
    spark.sparkContext.setLogLevel(str(config_mod.get(cfg, "spark.log_level", "WARN")))
    _quiet_jvm_loggers(spark)
    # A reused session (tests, Glue) may have been created with other s3a settings.
    for key, value in s3a_conf(cfg).items():
        spark.sparkContext._jsc.hadoopConfiguration().set(key.removeprefix("spark.hadoop."), value)
    log.info(
        "spark session ready: env=%s master=%s version=%s", env, spark.sparkContext.master, spark.version
    )
    return spark


class _RememberedNames:
    """The py4j view of the JVM (``SparkContext._jvm``) that resolves each name once.

    py4j resolves a name like ``functions`` (``F.col`` goes through ``sc._jvm.functions``) or each
    step of ``jvm.org.apache.spark...`` with a round trip in which the JVM tries the name against
    PySpark's imported packages one after another; every miss is a class lookup that fails only
    after searching all ~260 jars of the classpath. ``F.col`` cost 1.45 ms, 1 ms of it that search,
    and a job makes thousands of such calls (the JVM's sampled profile of a pipeline run: one
    in eight samples of the threads serving Python). Classes and packages, once resolved, are
    kept; anything else (a member, a miss) is asked again each time.
    """

    def __init__(self, target: Any) -> None:
        self._target = target
        self._names: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_target", "_names"):
            # Python's own protocols (copy, pickle, hasattr of a dunder) never reach the JVM, and
            # a copy made without __init__ does not recurse looking for its own fields.
            raise AttributeError(name)
        got = self._names.get(name)
        if got is not None:
            return got
        from py4j.java_gateway import JavaClass, JavaPackage

        got = getattr(self._target, name)
        if isinstance(got, JavaPackage):
            got = _RememberedNames(got)
        if isinstance(got, JavaClass | _RememberedNames):
            self._names[name] = got
        return got


def remember_jvm_names(spark) -> None:
    """Put ``_RememberedNames`` in front of the session's py4j JVM view (once per gateway)."""
    from pyspark import SparkContext

    if not isinstance(SparkContext._jvm, _RememberedNames):
        SparkContext._jvm = _RememberedNames(SparkContext._jvm)  # type: ignore[assignment]
    spark._jvm = SparkContext._jvm


# Spark logs a whole stack trace at WARN for every corrupt file it skips; auditlake quarantines
# those files with a one-line reason, so the trace is noise in job logs.
_QUIET_LOGGERS = (
    "org.apache.spark.sql.execution.datasources.FileScanRDD",
    "org.apache.spark.sql.execution.datasources.v2.FilePartitionReader",
)

# Delta's MERGE logs a stack trace at ERROR ("Fatal error in MERGE ...") before it throws a
# concurrent-commit exception that auditlake retries (commits.retry_on_conflict) or reports in one
# line; the caller owns that error, so the trace is noise on a run that then succeeds.
_SILENT_LOGGERS = ("org.apache.spark.sql.delta.commands.MergeIntoCommand",)


def _quiet_jvm_loggers(spark) -> None:
    try:
        jvm = spark.sparkContext._jvm
        levels = jvm.org.apache.logging.log4j.Level
        configurator = jvm.org.apache.logging.log4j.core.config.Configurator
        for name in _QUIET_LOGGERS:
            configurator.setLevel(name, levels.ERROR)
        for name in _SILENT_LOGGERS:
            configurator.setLevel(name, levels.FATAL)
    except Exception:  # noqa: BLE001 - logging tweaks must never stop a job (e.g. another log4j on EMR)
        log.debug("could not adjust JVM log levels", exc_info=True)


@contextlib.contextmanager
def session_settings(spark, settings: dict[str, Any]) -> Iterator[None]:
    """SQL settings of ``spark`` changed for the ``with`` block, then put back as they were.

    For a job's own settings (``ingest.spark_conf``): in the pipeline each job has a session of
    its own, but a caller's session (a test's, a notebook's) must not keep them.
    """
    previous = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, str(value).lower() if isinstance(value, bool) else str(value))
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)
