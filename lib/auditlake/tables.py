"""Table contracts as data: ``schemas/<table>.yaml`` loaded at run time, never inferred.

A contract names the table, its format, partition column, natural key and every column with
a Hive/Spark DDL type string (the same string Athena's DDL uses) and a comment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pyspark.sql.functions as F
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from auditlake import resources


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a contract: name, Hive/Spark DDL type string, nullability, comment."""

    name: str
    type: str
    nullable: bool = True
    comment: str = ""


@dataclass(frozen=True)
class TableContract:
    name: str
    format: str
    partition_by: tuple[str, ...]
    keys: tuple[str, ...]
    columns: tuple[ColumnSpec, ...]
    description: str = ""
    # Delta file statistics (min/max/null count, for data skipping) only on these columns; empty
    # means Delta's default (the first 32). Fewer columns make every write cheaper.
    stats_columns: tuple[str, ...] = ()

    @property
    def schema(self) -> T.StructType:
        return T.StructType([T.StructField(c.name, parse_type(c.type), c.nullable) for c in self.columns])

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnSpec:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.name} has no column {name!r}")


def conform(df: DataFrame, contract: TableContract | str, keep: tuple[str, ...] = ()) -> DataFrame:
    """A table's final select, from its contract: exactly its columns, cast to its types, in its order.

    Every parser and aggregate ends with it, and every write goes through it again, so the YAML
    contract is the one statement of a table's output. A column the contract names and ``df``
    lacks is an error; columns ``df`` has beyond the contract are dropped, except ``keep`` (a
    parser's notes to the runner, such as a record's index in its object, never written).
    """
    if isinstance(contract, str):
        contract = load_contract(contract)
    target = contract.schema
    have = df.schema
    if not keep and [(f.name, f.dataType) for f in have.fields] == [
        (f.name, f.dataType) for f in target.fields
    ]:
        # Already the contract's columns, types and order (a frame conformed before, on its way to
        # a write): the select would change nothing and costs a JVM call per column.
        return df
    missing = [c for c in contract.column_names if c not in have.fieldNames()]
    if missing:
        raise ValueError(f"batch for {contract.name} lacks columns {missing}")
    return df.select(
        *[F.col(f.name).cast(f.dataType).alias(f.name) for f in target.fields],
        *[F.col(c) for c in keep],
    )


def load_contract(table: str) -> TableContract:
    """Load ``schemas/<table>.yaml``."""
    raw: dict[str, Any] = resources.load_yaml("schemas", f"{table}.yaml")
    cols = tuple(
        ColumnSpec(
            name=c["name"],
            type=str(c["type"]).strip(),
            nullable=bool(c.get("nullable", True)),
            comment=str(c.get("comment", "")),
        )
        for c in raw["columns"]
    )
    contract = TableContract(
        name=raw["table"],
        format=raw.get("format", "delta"),
        partition_by=tuple(raw.get("partition_by", []) or []),
        keys=tuple(raw.get("keys", []) or []),
        columns=cols,
        description=str(raw.get("description", "")).strip(),
        stats_columns=tuple(raw.get("stats_columns", []) or []),
    )
    if contract.name != table:
        raise ValueError(f"schemas/{table}.yaml declares table {contract.name!r}")
    for col in contract.partition_by + contract.keys + contract.stats_columns:
        contract.column(col)
    for col in cols:
        parse_type(col.type)
    return contract


def list_contracts() -> list[str]:
    return [n.removesuffix(".yaml") for n in resources.list_names("schemas", ".yaml") if ".quality." not in n]


# --- a small parser for Hive/Spark DDL type strings (no JVM needed) -------------------------

_PRIMITIVES: dict[str, T.DataType] = {
    "string": T.StringType(),
    "bigint": T.LongType(),
    "int": T.IntegerType(),
    "integer": T.IntegerType(),
    "smallint": T.ShortType(),
    "tinyint": T.ByteType(),
    "boolean": T.BooleanType(),
    "double": T.DoubleType(),
    "float": T.FloatType(),
    "timestamp": T.TimestampType(),
    "date": T.DateType(),
    "binary": T.BinaryType(),
}
_TOKEN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*|<|>|,|:|\(|\))")


def _tokens(text: str) -> list[str]:
    pos, out = 0, []
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"bad type string {text!r} at {pos}")
        out.append(m.group(1))
        pos = m.end()
    return out


def parse_type(text: str) -> T.DataType:
    """Parse ``array<struct<arn:string,...>>`` style type strings into Spark types."""
    toks = _tokens(text)
    dtype, rest = _parse(toks, 0)
    if rest != len(toks):
        raise ValueError(f"trailing text in type string {text!r}")
    return dtype


def _expect(toks: list[str], i: int, tok: str) -> int:
    if i >= len(toks) or toks[i] != tok:
        raise ValueError(f"expected {tok!r} in type string near {' '.join(toks[i : i + 3])!r}")
    return i + 1


def _parse(toks: list[str], i: int) -> tuple[T.DataType, int]:
    word = toks[i].lower()
    i += 1
    if word == "array":
        i = _expect(toks, i, "<")
        elem, i = _parse(toks, i)
        return T.ArrayType(elem, True), _expect(toks, i, ">")
    if word == "map":
        i = _expect(toks, i, "<")
        key, i = _parse(toks, i)
        i = _expect(toks, i, ",")
        val, i = _parse(toks, i)
        return T.MapType(key, val, True), _expect(toks, i, ">")
    if word == "struct":
        i = _expect(toks, i, "<")
        fields = []
        while toks[i] != ">":
            name = toks[i]
            i = _expect(toks, i + 1, ":")
            ftype, i = _parse(toks, i)
            fields.append(T.StructField(name, ftype, True))
            if toks[i] == ",":
                i += 1
        return T.StructType(fields), i + 1
    if word == "decimal":
        i = _expect(toks, i, "(")
        p, s = int(toks[i]), int(toks[i + 2])
        return T.DecimalType(p, s), _expect(toks, i + 3, ")")
    if word in _PRIMITIVES:
        return _PRIMITIVES[word], i
    raise ValueError(f"unknown type {word!r}")


def type_string(dtype: T.DataType) -> str:
    """The Hive/Athena DDL spelling of a Spark type (inverse of ``parse_type``)."""
    if isinstance(dtype, T.ArrayType):
        return f"array<{type_string(dtype.elementType)}>"
    if isinstance(dtype, T.MapType):
        return f"map<{type_string(dtype.keyType)},{type_string(dtype.valueType)}>"
    if isinstance(dtype, T.StructType):
        return "struct<" + ",".join(f"{f.name}:{type_string(f.dataType)}" for f in dtype.fields) + ">"
    if isinstance(dtype, T.DecimalType):
        return f"decimal({dtype.precision},{dtype.scale})"
    for name, prim in _PRIMITIVES.items():
        if dtype == prim and name != "integer":
            return name
    raise ValueError(f"no DDL spelling for {dtype}")
