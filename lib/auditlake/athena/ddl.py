"""Athena DDL (and the equivalent Glue Data Catalog table inputs) generated from ``schemas/*.yaml``.

Two shapes, chosen by the contract's ``format``:

- ``delta``: an Athena *native* Delta table (engine v3). Athena reads the schema and the
  partitioning from the table's ``_delta_log``, so the statement carries only the location and
  ``TBLPROPERTIES ('table_type'='DELTA')``; the contract's columns are listed in a comment above
  it for the reader. No ``MSCK REPAIR``, no manifest files.
- ``parquet`` (the daily aggregates): an external Hive-style table over the Parquet folders
  Spark writes (``<table>/<part>=YYYY-MM-DD/``), with *partition projection* on the partition
  column, so new days are visible without ``MSCK REPAIR`` or Glue partition calls. The column is
  declared with the contract's type (``date``); Athena's ``date`` projection accepts a ``DATE``
  partition key when the format is ``yyyy-MM-dd``.

Identifiers are backtick-quoted (Athena DDL is Hive DDL), so reserved words such as ``key``,
``date`` or ``source`` need no special care. Comments are single-quoted with ``\\'``-escaping.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from auditlake.tables import TableContract, list_contracts, load_contract, parse_type, type_string

DEFAULT_PROJECTION_START = "2010-01-01"
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")

PARQUET_INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: str  # Athena/Hive DDL spelling, e.g. array<struct<arn:string,...>>
    comment: str = ""


@dataclass(frozen=True)
class TableSpec:
    """Everything the DDL and the Glue table input say about one table."""

    name: str
    database: str
    format: str  # delta | parquet
    location: str
    columns: tuple[ColumnSpec, ...]
    partition_columns: tuple[ColumnSpec, ...]
    description: str = ""
    properties: dict[str, str] = field(default_factory=dict)


def athena_type(type_text: str) -> str:
    """The Athena DDL spelling of a contract type (``integer`` becomes ``int``; spaces removed)."""
    return type_string(parse_type(type_text))


def _check_name(kind: str, name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"{kind} name {name!r} is not a lowercase Athena identifier")
    return name


def athena_location(lake: str) -> str:
    """Normalize a lake root for Athena: ``s3a://``/``s3n://`` become ``s3://``; no trailing slash."""
    root = lake.strip().rstrip("/")
    for prefix in ("s3a://", "s3n://"):
        if root.startswith(prefix):
            root = "s3://" + root[len(prefix) :]
    if not root.startswith("s3://"):
        raise ValueError(f"Athena reads tables from S3: --lake must be an s3:// URI, got {lake!r}")
    return root


def projection_properties(column: ColumnSpec, location: str, start: str) -> dict[str, str]:
    if column.type not in ("date", "string"):
        raise ValueError(f"partition projection supports a date or string day column, not {column.type}")
    dt.date.fromisoformat(start)
    name = column.name
    return {
        "projection.enabled": "true",
        f"projection.{name}.type": "date",
        f"projection.{name}.format": "yyyy-MM-dd",
        f"projection.{name}.range": f"{start},NOW",
        f"projection.{name}.interval": "1",
        f"projection.{name}.interval.unit": "DAYS",
        "storage.location.template": f"{location}/{name}=${{{name}}}/",
    }


def table_spec(
    contract: TableContract, lake: str, database: str, projection_start: str = DEFAULT_PROJECTION_START
) -> TableSpec:
    _check_name("database", database)
    _check_name("table", contract.name)
    location = f"{athena_location(lake)}/{contract.name}"
    cols = [
        ColumnSpec(_check_name("column", c.name), athena_type(c.type), c.comment) for c in contract.columns
    ]
    if contract.format == "delta":
        return TableSpec(
            contract.name,
            database,
            "delta",
            location,
            tuple(cols),
            (),
            contract.description,
            {"table_type": "DELTA"},
        )
    if contract.format != "parquet":
        raise ValueError(f"{contract.name}: unknown format {contract.format!r}")
    if len(contract.partition_by) != 1:
        raise ValueError(f"{contract.name}: a Parquet table needs exactly one (day) partition column")
    part_names = set(contract.partition_by)
    data_cols = tuple(c for c in cols if c.name not in part_names)
    part_cols = tuple(c for c in cols if c.name in part_names)
    props = projection_properties(part_cols[0], location, projection_start)
    props["parquet.compression"] = "SNAPPY"
    return TableSpec(
        contract.name, database, "parquet", location, data_cols, part_cols, contract.description, props
    )


def all_table_specs(
    lake: str, database: str, projection_start: str = DEFAULT_PROJECTION_START
) -> list[TableSpec]:
    return [table_spec(load_contract(name), lake, database, projection_start) for name in list_contracts()]


# --- rendering -------------------------------------------------------------------------------


def _q(name: str) -> str:
    return f"`{name}`"


def sql_string(text: str) -> str:
    """A single-quoted Hive DDL string literal (backslash escapes, one line)."""
    flat = " ".join(text.split())
    return "'" + flat.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _column_line(col: ColumnSpec) -> str:
    line = f"{_q(col.name)} {col.type}"
    return line + (f" COMMENT {sql_string(col.comment)}" if col.comment else "")


def _properties(props: dict[str, str]) -> str:
    body = ",\n".join(f"  {sql_string(k)}={sql_string(v)}" for k, v in props.items())
    return f"TBLPROPERTIES (\n{body}\n)"


def render_create_database(database: str) -> str:
    return f"CREATE DATABASE IF NOT EXISTS {_q(_check_name('database', database))};"


def render_table(spec: TableSpec) -> str:
    """One ``CREATE EXTERNAL TABLE`` statement, ending with ``;``."""
    qualified = f"{_q(spec.database)}.{_q(spec.name)}"
    if spec.format == "delta":
        listing = "\n".join(f"--   {c.name} {c.type}" for c in spec.columns)
        return (
            f"-- {spec.name}: Delta table; Athena reads columns and partitions from _delta_log:\n"
            f"{listing}\n"
            f"CREATE EXTERNAL TABLE IF NOT EXISTS {qualified}\n"
            f"LOCATION {sql_string(spec.location + '/')}\n"
            f"{_properties(spec.properties)};"
        )
    cols = ",\n".join(f"  {_column_line(c)}" for c in spec.columns)
    parts = ", ".join(_column_line(c) for c in spec.partition_columns)
    comment = f"COMMENT {sql_string(spec.description)}\n" if spec.description else ""
    return (
        f"-- {spec.name}: Parquet, partition projection on {', '.join(c.name for c in spec.partition_columns)}\n"
        f"CREATE EXTERNAL TABLE IF NOT EXISTS {qualified} (\n{cols}\n)\n"
        f"{comment}"
        f"PARTITIONED BY ({parts})\n"
        f"STORED AS PARQUET\n"
        f"LOCATION {sql_string(spec.location + '/')}\n"
        f"{_properties(spec.properties)};"
    )


def render_ddl(specs: list[TableSpec]) -> str:
    """The whole DDL script: the database, then one statement per table, in name order."""
    if not specs:
        raise ValueError("no tables to render")
    database = specs[0].database
    header = (
        "-- Generated by auditlake (jobs/athena_ddl.py) from schemas/*.yaml; do not edit by hand.\n"
        "-- Athena engine v3. Delta tables are native Delta tables; Parquet aggregates use\n"
        "-- partition projection (no MSCK REPAIR TABLE needed).\n"
    )
    body = "\n\n".join(render_table(s) for s in sorted(specs, key=lambda s: s.name))
    return f"{header}\n{render_create_database(database)}\n\n{body}\n"


# --- Glue Data Catalog -----------------------------------------------------------------------


def _glue_columns(cols: tuple[ColumnSpec, ...]) -> list[dict[str, str]]:
    return [
        {"Name": c.name, "Type": c.type, **({"Comment": c.comment[:255]} if c.comment else {})} for c in cols
    ]


def glue_table_input(spec: TableSpec) -> dict:
    """The ``TableInput`` for ``glue.create_table`` that matches :func:`render_table`."""
    params = {"EXTERNAL": "TRUE", **spec.properties}
    sd: dict = {"Location": spec.location + "/", "Columns": _glue_columns(spec.columns)}
    if spec.format == "delta":
        # What Athena itself stores for a native Delta table; the columns are informational
        # (Athena reads the schema from _delta_log) but let Lake Formation see them.
        params["spark.sql.sources.provider"] = "delta"
    else:
        params["classification"] = "parquet"
        sd.update(
            {
                "InputFormat": PARQUET_INPUT_FORMAT,
                "OutputFormat": PARQUET_OUTPUT_FORMAT,
                "SerdeInfo": {
                    "SerializationLibrary": PARQUET_SERDE,
                    "Parameters": {"serialization.format": "1"},
                },
            }
        )
    table: dict = {
        "Name": spec.name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": params,
        "StorageDescriptor": sd,
        "PartitionKeys": _glue_columns(spec.partition_columns),
    }
    if spec.description:
        table["Description"] = " ".join(spec.description.split())[:2048]
    return table


def register_in_glue(glue_client, specs: list[TableSpec]) -> dict[str, str]:
    """Create or update the database and every table in the Glue Data Catalog.

    Idempotent: an existing table is updated in place. Returns ``{table: "created"|"updated"}``.
    """
    if not specs:
        return {}
    database = specs[0].database
    try:
        glue_client.get_database(Name=database)
    except glue_client.exceptions.EntityNotFoundException:
        glue_client.create_database(
            DatabaseInput={"Name": database, "Description": "auditlake audit and operations tables"}
        )
    outcome: dict[str, str] = {}
    for spec in specs:
        table_input = glue_table_input(spec)
        try:
            glue_client.get_table(DatabaseName=database, Name=spec.name)
        except glue_client.exceptions.EntityNotFoundException:
            glue_client.create_table(DatabaseName=database, TableInput=table_input)
            outcome[spec.name] = "created"
        else:
            glue_client.update_table(DatabaseName=database, TableInput=table_input)
            outcome[spec.name] = "updated"
    return outcome
