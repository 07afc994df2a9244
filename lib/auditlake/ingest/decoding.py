"""Decoding raw input without trusting it: JSON nesting measured before parsing, precise reasons.

Python's ``json`` module recurses once per nesting level (a Firehose envelope nested 5,000 deep
raised RecursionError in the workers and failed the run). ``scan_json`` measures the nesting
of a JSON text with a flat loop over a regular expression, so a decoder can refuse a value that
is too deep before handing it to ``json``. Spark's own JSON reader (Jackson) refuses more than
1,000 levels by itself; the CloudTrail source uses these helpers only to say why a file failed.
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass

# Deeper than any real log record (CloudTrail and CloudWatch Logs envelopes stay under 20 levels)
# and far below Python's recursion limit (json needs one frame per level).
MAX_JSON_DEPTH = 200
# Jackson's default nesting limit (StreamReadConstraints) inside Spark's JSON reader.
JACKSON_MAX_DEPTH = 1000
DEFAULT_MAX_RECORD_BYTES = 1 << 20

# A JSON string (escapes included) or one structural bracket; nothing else moves the depth.
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]')
_SCALAR = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[^\s\[\]{}]+')
_WS = " \t\r\n"


@dataclass(frozen=True)
class JsonSpan:
    """One top-level value of a JSON text: ``text[start:end]`` and its deepest nesting."""

    start: int
    end: int
    depth: int
    complete: bool  # False: the text ended before the value did


def scan_json(text: str, start: int = 0) -> JsonSpan:
    """Measure the top-level JSON value that starts at ``start`` (after white space), flatly.

    Only strings and brackets are looked at: a scalar value ends at the next white space or
    bracket, which is all a caller needs to find the next value. Never recurses.
    """
    pos = start
    while pos < len(text) and text[pos] in _WS:
        pos += 1
    if pos >= len(text):
        return JsonSpan(pos, pos, 0, False)
    if text[pos] not in "[{":
        m = _SCALAR.match(text, pos)
        end = m.end() if m else pos + 1
        return JsonSpan(pos, end, 0, True)
    depth = deepest = 0
    for m in _TOKENS.finditer(text, pos):
        token = m.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
            if depth <= 0:
                return JsonSpan(pos, m.end(), deepest, True)
        elif len(token) < 2 or token[-1] != '"' or _odd_backslashes_before_end(token):
            return JsonSpan(pos, len(text), deepest, False)  # an unterminated string
    return JsonSpan(pos, len(text), deepest, False)


def _odd_backslashes_before_end(token: str) -> bool:
    """Whether the closing quote of ``token`` is escaped (so the string never ended)."""
    n = 0
    i = len(token) - 2
    while i > 0 and token[i] == "\\":
        n += 1
        i -= 1
    return n % 2 == 1


def too_deep(depth: int, limit: int = MAX_JSON_DEPTH) -> str | None:
    """The quarantine reason for a value nested deeper than ``limit``, else None."""
    return f"JSON nested deeper than {limit} levels ({depth})" if depth > limit else None


def loads_flat(text: str, limit: int = MAX_JSON_DEPTH) -> object:
    """``json.loads`` for untrusted text: ValueError (with a specific message) instead of recursion."""
    span = scan_json(text)
    reason = too_deep(span.depth, limit)
    if reason:
        raise ValueError(reason)
    try:
        return json.loads(text)
    except RecursionError as exc:  # belt and braces: the scan should have refused it
        raise ValueError(f"JSON nested too deeply to parse ({span.depth} levels)") from exc


def gunzip_members(data: bytes) -> tuple[bytes, int, str | None]:
    """Inflate every gzip member of ``data``: ``(payload, members, problem)``.

    ``problem`` says why inflating stopped early (truncated, corrupt, trailing garbage); the
    payload then holds what the complete members gave.
    """
    out: list[bytes] = []
    members = 0
    rest = data
    while rest:
        if rest[:2] != b"\x1f\x8b":
            if members and not rest.strip(b"\x00"):
                break  # zero padding after the last member is tolerated, as gzip(1) does
            return (
                b"".join(out),
                members,
                "not gzip" if not members else "trailing bytes after the last gzip member",
            )
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            chunk = inflater.decompress(rest)
        except zlib.error as exc:
            return b"".join(out), members, f"corrupt gzip: {exc}"
        if not inflater.eof:
            out.append(chunk)
            return b"".join(out), members, "truncated gzip"
        out.append(chunk)
        members += 1
        rest = inflater.unused_data
    return b"".join(out), members, None


def json_shape_problem(
    text: str, *, max_record_bytes: int, depth_limit: int = JACKSON_MAX_DEPTH
) -> str | None:
    """Why a CloudTrail file's text is not ``{"Records": [<object>, ...]}`` (one or more of them).

    None when every document has that shape and every record fits the size limit (the caller
    then reports a generic reason). Checks, in order: nesting, JSON syntax, top-level type,
    ``Records`` type, record types, record sizes.
    """
    pos, doc = 0, 0
    while True:
        span = scan_json(text, pos)
        if span.start >= len(text):
            return None if doc else "empty JSON text"
        doc += 1
        where = f" (document {doc})" if doc > 1 else ""
        reason = too_deep(span.depth, depth_limit)
        if reason:
            return reason + where
        piece = text[span.start : span.end]
        try:
            value = json.loads(piece)
        except RecursionError:
            return f"JSON nested too deeply to parse{where}"
        except ValueError:
            return f"invalid JSON{where}"
        if not isinstance(value, dict):
            return f"top-level JSON value is {_kind(value)}, not an object with Records{where}"
        records = value.get("Records")
        if "Records" not in value:
            return f"no Records array{where}"
        if not isinstance(records, list):
            return f"Records is {_kind(records)}, not an array{where}"
        for i, record in enumerate(records):
            if not isinstance(record, dict):
                return f"Records is not an array of JSON objects{where}"
            size = len(json.dumps(record, ensure_ascii=False).encode("utf-8"))
            if size > max_record_bytes:
                return f"record {i} is {size} bytes, over the {max_record_bytes}-byte record limit{where}"
        pos = span.end


def _kind(value: object) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )
