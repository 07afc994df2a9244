"""The detection pack: rules as data (``detections/*.yaml``) run over the lake into ``findings``.

A rule is a Spark SQL query over the lake's tables (registered as temporary views under their
table names) that returns one row per evidence event with the columns

    entity_kind string, entity string, account_id string, region string,
    event_time timestamp, event_id string [, finding_date date]

``${name}`` in the SQL is replaced by a rule parameter rendered as a SQL literal (strings
quoted and escaped, lists as ``array(...)``, dates as ``DATE'...'``); ``${window_start}`` and
``${window_end}`` are the first and last day of the run's window. Parameters have defaults in the
rule file and are overridden by config ``detections.parameters.<rule_id>.<name>``.

Evidence rows are grouped per (rule, entity kind, entity, day): the day is ``finding_date`` when
the rule returns one (a streak rule names its streak's first day), else the UTC day of the
event. A group becomes a finding only when one of its evidence events lies on a day of the
window. ``finding_id`` = sha256 of ``rule_id|entity_kind|entity|dt``, ``dt`` the day of
first_seen; findings are merged on it, so a rerun adds nothing and a re-detection with more
evidence updates last_seen, event_count and evidence of the row it first wrote.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import pyspark.sql.functions as F
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from auditlake import commits, quality, resources
from auditlake import config as config_mod
from auditlake import lake as lake_mod
from auditlake.context import JobContext
from auditlake.errors import AuditlakeError, ConfigError, UsageError
from auditlake.ingest.objects import normalize_uri
from auditlake.runs import RunRecord, now_utc, record_failed_run, record_gate, summary_log, write_run_record
from auditlake.tables import conform, load_contract

log = logging.getLogger(__name__)

JOB_NAME = "detect"
TABLE = "findings"
SEVERITIES = ("critical", "high", "medium", "low")
DEFAULT_MAX_EVIDENCE = 20
EVIDENCE_COLUMNS = ("entity_kind", "entity", "account_id", "region", "event_time", "event_id")
_REQUIRED_KEYS = ("id", "name", "severity", "description", "tables", "sql")
_KNOWN_KEYS = set(_REQUIRED_KEYS) | {"mitre_technique", "parameters"}
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_MITRE = re.compile(r"^T\d{4}(\.\d{3})?$")
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_WINDOW_PARAMS = ("window_start", "window_end")


class DetectionRuleError(AuditlakeError):
    """A rule file is malformed, or its SQL fails: the message names the rule."""

    exit_code = 2


@dataclass(frozen=True)
class Rule:
    """One detection rule, as read from ``detections/<id>.yaml``."""

    id: str
    name: str
    severity: str
    description: str
    sql: str
    tables: tuple[str, ...]
    mitre_technique: str | None = None
    parameters: tuple[tuple[str, Any, str], ...] = ()  # (name, default, description)

    @property
    def defaults(self) -> dict[str, Any]:
        return {name: default for name, default, _ in self.parameters}


# --- rules ----------------------------------------------------------------------------------


def parse_rule(raw: Any, source: str) -> Rule:
    """Validate a rule mapping (a parsed YAML file); errors name ``source``."""
    if not isinstance(raw, dict):
        raise DetectionRuleError(f"detection rule {source}: not a mapping")
    rid = raw.get("id", source)
    missing = [k for k in _REQUIRED_KEYS if not raw.get(k)]
    unknown = sorted(set(raw) - _KNOWN_KEYS)
    problems = []
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown keys {', '.join(unknown)}")
    if not _ID.match(str(rid)):
        problems.append(f"id {rid!r} is not lowercase snake_case")
    if raw.get("severity") not in SEVERITIES:
        problems.append(f"severity {raw.get('severity')!r} is not one of {', '.join(SEVERITIES)}")
    mitre = raw.get("mitre_technique")
    if mitre is not None and not _MITRE.match(str(mitre)):
        problems.append(f"mitre_technique {mitre!r} is not a technique id like T1078 or T1078.004")
    tables = raw.get("tables") or []
    if not isinstance(tables, list) or not all(isinstance(t, str) for t in tables):
        problems.append("tables must be a list of table names")
        tables = []
    for table in tables:
        if not resources.exists("schemas", f"{table}.yaml"):
            problems.append(f"table {table!r} has no contract in schemas/")
    params = raw.get("parameters") or {}
    parsed_params = []
    if not isinstance(params, dict):
        problems.append("parameters must be a mapping of name -> {default, description}")
        params = {}
    for name, spec in params.items():
        if name in _WINDOW_PARAMS or not _ID.match(str(name)):
            problems.append(f"parameter name {name!r} is reserved or not snake_case")
        elif not isinstance(spec, dict) or "default" not in spec:
            problems.append(f"parameter {name!r} needs a default")
        else:
            parsed_params.append((name, spec["default"], str(spec.get("description", ""))))
    sql = str(raw.get("sql") or "")
    declared = {p[0] for p in parsed_params} | set(_WINDOW_PARAMS)
    undeclared = sorted(set(_PLACEHOLDER.findall(sql)) - declared)
    if undeclared:
        problems.append(f"sql uses undeclared parameters {', '.join(undeclared)}")
    if problems:
        raise DetectionRuleError(f"detection rule {rid} ({source}): " + "; ".join(problems))
    return Rule(
        id=str(rid),
        name=str(raw["name"]),
        severity=raw["severity"],
        description=" ".join(str(raw["description"]).split()),
        sql=sql,
        tables=tuple(tables),
        mitre_technique=str(mitre) if mitre is not None else None,
        parameters=tuple(parsed_params),
    )


def load_rules() -> list[Rule]:
    """Every rule of ``detections/`` (the checkout's or the packaged copy), sorted by id."""
    rules = []
    for name in resources.list_names("detections", ".yaml"):
        rule = parse_rule(resources.load_yaml("detections", name), f"detections/{name}")
        if f"{rule.id}.yaml" != name:
            raise DetectionRuleError(
                f"detection rule {rule.id}: file detections/{name} must be named {rule.id}.yaml"
            )
        rules.append(rule)
    if not rules:
        raise DetectionRuleError("no detection rules found in detections/")
    return rules


def sql_literal(value: Any) -> str:
    """A Spark SQL literal for a parameter value (no value ever reaches the SQL unquoted)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dt.datetime):
        return f"TIMESTAMP'{value.isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return f"DATE'{value.isoformat()}'"
    if isinstance(value, str):
        # Spark string literals treat backslash as an escape character.
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, list | tuple):
        if not value:
            return "CAST(array() AS array<string>)"
        return "array(" + ", ".join(sql_literal(v) for v in value) + ")"
    raise TypeError(f"parameter value of type {type(value).__name__} cannot be a SQL literal")


def rule_parameters(rule: Rule, cfg: dict[str, Any]) -> dict[str, Any]:
    """The rule's defaults with config ``detections.parameters.<rule_id>`` applied over them."""
    overrides = config_mod.get(cfg, f"detections.parameters.{rule.id}", {}) or {}
    unknown = sorted(set(overrides) - set(rule.defaults))
    if unknown:
        raise ConfigError(
            f"detections.parameters.{rule.id}: unknown parameters {', '.join(unknown)} "
            f"(the rule has {', '.join(sorted(rule.defaults)) or 'none'})"
        )
    params = {**rule.defaults, **overrides}
    for name, value in params.items():
        default = rule.defaults[name]
        if isinstance(default, list) and not isinstance(value, list):
            raise ConfigError(f"detections.parameters.{rule.id}.{name} must be a list")
        # An int threshold given as text would compare as a string in SQL: refuse it.
        for kind in (bool, int, str):
            if isinstance(default, kind) and not isinstance(value, kind):
                raise ConfigError(
                    f"detections.parameters.{rule.id}.{name} must be {kind.__name__}, not {value!r}"
                )
            if isinstance(default, kind):
                break
        if name.endswith("cidrs"):
            try:
                for text in value:
                    ipaddress.ip_network(str(text).strip(), strict=False)
            except ValueError as exc:
                raise ConfigError(f"detections.parameters.{rule.id}.{name}: {exc}") from None
    return params


def render_sql(rule: Rule, params: dict[str, Any]) -> str:
    """The rule's SQL with every ``${name}`` replaced by its value as a SQL literal."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in params:
            raise DetectionRuleError(f"detection rule {rule.id}: no value for parameter {name}")
        try:
            return sql_literal(params[name])
        except TypeError as exc:
            raise DetectionRuleError(f"detection rule {rule.id}: parameter {name}: {exc}") from None

    return _PLACEHOLDER.sub(sub, rule.sql)


# --- running rules --------------------------------------------------------------------------


def ip_in_cidrs(ip: str | None, cidrs: list[str] | None) -> bool | None:
    """Whether ``ip`` is in one of ``cidrs``; None when ``ip`` is not an IP address.

    CloudTrail's sourceIPAddress also holds service names (``athena.amazonaws.com``) and
    ``AWS Internal``: those are not addresses, so neither inside nor outside a network.
    """
    if ip is None:
        return None
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    for text in cidrs or []:
        net = ipaddress.ip_network(str(text).strip(), strict=False)
        if addr.version == net.version and addr in net:
            return True
    return False


def register_functions(spark) -> None:
    """SQL functions rules may call: ``auditlake_ip_in_cidrs(ip, array<string>)``."""
    spark.udf.register("auditlake_ip_in_cidrs", ip_in_cidrs, T.BooleanType())


def register_tables(spark, lake: str, tables: set[str]) -> None:
    """Register each lake table as a temporary view of its own name (empty when not written yet)."""
    for table in sorted(tables):
        lake_mod.read_table(spark, lake, table).createOrReplaceTempView(table)


def rule_evidence(spark, rule: Rule, params: dict[str, Any]) -> DataFrame:
    """The rule's evidence rows, checked against the evidence columns; analysis errors name the rule."""
    sql = render_sql(rule, params)
    try:
        df = spark.sql(sql)
    except Exception as exc:  # noqa: BLE001 - any Spark analysis or parse error of the rule
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DetectionRuleError(f"detection rule {rule.id} failed: {first[:400]}") from None
    missing = [c for c in EVIDENCE_COLUMNS if c not in df.columns]
    if missing:
        raise DetectionRuleError(
            f"detection rule {rule.id}: its SQL returns no column {', '.join(missing)} "
            f"(a rule returns {', '.join(EVIDENCE_COLUMNS)} [, finding_date])"
        )
    day = F.col("finding_date").cast("date") if "finding_date" in df.columns else F.lit(None).cast("date")
    return df.select(
        F.lit(rule.id).alias("rule_id"),
        F.col("entity_kind").cast("string").alias("entity_kind"),
        F.col("entity").cast("string").alias("entity"),
        F.col("account_id").cast("string").alias("account_id"),
        F.col("region").cast("string").alias("region"),
        F.col("event_time").cast("timestamp").alias("event_time"),
        F.col("event_id").cast("string").alias("event_id"),
        day.alias("finding_date"),
    )


def _single(col: str) -> F.Column:
    """The group's one distinct non-null value of ``col``, null when it has none or several."""
    values = F.collect_set(col)
    return F.when(F.size(values) == 1, F.element_at(values, 1))


def build_findings(
    evidence: DataFrame,
    rules: list[Rule],
    *,
    window: list[dt.date],
    run_id: str,
    detected_at: dt.datetime,
    max_evidence: int = DEFAULT_MAX_EVIDENCE,
) -> DataFrame:
    """Evidence rows of all rules -> one row per finding (the ``findings`` contract)."""
    meta = evidence.sparkSession.createDataFrame(
        [(r.id, r.name, r.severity, r.description, r.mitre_technique) for r in rules],
        "rule_id string, rule_name string, severity string, description string, mitre_technique string",
    )
    # A rule that names no entity (a principal-less call) still yields a finding.
    rows = evidence.where(F.col("event_time").isNotNull()).select(
        "*",
        F.coalesce("entity_kind", F.lit("unknown")).alias("_kind"),
        F.coalesce("entity", F.lit("(unknown)")).alias("_entity"),
        F.coalesce("finding_date", F.to_date("event_time")).alias("_group_day"),
    )
    grouped = (
        rows.groupBy("rule_id", "_kind", "_entity", "_group_day")
        .agg(
            F.min("event_time").alias("first_seen"),
            F.max("event_time").alias("last_seen"),
            F.countDistinct("event_id").alias("event_count"),
            F.slice(F.array_sort(F.collect_set("event_id")), 1, max_evidence).alias("evidence_event_ids"),
            _single("account_id").alias("account_id"),
            _single("region").alias("region"),
            F.max(F.to_date("event_time").isin(window).cast("int")).alias("_in_window"),
        )
        .where(F.col("_in_window") == 1)
    )
    day = F.to_date("first_seen")
    finding_id = F.sha2(
        F.concat_ws("|", "rule_id", "_kind", "_entity", F.date_format(day, "yyyy-MM-dd")), 256
    )
    out = grouped.join(F.broadcast(meta), on="rule_id", how="inner").select(
        finding_id.alias("finding_id"),
        "rule_id",
        "rule_name",
        "severity",
        "description",
        "mitre_technique",
        F.col("_kind").alias("entity_kind"),
        F.col("_entity").alias("entity"),
        "account_id",
        "region",
        "first_seen",
        "last_seen",
        F.col("event_count").cast("bigint").alias("event_count"),
        "evidence_event_ids",
        F.lit(run_id).alias("run_id"),
        F.lit(detected_at).cast("timestamp").alias("detected_at"),
        day.alias("dt"),
    )
    return conform(out, load_contract(TABLE))


_UPDATED = (
    "rule_name",
    "severity",
    "description",
    "mitre_technique",
    "account_id",
    "region",
    "first_seen",
    "last_seen",
    "event_count",
    "evidence_event_ids",
)


def merge_findings(spark, findings: DataFrame | None, lake: str, days: list[dt.date]) -> tuple[int, int]:
    """MERGE on finding_id the findings that are new or changed; return (inserted, updated).

    Findings already stored with the same values are left out of the merge before it runs
    (Delta commits a MERGE that matches rows even when it changes none), so a rerun makes no
    commit at all. run_id and detected_at stay those of the run that first wrote a finding.
    """
    target = lake_mod.ensure_delta_table(spark, lake, load_contract(TABLE))
    if findings is None or not days:
        return 0, 0
    stored = (
        spark.read.format("delta")
        .load(lake_mod.table_uri(lake, TABLE))
        .where(F.col("dt").isin(days))
        .select("finding_id", F.lit(True).alias("_stored"), *[F.col(c).alias(f"_old_{c}") for c in _UPDATED])
    )
    same = F.lit(True)
    for c in _UPDATED:
        same = same & F.col(c).eqNullSafe(F.col(f"_old_{c}"))
    joined = findings.join(stored, on="finding_id", how="left")
    changes = (
        joined.where(F.col("_stored").isNull() | ~same)
        .select(*findings.columns, F.col("_stored").isNotNull().alias("_update"))
        .cache()
    )
    try:
        counts = changes.groupBy("_update").count().collect()
        by_kind = {r["_update"]: int(r["count"]) for r in counts}
        inserted, updated = by_kind.get(False, 0), by_kind.get(True, 0)
        if not inserted and not updated:
            return 0, 0
        literals = ", ".join(f"DATE'{d.isoformat()}'" for d in days)
        cond = f"t.dt IN ({literals}) AND t.dt = s.dt AND t.finding_id = s.finding_id"
        (
            target.alias("t")
            .merge(changes.drop("_update").alias("s"), cond)
            .whenMatchedUpdate(set={c: f"s.`{c}`" for c in _UPDATED})
            .whenNotMatchedInsertAll()
            .execute()
        )
        return inserted, updated
    finally:
        changes.unpersist()


# --- the window -----------------------------------------------------------------------------


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def touched_days_since_last_run(job_runs: DataFrame, *, job: str = JOB_NAME) -> set[dt.date]:
    """Event days other jobs' runs wrote into since this job's last succeeded run started."""
    own = job_runs.where((F.col("job") == job) & (F.col("status") == "succeeded"))
    last = own.agg(F.max("started_at")).collect()[0][0]
    runs = job_runs.where((F.col("job") != job) & (F.size("touched_dates") > 0))
    if last is not None:
        runs = runs.where(F.col("ended_at") > F.lit(last))
    days = runs.select(F.explode("touched_dates").alias("d")).distinct().collect()
    return {r[0] for r in days if r[0] is not None}


def detection_window(
    spark, lake: str, since: dt.date | None, until: dt.date | None, today: dt.date | None = None
) -> list[dt.date]:
    """The days to detect on.

    ``--since`` [``--until``, default today]: every day in between. Otherwise yesterday and
    today plus every day an ingest or aggregate run wrote into since the last succeeded detect
    run started (late files repair old days, and their findings are found then).
    """
    today = today or _today()
    if until is not None and since is None:
        raise UsageError(f"{JOB_NAME}: --until needs --since")
    if since is not None:
        return commits.days_between(since, until or today)
    days = {today - dt.timedelta(days=1), today}
    if lake_mod.delta_exists(spark, lake_mod.table_uri(lake, "job_runs")):
        days |= touched_days_since_last_run(lake_mod.read_table(spark, lake, "job_runs"))
    return sorted(days)


# --- the job --------------------------------------------------------------------------------


def run_rules(spark, lake: str, rules: list[Rule], cfg: dict[str, Any], window: list[dt.date]) -> DataFrame:
    """Register the tables and functions the rules need; return all rules' evidence rows (lazy).

    Every rule's SQL is analysed here, before anything is written: a broken rule stops the run
    with an error naming it.
    """
    register_functions(spark)
    register_tables(spark, lake, {t for r in rules for t in r.tables})
    frames = []
    for rule in rules:
        params = {**rule_parameters(rule, cfg), "window_start": window[0], "window_end": window[-1]}
        frames.append(rule_evidence(spark, rule, params))
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame)
    return out


def _root_cause(exc: BaseException) -> str:
    """First line of the innermost JVM cause of a Py4J error (the task's own error), else of ``exc``."""
    java = getattr(exc, "java_exception", None)
    if java is None:
        return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    while java.getCause() is not None:
        java = java.getCause()
    return (str(java.toString()).strip().splitlines() or ["unknown JVM error"])[0]


def blame_rule(
    spark, rules: list[Rule], cfg: dict[str, Any], window: list[dt.date], exc: BaseException
) -> None:
    """Run each rule alone to name the one whose execution failed; raise DetectionRuleError for it.

    Only on the failure path: the rules normally run as one Spark job.
    """
    for rule in rules:
        params = {**rule_parameters(rule, cfg), "window_start": window[0], "window_end": window[-1]}
        try:
            rule_evidence(spark, rule, params).count()
        except Exception as rule_exc:  # noqa: BLE001 - reported with the rule's name
            raise DetectionRuleError(
                f"detection rule {rule.id} failed while running: {_root_cause(rule_exc)[:400]}"
            ) from exc


def detect(ctx: JobContext) -> RunRecord:
    """Job entry: run the detection pack over the window and merge the findings into the lake."""
    spark, cfg, args = ctx.spark, ctx.cfg, ctx.args
    lake = normalize_uri(args.lake)
    rec = RunRecord.for_job(ctx, "detections", lake)
    findings = None
    try:
        t = time.monotonic()
        window = detection_window(spark, lake, args.since, args.until)
        disabled = set(config_mod.get(cfg, "detections.disabled", []) or [])
        pack = load_rules()
        unknown = sorted(disabled - {r.id for r in pack})
        if unknown:
            raise ConfigError(f"detections.disabled names unknown rules: {', '.join(unknown)}")
        rules = [r for r in pack if r.id not in disabled]
        max_evidence = int(config_mod.get(cfg, "detections.max_evidence", DEFAULT_MAX_EVIDENCE))
        rec.counters["rules"] = len(rules)
        rec.counters["window_days"] = len(window)
        log.info("detect: %d rules over %d days %s..%s", len(rules), len(window), window[0], window[-1])
        evidence = run_rules(spark, lake, rules, cfg, window) if rules else None
        rec.phase_seconds["plan"] = time.monotonic() - t

        t = time.monotonic()
        now = now_utc().replace(microsecond=0)
        if evidence is not None:
            findings = build_findings(
                evidence, rules, window=window, run_id=ctx.run_id, detected_at=now, max_evidence=max_evidence
            ).cache()
            try:
                per_rule = findings.groupBy("rule_id", "dt").count().collect()
            except Exception as exc:  # noqa: BLE001 - a rule that fails while running, not at analysis
                blame_rule(spark, rules, cfg, window, exc)
                raise
        else:
            per_rule = []
        for r in per_rule:
            rec.counters[f"{r['rule_id']}_findings"] = (
                rec.counters.get(f"{r['rule_id']}_findings", 0) + r["count"]
            )
        built = sum(r["count"] for r in per_rule)
        days = sorted({r["dt"] for r in per_rule})
        rec.phase_seconds["detect"] = time.monotonic() - t

        t = time.monotonic()
        if findings is not None and built:
            outcome = quality.validate_batch(
                spark, TABLE, findings, run_id=ctx.run_id, cfg=cfg, expected_row_count=built
            )
            record_gate(spark, lake, rec, [outcome])
        rec.phase_seconds["quality"] = time.monotonic() - t

        t = time.monotonic()
        inserted, updated = merge_findings(spark, findings, lake, days)
        rec.phase_seconds["write"] = time.monotonic() - t
        # Findings already in the table are the duplicates of a rerun: read = loaded + duplicates.
        rec.records_read = built
        rec.records_loaded = inserted
        rec.records_duplicate = built - inserted
        rec.counters["findings_inserted"] = inserted
        rec.counters["findings_updated"] = updated
        if inserted or updated:
            rec.loaded_by_table[TABLE] = inserted + updated
            rec.touched_dates = days
        rec.status = "succeeded"
        rec.ended_at = now_utc()
        write_run_record(spark, lake, rec)
        summary_log.info(_summary(rec, window))
        return rec
    except Exception as exc:
        record_failed_run(spark, lake, rec, exc)
        raise
    finally:
        if findings is not None:
            findings.unpersist()


def _summary(rec: RunRecord, window: list[dt.date]) -> str:
    lines = [
        f"run {rec.run_id} job={rec.job} lake={rec.source_uri} status={rec.status}",
        f"  window: {len(window)} days {window[0]}..{window[-1]}, rules: {rec.counters.get('rules', 0)}",
        f"  findings: {rec.records_read} detected, {rec.records_loaded} new, "
        f"{rec.counters.get('findings_updated', 0)} updated",
    ]
    for key, n in sorted(rec.counters.items()):
        if key.endswith("_findings"):
            lines.append(f"    {key.removesuffix('_findings')}: {n}")
    lines.append(f"  data quality: {rec.dq_status}")
    lines.append("  seconds: " + ", ".join(f"{k}={v:.1f}" for k, v in rec.phase_seconds.items()))
    return "\n".join(lines)
