"""The wheel works with no checkout: built with pip, installed into a fresh virtualenv outside the repo.

The fresh venv holds only the wheel (installed with ``--no-deps``); of the dependencies it sees
exactly pyspark, py4j and PyYAML, linked from the development venv through a ``.pth`` file (a
copy of pyspark would cost minutes and prove nothing more). It runs from a temporary directory
with no ``PYTHONPATH`` and no ``AUDITLAKE_HOME``, so every config file, table contract, query
and job script it loads comes out of the installed wheel: the test asserts that too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "dev"))

import dist  # noqa: E402 - dev/dist.py, the `make package` builder

PROBE = r"""
import json, sys
from pathlib import Path
import auditlake
from auditlake import resources
from auditlake.athena.queries import list_queries, load_query
from auditlake.config import ENVIRONMENTS, load_config
from auditlake.entrypoints import job_names
from auditlake.tables import list_contracts, load_contract

configs = {env: load_config(env) for env in ENVIRONMENTS}
contracts = {t: load_contract(t) for t in list_contracts()}
quality = [t for t in contracts if resources.exists("schemas", f"{t}.quality.yaml")]
queries = [load_query(n) for n in list_queries()]
print(json.dumps({
    "package": str(Path(auditlake.__file__).resolve()),
    "shuffle": {env: cfg["spark"]["conf"]["spark.sql.shuffle.partitions"] for env, cfg in configs.items()},
    "contracts": sorted(contracts),
    "cloudtrail_keys": list(contracts["cloudtrail_events"].keys),
    "quality_suites": len(quality),
    "queries": sorted(q.name for q in queries),
    "jobs": job_names(),
}))
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    return dist.build(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def clean_venv(built, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("clean")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    # pip from the development venv installs into the fresh one (--python): nothing downloaded.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--ignore-installed",
            str(built["wheel"]),
        ],
        check=True,
        timeout=300,
        env=_clean_env(),
    )
    site = venv / "lib" / "python3.11" / "site-packages"
    deps = root / "deps"
    deps.mkdir()
    import py4j
    import pyspark
    import yaml

    for module in (pyspark, py4j, yaml):
        os.symlink(Path(module.__file__).parent, deps / module.__name__)
    (site / "only-spark-and-yaml.pth").write_text(f"{deps}\n", encoding="utf-8")
    return venv


def _clean_env() -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), "GX_ANALYTICS_ENABLED": "False"}


def test_dist_holds_wheel_zip_job_scripts_and_glue_requirements(built):
    assert built["wheel"].name == "auditlake-0.1.0-py3-none-any.whl"
    assert sorted(p.name for p in built["jobs"].iterdir()) == sorted(
        p.name for p in (REPO / "jobs").glob("*.py")
    )
    # The pins Glue installs with --additional-python-modules: the quality gate and the report's charts.
    assert built["requirements_glue"].read_text() == "great-expectations==1.24.1\nmatplotlib==3.10.8\n"
    names = set(zipfile.ZipFile(built["wheel"]).namelist())
    for expected in (
        "auditlake/_data/conf/base.yaml",
        "auditlake/_data/conf/glue.yaml",
        "auditlake/_data/conf/emr.yaml",
        "auditlake/_data/schemas/cloudtrail_events.yaml",
        "auditlake/_data/schemas/cloudtrail_events.quality.yaml",
        "auditlake/_data/queries/who_deleted_table.sql",
        "auditlake/_data/jobs/ingest_cloudtrail.py",
    ):
        assert expected in names, expected
    entry_points = zipfile.ZipFile(built["wheel"]).read("auditlake-0.1.0.dist-info/entry_points.txt").decode()
    assert "auditlake = auditlake.entrypoints:main" in entry_points
    zipped = set(zipfile.ZipFile(built["zip"]).namelist())
    assert "auditlake/_data/conf/glue.yaml" in zipped and "auditlake/session.py" in zipped


def test_installed_wheel_loads_every_config_contract_and_query(clean_venv, tmp_path):
    done = subprocess.run(
        [str(clean_venv / "bin" / "python"), "-c", PROBE],
        cwd=tmp_path,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["package"].startswith(str(clean_venv)), "imported a package outside the clean venv"
    assert out["shuffle"] == {"local": 4, "emr": 200, "glue": 64}
    assert out["contracts"] == sorted(
        p.name.removesuffix(".yaml")
        for p in (REPO / "schemas").glob("*.yaml")
        if not p.name.endswith(".quality.yaml")
    )
    assert {
        "cloudtrail_events",
        "s3_access_logs",
        "crawler_log_events",
        "quarantine",
        "ingest_ledger",
    } <= set(out["contracts"])
    assert out["cloudtrail_keys"] == ["event_id", "recipient_account_id"]
    assert out["quality_suites"] == len(list((REPO / "schemas").glob("*.quality.yaml")))
    assert out["queries"] == sorted(p.stem for p in (REPO / "queries").glob("*.sql"))
    assert out["jobs"] == sorted(p.stem for p in (REPO / "jobs").glob("*.py"))


def test_installed_console_command_lists_the_jobs_and_runs_one(clean_venv, tmp_path):
    command = str(clean_venv / "bin" / "auditlake")
    listing = subprocess.run(
        [command, "--help"], cwd=tmp_path, env=_clean_env(), capture_output=True, text=True, timeout=120
    )
    assert listing.returncode == 0, listing.stderr
    assert "ingest_cloudtrail" in listing.stdout and "athena_ddl" in listing.stdout
    # athena_ddl needs no Spark session: the job runs from the wheel alone and writes the DDL.
    out = tmp_path / "ddl.sql"
    run = subprocess.run(
        [command, "athena_ddl", "--lake", "s3://lake/auditlake", "--database", "audit", "--out", str(out)],
        cwd=tmp_path,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    ddl = out.read_text()
    assert "CREATE EXTERNAL TABLE" in ddl and "LOCATION 's3://lake/auditlake/cloudtrail_events/'" in ddl
    bad = subprocess.run(
        [command, "no_such_job"], cwd=tmp_path, env=_clean_env(), capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2 and "unknown job 'no_such_job'" in bad.stderr
