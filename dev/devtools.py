"""Helpers the development tools share: the checkout's root, its Python, loopback ports, job environments.

``dev/`` is on ``PYTHONPATH`` for every make target and for pytest (``pythonpath`` in pyproject.toml), so
the tools import each other as top-level modules (``devtools``, ``synth``, ``bench``, ``athena_check``)
and import the product as ``auditlake``. Nothing here ships in the wheel or in ``dist/auditlake.zip``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_VENV_PYTHON = REPO / ".venv" / "bin" / "python"
PYTHON = str(_VENV_PYTHON) if _VENV_PYTHON.exists() else sys.executable


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 90) -> None:
    """Wait until ``proc`` accepts connections on 127.0.0.1:``port``; fail early if it exits."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{what} did not open port {port} in {timeout}s")


def job_env(**extra: str) -> dict[str, str]:
    """The environment a job or tool subprocess runs in: this checkout's ``lib`` and ``dev`` first."""
    env = dict(os.environ)
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(REPO / "lib"), str(REPO / "dev")]),
            "PYSPARK_PYTHON": PYTHON,
            "PYSPARK_DRIVER_PYTHON": PYTHON,
            "GX_ANALYTICS_ENABLED": "False",
        }
    )
    env.update(extra)
    return env
