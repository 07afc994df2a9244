"""Per-environment settings: ``conf/base.yaml`` overlaid with ``conf/<env>.yaml``.

The command line carries only what changes per run; everything else is here.
``AUDITLAKE_CONF__a__b=value`` environment variables override ``a.b`` (used by tests
to point s3a at a loopback S3 server without writing files).
"""

from __future__ import annotations

import copy
import os
from typing import Any

import yaml

from auditlake import resources
from auditlake.errors import ConfigError

ENVIRONMENTS = ("local", "emr", "glue")
_ENV_PREFIX = "AUDITLAKE_CONF__"


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``override`` merged in, recursively for nested mappings."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# A mapping whose keys are dotted names themselves (Spark's settings): a key below it is one key.
_OPAQUE_PREFIX = ("spark", "conf")


def split_key(dotted: str) -> list[str]:
    """``a.b.c`` -> ``[a, b, c]``; below ``spark.conf`` the rest is one key (``spark.conf.spark.x.y``
    -> ``[spark, conf, spark.x.y]``), since Spark's own settings are dotted names."""
    parts = dotted.split(".")
    n = len(_OPAQUE_PREFIX)
    if len(parts) > n + 1 and tuple(parts[:n]) == _OPAQUE_PREFIX:
        return [*parts[:n], ".".join(parts[n:])]
    return parts


def _set_path(cfg: dict[str, Any], dotted: list[str], value: Any) -> None:
    node = cfg
    for part in dotted[:-1]:
        node = node.setdefault(part, {})
    node[dotted[-1]] = value


def load_config(env: str = "local", overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Load base config, the environment's overrides, env-var overrides, then ``overrides``."""
    if env not in ENVIRONMENTS:
        raise ConfigError(f"unknown --env {env!r}: expected one of {', '.join(ENVIRONMENTS)}")
    try:
        cfg = resources.load_yaml("conf", "base.yaml") or {}
        cfg = deep_merge(cfg, resources.load_yaml("conf", f"{env}.yaml") or {})
    except (FileNotFoundError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot load configuration for env {env!r}: {exc}") from exc
    for name, raw in sorted(os.environ.items()):
        if name.startswith(_ENV_PREFIX):
            parts = [p for p in name[len(_ENV_PREFIX) :].split("__") if p]
            dotted = [p.lower() for p in parts]
            if tuple(dotted[: len(_OPAQUE_PREFIX)]) == _OPAQUE_PREFIX:
                # A Spark setting's name is case-sensitive (..__SPARK__CONF__spark.sql.codegen.wholeStage).
                dotted[len(_OPAQUE_PREFIX) :] = parts[len(_OPAQUE_PREFIX) :]
            if dotted:
                _set_path(cfg, dotted, yaml.safe_load(raw))
    cfg = deep_merge(cfg, overrides or {})
    cfg["env"] = env
    return cfg


def get(cfg: dict[str, Any], dotted: str, default: Any = None) -> Any:
    """``get(cfg, "a.b.c")``: a nested value or ``default``. Paths split as ``--conf`` and the
    environment's overrides do (:func:`split_key`): ``spark.conf.spark.driver.memory`` is one Spark
    setting."""
    node: Any = cfg
    for part in split_key(dotted):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node
