"""Writing lake tables: create from the contract, exactly-once merges, partition replacement.

Every table lives at ``<lake>/<table_name>``. Batches are conformed to the contract (every
column, its type, its order) before they are written, so a parser cannot widen a table by
accident, and partition values always come from typed, validated columns.

Safe for concurrent writers: every write is idempotent (insert-only merges on natural keys, also
on a table's first load, and upserts keyed by the row's identity) and runs under
``commits.retry_on_conflict``, so two jobs that collide on a table end with one commit each and
no duplicate key.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from typing import Any

import pyspark.sql.functions as F
from pyspark import StorageLevel
from pyspark.sql import DataFrame

from auditlake import commits, hadoop_fs
from auditlake.ingest.objects import normalize_uri
from auditlake.tables import TableContract, conform, load_contract

log = logging.getLogger(__name__)

# Creating a table whose _delta_log another writer has made: attempts (waits 0.25 s, 0.5 s, ...)
# before an empty folder is taken for a dead creation's.
CREATE_ATTEMPTS = 8


def table_uri(lake: str, table: str) -> str:
    root = normalize_uri(lake)
    return f"{root}/{table}"


def delta_exists(spark, uri: str) -> bool:
    from delta.tables import DeltaTable

    return DeltaTable.isDeltaTable(spark, uri)


def ensure_delta_table(spark, lake: str, contract: TableContract):
    """Create the Delta table at ``<lake>/<name>`` from its contract if it does not exist; open it."""
    from delta.tables import DeltaTable

    uri = table_uri(lake, contract.name)
    if not DeltaTable.isDeltaTable(spark, uri):
        _create_table(spark, uri, contract)
    table = _open_table(spark, uri, contract)
    _add_missing_columns(spark, uri, contract, table)
    return table


def _create_table(spark, uri: str, contract: TableContract) -> None:
    """Create the table if no writer has; also beside another writer creating it at the same time.

    Delta's ``createIfNotExists`` fails with ``DELTA_TABLE_NOT_FOUND`` over a ``_delta_log`` folder
    that has no version 0 yet: another job is between making that folder and its first commit
    (it is waited for), or a creation died there. A folder still empty after the wait is the
    latter's: it is removed and the table created (a writer that was only slow still commits its
    version 0 first or conflicts and finds this one; either way one table).
    """
    from delta.tables import DeltaTable

    builder = DeltaTable.createIfNotExists(spark).location(uri).addColumns(contract.schema)
    if contract.partition_by:
        builder = builder.partitionedBy(*contract.partition_by)
    if contract.description:
        builder = builder.comment(contract.description)
    if contract.stats_columns:
        builder = builder.property("delta.dataSkippingStatsColumns", ",".join(contract.stats_columns))
    for attempt in range(1, CREATE_ATTEMPTS + 1):
        try:
            commits.retry_on_conflict(builder.execute, what=f"create {contract.name}")
            # createIfNotExists commits nothing when a writer starting beside this one created the
            # table between the caller's check and here, so the log line names both cases.
            log.info(
                "Delta table %s created at %s (by this job or one starting beside it)", contract.name, uri
            )
            return
        except Exception as exc:
            if DeltaTable.isDeltaTable(spark, uri):
                return  # another writer created it first (two jobs starting on a new lake): theirs is ours
            if not _not_created_yet(exc) or attempt == CREATE_ATTEMPTS:
                raise
            log.info("create %s: its _delta_log has no commit yet (attempt %d)", contract.name, attempt)
            time.sleep(0.25 * attempt)
            if attempt >= CREATE_ATTEMPTS // 2 and _empty_folder(spark, f"{uri}/_delta_log"):
                hadoop_fs.delete(spark, uri, "_delta_log")


def _empty_folder(spark, uri: str) -> bool:
    try:
        return not any(hadoop_fs.list_files(spark, uri))
    except FileNotFoundError:
        return False


def _not_created_yet(exc: BaseException) -> bool:
    """A table folder whose ``_delta_log`` has no first commit (yet)."""
    return "DELTA_TABLE_NOT_FOUND" in str(exc)


def _open_table(spark, uri: str, contract: TableContract):
    """``DeltaTable.forPath``, created first if it has no version 0 yet (see ``_create_table``)."""
    from delta.tables import DeltaTable

    try:
        return DeltaTable.forPath(spark, uri)
    except Exception as exc:
        if not _not_created_yet(exc):
            raise
    _create_table(spark, uri, contract)
    return DeltaTable.forPath(spark, uri)


def _add_missing_columns(spark, uri: str, contract: TableContract, table) -> None:
    """Add contract columns a table created by an older release lacks (new, nullable, at the end)."""
    have = set(table.toDF().columns)
    missing = [f for f in contract.schema.fields if f.name not in have]
    if not missing:
        return
    from auditlake.tables import type_string

    cols = ", ".join(f"`{f.name}` {type_string(f.dataType)}" for f in missing)
    sql = f"ALTER TABLE delta.`{uri}` ADD COLUMNS ({cols})"
    commits.retry_on_conflict(lambda: spark.sql(sql), what=f"evolve {contract.name}")
    log.info("added columns %s to %s", [f.name for f in missing], contract.name)


def read_table(spark, lake: str, table: str) -> DataFrame:
    """Read a lake table; an empty frame with the contract's schema if it does not exist yet."""
    contract = load_contract(table)
    uri = table_uri(lake, table)
    # Aggregates are Parquet by contract but Delta when conf aggregates.format says so.
    exists = delta_exists(spark, uri)
    if contract.format == "delta" or exists:
        if exists:
            try:
                return spark.read.format("delta").load(uri)
            except Exception as exc:
                if not _not_created_yet(exc):
                    raise
        return spark.createDataFrame([], contract.schema)
    try:
        return spark.read.schema(contract.schema).parquet(uri)
    except Exception:  # noqa: BLE001 - no files yet
        return spark.createDataFrame([], contract.schema)


def _partition_literals(values: list[Any]) -> str:
    def lit(v: Any) -> str:
        if isinstance(v, dt.datetime):
            raise TypeError(f"no literal for a timestamp value: {v!r}")
        if isinstance(v, dt.date):
            return f"DATE'{v.isoformat()}'"
        return "'" + str(v).replace("'", "''") + "'"

    return ", ".join(lit(v) for v in values)


def partition_values(df: DataFrame, column: str) -> list[Any]:
    """Distinct values of a partition column in a (small, cached) batch."""
    return sorted(r[0] for r in df.select(column).distinct().collect() if r[0] is not None)


def merge_new_rows(
    spark,
    df: DataFrame,
    lake: str,
    table: str,
    *,
    dates: list[Any] | None = None,
    within: tuple[str, list[Any]] | None = None,
) -> int:
    """Insert the batch rows whose natural key is not in the table yet; return rows inserted.

    Insert-only MERGE on the contract's keys, pruned to the batch's partitions, so a rerun or a
    duplicate delivery inserts nothing and a killed run's rerun completes it. The batch must
    already be free of duplicate keys.

    ``within=(column, values)`` also limits the target rows compared to those with one of these
    values in a non-partition column (``None`` among them: a null): Delta skips the files whose
    statistics rule them out, so the merge reads a few files of a partition that grows all year.
    The caller states that any stored row with a key of the batch has one of those values.
    """
    contract = load_contract(table)
    ensure_delta_table(spark, lake, contract)
    batch = conform(df, contract)
    cond = [f"t.`{k}` <=> s.`{k}`" for k in contract.keys]
    if within is not None:
        cond.insert(0, _within(*within))
    if contract.partition_by:
        part = contract.partition_by[0]
        values = dates if dates is not None else partition_values(batch, part)
        if not values:
            return 0
        cond.insert(0, f"t.`{part}` IN ({_partition_literals(values)})")
        cond.insert(1, f"t.`{part}` = s.`{part}`")

    # A MERGE also on a table's first load: two runs loading a new table at the same time would
    # both append (blind appends never conflict in Delta) and duplicate every key; two merges
    # conflict on the partitions they read, and the retried one inserts only what is missing.
    uri = table_uri(lake, table)

    def merge() -> int:
        return _merge_sql(spark, batch, uri, " AND ".join(cond), "WHEN NOT MATCHED THEN INSERT *")[
            "num_inserted_rows"
        ]

    return commits.retry_on_conflict(merge, what=f"merge into {table}")


def _within(column: str, values: list[Any]) -> str:
    """A target-only condition: ``column`` holds one of ``values`` (``None``: a null)."""
    known = sorted({v for v in values if v is not None})
    terms = [f"t.`{column}` IN ({_partition_literals(known)})"] if known else []
    if any(v is None for v in values) or not terms:
        terms.append(f"t.`{column}` IS NULL")
    return "(" + " OR ".join(terms) + ")"


def upsert_rows(
    spark, df: DataFrame, lake: str, table: str, *, within: tuple[str, list[Any]] | None = None
) -> int:
    """Insert new keys and update existing ones with the batch's values; return affected rows.

    ``within``: as for ``merge_new_rows`` (for a key column it always holds).
    """
    contract = load_contract(table)
    ensure_delta_table(spark, lake, contract)
    batch = conform(df, contract)
    cond = " AND ".join(
        ([_within(*within)] if within is not None else []) + [f"t.`{k}` <=> s.`{k}`" for k in contract.keys]
    )
    uri = table_uri(lake, table)

    def upsert() -> int:
        got = _merge_sql(
            spark, batch, uri, cond, "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
        )
        return got["num_inserted_rows"] + got["num_updated_rows"]

    return commits.retry_on_conflict(upsert, what=f"upsert into {table}")


def _merge_sql(spark, batch: DataFrame, uri: str, cond: str, clauses: str) -> dict[str, int]:
    """Run ``MERGE INTO`` the Delta table at ``uri`` from ``batch`` (as ``s``); return its row counts.

    SQL, not delta-spark's Python builder: the SQL command returns the commit's own counts
    (``num_inserted_rows``, ``num_updated_rows``, ...), where the builder's ``execute()`` returns
    nothing and the counts had to be read back from the table's history, two reads per merge
    (and the history of up to 50 commit files). The batch is a temp view named for this call, so
    concurrent merges in one session never see each other's batch.
    """
    view = f"auditlake_merge_{uuid.uuid4().hex[:12]}"
    batch.createOrReplaceTempView(view)
    try:
        target = uri.replace("`", "``")
        row = spark.sql(f"MERGE INTO delta.`{target}` AS t USING {view} AS s ON {cond} {clauses}").first()
    finally:
        spark.catalog.dropTempView(view)
    got = row.asDict() if row is not None else {}
    return {
        k: int(got.get(k) or 0)
        for k in ("num_affected_rows", "num_updated_rows", "num_deleted_rows", "num_inserted_rows")
    }


def append_rows(spark, df: DataFrame, lake: str, table: str) -> None:
    """Append the batch to a Delta table (run records, quality results)."""
    contract = load_contract(table)
    ensure_delta_table(spark, lake, contract)
    batch = conform(df, contract)
    commits.retry_on_conflict(
        lambda: batch.write.format("delta").mode("append").save(table_uri(lake, table)),
        what=f"append to {table}",
    )


def replace_partitions(
    spark,
    df: DataFrame,
    lake: str,
    table: str,
    values: list[Any],
    fmt: str | None = None,
    present: list[Any] | None = None,
) -> None:
    """Replace exactly the given partitions with the batch (aggregates); others are untouched.

    A value with no rows in the batch ends up empty; batch rows outside ``values`` are not
    written. Parquet: dynamic partition overwrite replaces the partitions the batch has rows
    for, and the folders of the values the batch has no rows for are deleted afterwards.
    ``present``: the values the batch has rows for, when the caller knows them (else one query
    over the batch finds them).
    """
    if not values:
        return
    contract = load_contract(table)
    part = contract.partition_by[0]
    batch = conform(df, contract).where(F.col(part).isin(list(values)))
    uri = table_uri(lake, table)
    fmt = fmt or contract.format
    if fmt == "delta":
        ensure_delta_table(spark, lake, contract)
        where = f"`{part}` IN ({_partition_literals(values)})"
        commits.retry_on_conflict(
            lambda: batch.write.format("delta").mode("overwrite").option("replaceWhere", where).save(uri),
            what=f"replace partitions of {table}",
        )
        return
    present = set(partition_values(batch, part) if present is None else present) & set(values)
    if present:
        # Dynamic partition overwrite: only partitions present in the batch are replaced.
        (
            batch.write.mode("overwrite")
            .option("partitionOverwriteMode", "dynamic")
            .partitionBy(part)
            .parquet(uri)
        )
    emptied = [v for v in values if v not in present]
    if emptied:
        _delete_partition_dirs(spark, uri, part, emptied)


def cached_flat(df: DataFrame, partitions: int | None = None) -> DataFrame:
    """``df`` cached behind a plan of one node (its rows' RDD), optionally in ``partitions`` partitions.

    Every query over a cached frame is analysed in full before Spark swaps the cached part in: a
    frame reached through a long plan (an aggregate built of joins, windows and unions; a
    quarantine made of one branch per parse path) paid that plan's analysis again for each count,
    check and write over it. Rebuilt from its rows' RDD (in the JVM, no Python workers) it keeps
    its lineage, so a lost executor's blocks are recomputed, unlike a local checkpoint's.
    """
    narrow = df.coalesce(partitions) if partitions else df
    return rows_frame(df.sparkSession, narrow._jdf).persist(StorageLevel.MEMORY_AND_DISK)


def rows_frame(spark, jdf) -> DataFrame:
    """A JVM Dataset's rows as a frame of ``spark``'s session, behind a plan of one node (its rows'
    RDD, rebuilt in the JVM: no Python workers; the session may be another than the Dataset's)."""
    return DataFrame(spark._jsparkSession.createDataFrame(jdf.toJavaRDD(), jdf.schema()), spark)


def existing_partitions(spark, lake: str, table: str, values: list[Any]) -> list[Any]:
    """Which of ``values`` the table holds rows for (Parquet: which partition folders exist)."""
    if not values:
        return []
    contract = load_contract(table)
    part = contract.partition_by[0]
    uri = table_uri(lake, table)
    if delta_exists(spark, uri):
        df = spark.read.format("delta").load(uri).where(F.col(part).isin(list(values)))
        return partition_values(df, part)
    if not hadoop_fs.exists(spark, uri):
        return []
    return [v for v in values if hadoop_fs.exists(spark, uri, _partition_dir_name(part, v))]


def _partition_dir_name(part: str, value: Any) -> str:
    text = value.isoformat() if isinstance(value, dt.date) else str(value)
    if "/" in text or text in ("", ".", ".."):
        raise ValueError(f"unsafe partition value {text!r}")
    return f"{part}={text}"


def _delete_partition_dirs(spark, uri: str, part: str, values: list[Any]) -> None:
    """Delete ``<uri>/<part>=<value>`` folders (Parquet partitions that became empty)."""
    for value in values:
        name = _partition_dir_name(part, value)
        if hadoop_fs.delete(spark, uri, name):
            log.info("emptied partition %s/%s", uri.rstrip("/"), name)


def metric_since(spark, target, before: int, names: tuple[str, ...]) -> int:
    """Sum of the named operation metrics of this session's commit made after version ``before``.

    For operations whose Python API returns no counts (a ``delete``; merges use ``_merge_sql``,
    which does). An operation that changed nothing makes no commit: then the answer is 0. Other
    writers may have committed in between, so the commit is the first after ``before`` that
    carries this run's tag.
    """
    tag = commits.current_tag(spark)
    rows = target.history(50).select("version", "operationMetrics", "userMetadata").collect()
    mine = sorted(
        (r for r in rows if int(r[0]) > before and (tag is None or r[2] == tag)), key=lambda r: int(r[0])
    )
    if not mine:
        return 0
    metrics = mine[0][1] or {}
    return int(sum(int(metrics.get(n, 0)) for n in names))
