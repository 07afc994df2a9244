"""`make cluster-test`: one real job on a Spark standalone cluster bound to 127.0.0.1.

Starts a master and one worker from the pyspark install (``spark-class``), submits
``jobs/ingest_cloudtrail.py`` with ``--py-files dist/auditlake.zip`` and the pinned jars, checks
the rows it wrote, and stops both daemons, also on failure.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devtools import REPO, free_port, wait_port


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def write_input(root: Path) -> list[str]:
    """Three CloudTrail records in one gzipped log file, plus a digest file to be skipped."""
    day = root / "AWSLogs" / "123456789012" / "CloudTrail" / "eu-west-1" / "2024" / "03" / "05"
    day.mkdir(parents=True)
    ids = [
        "11111111-aaaa-4bbb-8ccc-000000000001",
        "11111111-aaaa-4bbb-8ccc-000000000002",
        "11111111-aaaa-4bbb-8ccc-000000000003",
    ]
    records = [
        {
            "eventVersion": "1.08",
            "eventID": i,
            "eventTime": f"2024-03-05T0{n}:00:00Z",
            "eventSource": "glue.amazonaws.com",
            "eventName": "DeleteTable",
            "awsRegion": "eu-west-1",
            "sourceIPAddress": "10.1.2.3",
            "eventType": "AwsApiCall",
            "recipientAccountId": "123456789012",
            "readOnly": False,
            "managementEvent": True,
            "userIdentity": {
                "type": "IAMUser",
                "arn": "arn:aws:iam::123456789012:user/ana",
                "userName": "ana",
                "accountId": "123456789012",
                "principalId": "AIDAEXAMPLE",
            },
            "requestParameters": {"databaseName": "sales", "name": f"t{n}"},
        }
        for n, i in enumerate(ids)
    ]
    name = "123456789012_CloudTrail_eu-west-1_20240305T0100Z_abcdefabcdef0123.json.gz"
    (day / name).write_bytes(gzip.compress(json.dumps({"Records": records}).encode()))
    digest = root / "AWSLogs" / "123456789012" / "CloudTrail-Digest" / "eu-west-1" / "2024" / "03" / "05"
    digest.mkdir(parents=True)
    (digest / "123456789012_CloudTrail-Digest_eu-west-1_x_20240305T010000Z.json.gz").write_bytes(
        gzip.compress(b"{}")
    )
    return ids


def main() -> int:
    home = spark_home()
    spark_class = home / "bin" / "spark-class"
    work = Path(tempfile.mkdtemp(prefix="auditlake-cluster-"))
    env = dict(
        os.environ,
        SPARK_HOME=str(home),
        SPARK_LOCAL_IP="127.0.0.1",
        SPARK_LOCAL_DIRS=str(work / "tmp"),
        SPARK_WORKER_DIR=str(work / "worker"),
        PYSPARK_PYTHON=sys.executable,
    )
    env.pop("PYSPARK_GATEWAY_PORT", None)
    port, ui, wport, wui = free_port(), free_port(), free_port(), free_port()
    master_url = f"spark://127.0.0.1:{port}"
    procs: list[subprocess.Popen] = []
    log_master = open(work / "master.log", "w")
    log_worker = open(work / "worker.log", "w")
    try:
        master = subprocess.Popen(
            [
                str(spark_class),
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--webui-port",
                str(ui),
            ],
            env=env,
            stdout=log_master,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        procs.append(master)
        wait_port(port, master, "spark master")
        worker = subprocess.Popen(
            [
                str(spark_class),
                "org.apache.spark.deploy.worker.Worker",
                "--host",
                "127.0.0.1",
                "--port",
                str(wport),
                "--webui-port",
                str(wui),
                "--cores",
                "2",
                "--memory",
                "2g",
                master_url,
            ],
            env=env,
            stdout=log_worker,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        procs.append(worker)
        wait_port(wport, worker, "spark worker")
        print(f"cluster up: master {master_url}, worker 127.0.0.1:{wport}")

        source, lake = work / "raw", work / "lake"
        ids = write_input(source)
        jars = ",".join(sorted(str(p) for p in (REPO / "jvm" / "jars").glob("*.jar")))
        cmd = [
            str(home / "bin" / "spark-submit"),
            "--master",
            master_url,
            "--deploy-mode",
            "client",
            "--conf",
            "spark.driver.host=127.0.0.1",
            "--conf",
            "spark.driver.bindAddress=127.0.0.1",
            "--conf",
            "spark.ui.enabled=false",
            "--conf",
            "spark.executor.memory=1g",
            "--conf",
            "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension",
            "--conf",
            "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog",
            "--jars",
            jars,
            "--py-files",
            str(REPO / "dist" / "auditlake.zip"),
            str(REPO / "jobs" / "ingest_cloudtrail.py"),
            "--source",
            str(source),
            "--lake",
            str(lake),
            "--env",
            "local",
            "--JOB_NAME",
            "cluster-test",
        ]
        # The job must import the zipped package, not the checkout: run it without lib/ on the path.
        job_env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
        started = time.time()
        result = subprocess.run(cmd, env=job_env, capture_output=True, text=True, timeout=900)
        print(result.stdout)
        if result.returncode != 0:
            print(result.stderr[-4000:], file=sys.stderr)
            raise RuntimeError(f"spark-submit exited {result.returncode}")
        print(f"job finished on the cluster in {time.time() - started:.1f}s")
        check = subprocess.run(
            [sys.executable, "-c", _CHECK, str(lake)],
            env=job_env(),
            capture_output=True,
            text=True,
            timeout=600,
        )
        got = check.stdout.strip().splitlines()[-1] if check.stdout.strip() else ""
        expected = json.dumps(sorted(ids))
        if check.returncode != 0 or got != expected:
            print(check.stderr[-3000:], file=sys.stderr)
            raise RuntimeError(f"cluster output mismatch: expected {expected}, got {got!r}")
        print(f"cluster-test passed: {len(ids)} events in cloudtrail_events, digest skipped")
        return 0
    except Exception as exc:  # noqa: BLE001
        print(f"cluster-test FAILED: {exc} (logs in {work})", file=sys.stderr)
        return 1
    finally:
        for proc in reversed(procs):
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        log_master.close()
        log_worker.close()
        if "KEEP_CLUSTER_LOGS" not in os.environ:
            shutil.rmtree(work, ignore_errors=True)


_CHECK = """
import json, sys
from auditlake.config import load_config
from auditlake.session import build_session
spark = build_session(load_config('local', {'spark': {'master': 'local[1]'}}), 'cluster-check')
rows = spark.read.format('delta').load(sys.argv[1] + '/cloudtrail_events').select('event_id').collect()
runs = spark.read.format('delta').load(sys.argv[1] + '/job_runs').collect()
assert len(runs) == 1 and runs[0].records_loaded == 3 and runs[0].objects_skipped == 1, runs
print(json.dumps(sorted(r.event_id for r in rows)))
"""

if __name__ == "__main__":
    sys.exit(main())
