"""CloudWatch metrics of a run: one batched ``PutMetricData`` per job run.

Every job that writes a run record publishes its counts (records read, loaded, quarantined,
duplicates, objects, list calls), data-quality failures by severity, its duration and whether it
failed, under the namespace ``metrics.namespace`` with dimensions ``Job`` and ``Source``. The
crawler ingest also publishes ``CrawlerErrors`` per crawler: the log events that match the
CloudWatch ``ERROR`` metric filter on ``/aws-glue/crawlers``, so an alarm built on either agrees.

``PutMetricData`` rather than the embedded metric format: EMF needs the job's stdout to land in
CloudWatch Logs, which Glue does only with continuous logging on and EMR does not do at all (its
step logs go to S3); one API call works the same on both, and in tests against moto's server.

Publishing is best effort: a metrics outage is logged as a warning and never fails a run whose
data is already committed. ``metrics.enabled`` is on for emr and glue, off locally.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from auditlake import config as config_mod

log = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "auditlake"
# PutMetricData accepts up to 1000 metric data per request.
MAX_PER_REQUEST = 1000

_COUNTS = (
    ("RecordsRead", "records_read"),
    ("RecordsLoaded", "records_loaded"),
    ("RecordsQuarantined", "records_quarantined"),
    ("RecordsDuplicate", "records_duplicate"),
    ("ObjectsListed", "objects_listed"),
    ("ObjectsProcessed", "objects_processed"),
)


def enabled(cfg: dict[str, Any]) -> bool:
    return bool(config_mod.get(cfg, "metrics.enabled", False))


def _dims(job: str, source: str | None, **more: str) -> list[dict[str, str]]:
    dims = [{"Name": "Job", "Value": job}, {"Name": "Source", "Value": source or "all"}]
    dims += [{"Name": k, "Value": v} for k, v in more.items()]
    return dims


def run_metric_data(rec: Any, extra: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The ``MetricData`` entries of a run record (an ingest, aggregate or maintenance run)."""
    when = rec.ended_at or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    when = when.replace(tzinfo=dt.UTC)
    dims = _dims(rec.job, rec.source)

    def datum(name: str, value: float, unit: str = "Count", dimensions: list[dict[str, str]] | None = None):
        return {
            "MetricName": name,
            "Dimensions": dimensions or dims,
            "Timestamp": when,
            "Value": float(value),
            "Unit": unit,
        }

    data = [datum(name, getattr(rec, attr) or 0) for name, attr in _COUNTS]
    counters = rec.counters or {}
    if "list_calls" in counters:
        data.append(datum("ListCalls", counters["list_calls"]))
    for severity in ("critical", "warning"):
        data.append(
            datum(
                "DataQualityFailures",
                counters.get(f"dq_failed_{severity}", 0),
                dimensions=_dims(rec.job, rec.source, Severity=severity),
            )
        )
    duration = ((rec.ended_at or when.replace(tzinfo=None)) - rec.started_at).total_seconds()
    data.append(datum("DurationSeconds", round(duration, 3), "Seconds"))
    data.append(datum("RunFailed", 0 if rec.status == "succeeded" else 1))
    return data + list(extra or [])


def crawler_error_data(rec: Any, errors_by_crawler: dict[str, int]) -> list[dict[str, Any]]:
    """``CrawlerErrors`` per crawler, the count the ``ERROR`` metric filter on the log group gives."""
    when = (rec.ended_at or dt.datetime.now(dt.UTC).replace(tzinfo=None)).replace(tzinfo=dt.UTC)
    return [
        {
            "MetricName": "CrawlerErrors",
            "Dimensions": [{"Name": "Crawler", "Value": name}],
            "Timestamp": when,
            "Value": float(n),
            "Unit": "Count",
        }
        for name, n in sorted(errors_by_crawler.items())
    ]


def client(cfg: dict[str, Any]):
    """A boto3 CloudWatch client for ``metrics.region`` (default ``s3.region``) and ``metrics.endpoint``."""
    import boto3

    region = config_mod.get(cfg, "metrics.region") or config_mod.get(cfg, "s3.region") or "us-east-1"
    endpoint = config_mod.get(cfg, "metrics.endpoint")
    return boto3.client("cloudwatch", region_name=region, endpoint_url=endpoint or None)


def publish(cfg: dict[str, Any], data: list[dict[str, Any]]) -> int:
    """Send ``data`` in as few ``PutMetricData`` calls as the API allows; return the calls made."""
    if not data:
        return 0
    namespace = str(config_mod.get(cfg, "metrics.namespace", DEFAULT_NAMESPACE))
    cw = client(cfg)
    calls = 0
    for start in range(0, len(data), MAX_PER_REQUEST):
        cw.put_metric_data(Namespace=namespace, MetricData=data[start : start + MAX_PER_REQUEST])
        calls += 1
    return calls


def publish_run(cfg: dict[str, Any], rec: Any, source: Any = None) -> bool:
    """Publish a run's metrics when ``metrics.enabled``; True if sent. Never raises."""
    if not enabled(cfg):
        return False
    try:
        extra = []
        errors = getattr(source, "errors_by_crawler", None)
        if errors:
            extra = crawler_error_data(rec, errors)
        data = run_metric_data(rec, extra)
        calls = publish(cfg, data)
        log.info("published %d metrics in %d PutMetricData call(s)", len(data), calls)
        return True
    except Exception as exc:  # noqa: BLE001 - metrics never fail a committed run
        log.warning("could not publish CloudWatch metrics: %s", str(exc).splitlines()[0] if str(exc) else exc)
        return False
