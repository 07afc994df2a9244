"""Checks that the session a platform handed over can run auditlake's jobs.

Under AWS Glue, ``GlueContext`` creates the SparkContext before auditlake's session factory
runs, so the Delta settings the factory would add come too late: Delta must arrive through the
job parameters. A job that runs on without Delta fails much later with an obscure error
(``DELTA_CONFIGURE_SPARK_SESSION_WITH_EXTENSION_AND_CATALOG`` or a plain Parquet write), so the
check stops it at once and says which parameters are missing.
"""

from __future__ import annotations

from typing import Any

from auditlake.errors import ConfigError

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"

# What the job parameters must carry, in the form the Glue console and CloudFormation take.
GLUE_DELTA_PARAMETERS = {
    "datalake_formats": "--datalake-formats delta",
    "extension": f"--conf spark.sql.extensions={DELTA_EXTENSION}",
    "catalog": f"--conf spark.sql.catalog.spark_catalog={DELTA_CATALOG}",
}


def missing_delta_parameters(conf: Any, class_exists: Any) -> list[str]:
    """The Glue job parameters missing for Delta, given a session conf and a JVM class probe.

    ``conf`` is anything with ``get(key, default)`` (``spark.conf``, a ``SparkConf``, a dict);
    ``class_exists(name)`` says whether the JVM can load a class (the Delta jar comes from
    ``--datalake-formats delta``).
    """
    missing = []
    if not class_exists(DELTA_EXTENSION):
        missing.append(GLUE_DELTA_PARAMETERS["datalake_formats"])
    extensions = [e.strip() for e in str(conf.get("spark.sql.extensions", "") or "").split(",")]
    if DELTA_EXTENSION not in extensions:
        missing.append(GLUE_DELTA_PARAMETERS["extension"])
    if str(conf.get("spark.sql.catalog.spark_catalog", "") or "").strip() != DELTA_CATALOG:
        missing.append(GLUE_DELTA_PARAMETERS["catalog"])
    return missing


def jvm_class_exists(spark: Any):
    """A probe that loads a class through the session's JVM (the driver's class loader)."""

    def probe(name: str) -> bool:
        jvm = spark.sparkContext._jvm
        try:
            loader = jvm.Thread.currentThread().getContextClassLoader()
            jvm.java.lang.Class.forName(name, False, loader)
        except Exception:  # noqa: BLE001 - py4j wraps ClassNotFoundException in its own error type
            return False
        return True

    return probe


def require_delta(spark: Any) -> None:
    """Stop (exit 2) unless Delta is active in ``spark``; the message names the missing job parameters.

    It reads the SparkContext's configuration, the one the context started with: the session
    factory sets the catalog again at run time, which Spark accepts but which does not make
    Delta work when the context started without it.
    """
    conf = spark.sparkContext.getConf()
    missing = missing_delta_parameters(conf, jvm_class_exists(spark))
    if missing:
        raise ConfigError(
            "Delta Lake is not active in the Glue session; add the job parameters: " + " ".join(missing)
        )
