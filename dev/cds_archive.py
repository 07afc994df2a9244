"""Build the JVM class-data-sharing archive that local Spark sessions start from (``make setup``).

A local job is a fresh JVM that loads and verifies some ten thousand classes of Spark, Scala,
Hadoop and Delta before its first query (the pinned jars are on the local driver's class path,
``session.local_jar_conf``, so the archive covers them). A dynamic CDS archive (JDK 13+) holds
those classes already parsed and verified: the JVM maps the file and skips that work. The archive is written by
one real run at its exit (``-XX:ArchiveClassesAtExit``): the nightly pipeline over the bundled
demo logs into a throw-away lake, so it holds what the ingests, the quality gate and the
aggregates load. ``conf/local.yaml``'s ``spark.cds_archive`` points local sessions at it.

The archive is specific to the JDK build and to the JVM's class path (pyspark's jars and the
pinned ones): ``make`` rebuilds it when the virtualenv, the pinned jars, ``session.py`` or this
script change. A JVM given an archive it cannot use says so on stderr and starts without it;
nothing else changes. EMR and Glue start their own JVMs
and never use it.

    python dev/cds_archive.py jvm/cds/auditlake.jsa
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def java_options() -> str:
    """The local driver JVM options of ``conf/local.yaml``, without an archive to start from."""
    sys.path.insert(0, str(REPO / "lib"))
    from auditlake.config import get, load_config

    return str(get(load_config("local"), "spark.driver_java_options") or "")


def build(out: Path) -> int:
    out = out if out.is_absolute() else REPO / out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="auditlake-cds-") as tmp:
        partial = Path(tmp) / "archive.jsa"
        raw = REPO / "demo" / "raw"
        options = f"{java_options()} -XX:ArchiveClassesAtExit={partial}".strip()
        command = [
            sys.executable,
            str(REPO / "jobs" / "run_pipeline.py"),
            "--lake",
            str(Path(tmp) / "lake"),
            "--cloudtrail-source",
            str(raw / "cloudtrail"),
            "--s3-access-source",
            str(raw / "s3access"),
            "--crawler-source",
            str(raw / "crawler"),
            "--run-id",
            "cds-archive",
            # Dumping on top of another dynamic archive is refused: start from the JDK's own.
            "--conf",
            "spark.cds_archive=",
            "--conf",
            f"spark.driver_java_options={options}",
        ]
        started = time.monotonic()
        done = subprocess.run(command, cwd=REPO, env=_clean_env(), capture_output=True, text=True)
        # The JVM writes the archive as it exits, which can be after the Python driver has: a
        # truncated archive is not refused but crashes every JVM that maps it (SIGBUS).
        jvm_gone = _wait_for_jvm(str(partial))
        problem = (
            f"the pipeline run exited {done.returncode}"
            if done.returncode
            else "its JVM did not exit"
            if not jvm_gone
            else "it wrote no archive"
            if not partial.is_file()
            else check(partial)
        )
        if problem:
            sys.stderr.write(done.stderr[-4000:])
            print(f"cds_archive: {problem}; local jobs start without an archive", file=sys.stderr)
            return 1
        # Renamed into place whole: a JVM starting meanwhile maps either the old file or the new
        # one, and one running keeps the file it mapped (writing over it in place would not).
        staged = out.with_suffix(".partial")
        shutil.copyfile(partial, staged)
        staged.replace(out)
    print(
        f"cds_archive: {out.relative_to(REPO)} ({out.stat().st_size // 2**20} MB) in {time.monotonic() - started:.0f}s"
    )
    return 0


def _clean_env() -> dict[str, str]:
    """This environment without a parent PySpark's gateway: the child starts a JVM of its own."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK_GATEWAY")}


def _wait_for_jvm(marker: str, timeout: float = 300.0) -> bool:
    """Wait until no process has ``marker`` on its command line (the dumping JVM has exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(marker in cmdline for cmdline in _command_lines()):
            return True
        time.sleep(0.5)
    return False


def _command_lines() -> list[str]:
    lines = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            lines.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue  # gone meanwhile, or not ours to read
    return lines


CHECK = """
import sys
sys.path.insert(0, {lib!r})
from auditlake.config import load_config
from auditlake.session import build_session
spark = build_session(load_config("local", {{"spark": {{"cds_archive": "", "driver_java_options": {options!r}}}}}), "cds-check")
assert spark.range(100).selectExpr("sum(id)").first()[0] == 4950
spark.stop()
"""


def check(archive: Path, class_log: Path | None = None) -> str | None:
    """Why ``archive`` is not usable by a local session, or None: a session started with
    ``-Xshare:on`` (the JVM refuses to start rather than run without it) runs one query.

    ``class_log``: also log each class the session's JVM loads, with where from, to that file.
    """
    options = f"{java_options()} -XX:SharedArchiveFile={archive} -Xshare:on".strip()
    if class_log is not None:
        options += f" -Xlog:class+load=info:file={class_log}"
    code = CHECK.format(lib=str(REPO / "lib"), options=options)
    # Run from a directory of its own: a JVM that crashes on a bad archive writes its
    # hs_err_pid*.log into the working directory, which must not be the repository.
    with tempfile.TemporaryDirectory(prefix="auditlake-cds-check-") as cwd:
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=cwd, env=_clean_env(), capture_output=True, text=True
        )
    if done.returncode == 0:
        return None
    return f"a local session could not start from it (exit {done.returncode}): {done.stderr.strip()[-1500:]}"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    raise SystemExit(build(Path(sys.argv[1])))
