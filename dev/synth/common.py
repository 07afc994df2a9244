"""Helpers every synthetic-log writer shares: seeded ids, deterministic files, the manifest."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import os
import random
import string
import uuid
from pathlib import Path
from typing import Any

ALNUM = string.ascii_letters + string.digits
HEX_UPPER = "0123456789ABCDEF"
UTC = dt.UTC


class Rng(random.Random):
    """``random.Random`` with the id shapes AWS logs use. Seeded from a string: stable across runs."""

    def uuid4(self) -> str:
        return str(uuid.UUID(int=self.getrandbits(128), version=4))

    def chars(self, n: int, alphabet: str = ALNUM) -> str:
        return "".join(self.choices(alphabet, k=n))

    def hex_upper(self, n: int) -> str:
        return self.chars(n, HEX_UPPER)

    def hex_lower(self, n: int) -> str:
        return f"{self.getrandbits(4 * n):0{n}x}"

    def b64(self, n: int) -> str:
        return self.chars(n, ALNUM + "+/")

    def weighted(self, table: list[tuple[Any, float]]) -> Any:
        items, weights = zip(*table, strict=False)
        return self.choices(items, weights=weights, k=1)[0]


def seeded(seed: int, name: str) -> Rng:
    return Rng(f"auditlake-synth:{seed}:{name}")


def gzip_bytes(data: bytes) -> bytes:
    """gzip with a zero header timestamp and no file name, so equal input gives equal bytes."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=6) as gz:
        gz.write(data)
    return buf.getvalue()


def write_object(root: Path, rel: str, data: bytes, modified: dt.datetime) -> None:
    """Write one object at ``root/rel`` with its last-modified time set to the delivery time."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    ts = modified.replace(tzinfo=UTC).timestamp()
    os.utime(path, (ts, ts))


def iso_z(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_ms_z(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def day_counts_add(counts: dict[str, int], day: dt.date, n: int = 1) -> None:
    key = day.isoformat()
    counts[key] = counts.get(key, 0) + n


def scaled(base: float, scale: float, minimum: int = 1) -> int:
    return max(minimum, int(round(base * scale)))
