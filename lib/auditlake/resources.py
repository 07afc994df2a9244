"""Locate the data files that ship with the package: table schemas, quality suites, config, detections.

The same code runs from a source checkout (``lib/`` on the path, files at the repo root),
from an installed package, and from ``dist/auditlake.zip`` on EMR (``--py-files``) or Glue
(``--extra-py-files``), where the files live inside the package as ``auditlake/_data/``.
"""

from __future__ import annotations

import json
import os
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

_REPO_ROOT = Path(__file__).resolve().parents[2]


def _repo_dir(kind: str) -> Path | None:
    override = os.environ.get("AUDITLAKE_HOME")
    if override:
        candidate = Path(override) / kind
        if candidate.is_dir():
            return candidate
    # Only a source checkout (pyproject.toml beside lib/); an installed package reads its own copy.
    if (_REPO_ROOT / "pyproject.toml").is_file() and (_REPO_ROOT / kind).is_dir():
        return _REPO_ROOT / kind
    return None


def read_text(kind: str, name: str) -> str:
    """Return the text of ``<kind>/<name>`` (kind is ``schemas``, ``conf``, ``quality``, ``queries`` or ``detections``)."""
    repo = _repo_dir(kind)
    if repo is not None and (repo / name).is_file():
        return (repo / name).read_text(encoding="utf-8")
    packaged = resources.files("auditlake").joinpath("_data", kind, name)
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    raise FileNotFoundError(f"{kind}/{name} not found in {repo or _REPO_ROOT} or in the auditlake package")


def exists(kind: str, name: str) -> bool:
    try:
        read_text(kind, name)
    except FileNotFoundError:
        return False
    return True


def list_names(kind: str, suffix: str = "") -> list[str]:
    """Names of the files under ``kind`` (sorted), from the checkout or the packaged copy."""
    repo = _repo_dir(kind)
    if repo is not None:
        return sorted(p.name for p in repo.iterdir() if p.is_file() and p.name.endswith(suffix))
    packaged = resources.files("auditlake").joinpath("_data", kind)
    return sorted(p.name for p in packaged.iterdir() if p.name.endswith(suffix))


@cache
def load_yaml(kind: str, name: str) -> Any:
    return yaml.safe_load(read_text(kind, name))


@cache
def load_json(kind: str, name: str) -> Any:
    return json.loads(read_text(kind, name))
