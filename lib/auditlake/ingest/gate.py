"""The ingest runner's gate step: split off failing rows, then decide whether the batch may commit.

Row level: every critical ``level: row`` entry of a table's suite is a Column
(``quality.row_checks``); a row that fails one becomes a quarantine row with the entry's name as
its reason and the rest of the batch goes on. This happens before the batch is counted and
deduplicated, as filters over the parser's cached frame, so the checks cost no pass of their own
and ``records read = loaded + quarantined + duplicates`` still holds.

Batch level (the run stops with exit 3 before anything is written): a table frame that does not
match its contract (schema drift), a quarantine share above ``quality.max_quarantine_share``,
and the suites' batch-level entries, which Great Expectations evaluates on the rows that commit.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyspark.sql.functions as F
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from auditlake import config as config_mod
from auditlake import quality
from auditlake.errors import QualityGateError
from auditlake.ingest.quarantine import ROW_INDEX, to_quarantine
from auditlake.tables import load_contract

# Which table a row-level quarantine row came from (counts per table and reason); not stored.
TABLE_COLUMN = "_table"


@dataclass
class PreparedBatch:
    """Table frames cut to their contracts and holding only rows that passed the row-level checks."""

    tables: dict[str, DataFrame]
    quarantine: DataFrame
    outcomes: list[quality.QualityOutcome]

    @property
    def failed(self) -> list[quality.QualityOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]


def schema_problems(table: str, df: DataFrame) -> list[str]:
    """How ``df`` differs from ``table``'s contract: missing, extra or retyped columns.

    Columns whose name starts with ``_`` are the parser's notes to the runner (a record index),
    never stored, so they are not drift.
    """
    contract = load_contract(table)
    have = {f.name: f.dataType for f in df.schema.fields if not f.name.startswith("_")}
    want = {f.name: f.dataType for f in contract.schema.fields}
    problems = [f"missing column {c}" for c in want if c not in have]
    problems += [f"unexpected column {c}" for c in have if c not in want]
    problems += [
        f"column {c} is {have[c].simpleString()}, contract says {t.simpleString()}"
        for c, t in want.items()
        if c in have and not _compatible(have[c], t)
    ]
    return problems


def _compatible(have: T.DataType, want: T.DataType) -> bool:
    """Same type up to nullability, or numbers (the write casts them to the contract's)."""
    if have.simpleString() == want.simpleString():
        return True
    return isinstance(have, T.NumericType) and isinstance(want, T.NumericType)


def prepare_batch(
    spark: SparkSession,
    tables: dict[str, DataFrame],
    quarantine: DataFrame,
    *,
    source: str,
    run_id: str,
    cfg: dict[str, Any],
    now: dt.datetime,
    number_rows: Callable[[DataFrame], DataFrame] | None = None,
) -> PreparedBatch:
    """Check each table frame's schema and split off the rows that fail a row-level check.

    The returned quarantine frame is the parser's plus the row-level rows, with ``TABLE_COLUMN``
    (null for the parser's rows), which ``count_quarantine`` reads and the quarantine merge drops.
    ``number_rows``: the parser's (``ParsedBatch.number_rows``), for the rows quarantined here.
    """
    max_chars = int(config_mod.get(cfg, "ingest.quarantine_raw_max_chars", 8192))
    outcomes: list[quality.QualityOutcome] = []
    good: dict[str, DataFrame] = {}
    parts = [quarantine.withColumn(TABLE_COLUMN, F.lit(None).cast("string"))]
    for table, df in tables.items():
        problems = schema_problems(table, df)
        if problems:
            outcomes.append(_schema_outcome(table, problems, run_id))
            continue
        contract = load_contract(table)
        checks = quality.row_checks(table, cfg, now=now)
        ok, bad = quality.split_rows(df, checks)
        good[table] = ok.select(*contract.column_names)
        if not checks:
            continue
        if ROW_INDEX in df.columns and number_rows is not None:
            bad = number_rows(bad)
        index = (
            F.col(ROW_INDEX) if ROW_INDEX in df.columns else F.xxhash64(*[F.col(k) for k in contract.keys])
        )
        # The row as the parser typed it: the raw record is no longer at hand here.
        raw = F.to_json(F.struct(*[F.col(c) for c in contract.column_names]))
        rows = to_quarantine(
            bad,
            source=source,
            source_object="source_object",
            record_index=index,
            raw_text=raw,
            reason=F.col(quality.REASON_COLUMN),
            run_id=run_id,
            max_chars=max_chars,
        )
        parts.append(rows.withColumn(TABLE_COLUMN, F.lit(table)))
    combined = parts[0]
    for part in parts[1:]:
        combined = combined.unionByName(part)
    return PreparedBatch(tables=good, quarantine=combined, outcomes=outcomes)


def count_quarantine(quarantine: DataFrame) -> tuple[int, dict[str, dict[str, int]]]:
    """Rows in the quarantine frame, and the row-level ones per table and reason (one job)."""
    rows = quarantine.groupBy(TABLE_COLUMN, "reason").count().collect()
    total = sum(int(r["count"]) for r in rows)
    by_table: dict[str, dict[str, int]] = {}
    for r in rows:
        if r[TABLE_COLUMN] is not None:
            by_table.setdefault(r[TABLE_COLUMN], {})[r["reason"]] = int(r["count"])
    return total, by_table


def quarantine_share(
    quarantined: int, read: int, *, cfg: dict[str, Any], run_id: str
) -> quality.QualityOutcome | None:
    """The batch-level limit on the share of records quarantined (``quality.max_quarantine_share``).

    None when no limit is configured: a feed that is mostly bad then still commits its good
    records, and the run record and quarantine say how much was bad.
    """
    limit = config_mod.get(cfg, "quality.max_quarantine_share")
    if limit is None or not config_mod.get(cfg, "quality.enabled", True):
        return None
    limit = float(limit)
    share = quarantined / read if read else 0.0
    success = share <= limit
    message = (
        f"quarantine: critical quarantine_share_at_most failed: {quarantined} of {read} records "
        f"quarantined ({100 * share:.2f}%), limit {100 * limit:.2f}%"
    )
    result = _result(
        run_id,
        "quarantine",
        "quarantine_share_at_most",
        None,
        success,
        read,
        quarantined,
        {"type": "quarantine_share_at_most", "limit": limit, "observed_value": round(share, 6)},
    )
    return quality.QualityOutcome(
        table="quarantine",
        status="passed" if success else "failed",
        results=[result],
        failures=[] if success else [message],
    )


def raise_on_failure(
    spark: SparkSession, lake: str, outcomes: list[quality.QualityOutcome], run_id: str
) -> None:
    """Record the outcomes in ``dq_results`` and stop the run when one failed (nothing else written)."""
    from auditlake import lake as lake_mod

    failed = [o for o in outcomes if o.status == "failed"]
    if not failed:
        return
    lake_mod.append_rows(spark, quality.results_frame(spark, outcomes, run_id), lake, "dq_results")
    raise QualityGateError("; ".join(o.message() for o in failed))


def _schema_outcome(table: str, problems: list[str], run_id: str) -> quality.QualityOutcome:
    message = f"{table}: critical schema_matches_contract failed: schema drift: " + "; ".join(problems[:5])
    if len(problems) > 5:
        message += f" (+{len(problems) - 5} more)"
    result = _result(
        run_id,
        table,
        "schema_matches_contract",
        None,
        False,
        None,
        len(problems),
        {"type": "schema_matches_contract", "problems": problems},
    )
    return quality.QualityOutcome(table=table, status="failed", results=[result], failures=[message])


def _result(
    run_id: str,
    table: str,
    name: str,
    column: str | None,
    success: bool,
    elements: int | None,
    unexpected: int | None,
    details: dict[str, Any],
) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    percent = 100.0 * unexpected / elements if elements and unexpected is not None else None
    return {
        "run_id": run_id,
        "table_name": table,
        "expectation": name,
        "column_name": column,
        "severity": "critical",
        "success": success,
        "element_count": elements,
        "unexpected_count": unexpected,
        "unexpected_percent": percent,
        "sample_unexpected": [],
        "details": json.dumps(details, sort_keys=True),
        "evaluated_at": now,
        "evaluated_date": now.date(),
    }
