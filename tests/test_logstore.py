"""Our DynamoDB log store (jvm/logstore) against moto's S3 + DynamoDB server on loopback.

Two writer JVMs append to one s3a Delta table at the same moment: every commit lands once, at
versions 1..6, each claimed in DynamoDB. A claim left incomplete (writer killed between its claim
and the copy to N.json) is finished by the next reader; a version claimed by another writer makes
``write`` raise FileAlreadyExistsException.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import boto3
import pytest

from devtools import PYTHON, REPO, job_env

STORE = "dev.auditlake.delta.DynamoDBLogStore"
JAR = REPO / "jvm" / "jars" / "auditlake-logstore.jar"
CREDS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
SCHEMA = "writer STRING, seq INT, j INT"


@pytest.fixture(autouse=True)
def _store_jar_built():
    """The store's jar is part of set-up: missing, the tests fail (never skip) and say how to build it."""
    assert JAR.exists(), f"{JAR} is missing: `make setup` builds it from jvm/logstore"


# Run by each JVM: a session with the store on for s3a, pointed at moto; then one role.
SCRIPT = r"""
import json, sys, time
from pathlib import Path
from auditlake.config import load_config
from auditlake.session import build_session

a = json.loads(sys.argv[1])
cfg = load_config("local", {
    "spark": {"master": "local[1]", "log_level": "ERROR", "conf": {
        "spark.sql.shuffle.partitions": 1, "spark.ui.showConsoleProgress": False,
        "spark.databricks.delta.snapshotPartitions": 1,
        "spark.sql.adaptive.coalescePartitions.initialPartitionNum": 1,
        "spark.databricks.delta.optimizeWrite.enabled": False,
        # short-lived JVMs on a busy machine: C1 only, serial GC
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC -XX:TieredStopAtLevel=1 -XX:+UseSerialGC"}},
    "s3": {"endpoint": a["endpoint"], "region": "us-east-1"},
    "delta": {"log_store": "dynamodb", "dynamodb": {
        "table": a["ddb_table"], "endpoint": a["endpoint"], "schemes": ["s3a"]}},
})
spark = build_session(cfg, "logstore-" + a["role"])
path = a["path"]
out = {}
if a["role"] == "writer":
    spark.read.format("delta").load(path).count()  # warm: the store, its DynamoDB table, the log
    Path(a["ready"]).touch()
    deadline = time.time() + 120
    while not Path(a["go"]).exists():
        if time.time() > deadline:
            sys.exit("no go signal")
        time.sleep(0.02)
    for seq in range(3):
        rows = [(a["name"], seq, j) for j in range(2)]
        spark.createDataFrame(rows, a["schema"]).write.format("delta").mode("append").save(path)
else:
    out["rows"] = sorted(tuple(r) for r in spark.read.format("delta").load(path).collect())
    out["versions"] = sorted(r.version for r in spark.sql(f"DESCRIBE HISTORY delta.`{path}`").collect())
    # Another writer claims version 2 (item present, no N.json yet): our write must refuse it.
    import boto3
    boto3.client("dynamodb", endpoint_url=a["endpoint"], region_name="us-east-1").put_item(
        TableName=a["ddb_table"], Item={
            "tablePath": {"S": a["table_path"]}, "fileName": {"S": a["claimed"]},
            "tempPath": {"S": ".tmp/" + a["claimed"] + ".other"}, "complete": {"S": "false"}})
    jvm = spark._jvm
    hconf = spark._jsc.hadoopConfiguration()
    store = jvm.dev.auditlake.delta.DynamoDBLogStore(hconf)
    actions = jvm.java.util.ArrayList()
    actions.add('{"commitInfo":{"timestamp":0,"operation":"WRITE"}}')
    for name in ("00000000000000000001.json", a["claimed"]):
        target = jvm.org.apache.hadoop.fs.Path(path + "/_delta_log/" + name)
        try:
            store.write(target, actions.iterator(), False, hconf)
            out[name] = "written"
        except Exception as e:
            out[name] = e.java_exception.getClass().getName()
print("RESULT " + json.dumps(out))
"""


def _run(tmp_path: Path, args: dict) -> subprocess.Popen:
    script = tmp_path / "logstore_job.py"
    script.write_text(SCRIPT, encoding="utf-8")
    log = open(tmp_path / f"{args['role']}-{args.get('name', 'r')}.log", "w")  # noqa: SIM115
    return subprocess.Popen(
        [PYTHON, str(script), json.dumps(args)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=job_env(**CREDS),
        cwd=tmp_path,
    )


def _finish(proc: subprocess.Popen, tmp_path: Path, args: dict, timeout: float = 300) -> dict:
    try:
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = (tmp_path / f"{args['role']}-{args.get('name', 'r')}.log").read_text(encoding="utf-8")
    assert proc.returncode == 0, text[-4000:]
    result = [line for line in text.splitlines() if line.startswith("RESULT ")]
    return json.loads(result[-1][len("RESULT ") :]) if result else {}


def _clients(endpoint: str, bucket: str):
    kw = {"endpoint_url": endpoint, "region_name": "us-east-1"}
    kw.update(aws_access_key_id="testing", aws_secret_access_key="testing")
    s3c = boto3.client("s3", **kw)
    if bucket not in [b["Name"] for b in s3c.list_buckets()["Buckets"]]:
        s3c.create_bucket(Bucket=bucket)
    return s3c, boto3.client("dynamodb", **kw)


def _items(ddb, table: str, table_path: str) -> list[dict]:
    return ddb.query(
        TableName=table,
        KeyConditionExpression="tablePath = :t",
        ExpressionAttributeValues={":t": {"S": table_path}},
        ConsistentRead=True,
    )["Items"]


def _log_files(s3, bucket: str, prefix: str) -> list[str]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/_delta_log/")
    return sorted(
        o["Key"].rsplit("/", 1)[1] for o in listed.get("Contents", []) if o["Key"].endswith(".json")
    )


def _temp_files(s3, bucket: str, prefix: str) -> list[str]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/_delta_log/.tmp/")
    return [o["Key"] for o in listed.get("Contents", []) if not o["Key"].endswith("/")]  # s3a dir markers


def test_two_writer_jvms_commit_every_append_once(spark, s3, s3_server, tmp_path):
    bucket, prefix = "logstore-lake", f"t-{uuid.uuid4().hex[:8]}"
    s3c, ddb = _clients(s3_server, bucket)
    path = f"s3a://{bucket}/{prefix}"
    spark.createDataFrame([], SCHEMA).write.format("delta").save(path)  # version 0, without the store
    ddb_table = f"commits_{uuid.uuid4().hex[:8]}"  # absent: the writers race to create it
    common = {"role": "writer", "endpoint": s3_server, "ddb_table": ddb_table, "path": path, "schema": SCHEMA}
    go = tmp_path / "go"
    writers = []
    try:
        for name in ("a", "b"):
            args = {**common, "name": name, "ready": str(tmp_path / f"ready-{name}"), "go": str(go)}
            writers.append((_run(tmp_path, args), args))
        deadline = time.time() + 240
        while not all(Path(a["ready"]).exists() for _, a in writers):
            assert time.time() < deadline, "writers did not get ready"
            assert all(p.poll() is None for p, _ in writers), "a writer exited before the barrier"
            time.sleep(0.2)
        go.touch()
        for proc, args in writers:
            _finish(proc, tmp_path, args)
    finally:
        for proc, _ in writers:
            if proc.poll() is None:
                proc.kill()

    expected = sorted((w, seq, j) for w in ("a", "b") for seq in range(3) for j in range(2))
    got = sorted(tuple(r) for r in spark.read.format("delta").load(path).collect())
    assert got == expected
    history = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").collect()
    assert sorted(r.version for r in history) == [0, 1, 2, 3, 4, 5, 6]
    assert _log_files(s3c, bucket, prefix) == [f"{v:020d}.json" for v in range(7)]
    assert _temp_files(s3c, bucket, prefix) == []  # completed and refused commits leave none
    # Both started from version 0 at once: at least one commit lost a claim and was retried later.
    assert any(r.readVersion is not None and r.readVersion < r.version - 1 for r in history), [
        (r.version, r.readVersion) for r in history
    ]
    items = _items(ddb, ddb_table, f"s3://{bucket}/{prefix}")
    assert sorted(i["fileName"]["S"] for i in items) == [f"{v:020d}.json" for v in range(1, 7)]
    assert {i["complete"]["S"] for i in items} == {"true"}
    assert all(int(i["expireTime"]["N"]) > time.time() + 3600 for i in items)


def test_incomplete_claim_is_recovered_and_a_claimed_version_is_refused(spark, s3, s3_server, tmp_path):
    bucket, prefix = "logstore-lake", f"r-{uuid.uuid4().hex[:8]}"
    s3c, ddb = _clients(s3_server, bucket)
    path = f"s3a://{bucket}/{prefix}"
    spark.createDataFrame([], SCHEMA).write.format("delta").save(path)
    rows = [("killed", 7, 0), ("killed", 7, 1)]
    spark.createDataFrame(rows, SCHEMA).coalesce(1).write.parquet(f"{path}/data")
    part = next(
        o
        for o in s3c.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/data/")["Contents"]
        if o["Key"].endswith(".parquet")
    )
    ddb_table = f"commits_{uuid.uuid4().hex[:8]}"
    ddb.create_table(
        TableName=ddb_table,
        AttributeDefinitions=[
            {"AttributeName": "tablePath", "AttributeType": "S"},
            {"AttributeName": "fileName", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "tablePath", "KeyType": "HASH"},
            {"AttributeName": "fileName", "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    # What a writer killed after its claim and before the copy leaves: the temp file and an
    # incomplete item for version 1, no 00000000000000000001.json.
    commit = [
        {
            "commitInfo": {
                "timestamp": 1700000000000,
                "operation": "WRITE",
                "operationParameters": {"mode": "Append"},
            }
        },
        {
            "add": {
                "path": part["Key"][len(prefix) + 1 :],
                "partitionValues": {},
                "size": part["Size"],
                "modificationTime": 1700000000000,
                "dataChange": True,
            }
        },
    ]
    temp = ".tmp/00000000000000000001.json.killed"
    s3c.put_object(
        Bucket=bucket,
        Key=f"{prefix}/_delta_log/{temp}",
        Body="".join(json.dumps(a) + "\n" for a in commit).encode(),
    )
    table_path = f"s3://{bucket}/{prefix}"  # s3a is keyed as s3
    ddb.put_item(
        TableName=ddb_table,
        Item={
            "tablePath": {"S": table_path},
            "fileName": {"S": "00000000000000000001.json"},
            "tempPath": {"S": temp},
            "complete": {"S": "false"},
        },
    )
    assert _log_files(s3c, bucket, prefix) == ["00000000000000000000.json"]
    # The reader reads (recovering version 1), then writes version 1 (exists) and version 2
    # (claimed by another writer after the read) through the store.
    claimed = "00000000000000000002.json"
    args = {"role": "reader", "endpoint": s3_server, "ddb_table": ddb_table, "path": path}
    args.update(table_path=table_path, claimed=claimed)
    out = _finish(_run(tmp_path, args), tmp_path, args)

    assert [tuple(r) for r in out["rows"]] == rows
    assert out["versions"] == [0, 1]
    assert out["00000000000000000001.json"] == "java.nio.file.FileAlreadyExistsException"
    assert out[claimed] == "java.nio.file.FileAlreadyExistsException"
    assert _log_files(s3c, bucket, prefix) == ["00000000000000000000.json", "00000000000000000001.json"]
    assert _temp_files(s3c, bucket, prefix) == []
    recovered = s3c.get_object(Bucket=bucket, Key=f"{prefix}/_delta_log/00000000000000000001.json")[
        "Body"
    ].read()
    assert [json.loads(line) for line in recovered.decode().splitlines()] == commit
    item = {i["fileName"]["S"]: i for i in _items(ddb, ddb_table, table_path)}["00000000000000000001.json"]
    assert item["complete"]["S"] == "true"
    assert int(item["expireTime"]["N"]) > time.time() + 3600
