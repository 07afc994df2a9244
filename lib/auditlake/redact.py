"""Remove user info (``scheme://user:secret@host``) from URIs before they are logged or stored.

One pattern, used at every edge: command-line arguments, log records, error lines, run records,
quarantine and ledger object URIs. It errs on the side of removing too much: an AWS secret key
may hold an unencoded ``/``, so once a ``:`` appears in the authority everything up to the next
``@`` counts as user info (``http://host:80/a@b`` loses ``host:80/a@``; no bucket name or S3 key
looks like that).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import pyspark.sql.functions as F
from pyspark.sql import Column

# Same text as a Python and a Java regex: the scheme, then user info (with or without a
# password) up to the '@' that ends it.
USERINFO_PATTERN = r"(?i)\b([a-z][a-z0-9+.\-]*://)(?:[^\s/@:]*:[^\s@]*|[^\s/@:]*)@"
_USERINFO = re.compile(USERINFO_PATTERN)


def redact(text: str | None) -> str | None:
    """``text`` with the user info of every URI in it removed (None stays None)."""
    if not text or "@" not in text:
        return text
    return _USERINFO.sub(r"\1", text)


def has_userinfo(text: str | None) -> bool:
    """Whether ``text`` holds a URI with user info."""
    return bool(text) and _USERINFO.search(text) is not None


def error_line(exc: BaseException, limit: int = 500) -> str:
    """One redacted line for an exception: its first line, or the Java exception's for Py4J errors."""
    text = str(exc).strip() or type(exc).__name__
    first = text.splitlines()[0]
    # Py4J errors carry the whole JVM stack; keep the Java exception's own message.
    if "Py4JJavaError" in type(exc).__name__ or first.startswith("An error occurred while calling"):
        java = getattr(exc, "java_exception", None)
        if java is not None:
            try:
                first = str(java.toString()).splitlines()[0]
            except Exception:  # noqa: BLE001 - the JVM may be gone; keep Python's line
                pass
    return redact(first[:limit]) or ""


def redact_col(col: Column) -> Column:
    """``redact`` as a Spark Column expression (object URIs in table rows)."""
    return F.regexp_replace(col, USERINFO_PATTERN, "$1")


class RedactingFilter(logging.Filter):
    """A handler filter that redacts the formatted message of every record it passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is logging's problem, not ours
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None and has_userinfo(str(record.exc_info[1])):
            # The traceback would print the exception text again: keep only the redacted line.
            record.msg = f"{clean} ({type(record.exc_info[1]).__name__}: {redact(str(record.exc_info[1]))})"
            record.exc_info, record.exc_text = None, None
        return True


def install_log_filter(logger: logging.Logger | None = None) -> None:
    """Put ``RedactingFilter`` on every handler of ``logger`` (the root logger by default)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def redact_args(values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Redact every string value of ``values`` (parsed arguments); also name the keys changed."""
    out: dict[str, Any] = {}
    changed: list[str] = []
    for key, value in values.items():
        if isinstance(value, str) and has_userinfo(value):
            out[key] = redact(value)
            changed.append(key)
        elif isinstance(value, list) and any(isinstance(v, str) and has_userinfo(v) for v in value):
            out[key] = [redact(v) if isinstance(v, str) else v for v in value]
            changed.append(key)
        else:
            out[key] = value
    return out, changed
