"""CloudWatch metrics of a run, published to moto's server on loopback and read back."""

from __future__ import annotations

import datetime as dt
import gzip

import boto3

from auditlake.cli import run_job
from auditlake.ingest.runner import run_ingest
from auditlake.metrics import run_metric_data
from auditlake.runs import RunRecord
from auditlake.sources.crawler_logs import CrawlerLogsSource

RUN_A = "[0f2f2a30-c09d-4485-ba3c-d37e8fe0148b]"
RUN_B = "[713e4a13]"


def _export(lines: list[str]) -> bytes:
    return gzip.compress("".join(f"{line}\n" for line in lines).encode())


def _raw(tmp_path):
    task = tmp_path / "raw" / "exports" / "4f15b84a-1adb-492a-820c-c0cedcaf1933"
    (task / "alpha-crawler").mkdir(parents=True)
    (task / "beta-crawler").mkdir(parents=True)
    (task / "alpha-crawler" / "000000.gz").write_bytes(
        _export(
            [
                "\torphan continuation line",  # quarantined: no event before it
                f"2024-07-05T13:29:00.000Z {RUN_A} BENCHMARK : Running Start Crawl for Crawler alpha-crawler",
                f"2024-07-05T13:29:10.000Z {RUN_A} ERROR : Internal Service Exception",
                f"2024-07-05T13:29:11.000Z {RUN_A} ERROR : Insufficient Lake Formation permission(s)",
                f"2024-07-05T13:30:00.000Z {RUN_A} BENCHMARK : Crawler has finished running and is in state READY",
            ]
        )
    )
    (task / "beta-crawler" / "000000.gz").write_bytes(
        _export(
            [
                f"2024-07-05T14:00:00.000Z {RUN_B} BENCHMARK : Running Start Crawl for Crawler beta-crawler",
                f"2024-07-05T14:00:01.000Z {RUN_B} WARN : exiting with errorcode 0",  # lowercase: not the filter
                f"2024-07-05T14:01:00.000Z {RUN_B} BENCHMARK : Crawler has finished running and is in state READY",
            ]
        )
    )
    return tmp_path / "raw"


def _sum(cw, namespace: str, name: str, dims: dict[str, str], start: dt.datetime, end: dt.datetime) -> float:
    dimensions = [{"Name": k, "Value": v} for k, v in dims.items()]
    result = cw.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "m",
                "MetricStat": {
                    "Metric": {"Namespace": namespace, "MetricName": name, "Dimensions": dimensions},
                    "Period": 3600,
                    "Stat": "Sum",
                },
            }
        ],
        StartTime=start,
        EndTime=end,
    )["MetricDataResults"][0]
    return sum(result["Values"])


def test_crawler_ingest_publishes_its_counts_and_errors(spark, s3_server, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    namespace = "auditlake-test-crawler"
    records: list[RunRecord] = []
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    rc = run_job(
        "ingest_crawler_logs",
        lambda ctx: records.append(run_ingest(ctx, CrawlerLogsSource())),
        argv=[
            "--source",
            str(_raw(tmp_path)),
            "--lake",
            str(tmp_path / "lake"),
            "--conf",
            "quality.enabled=false",
            "--conf",
            "metrics.enabled=true",
            "--conf",
            f"metrics.endpoint={s3_server}",
            "--conf",
            f"metrics.namespace={namespace}",
        ],
        session_factory=lambda cfg, name: spark,
    )
    assert rc == 0
    end = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    cw = boto3.client("cloudwatch", endpoint_url=s3_server, region_name="us-east-1")

    listed = cw.list_metrics(Namespace=namespace)["Metrics"]
    names = {m["MetricName"] for m in listed}
    assert names == {
        "RecordsRead",
        "RecordsLoaded",
        "RecordsQuarantined",
        "RecordsDuplicate",
        "ObjectsListed",
        "ObjectsProcessed",
        "ListCalls",
        "DataQualityFailures",
        "DurationSeconds",
        "RunFailed",
        "CrawlerErrors",
    }
    job = {"Job": "ingest_crawler_logs", "Source": "crawler_logs"}
    got = {
        name: _sum(cw, namespace, name, job, start, end)
        for name in (
            "RecordsRead",
            "RecordsLoaded",
            "RecordsQuarantined",
            "RecordsDuplicate",
            "ObjectsProcessed",
            "RunFailed",
        )
    }
    assert got == {
        "RecordsRead": 8.0,
        "RecordsLoaded": 7.0,
        "RecordsQuarantined": 1.0,
        "RecordsDuplicate": 0.0,
        "ObjectsProcessed": 2.0,
        "RunFailed": 0.0,
    }
    assert _sum(cw, namespace, "DataQualityFailures", {**job, "Severity": "critical"}, start, end) == 0.0
    assert _sum(cw, namespace, "DurationSeconds", job, start, end) > 0
    errors = {
        c: _sum(cw, namespace, "CrawlerErrors", {"Crawler": c}, start, end)
        for c in ("alpha-crawler", "beta-crawler")
    }
    assert errors == {"alpha-crawler": 2.0, "beta-crawler": 0.0}


def test_metric_data_of_a_failed_run_with_quality_failures():
    t0 = dt.datetime(2024, 1, 1, 10, 0, 0)
    rec = RunRecord(
        run_id="r",
        job="ingest_s3_access",
        source="s3_access",
        source_uri="s3://b",
        env="emr",
        started_at=t0,
        status="dq_failed",
        ended_at=t0 + dt.timedelta(seconds=90),
        records_read=10,
        counters={"dq_failed_critical": 2, "dq_failed_warning": 1, "list_calls": 4},
    )
    data = {
        (d["MetricName"], tuple(x["Value"] for x in d["Dimensions"][2:])): d["Value"]
        for d in run_metric_data(rec)
    }
    assert data == {
        ("RecordsRead", ()): 10.0,
        ("RecordsLoaded", ()): 0.0,
        ("RecordsQuarantined", ()): 0.0,
        ("RecordsDuplicate", ()): 0.0,
        ("ObjectsListed", ()): 0.0,
        ("ObjectsProcessed", ()): 0.0,
        ("ListCalls", ()): 4.0,
        ("DataQualityFailures", ("critical",)): 2.0,
        ("DataQualityFailures", ("warning",)): 1.0,
        ("DurationSeconds", ()): 90.0,
        ("RunFailed", ()): 1.0,
    }
