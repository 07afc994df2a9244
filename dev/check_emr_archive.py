"""Check dist/auditlake-pyenv.tar.gz the way EMR uses it: unpacked elsewhere, run by its own python.

    python dev/check_emr_archive.py [ARCHIVE]      (make test-package-emr builds it first)

YARN unpacks an ``--archives ...#environment`` file into each container's working directory;
here it is unpacked into a temporary directory, and ``environment/bin/python`` (with only the
cluster's pyspark and py4j added to its path, as spark-submit adds them) imports the
package and the dependencies the cluster lacks, and loads the ``emr`` config, with a clean
environment. It proves the archive is complete and relocatable on a machine with the same base
interpreter (see docs/deploy.md on building it for EMR's Amazon Linux 2023).
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROBE = (
    "import auditlake, great_expectations, yaml, boto3, delta; "
    "from auditlake.config import load_config; from auditlake.tables import list_contracts; "
    "cfg = load_config('emr'); "
    "assert cfg['spark']['conf']['spark.sql.shuffle.partitions'] == 200, cfg; "
    "assert 'cloudtrail_events' in list_contracts(); "
    "import sys; print(sys.version.split()[0], great_expectations.__version__, auditlake.__file__)"
)


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    archive = Path(args[0]) if args else REPO / "dist" / "auditlake-pyenv.tar.gz"
    with tempfile.TemporaryDirectory(prefix="emr-container-") as tmp:
        env_dir = Path(tmp) / "environment"
        env_dir.mkdir()
        with tarfile.open(archive) as tar:
            tar.extractall(env_dir, filter="fully_trusted")
        python = env_dir / "bin" / "python"
        # The cluster's own pyspark, as spark-submit puts $SPARK_HOME/python on the path: only
        # pyspark and py4j, linked from this venv; everything else must come from the archive.
        import py4j
        import pyspark

        spark_python = Path(tmp) / "spark-python"
        spark_python.mkdir()
        for module in (pyspark, py4j):
            (spark_python / module.__name__).symlink_to(Path(module.__file__).parent)
        done = subprocess.run(
            [str(python), "-c", PROBE],
            cwd=tmp,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(spark_python)},
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            print(f"archive check failed:\n{done.stderr[-2000:]}", file=sys.stderr)
            return 1
        version, gx, package = done.stdout.split()
        if not version.startswith("3.11.") or not package.startswith(str(env_dir)):
            print(f"archive check failed: python {version}, auditlake from {package}", file=sys.stderr)
            return 1
        print(
            f"ok: {archive.name} unpacked to a new directory runs Python {version}, great-expectations {gx}, "
            f"auditlake from the archive"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
