"""A throwaway single-node Trino server on 127.0.0.1, for checking what auditlake hands to Athena.

Athena (engine v3) is Trino underneath; this starts the real Trino release that ``mk/trino.mk``
fetched once from Maven Central into ``.trino/`` (ignored), with two catalogs over one local
folder (``root``):

- ``hive``: Hive connector, file metastore, native local file system: the Parquet aggregates
  (Athena external tables);
- ``delta``: Delta Lake connector, file metastore, native local file system, with the
  ``register_table`` procedure enabled: the Delta tables (Athena native Delta tables).

Both catalogs see ``root`` as ``local:///``; a table at ``root/lake/x`` has the location
``local:///lake/x``. Both catalogs share one file metastore in ``root/_metastore`` (as Athena has one Data Catalog).

Use as a context manager: the server is started, waited for, and always stopped (its whole
process group is killed if it does not stop by itself), also when the body raises.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

from devtools import REPO, free_port

log = logging.getLogger(__name__)

# Kept in step with TRINO_VERSION in mk/trino.mk.
TRINO_VERSION = "476"
TRINO_HOME = REPO / ".trino" / f"trino-server-{TRINO_VERSION}"
# Trino 476 requires a JDK 24 or newer to start; the machine's default JDK is 17 (Spark's).
JAVA_HOME_CANDIDATES = ("/usr/lib/jvm/temurin-25-jdk-amd64",)

# Only the two plugins the check uses are loaded: loading all ~50 bundled plugins costs
# startup time and heap on a 2-core machine.
PLUGINS = ("hive", "delta-lake")

JVM_OPTIONS = [
    "-server",
    "-Xmx2G",
    "-XX:InitialRAMPercentage=5",
    "-XX:+UseG1GC",
    "-XX:G1HeapRegionSize=32M",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:+ExitOnOutOfMemoryError",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:ReservedCodeCacheSize=256M",
    "-XX:PerMethodRecompilationCutoff=10000",
    "-XX:PerBytecodeRecompilationCutoff=10000",
    "-XX:TieredStopAtLevel=1",  # short-lived server: C1 only, faster start on 2 cores
    "-XX:ActiveProcessorCount=2",
    "-Djdk.attach.allowAttachSelf=true",
    "-Djdk.nio.maxCachedBufferSize=2000000",
    "-Dfile.encoding=UTF-8",
    "-XX:+EnableDynamicAgentLoading",
]


def java_home() -> Path:
    env = os.environ.get("TRINO_JAVA_HOME")
    for cand in ([env] if env else []) + list(JAVA_HOME_CANDIDATES):
        if cand and (Path(cand) / "bin" / "java").exists():
            return Path(cand)
    raise RuntimeError(
        f"Trino {TRINO_VERSION} needs JDK 24+; set TRINO_JAVA_HOME (tried {', '.join(JAVA_HOME_CANDIDATES)})"
    )


def _props(path: Path, values: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")


def catalog_properties(root: Path) -> dict[str, dict[str, object]]:
    """Catalog files for Trino 476 (property names checked against that release's jars)."""
    local = {"fs.native-local.enabled": "true", "local.location": str(root.resolve())}
    return {
        "hive": {
            "connector.name": "hive",
            "hive.metastore": "file",
            "hive.metastore.catalog.dir": "local:///_metastore",
            **local,
            # Athena reads Parquet by column name; Trino's Hive connector defaults to the same.
            "hive.parquet.use-column-names": "true",
            "hive.non-managed-table-writes-enabled": "false",
            # Athena's partition projection, implemented by Trino's Hive connector.
            "hive.partition-projection-enabled": "true",
            # Athena answers a projected day with no folder as empty; Trino fails the query unless
            # told to skip absent partition locations, the same semantics.
            "hive.ignore-absent-partitions": "true",
            # One metastore for both catalogs, as Athena has one Data Catalog: the Hive
            # connector hands Delta tables over to the delta catalog.
            "hive.delta-lake-catalog-name": "delta",
        },
        "delta": {
            "connector.name": "delta_lake",
            "hive.metastore": "file",
            "hive.metastore.catalog.dir": "local:///_metastore",
            **local,
            "delta.register-table-procedure.enabled": "true",
        },
    }


def write_config(etc: Path, data: Path, root: Path, port: int) -> None:
    if etc.exists():
        shutil.rmtree(etc)
    _props(
        etc / "node.properties",
        {
            "node.environment": "athenacheck",
            "node.id": str(uuid.uuid4()),
            "node.data-dir": data,
            "node.bind-ip": "127.0.0.1",
            "node.internal-address": "127.0.0.1",
        },
    )
    _props(
        etc / "config.properties",
        {
            "coordinator": "true",
            "node-scheduler.include-coordinator": "true",
            "http-server.http.port": port,
            "discovery.uri": f"http://127.0.0.1:{port}",
            "query.max-memory": "1GB",
            "query.max-memory-per-node": "768MB",
            "task.concurrency": 2,
            "plugin.dir": etc.parent / "plugin",
            "catalog.management": "static",
            "http-server.log.enabled": "false",
        },
    )
    (etc / "jvm.config").write_text("\n".join(JVM_OPTIONS) + "\n", encoding="utf-8")
    _props(etc / "log.properties", {"io.trino": "INFO", "io.airlift": "WARN"})
    for name, props in catalog_properties(root).items():
        _props(etc / "catalog" / f"{name}.properties", props)


def _link_plugins(dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in PLUGINS:
        (dest / name).symlink_to(TRINO_HOME / "plugin" / name, target_is_directory=True)


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/info", timeout=2) as resp:
            body = resp.read().decode()
    except OSError:
        return False
    return '"starting":false' in body.replace(" ", "")


def _kill_group(proc: subprocess.Popen, grace: float) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


class TrinoServer:
    """Handle on a running server: ``port``, ``log_path`` and a DB-API ``connect()``."""

    def __init__(self, port: int, log_path: Path):
        self.port = port
        self.log_path = log_path

    def connect(self, catalog: str = "hive", schema: str | None = None):
        import trino  # dev dependency, pinned in pyproject.toml

        return trino.dbapi.connect(
            host="127.0.0.1",
            port=self.port,
            user="auditlake",
            catalog=catalog,
            schema=schema,
            http_scheme="http",
        )

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextlib.contextmanager
def trino_server(root: Path, workdir: Path, start_timeout: float = 240.0) -> Iterator[TrinoServer]:
    """Start Trino over ``root`` (configs and logs in ``workdir``); stop it on exit, always."""
    if not (TRINO_HOME / "lib").is_dir():
        raise RuntimeError(f"{TRINO_HOME} is missing: run `make trino-fetch` first")
    root, workdir = root.resolve(), workdir.resolve()
    root.mkdir(parents=True, exist_ok=True)
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    etc, data = workdir / "etc", workdir / "data"
    write_config(etc, data, root, port)
    _link_plugins(workdir / "plugin")
    log_path = workdir / "server.log"
    jhome = java_home()
    env = dict(os.environ, JAVA_HOME=str(jhome), PATH=f"{jhome / 'bin'}:{os.environ.get('PATH', '')}")
    cmd = [str(TRINO_HOME / "bin" / "launcher"), "run", f"--etc-dir={etc}", f"--data-dir={data}"]
    started = time.monotonic()
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=TRINO_HOME, start_new_session=True
        )
    server = TrinoServer(port, log_path)
    try:
        while not _ready(port):
            if proc.poll() is not None:
                raise RuntimeError(
                    f"Trino exited with {proc.returncode} while starting:\n{server.log_tail()}"
                )
            if time.monotonic() - started > start_timeout:
                raise RuntimeError(f"Trino not ready after {start_timeout:.0f}s:\n{server.log_tail()}")
            time.sleep(1)
        log.info("Trino %s ready on 127.0.0.1:%d in %.1fs", TRINO_VERSION, port, time.monotonic() - started)
        yield server
    finally:
        _kill_group(proc, grace=20)
        log.info("Trino stopped (exit %s)", proc.returncode)
