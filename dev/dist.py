"""Build the deployable artifacts into dist/ (``make package``; ``make package-emr`` adds the EMR archive).

dist/ after ``make package``:

- ``auditlake-<version>-py3-none-any.whl``: the package with its schemas, conf and query pack
  inside (``auditlake/_data/``) and the ``auditlake`` console command;
- ``auditlake.zip``: the same package as a plain zip for ``--extra-py-files`` (Glue) and
  ``--py-files`` (EMR); a zip on the Python path needs no ``pip``;
- ``jobs/*.py``: the job scripts (Glue's ``ScriptLocation``, spark-submit's main file);
- ``requirements-glue.txt``: what Glue 5.1 lacks, pinned, for ``--additional-python-modules``;
- with ``--jars``: ``jars/auditlake-logstore.jar``, our DynamoDB-backed Delta log store for S3
  (``dev.auditlake.delta.DynamoDBLogStore``), built by Maven from ``jvm/logstore``; it holds only
  our classes (Glue and EMR carry delta-storage, the Hadoop client and the AWS SDK v1).

``--emr-archive`` also writes ``auditlake-pyenv.tar.gz``: a relocatable Python 3.11 virtualenv
(venv-pack) with the wheel and its dependencies except pyspark, for EMR 7, whose ``python3`` is
3.9. Pass it with ``--archives s3://.../auditlake-pyenv.tar.gz#environment`` and
``PYSPARK_PYTHON=./environment/bin/python``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "dev"))

from auditlake.logstore import LOG_STORE_JAR  # noqa: E402
from package import build as build_zip  # noqa: E402 - dev/package.py builds the zip

# The platform brings these: pyspark is the runtime itself; Delta comes from
# `--datalake-formats delta` (Glue) or the cluster's delta-defaults (EMR); Glue 5.1 lists boto3
# and PyYAML among the Python modules it already provides.
GLUE_PROVIDED = {"pyspark", "delta-spark", "boto3", "pyyaml"}
# EMR 7's Python lacks everything but pyspark; the archive carries the rest. delta-spark is only
# Python glue over the cluster's Delta jar, installed without its pyspark dependency.
EMR_PROVIDED = {"pyspark"}
EMR_NO_DEPS = {"delta-spark"}
ARCHIVE_NAME = "auditlake-pyenv.tar.gz"
LOGSTORE_MODULE = REPO / "jvm" / "logstore"


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def dependencies() -> list[str]:
    """The runtime dependencies declared in pyproject.toml."""
    with (REPO / "pyproject.toml").open("rb") as fh:
        return list(tomllib.load(fh)["project"]["dependencies"])


def glue_requirements() -> list[str]:
    """What Glue 5.1 lacks, exactly as pinned in pyproject.toml (a range is refused: Glue installs what it is told)."""
    out = [r for r in dependencies() if _name(r) not in GLUE_PROVIDED]
    loose = [r for r in out if "==" not in r]
    if loose:
        raise SystemExit(f"pin these for Glue (==): {', '.join(loose)}")
    return out


def build_wheel(dist: Path) -> Path:
    for old in dist.glob("auditlake-*.whl"):
        old.unlink()
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(REPO)], check=True
    )
    (wheel,) = dist.glob("auditlake-*.whl")
    return wheel


def build(dist: Path) -> dict[str, Path]:
    """Write the wheel, the zip, the job scripts and the Glue requirements into ``dist``."""
    dist.mkdir(parents=True, exist_ok=True)
    out = {"wheel": build_wheel(dist), "zip": build_zip(dist / "auditlake.zip")}
    jobs = dist / "jobs"
    shutil.rmtree(jobs, ignore_errors=True)
    jobs.mkdir()
    for script in sorted((REPO / "jobs").glob("*.py")):
        shutil.copy2(script, jobs / script.name)
    out["jobs"] = jobs
    req = dist / "requirements-glue.txt"
    req.write_text("\n".join(glue_requirements()) + "\n", encoding="utf-8")
    out["requirements_glue"] = req
    return out


def build_jars(dist: Path) -> Path:
    """Build our DynamoDB log store jar from jvm/logstore into dist/jars (no dependencies bundled)."""
    target = dist / "jars"
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mvn", "-q", "-B", "-DskipTests", "package"], check=True, cwd=LOGSTORE_MODULE)
    shutil.copy2(LOGSTORE_MODULE / "target" / LOG_STORE_JAR, target / LOG_STORE_JAR)
    return target


def build_emr_archive(dist: Path, wheel: Path, python: str = "python3.11") -> Path:
    """A venv-pack archive of a fresh Python 3.11 venv holding the wheel and its non-Spark dependencies."""
    work = REPO / "build" / "emr-pyenv"
    shutil.rmtree(work, ignore_errors=True)
    subprocess.run([python, "-m", "venv", "--copies", str(work)], check=True)
    pip = [str(work / "bin" / "python"), "-m", "pip", "install", "-q"]
    deps = [r for r in dependencies() if _name(r) not in EMR_PROVIDED | EMR_NO_DEPS]
    subprocess.run([*pip, *deps, "venv-pack==0.2.0"], check=True)
    no_deps = [r for r in dependencies() if _name(r) in EMR_NO_DEPS]
    subprocess.run([*pip, "--no-deps", str(wheel), *no_deps], check=True)
    archive = dist / ARCHIVE_NAME
    archive.unlink(missing_ok=True)
    subprocess.run([str(work / "bin" / "venv-pack"), "-p", str(work), "-o", str(archive), "-q"], check=True)
    return archive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", default=str(REPO / "dist"))
    parser.add_argument("--jars", action="store_true", help="also build our DynamoDB log store jar")
    parser.add_argument(
        "--python",
        default="python3.11",
        help="interpreter the EMR archive's venv is built from (its path must exist on the nodes)",
    )
    parser.add_argument(
        "--emr-archive", action="store_true", help="also build the EMR Python environment archive"
    )
    args = parser.parse_args(argv)
    dist = Path(args.dist)
    out = build(dist)
    if args.jars:
        out["jars"] = build_jars(dist)
    if args.emr_archive:
        out["emr_archive"] = build_emr_archive(dist, out["wheel"], args.python)
    for kind, path in out.items():
        print(f"{kind:18} {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
