"""Translate auditlake's generated Athena DDL into Trino statements, for the local Trino check.

Athena engine v3 is Trino, but its DDL is Hive DDL over the Glue Data Catalog, while a
stand-alone Trino takes its own DDL per connector. The check feeds Trino the *generated Athena
text* (parsed back here), translated only where the two genuinely differ:

1. Database -> schema. Athena's database lives in one catalog (AwsDataCatalog) that holds both
   Hive-style and Delta tables. Here the ``hive`` and ``delta`` catalogs share one file metastore
   directory and the Hive connector redirects Delta tables to ``delta``
   (``hive.delta-lake-catalog-name``), so, as in Athena, queries name ``<db>.<table>`` only.
   ``CREATE DATABASE`` becomes ``CREATE SCHEMA hive.<db>``.
2. Native Delta tables: ``CREATE EXTERNAL TABLE ... TBLPROPERTIES ('table_type'='DELTA')``
   becomes ``CALL delta.system.register_table(...)``, Trino's way to catalog an existing Delta
   table from its ``_delta_log`` (Trino has no ``table_type`` property).
3. Hive DDL syntax -> Trino syntax for external Parquet tables: backtick identifiers become
   double-quoted; ``string``/``int``/``float``/``binary`` become ``varchar``/``integer``/``real``/
   ``varbinary``; ``array<x>``, ``map<k,v>``, ``struct<a:t>`` become ``array(x)``, ``map(k, v)``,
   ``row(a t)``; ``PARTITIONED BY (c t)`` becomes a last column plus ``partitioned_by``;
   ``STORED AS PARQUET`` becomes ``format``; ``EXTERNAL ... LOCATION`` becomes
   ``external_location``; Hive's ``\\'`` string escape becomes ``''``.
4. Partition projection: Trino's Hive connector implements Athena's projection and stores the
   same metastore keys, but takes them as typed table/column properties
   (``partition_projection_*``) instead of ``TBLPROPERTIES`` strings: translated one to one, so
   the projection (format, range, location template) is really exercised.
   ``parquet.compression`` is a write-side hint; Trino reads the codec from the files: dropped.
5. Storage: ``s3://<lake>`` becomes ``local:///<folder>`` (Trino's native local file system),
   in the location and in ``storage.location.template`` alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pyspark.sql import types as T

from auditlake.tables import parse_type

# Keys of Athena's partition projection and how Trino spells them. Column keys are
# projection.<col>.<suffix>; table keys are listed in full.
_TABLE_PROJECTION = {
    "projection.enabled": "partition_projection_enabled",
    "storage.location.template": "partition_projection_location_template",
}
_COLUMN_PROJECTION = {
    "type": "partition_projection_type",
    "format": "partition_projection_format",
    "range": "partition_projection_range",
    "interval": "partition_projection_interval",
    "interval.unit": "partition_projection_interval_unit",
    "values": "partition_projection_values",
    "digits": "partition_projection_digits",
}
_DROPPED = {"parquet.compression"}


@dataclass
class AthenaTable:
    database: str
    name: str
    columns: list[tuple[str, str]] = field(default_factory=list)  # (name, hive type)
    partitions: list[tuple[str, str]] = field(default_factory=list)
    comment: str | None = None
    stored_as: str | None = None
    location: str = ""
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def is_delta(self) -> bool:
        return self.properties.get("table_type", "").upper() == "DELTA"


# --- a small scanner for the statements ddl.py generates --------------------------------------

_TOKEN = re.compile(r"\s*(?:(`[^`]*`)|('(?:\\.|[^'\\])*')|([A-Za-z_][A-Za-z0-9_]*)|(<|>|\(|\)|,|\.|=|:|;))")


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"cannot read Athena DDL near {text[pos : pos + 40]!r}")
        out.append(next(g for g in m.groups() if g is not None))
        pos = m.end()
    return out


def _unquote(tok: str) -> str:
    if tok.startswith("`"):
        return tok[1:-1]
    if tok.startswith("'"):
        return re.sub(r"\\(.)", r"\1", tok[1:-1])
    return tok


def split_statements(script: str) -> list[list[str]]:
    stmts, cur = [], []
    for tok in _tokens(script):
        if tok == ";":
            if cur:
                stmts.append(cur)
            cur = []
        else:
            cur.append(tok)
    if cur:
        stmts.append(cur)
    return stmts


class _Reader:
    def __init__(self, toks: list[str]):
        self.toks, self.i = toks, 0

    def peek(self, n: int = 0) -> str | None:
        j = self.i + n
        return self.toks[j] if j < len(self.toks) else None

    def word(self, *words: str) -> bool:
        """Consume the keywords ``words`` if they come next (case-insensitive)."""
        for k, w in enumerate(words):
            tok = self.peek(k)
            if tok is None or tok.upper() != w:
                return False
        self.i += len(words)
        return True

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise ValueError("unexpected end of statement")
        self.i += 1
        return tok

    def expect(self, tok: str) -> None:
        got = self.take()
        if got.upper() != tok.upper():
            raise ValueError(f"expected {tok!r}, got {got!r}")

    def type_text(self) -> str:
        """A Hive type, up to the next top-level ``,`` / ``)`` / ``COMMENT``."""
        depth, parts = 0, []
        while True:
            tok = self.peek()
            if tok is None:
                raise ValueError("unterminated column type")
            if depth == 0 and (tok in (",", ")") or tok.upper() == "COMMENT"):
                return "".join(parts)
            depth += {"<": 1, "(": 1, ">": -1, ")": -1}.get(tok, 0)
            parts.append(_unquote(tok))
            self.i += 1

    def column_list(self) -> list[tuple[str, str]]:
        self.expect("(")
        cols = []
        while True:
            name = _unquote(self.take())
            ctype = self.type_text()
            if self.word("COMMENT"):
                self.take()
            cols.append((name, ctype))
            if self.peek() == ",":
                self.i += 1
                continue
            self.expect(")")
            return cols


def parse_statement(toks: list[str]) -> AthenaTable | str:
    """An :class:`AthenaTable` for CREATE EXTERNAL TABLE; the database name for CREATE DATABASE."""
    r = _Reader(toks)
    if r.word("CREATE", "DATABASE"):
        r.word("IF", "NOT", "EXISTS")
        return _unquote(r.take())
    if not r.word("CREATE", "EXTERNAL", "TABLE"):
        raise ValueError(f"not a statement auditlake generates: {' '.join(toks[:6])}")
    r.word("IF", "NOT", "EXISTS")
    first = _unquote(r.take())
    if r.peek() == ".":
        r.i += 1
        table = AthenaTable(database=first, name=_unquote(r.take()))
    else:
        raise ValueError("table names must be qualified with their database")
    if r.peek() == "(":
        table.columns = r.column_list()
    while r.peek() is not None:
        if r.word("COMMENT"):
            table.comment = _unquote(r.take())
        elif r.word("PARTITIONED", "BY"):
            table.partitions = r.column_list()
        elif r.word("STORED", "AS"):
            table.stored_as = r.take().upper()
        elif r.word("LOCATION"):
            table.location = _unquote(r.take())
        elif r.word("TBLPROPERTIES"):
            r.expect("(")
            while True:
                key = _unquote(r.take())
                r.expect("=")
                table.properties[key] = _unquote(r.take())
                if r.peek() == ",":
                    r.i += 1
                    continue
                r.expect(")")
                break
        else:
            raise ValueError(f"{table.name}: unexpected {r.peek()!r} in Athena DDL")
    return table


# --- Trino spelling --------------------------------------------------------------------------


def trino_type(dtype: T.DataType) -> str:
    """Trino's DDL spelling of a type given in Hive/Athena DDL (parsed to a Spark type)."""
    simple = {
        T.StringType: "varchar",
        T.LongType: "bigint",
        T.IntegerType: "integer",
        T.ShortType: "smallint",
        T.ByteType: "tinyint",
        T.BooleanType: "boolean",
        T.DoubleType: "double",
        T.FloatType: "real",
        T.DateType: "date",
        T.BinaryType: "varbinary",
        T.TimestampType: "timestamp(3)",
    }
    for cls, name in simple.items():
        if isinstance(dtype, cls):
            return name
    if isinstance(dtype, T.DecimalType):
        return f"decimal({dtype.precision}, {dtype.scale})"
    if isinstance(dtype, T.ArrayType):
        return f"array({trino_type(dtype.elementType)})"
    if isinstance(dtype, T.MapType):
        return f"map({trino_type(dtype.keyType)}, {trino_type(dtype.valueType)})"
    if isinstance(dtype, T.StructType):
        return "row(" + ", ".join(f'"{f.name}" {trino_type(f.dataType)}' for f in dtype.fields) + ")"
    raise ValueError(f"no Trino spelling for {dtype}")


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def translate_location(uri: str, lake: str, local_root: str) -> str:
    """``<lake>/x`` (s3://) -> ``<local_root>/x`` (local:///...)."""
    lake = lake.rstrip("/")
    if not uri.startswith(lake):
        raise ValueError(f"location {uri!r} is outside the lake {lake!r}")
    return local_root.rstrip("/") + uri[len(lake) :]


def _projection_value(key: str, value: str) -> str:
    if key == "partition_projection_enabled":
        return "true" if value.strip().lower() == "true" else "false"
    if key in ("partition_projection_range", "partition_projection_values"):
        return "ARRAY[" + ", ".join(_lit(v.strip()) for v in value.split(",")) + "]"
    if key in ("partition_projection_interval", "partition_projection_digits"):
        return str(int(value))
    if key in ("partition_projection_type", "partition_projection_interval_unit"):
        return _lit(value.strip().upper())
    return _lit(value)


def to_trino(
    table: AthenaTable, lake: str, local_root: str, hive_catalog: str = "hive", delta_catalog: str = "delta"
) -> str:
    """One Trino statement for one generated Athena table (see the module docstring)."""
    location = translate_location(table.location, lake, local_root).rstrip("/")
    if table.is_delta:
        unknown = set(table.properties) - {"table_type"}
        if unknown or table.columns or table.partitions:
            raise ValueError(
                f"{table.name}: a native Delta table carries only table_type, got {sorted(unknown)}"
            )
        return (
            f"CALL {delta_catalog}.system.register_table(schema_name => {_lit(table.database)}, "
            f"table_name => {_lit(table.name)}, table_location => {_lit(location)})"
        )
    if table.stored_as != "PARQUET":
        raise ValueError(f"{table.name}: only Parquet external tables are generated, got {table.stored_as}")
    table_props = {"format": "'PARQUET'", "external_location": _lit(location)}
    column_props: dict[str, dict[str, str]] = {}
    part_names = {name for name, _ in table.partitions}
    for key, value in table.properties.items():
        if key in _DROPPED:
            continue
        if key in _TABLE_PROJECTION:
            trino_key = _TABLE_PROJECTION[key]
            if key == "storage.location.template":
                value = translate_location(value, lake, local_root)
            table_props[trino_key] = _projection_value(trino_key, value)
            continue
        m = re.fullmatch(r"projection\.([a-z0-9_]+)\.(.+)", key)
        if m and m.group(1) in part_names and m.group(2) in _COLUMN_PROJECTION:
            trino_key = _COLUMN_PROJECTION[m.group(2)]
            column_props.setdefault(m.group(1), {})[trino_key] = _projection_value(trino_key, value)
            continue
        raise ValueError(f"{table.name}: no Trino translation for table property {key!r}")
    if table.partitions:
        table_props["partitioned_by"] = "ARRAY[" + ", ".join(_lit(n) for n, _ in table.partitions) + "]"
    lines = []
    for name, htype in table.columns + table.partitions:
        line = f"  {_ident(name)} {trino_type(parse_type(htype))}"
        if name in column_props:
            line += " WITH (" + ", ".join(f"{k} = {v}" for k, v in column_props[name].items()) + ")"
        lines.append(line)
    comment = f"\nCOMMENT {_lit(table.comment)}" if table.comment else ""
    props = ",\n  ".join(f"{k} = {v}" for k, v in table_props.items())
    return (
        f"CREATE TABLE {hive_catalog}.{_ident(table.database)}.{_ident(table.name)} (\n"
        + ",\n".join(lines)
        + f"\n){comment}\nWITH (\n  {props}\n)"
    )


def translate_script(script: str, lake: str, local_root: str) -> list[tuple[str, str]]:
    """``[(object, trino_sql)]`` for a whole generated DDL script, in order."""
    out = []
    for toks in split_statements(script):
        parsed = parse_statement(toks)
        if isinstance(parsed, str):
            out.append((parsed, f"CREATE SCHEMA IF NOT EXISTS hive.{_ident(parsed)}"))
        else:
            out.append((parsed.name, to_trino(parsed, lake, local_root)))
    return out
