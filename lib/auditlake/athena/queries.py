"""The audit query pack: ``queries/*.sql``, one question per file, in Athena's (Trino) dialect.

Parameter convention: each file declares its parameters in its header comment,

    -- @param <name> <type>[=<default>]  <description>

and uses them as ``{{name}}`` in the SQL. Types: ``string``, ``date`` (``YYYY-MM-DD``, or the
default ``yesterday`` = ``current_date - INTERVAL '1' DAY``), ``int``, ``string_list``. Values
are rendered as typed SQL literals (``'it''s'``, ``DATE '2024-01-31'``, ``42``,
``ARRAY['a', 'b']``), never pasted as raw text, so a value cannot change a query's shape.
Tables are named without a database: run the queries with the auditlake database selected
(Athena's "Database" in the console, ``QueryExecutionContext.Database`` in the API).
Every query filters on its table's partition column.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from auditlake import resources

_PARAM = re.compile(r"^--\s*@param\s+([a-z_][a-z0-9_]*)\s+([a-z_]+)(?:=(\S+))?\s*(.*)$")
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")
TYPES = ("string", "date", "int", "string_list")


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    default: str | None
    description: str


@dataclass(frozen=True)
class Query:
    name: str
    sql: str
    params: tuple[Param, ...]


def list_queries() -> list[str]:
    return [n.removesuffix(".sql") for n in resources.list_names("queries", ".sql")]


def load_query(name: str) -> Query:
    sql = resources.read_text("queries", f"{name}.sql")
    params = []
    for line in sql.splitlines():
        m = _PARAM.match(line.strip())
        if m:
            if m.group(2) not in TYPES:
                raise ValueError(f"queries/{name}.sql: unknown parameter type {m.group(2)!r}")
            params.append(Param(m.group(1), m.group(2), m.group(3), m.group(4).strip()))
    declared = {p.name for p in params}
    used = set(_PLACEHOLDER.findall(sql))
    if used != declared:
        raise ValueError(
            f"queries/{name}.sql: parameters used {sorted(used)} but declared {sorted(declared)}"
        )
    return Query(name, sql, tuple(params))


def _string(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def literal(param: Param, value: Any) -> str:
    """The SQL literal for one parameter value."""
    if param.type == "string":
        return _string(value)
    if param.type == "date":
        if value == "yesterday":
            return "(current_date - INTERVAL '1' DAY)"
        day = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
        return f"DATE '{day.isoformat()}'"
    if param.type == "int":
        return str(int(value))
    if param.type == "string_list":
        items = [value] if isinstance(value, str) else list(value)
        if not items:
            raise ValueError(f"{param.name}: an empty list")
        return "ARRAY[" + ", ".join(_string(v) for v in items) + "]"
    raise ValueError(f"unknown parameter type {param.type}")


def render(query: Query, values: dict[str, Any]) -> str:
    """The query's SQL with every ``{{name}}`` replaced by a literal; comments kept."""
    unknown = set(values) - {p.name for p in query.params}
    if unknown:
        raise ValueError(f"{query.name}: unknown parameters {sorted(unknown)}")
    rendered = {}
    for p in query.params:
        if p.name in values:
            rendered[p.name] = literal(p, values[p.name])
        elif p.default is not None:
            rendered[p.name] = literal(p, p.default)
        else:
            raise ValueError(f"{query.name}: missing parameter {p.name}")
    return _PLACEHOLDER.sub(lambda m: rendered[m.group(1)], query.sql)
