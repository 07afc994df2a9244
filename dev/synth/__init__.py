"""Deterministic synthetic raw logs of all three sources, with a manifest of what was planted.

``generate(out, scale=1.0, seed=7)`` writes ``out/cloudtrail``, ``out/s3access``, ``out/crawler``
(each a source root for its ingest job) and ``out/manifest.json``: per source the counts an ingest
run should report (records read, loaded, quarantined, duplicates; objects skipped) and exactly which
objects and records were planted as malformed, late or duplicate. Same seed and scale, same bytes.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from synth import cloudtrail, crawler, s3_access

log = logging.getLogger(__name__)

# 2: a truncated S3 access line always leaves a quote open; 3: a one-day crawler set has no export.
GENERATOR_VERSION = 3
FIRST_DAY = dt.date(2024, 3, 4)
N_DAYS = 3
SOURCES = {"cloudtrail": cloudtrail.generate, "s3access": s3_access.generate, "crawler": crawler.generate}


def window(n_days: int = N_DAYS, first_day: dt.date = FIRST_DAY) -> list[dt.date]:
    return [first_day + dt.timedelta(days=i) for i in range(n_days)]


def generate(
    out: str | Path,
    *,
    scale: float = 1.0,
    seed: int = 7,
    sources: tuple[str, ...] = tuple(SOURCES),
    n_days: int = N_DAYS,
    first_day: dt.date = FIRST_DAY,
    s3_lines_per_object: int = s3_access.MEAN_LINES_PER_OBJECT,
) -> dict[str, Any]:
    """Write the raw logs and the manifest under ``out`` (replacing what was there); return the manifest.

    ``s3_lines_per_object``: the S3 access-log objects' mean size in lines (``s3_access.generate``).
    """
    out = Path(out)
    days = window(n_days, first_day)
    manifest: dict[str, Any] = {
        "generator": "synth",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "scale": scale,
        "window": {"first_day": days[0].isoformat(), "last_day": days[-1].isoformat()},
        "s3_lines_per_object": s3_lines_per_object,
        "sources": {},
    }
    out.mkdir(parents=True, exist_ok=True)
    for name in sources:
        root = out / name
        if root.exists():
            shutil.rmtree(root)
        t = time.monotonic()
        extra = {"lines_per_object": s3_lines_per_object} if name == "s3access" else {}
        section = SOURCES[name](root, seed=seed, scale=scale, days=days, **extra)
        section["bytes"] = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        manifest["sources"][name] = section
        log.info("generated %s in %.1fs: %s", name, time.monotonic() - t, section["expected"])
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def load_manifest(out: str | Path) -> dict[str, Any]:
    return json.loads((Path(out) / "manifest.json").read_text())
