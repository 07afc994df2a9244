"""The deployment: the CloudFormation template and the EMR steps, checked against the job scripts themselves.

Every Glue job's arguments and every EMR step's arguments are parsed with the parser the job
script builds (captured by running the script with ``run_job`` intercepted), so a renamed or
misspelt argument fails here, not on AWS.
"""

from __future__ import annotations

import argparse
import json
import re
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from auditlake import cli
from auditlake.config import load_config

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "deploy" / "cloudformation" / "auditlake.yaml"
ALL_SCRIPTS = sorted(p.stem for p in (REPO / "jobs").glob("*.py"))
LOCAL_ONLY = sorted(yaml.safe_load((REPO / "deploy" / "jobs.yaml").read_text())["local_only"])
JOB_SCRIPTS = [j for j in ALL_SCRIPTS if j not in LOCAL_ONLY]

# Parameter values of a sample stack, and what each job must then read and write.
PARAMS = {
    "CloudTrailBucket": "trail-bucket",
    "CloudTrailPrefix": "AWSLogs",
    "S3AccessLogsBucket": "access-logs",
    "S3AccessLogsPrefix": "s3/logs",
    "CrawlerLogsBucket": "ops-logs",
    "CrawlerLogsPrefix": "crawler/export",
    "LakeBucket": "lake-bucket",
    "LakePrefix": "auditlake",
    "ArtifactsBucket": "artifacts",
    "ArtifactsPrefix": "auditlake/dist",
    "DatabaseName": "audit",
    "AWS::Partition": "aws",
    "AWS::Region": "eu-west-1",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "al",
    "GlueAdditionalPythonModules": "great-expectations==1.24.1",
    "DeltaCommitTable": "al-commits",
}
EXPECTED_SOURCE = {
    "ingest_cloudtrail": "s3://trail-bucket/AWSLogs/",
    "ingest_s3_access": "s3://access-logs/s3/logs/",
    "ingest_crawler_logs": "s3://ops-logs/crawler/export/",
    "build_daily_aggregates": None,
    "athena_ddl": None,
    "detect": None,
    "export_ocsf": None,
    "maintain_tables": None,
}
EXPECTED_SOURCE_OBJECTS = {
    "ingest_cloudtrail": "arn:aws:s3:::trail-bucket/AWSLogs/*",
    "ingest_s3_access": "arn:aws:s3:::access-logs/s3/logs/*",
    "ingest_crawler_logs": "arn:aws:s3:::ops-logs/crawler/export/*",
}
EXPECTED_SOURCE_BUCKET = {
    "ingest_cloudtrail": "arn:aws:s3:::trail-bucket",
    "ingest_s3_access": "arn:aws:s3:::access-logs",
    "ingest_crawler_logs": "arn:aws:s3:::ops-logs",
}
# Arguments Glue itself reads (job parameters); a job script must tolerate them.
GLUE_OWN = {
    "--JOB_NAME",
    "--JOB_ID",
    "--JOB_RUN_ID",
    "--TempDir",
    "--datalake-formats",
    "--extra-jars",
    "--extra-py-files",
    "--additional-python-modules",
    "--job-bookmark-option",
    "--enable-metrics",
    "--enable-observability-metrics",
    "--enable-continuous-cloudwatch-log",
    "--enable-continuous-log-filter",
    "--continuous-log-logGroup",
    "--enable-glue-datacatalog",
}
GLUE_ADDED = ["--JOB_NAME", "al-job", "--JOB_ID", "j_1", "--JOB_RUN_ID", "jr_1", "--TempDir", "s3://tmp/x/"]


def job_parser(job: str, monkeypatch: pytest.MonkeyPatch) -> argparse.ArgumentParser:
    """The parser ``jobs/<job>.py`` builds: the script runs with ``cli.run_job`` intercepted."""
    seen: dict[str, Any] = {}

    def capture(name, main, *, argv=None, add_arguments=None, needs_source=True, session_factory=None):
        seen.update(name=name, add_arguments=add_arguments, needs_source=needs_source)
        return 0

    monkeypatch.setattr(cli, "run_job", capture)
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(REPO / "jobs" / f"{job}.py"), run_name="__main__")
    assert done.value.code == 0
    assert seen["name"] == job
    parser = cli.base_parser(job, needs_source=seen["needs_source"])
    if seen["add_arguments"]:
        seen["add_arguments"](parser)
    return parser


def resolve(value: Any, resources: dict[str, Any]) -> Any:
    """Evaluate the intrinsic functions the template uses, with PARAMS as the stack's values."""
    if isinstance(value, dict) and len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "Ref":
            if arg in PARAMS:
                return PARAMS[arg]
            if resources.get(arg, {}).get("Type") == "AWS::Glue::Job":
                return resolve(resources[arg]["Properties"]["Name"], resources)
            if resources.get(arg, {}).get("Type") == "AWS::Logs::LogGroup":
                return resolve(resources[arg]["Properties"]["LogGroupName"], resources)
            return f"<{arg}>"
        if fn == "Fn::Sub":
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(resolve({"Ref": m.group(1)}, resources)), arg)
        if fn == "Fn::GetAtt":
            return f"<{arg[0]}.{arg[1]}>"
    if isinstance(value, dict):
        return {k: resolve(v, resources) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, resources) for v in value]
    return value


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return yaml.safe_load(TEMPLATE.read_text(encoding="utf-8"))


def glue_jobs(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Glue job resources by the job script they run."""
    out = {}
    for res in template["Resources"].values():
        if res["Type"] == "AWS::Glue::Job":
            script = resolve(res["Properties"]["Command"]["ScriptLocation"], template["Resources"])
            assert script.startswith("s3://artifacts/auditlake/dist/jobs/"), script
            name = script.rsplit("/", 1)[1].removesuffix(".py")
            assert name not in out, f"two Glue jobs run {name}"
            out[name] = res
    return out


def test_cfn_lint_reports_no_errors():
    done = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), *map(str, TEMPLATE.parent.glob("*.yaml"))],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_rendered_template_and_steps_are_current():
    done = subprocess.run(
        [sys.executable, str(REPO / "dev" / "deploy_render.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_every_job_script_is_deployed_or_named_local_only():
    assert LOCAL_ONLY == ["audit_report", "run_pipeline"]
    assert set(LOCAL_ONLY) <= set(ALL_SCRIPTS)
    assert sorted(JOB_SCRIPTS + LOCAL_ONLY) == ALL_SCRIPTS


def test_one_glue_5_1_job_per_job_script_with_delta(template):
    jobs = glue_jobs(template)
    assert sorted(jobs) == JOB_SCRIPTS
    for name, res in jobs.items():
        props = res["Properties"]
        args = resolve(props["DefaultArguments"], template["Resources"])
        assert props["GlueVersion"] == "5.1", name
        assert props["Command"]["Name"] == "glueetl"
        assert args["--datalake-formats"] == "delta"
        conf = args["--conf"].split(" --conf ")
        assert "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension" in conf
        assert "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog" in conf
        # Our DynamoDB log store (jvm/logstore), its jar from `make package-jars`.
        assert "spark.delta.logStore.s3.impl=dev.auditlake.delta.DynamoDBLogStore" in conf
        assert any(c.startswith("spark.hadoop.auditlake.logstore.ddb.tableName=") for c in conf)
        assert args["--extra-jars"] == "s3://artifacts/auditlake/dist/jars/auditlake-logstore.jar"
        assert args["--additional-python-modules"] == "great-expectations==1.24.1"
        assert args["--extra-py-files"] == "s3://artifacts/auditlake/dist/auditlake.zip"
        assert args["--job-bookmark-option"] == "job-bookmark-disable"
        assert args["--enable-metrics"] == "true"
        assert args["--enable-continuous-cloudwatch-log"] == "true"
        assert args["--continuous-log-logGroup"] == f"/aws-glue/auditlake/al/{name}"


@pytest.mark.parametrize("job", JOB_SCRIPTS)
def test_glue_arguments_parse_with_the_jobs_own_parser(template, job, monkeypatch):
    res = glue_jobs(template)[job]
    args = resolve(res["Properties"]["DefaultArguments"], template["Resources"])
    argv = [*(x for key, value in args.items() for x in (key, value)), *GLUE_ADDED]
    parsed, unknown = job_parser(job, monkeypatch).parse_known_args(argv)
    assert parsed.env == "glue"
    assert parsed.lake == "s3://lake-bucket/auditlake"
    assert parsed.source == EXPECTED_SOURCE[job]
    unknown_keys = {a for a in unknown if a.startswith("--")}
    assert unknown_keys <= GLUE_OWN, (
        f"{job}: arguments neither the job nor Glue knows: {unknown_keys - GLUE_OWN}"
    )
    # Glue's own --conf (Delta) reaches the script too: it must not change auditlake's Spark settings.
    overrides = cli._conf_overrides(parsed.conf)
    assert load_config("glue", overrides)["spark"]["conf"] == load_config("glue")["spark"]["conf"]
    if job == "athena_ddl":
        assert parsed.database == "audit"
        assert parsed.register_glue is True


def _statements(template: dict[str, Any], job: str) -> list[dict[str, Any]]:
    role_id = glue_jobs(template)[job]["Properties"]["Role"]["Fn::GetAtt"][0]
    role = resolve(template["Resources"][role_id], template["Resources"])
    (policy,) = role["Properties"]["Policies"]
    return policy["PolicyDocument"]["Statement"]


def _as_list(x: Any) -> list[Any]:
    return x if isinstance(x, list) else [x]


@pytest.mark.parametrize("job", JOB_SCRIPTS)
def test_each_role_holds_only_its_own_prefixes(template, job):
    statements = _statements(template, job)
    actions = [a for s in statements for a in _as_list(s["Action"])]
    assert not [a for a in actions if "*" in a], f"{job}: wildcard actions"
    assert all(s["Effect"] == "Allow" for s in statements)
    s3_by_action: dict[str, set[str]] = {}
    for s in statements:
        for action in _as_list(s["Action"]):
            if action.startswith("s3:"):
                s3_by_action.setdefault(action, set()).update(_as_list(s["Resource"]))
    lake = "arn:aws:s3:::lake-bucket/auditlake/*"
    artifacts = "arn:aws:s3:::artifacts/auditlake/dist/*"
    source = {EXPECTED_SOURCE_OBJECTS[job]} if job in EXPECTED_SOURCE_OBJECTS else set()
    source_bucket = {EXPECTED_SOURCE_BUCKET[job]} if job in EXPECTED_SOURCE_BUCKET else set()
    assert s3_by_action == {
        "s3:GetObject": {lake, artifacts, *source},
        "s3:PutObject": {lake},
        "s3:DeleteObject": {lake},
        "s3:ListBucket": {"arn:aws:s3:::lake-bucket", "arn:aws:s3:::artifacts", *source_bucket},
        "s3:GetBucketLocation": {"arn:aws:s3:::lake-bucket", "arn:aws:s3:::artifacts", *source_bucket},
    }
    # Our DynamoDB log store: claim (PutItem), complete (UpdateItem), recover (GetItem, Query).
    assert {a for a in actions if a.startswith("dynamodb:")} == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:Query",
        "dynamodb:DescribeTable",
    }
    glue_actions = {a for a in actions if a.startswith("glue:")}
    if job == "athena_ddl":
        assert glue_actions == {
            "glue:GetDatabase",
            "glue:CreateDatabase",
            "glue:GetTable",
            "glue:CreateTable",
            "glue:UpdateTable",
        }
    else:
        assert glue_actions == set()
    logs = {
        r for s in statements if "logs:PutLogEvents" in _as_list(s["Action"]) for r in _as_list(s["Resource"])
    }
    assert (
        f"<{glue_jobs(template)[job]['Properties']['DefaultArguments']['--continuous-log-logGroup']['Ref']}.Arn>"
        in logs
    )


def test_schedule_runs_ingests_in_parallel_then_aggregates_then_registration(template):
    res = template["Resources"]
    definition = json.loads(resolve(res["StateMachine"]["Properties"]["DefinitionString"], res))
    order, state = [], definition["States"][definition["StartAt"]]
    while True:
        order.append(sorted(b["States"][b["StartAt"]]["Arguments"]["JobName"] for b in state["Branches"]))
        if state.get("End"):
            break
        state = definition["States"][state["Next"]]
    assert order == [
        ["al-ingest_cloudtrail", "al-ingest_crawler_logs", "al-ingest_s3_access"],
        ["al-build_daily_aggregates"],
        ["al-detect", "al-export_ocsf", "al-maintain_tables"],
        ["al-athena_ddl"],
    ]
    schedule = res["DailySchedule"]["Properties"]
    assert schedule["Target"]["Arn"] == {"Ref": "StateMachine"}
    assert schedule["ScheduleExpression"] == {"Ref": "ScheduleExpression"}


def test_failed_glue_runs_notify_sns_naming_exit_code_3(template):
    res = template["Resources"]
    rule = resolve(res["JobFailedRule"]["Properties"], res)
    assert rule["EventPattern"]["source"] == ["aws.glue"]
    assert rule["EventPattern"]["detail-type"] == ["Glue Job State Change"]
    assert "FAILED" in rule["EventPattern"]["detail"]["state"]
    assert sorted(rule["EventPattern"]["detail"]["jobName"]) == sorted(f"al-{j}" for j in JOB_SCRIPTS)
    (target,) = rule["Targets"]
    assert target["Arn"] == "<FailureTopic>"
    assert (
        "Exit code 3 means a critical data-quality expectation failed"
        in target["InputTransformer"]["InputTemplate"]
    )


def test_glue_requirements_are_what_glue_lacks_pinned():
    sys.path.insert(0, str(REPO / "dev"))
    from dist import glue_requirements

    # matplotlib: the audit report's charts.
    assert glue_requirements() == ["great-expectations==1.24.1", "matplotlib==3.10.8"]


EMR_VARS = {
    "ARTIFACTS_URI": "s3://artifacts/auditlake/dist",
    "LAKE_URI": "s3://lake-bucket/auditlake",
    "CLOUDTRAIL_URI": "s3://trail-bucket/AWSLogs/",
    "S3ACCESS_URI": "s3://access-logs/s3/logs/",
    "CRAWLER_URI": "s3://ops-logs/crawler/export/",
    "DATABASE": "audit",
    "DELTA_COMMIT_TABLE": "al-commits",
    "AWS_REGION": "eu-west-1",
}


def test_emr_cluster_and_steps_on_moto(s3_server, monkeypatch):
    import boto3

    configurations = json.loads((REPO / "deploy" / "emr" / "configurations.json").read_text())
    raw_steps = (REPO / "deploy" / "emr" / "steps.json").read_text()
    steps = json.loads(re.sub(r"\$\{([A-Z0-9_]+)\}", lambda m: EMR_VARS[m.group(1)], raw_steps))
    emr = boto3.client(
        "emr",
        endpoint_url=s3_server,
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    cluster = emr.run_job_flow(
        Name="auditlake",
        ReleaseLabel="emr-7.9.0",
        Applications=[{"Name": "Spark"}],
        Configurations=configurations,
        Instances={
            "InstanceGroups": [{"InstanceRole": "MASTER", "InstanceType": "m5.xlarge", "InstanceCount": 1}],
            "KeepJobFlowAliveWhenNoSteps": True,
        },
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
    )["JobFlowId"]
    described = emr.describe_cluster(ClusterId=cluster)["Cluster"]
    classes = {c["Classification"]: c for c in described["Configurations"]}
    assert classes["delta-defaults"]["Properties"] == {"delta.enabled": "true"}
    assert classes["spark-env"]["Configurations"][0]["Properties"] == {
        "PYSPARK_PYTHON": "./environment/bin/python"
    }
    emr.add_job_flow_steps(JobFlowId=cluster, Steps=steps)
    listed = emr.list_steps(ClusterId=cluster)["Steps"]
    assert sorted(s["Name"] for s in listed) == sorted(f"auditlake {j}" for j in JOB_SCRIPTS)
    for step in listed:
        job = step["Name"].removeprefix("auditlake ")
        args = step["Config"]["Args"]
        assert step["Config"]["Jar"] == "command-runner.jar"
        assert args[:3] == ["spark-submit", "--deploy-mode", "cluster"]
        assert "s3://artifacts/auditlake/dist/auditlake-pyenv.tar.gz#environment" in args
        assert "spark.yarn.appMasterEnv.PYSPARK_PYTHON=./environment/bin/python" in args
        assert "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension" in args
        assert args[args.index("--jars") + 1] == "s3://artifacts/auditlake/dist/jars/auditlake-logstore.jar"
        assert "spark.delta.logStore.s3.impl=dev.auditlake.delta.DynamoDBLogStore" in args
        assert "spark.hadoop.auditlake.logstore.ddb.tableName=al-commits" in args
        script = args.index(f"s3://artifacts/auditlake/dist/jobs/{job}.py")
        parsed, unknown = job_parser(job, monkeypatch).parse_known_args(args[script + 1 :])
        assert unknown == []
        assert parsed.env == "emr"
        assert parsed.lake == "s3://lake-bucket/auditlake"
        assert parsed.source == EXPECTED_SOURCE[job]
