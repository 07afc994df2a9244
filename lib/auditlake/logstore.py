"""auditlake's DynamoDB-backed Delta log store for S3 lakes, switched on by config.

Delta's default S3 log store is safe for one writer at a time only: S3 has no put-if-absent, so
two jobs committing version N of a table at the same moment can overwrite each other's commit
and lose it. Our store, ``dev.auditlake.delta.DynamoDBLogStore`` (Java, ``jvm/logstore``; built
into ``auditlake-logstore.jar`` by ``make setup`` and ``make package-jars``), first claims each
commit with a conditional put in a DynamoDB table laid out as Delta documents for its own
multi-cluster store (``tablePath`` HASH, ``fileName`` RANGE, ``tempPath``, ``complete``,
``expireTime`` TTL); the loser of a claim sees the commit as existing and Delta retries it as the
next version. Delta picks a log store per URI scheme (``spark.delta.logStore.<scheme>.impl``) and
reads it from the SparkContext's configuration when a table is first opened, so these settings
belong to the session's start (on Glue: the job's ``--conf`` parameter). The store reads its own
settings from the Hadoop configuration (``spark.hadoop.auditlake.logstore.ddb.*``).

Config (``conf/<env>.yaml``)::

    delta:
      log_store: dynamodb          # default | dynamodb
      dynamodb:
        table: auditlake_delta_log # created on first use if absent (or provision it beforehand)
        region: us-east-1          # else s3.region, else the AWS SDK's default region chain
        schemes: [s3, s3a]         # the lake URI schemes it applies to
        endpoint: http://127.0.0.1:5000  # optional: a DynamoDB endpoint (loopback tests)
        ttl_seconds: 86400         # optional: how long completed claims are kept
        credentials_provider: ...  # optional: an AWS SDK v1 credentials provider class
"""

from __future__ import annotations

from typing import Any

from auditlake import config as config_mod
from auditlake.errors import ConfigError

LOG_STORE_CLASS = "dev.auditlake.delta.DynamoDBLogStore"
LOG_STORE_JAR = "auditlake-logstore.jar"
PREFIX = "spark.hadoop.auditlake.logstore.ddb"
MODES = ("default", "dynamodb")


def log_store_conf(cfg: dict[str, Any]) -> dict[str, str]:
    """Spark settings for the configured Delta log store (empty for Delta's default)."""
    mode = str(config_mod.get(cfg, "delta.log_store", "default") or "default").lower()
    if mode not in MODES:
        raise ConfigError(f"delta.log_store must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "default":
        return {}
    ddb = config_mod.get(cfg, "delta.dynamodb", {}) or {}
    table = str(ddb.get("table") or "").strip()
    if not table:
        raise ConfigError("delta.log_store is dynamodb but delta.dynamodb.table is not set")
    schemes = ddb.get("schemes") or ["s3", "s3a"]
    if isinstance(schemes, str):
        schemes = [s.strip() for s in schemes.split(",") if s.strip()]
    out = {f"spark.delta.logStore.{scheme}.impl": LOG_STORE_CLASS for scheme in schemes}
    out[f"{PREFIX}.tableName"] = table
    region = ddb.get("region") or config_mod.get(cfg, "s3.region")
    if region:
        out[f"{PREFIX}.region"] = str(region)
    for key, name in (
        ("endpoint", "endpoint"),
        ("ttl_seconds", "ttlSeconds"),
        ("credentials_provider", "credentialsProvider"),
    ):
        if ddb.get(key) not in (None, ""):
            out[f"{PREFIX}.{name}"] = str(ddb[key])
    return out
