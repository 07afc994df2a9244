"""The data-quality gate: each severity path on small batches shaped like the real tables."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import types as T

from auditlake import quality
from auditlake.errors import ConfigError
from auditlake.tables import load_contract

CFG = {"quality": {"enabled": True, "sample_size": 3}}
NOW = dt.datetime(2024, 3, 2, 12, 0, tzinfo=dt.UTC)
RESULT_SCHEMA = T.StructType(
    [
        T.StructField("expectation", T.StringType()),
        T.StructField("column_name", T.StringType()),
        T.StructField("severity", T.StringType()),
        T.StructField("success", T.BooleanType()),
        T.StructField("unexpected_count", T.LongType()),
    ]
)


def ct_row(event_id: str, event_time: dt.datetime | None, **overrides) -> dict:
    """A cloudtrail_events row: every contract column, the ones a test cares about set."""
    row = {c: None for c in load_contract("cloudtrail_events").column_names}
    row.update(
        event_id=event_id,
        event_time=event_time,
        event_date=event_time.date() if event_time else dt.date(2024, 3, 1),
        recipient_account_id="111122223333",
        event_category="Management",
        event_type="AwsApiCall",
        aws_region="us-east-1",
        user_type="IAMUser",
        event_name="DeleteTable",
        source_object="s3://logs/AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/a.json.gz",
    )
    row.update(overrides)
    return row


def ct_batch(spark, rows: list[dict]):
    contract = load_contract("cloudtrail_events")
    # Nullable: the gate must see a planted null, not Spark's own verifier.
    schema = T.StructType([T.StructField(f.name, f.dataType, True) for f in contract.schema.fields])
    return spark.createDataFrame([tuple(r[c] for c in contract.column_names) for r in rows], schema).cache()


def t(hour: int, day: int = 1) -> dt.datetime:
    return dt.datetime(2024, 3, day, hour, 0, 5)


def clean_rows() -> list[dict]:
    return [
        ct_row("e1", t(1)),
        ct_row("e2", t(23), user_type="AssumedRole", event_category=None),  # null enum is not unexpected
        ct_row("e3", t(0, day=2), user_type="AWSService", event_name=None),
    ]


def failed(outcome: quality.QualityOutcome):
    return [(r["expectation"], r["column_name"]) for r in outcome.results if not r["success"]]


def validate(spark, df, **kw):
    kw.setdefault("expected_row_count", df.count())
    return quality.validate_batch(spark, "cloudtrail_events", df, run_id="run-1", cfg=CFG, now=NOW, **kw)


def test_clean_batch_records_every_expectation_as_passed(spark):
    outcome = validate(spark, ct_batch(spark, clean_rows()))

    assert outcome.status == "passed"
    assert outcome.failures == [] and outcome.warnings == []
    actual = quality.results_frame(spark, [outcome], "run-1").select(*RESULT_SCHEMA.fieldNames())
    expected = spark.createDataFrame(
        [
            ("expect_column_values_to_not_be_null", "event_id", "critical", True, 0),
            ("expect_column_values_to_not_be_null", "recipient_account_id", "critical", True, 0),
            ("expect_column_values_to_not_be_null", "event_time", "critical", True, 0),
            ("expect_column_values_to_not_be_null", "event_date", "critical", True, 0),
            ("expect_column_values_to_not_be_null", "source_object", "critical", True, 0),
            ("key_unique_in_batch", "event_id,recipient_account_id", "critical", True, 0),
            ("event_time_in_plausible_window", "event_time", "critical", True, 0),
            ("event_date_in_plausible_window", "event_date", "critical", True, 0),
            ("event_date_is_utc_day_of_event_time", "event_date", "critical", True, 0),
            ("expect_table_row_count_to_equal", None, "critical", True, None),
            ("expect_column_values_to_be_in_set", "user_type", "warning", True, 0),
            ("expect_column_values_to_be_in_set", "event_category", "warning", True, 0),
            ("expect_column_values_to_be_in_set", "event_type", "warning", True, 0),
            ("expect_column_values_to_match_regex", "recipient_account_id", "warning", True, 0),
            ("expect_column_values_to_match_regex", "aws_region", "warning", True, 0),
        ],
        RESULT_SCHEMA,
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_duplicate_key_fails_with_table_expectation_column_count_and_samples(spark):
    rows = [*clean_rows(), ct_row("e1", t(1))]

    outcome = validate(spark, ct_batch(spark, rows))

    assert outcome.status == "failed"
    assert failed(outcome) == [("key_unique_in_batch", "event_id,recipient_account_id")]
    message = outcome.message()
    assert "cloudtrail_events" in message
    assert "key_unique_in_batch" in message
    assert "event_id,recipient_account_id" in message
    assert "2 unexpected of 4 rows" in message
    assert "event_id=e1, recipient_account_id=111122223333" in message
    assert "\n" not in message


def test_null_event_time_fails(spark):
    rows = [*clean_rows(), ct_row("e4", None)]

    outcome = validate(spark, ct_batch(spark, rows))

    assert outcome.status == "failed"
    # The null also fails the event_date rule (no day can match a missing time).
    assert failed(outcome) == [
        ("expect_column_values_to_not_be_null", "event_time"),
        ("event_date_is_utc_day_of_event_time", "event_date"),
    ]
    assert outcome.failures[0].startswith(
        "cloudtrail_events: critical expect_column_values_to_not_be_null failed on column event_time: "
        "1 unexpected of 4 rows (25.00%), e.g. [null]"
    )


def test_wrong_event_date_fails_with_the_offending_rows(spark):
    rows = [*clean_rows(), ct_row("e5", t(23), event_date=dt.date(2024, 3, 2))]

    outcome = validate(spark, ct_batch(spark, rows))

    assert outcome.status == "failed"
    assert failed(outcome) == [("event_date_is_utc_day_of_event_time", "event_date")]
    assert outcome.results[8]["sample_unexpected"] == [
        "event_id=e5, event_time=2024-03-01T23:00:05, event_date=2024-03-02"
    ]
    assert "1 unexpected of 4 rows" in outcome.message()


def test_event_time_outside_the_sane_window_fails(spark):
    rows = [*clean_rows(), ct_row("e6", dt.datetime(2004, 12, 31, 23, 0))]

    outcome = validate(spark, ct_batch(spark, rows))

    assert outcome.status == "failed"
    assert failed(outcome) == [
        ("event_time_in_plausible_window", "event_time"),
        ("event_date_in_plausible_window", "event_date"),
    ]
    assert "e.g. [2004-12-31T23:00:00]" in outcome.failures[0]


def test_unknown_user_type_is_a_recorded_warning(spark):
    rows = [*clean_rows(), ct_row("e7", t(2), user_type="Alien"), ct_row("e8", t(3), user_type="Alien")]

    outcome = validate(spark, ct_batch(spark, rows))

    assert outcome.status == "warning"
    assert outcome.failures == []
    assert outcome.warnings == [
        "cloudtrail_events: warning expect_column_values_to_be_in_set failed on column user_type: "
        "2 unexpected of 5 rows (40.00%), e.g. [Alien]; [Alien]"
    ]
    actual = (
        quality.results_frame(spark, [outcome], "run-1")
        .where("success = false")
        .select(
            "run_id",
            "table_name",
            "column_name",
            "severity",
            "element_count",
            "unexpected_count",
            "unexpected_percent",
            "sample_unexpected",
        )
    )
    expected = spark.createDataFrame(
        [("run-1", "cloudtrail_events", "user_type", "warning", 5, 2, 40.0, ["Alien", "Alien"])],
        actual.schema,
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_row_count_not_matching_the_run_record_fails(spark):
    outcome = validate(spark, ct_batch(spark, clean_rows()), expected_row_count=5)

    assert outcome.status == "failed"
    assert outcome.failures == [
        "cloudtrail_events: critical expect_table_row_count_to_equal failed on column (table): 3 rows, expected 5"
    ]


def test_row_count_rule_is_left_out_without_a_run_count(spark):
    outcome = validate(spark, ct_batch(spark, clean_rows()), expected_row_count=None)

    assert outcome.status == "passed"
    assert "expect_table_row_count_to_equal" not in [r["expectation"] for r in outcome.results]


def test_disabled_gate_is_skipped(spark):
    df = ct_batch(spark, [*clean_rows(), ct_row("e1", t(1))])

    outcome = quality.validate_batch(
        spark, "cloudtrail_events", df, run_id="r", cfg={"quality": {"enabled": False}}
    )

    assert (outcome.status, outcome.results) == ("skipped", [])


def test_table_without_a_suite_passes_with_no_results(spark):
    df = spark.createDataFrame([("x",)], "a string")

    outcome = quality.validate_batch(spark, "no_such_table", df, run_id="r", cfg=CFG)

    assert (outcome.status, outcome.results) == ("passed", [])


def test_suite_override_and_missing_column_is_a_critical_failure(spark):
    df = spark.createDataFrame([("a", 1), ("b", None)], "k string, n int")
    suite = {
        "table": "scratch",
        "expectations": [
            {"type": "expect_column_values_to_not_be_null", "column": "n", "severity": "warning"},
            {"type": "expect_column_values_to_not_be_null", "column": "missing", "severity": "critical"},
        ],
    }

    outcome = quality.validate_batch(spark, "scratch", df, run_id="r", cfg=CFG, suite=suite)

    assert outcome.status == "failed"
    assert outcome.failures[0].startswith(
        "scratch: critical expect_column_values_to_not_be_null failed on column missing: error"
    )
    assert outcome.warnings == [
        "scratch: warning expect_column_values_to_not_be_null failed on column n: "
        "1 unexpected of 2 rows (50.00%), e.g. [null]"
    ]


def test_bad_severity_is_a_config_error(spark):
    df = spark.createDataFrame([("a",)], "k string")
    suite = {
        "table": "scratch",
        "expectations": [{"type": "expect_column_values_to_not_be_null", "column": "k", "severity": "fatal"}],
    }

    with pytest.raises(ConfigError, match="severity must be one of"):
        quality.validate_batch(spark, "scratch", df, run_id="r", cfg=CFG, suite=suite)


def test_tokens_resolve_against_now_and_the_run_count():
    specs = quality.resolve_specs(
        "t",
        {
            "expectations": [
                {
                    "type": "expect_column_values_to_be_between",
                    "column": "ts",
                    "severity": "critical",
                    "min_value": "2005-01-01T00:00:00Z",
                    "max_value": "{now+1d}",
                },
                {
                    "type": "expect_column_values_to_be_between",
                    "column": "d",
                    "severity": "critical",
                    "min_value": "2005-01-01",
                    "max_value": "{today+1d}",
                },
                {
                    "type": "expect_table_row_count_to_equal",
                    "value": "{expected_row_count}",
                    "severity": "critical",
                },
            ]
        },
        now=NOW,
        expected_row_count=7,
    )

    assert [s.kwargs for s in specs] == [
        {
            "column": "ts",
            "min_value": dt.datetime(2005, 1, 1, tzinfo=dt.UTC),
            "max_value": dt.datetime(2024, 3, 3, 12, 0, tzinfo=dt.UTC),
        },
        {"column": "d", "min_value": dt.date(2005, 1, 1), "max_value": dt.date(2024, 3, 3)},
        {"value": 7},
    ]


def test_results_frame_matches_the_dq_results_contract(spark):
    outcome = validate(spark, ct_batch(spark, clean_rows()))

    frame = quality.results_frame(spark, [outcome], "run-9")

    assert frame.schema == load_contract("dq_results").schema
    row = frame.where("expectation = 'expect_table_row_count_to_equal'").collect()[0]
    assert (row.run_id, row.element_count, row.evaluated_date) == ("run-9", 3, row.evaluated_at.date())
    assert json.loads(row.details)["kwargs"] == {"value": 3}


@pytest.mark.parametrize("table", quality.list_suites())
def test_every_suite_runs_on_its_table_contract(spark, table):
    """Each suite file names real columns and valid arguments: it runs clean on an empty batch."""
    df = spark.createDataFrame([], load_contract(table).schema)

    outcome = quality.validate_batch(spark, table, df, run_id="r", cfg=CFG, expected_row_count=0)

    assert [r["details"] for r in outcome.results if "exception" in r["details"]] == []
    assert outcome.status == "passed"


def test_data_docs_are_written_per_run_when_asked(spark, tmp_path):
    df = spark.createDataFrame([("a",), (None,)], "k string")
    suite = {
        "table": "scratch",
        "expectations": [
            {"type": "expect_column_values_to_not_be_null", "column": "k", "severity": "warning"}
        ],
    }
    cfg = {"quality": {"enabled": True, "data_docs": True, "data_docs_dir": str(tmp_path / "docs")}}

    quality.validate_batch(spark, "scratch", df, run_id="run-7", cfg=cfg, suite=suite)

    page = tmp_path / "docs" / "run_id=run-7" / "scratch.html"
    text = page.read_text(encoding="utf-8")
    assert "<html" in text.lower()
    assert "scratch" in text


def test_a_batch_of_another_session_gets_its_failure_details_from_gx_engine(spark):
    """The pipeline runs each job in a session of its own over one SparkContext: GX's engine, made
    once, must run its unexpected-rows query where the batch's temporary view is."""
    quality._gx_for(spark)  # made for the main session
    other = spark.newSession()
    rows = [*clean_rows(), ct_row("e1", t(1))]

    outcome = validate(other, ct_batch(other, rows))

    assert failed(outcome) == [("key_unique_in_batch", "event_id,recipient_account_id")]
    assert "2 unexpected of 4 rows" in outcome.message()
    assert "event_id=e1, recipient_account_id=111122223333" in outcome.message()


def test_one_pass_judges_every_known_entry_as_gx_own_engine_does(spark):
    """The counts of one aggregate (plus one query per predicate-less unexpected-rows entry and
    compound key) give GX what it needs to judge the suite; GX's own engine agrees."""
    rows = [
        ("a", 1, "k1", 1),
        ("b", 7, "k2", 5),
        (None, 12, "k2", 0),
        ("x", None, "k3", None),
        ("a", 3, "k1", 3),
    ]
    df = spark.createDataFrame(rows, "s string, n int, k string, m int").cache()
    warn = {"severity": "warning"}
    entries = [  # (suite entry, whether it passes on the rows above)
        ({"type": "expect_column_values_to_not_be_null", "column": "s"}, False),
        ({"type": "expect_column_values_to_not_be_null", "column": "k"}, True),
        (
            {"type": "expect_column_values_to_be_between", "column": "n", "min_value": 0, "max_value": 10},
            False,
        ),
        (
            {
                "name": "n_mostly",
                "type": "expect_column_values_to_be_between",
                "column": "n",
                "min_value": 0,
                "max_value": 10,
                "mostly": 0.7,
            },
            True,
        ),
        ({"type": "expect_column_values_to_be_in_set", "column": "s", "value_set": ["a", "b", "x"]}, True),
        ({"type": "expect_column_values_to_match_regex", "column": "s", "regex": "^[ab]$"}, False),
        ({"type": "expect_column_values_to_not_match_regex", "column": "k", "regex": "9"}, True),
        (
            {
                "name": "no_seven",
                "type": "unexpected_rows_expectation",
                "column": "n",
                "unexpected_row_predicate": "n = 7",
                "level": "row",
            },
            False,
        ),
        (
            {
                "name": "k_unique",
                "type": "unexpected_rows_expectation",
                "column": "k",
                "unexpected_rows_query": "SELECT k FROM {batch} GROUP BY k HAVING count(*) > 1",
            },
            False,
        ),
        ({"type": "expect_table_row_count_to_equal", "value": 5}, True),
        ({"name": "six_rows", "type": "expect_table_row_count_to_equal", "value": 6}, False),
        ({"type": "expect_compound_columns_to_be_unique", "column_list": ["k", "m"]}, True),
        (
            {
                "name": "s_k",
                "type": "expect_compound_columns_to_be_unique",
                "column_list": ["s", "k"],
                "ignore_row_if": "never",
            },
            False,
        ),
        (
            {
                "type": "expect_column_pair_values_a_to_be_greater_than_b",
                "column_A": "n",
                "column_B": "m",
                "or_equal": True,
                "ignore_row_if": "either_value_is_missing",
            },
            True,
        ),
        (
            {
                "name": "n_above_m",
                "type": "expect_column_pair_values_a_to_be_greater_than_b",
                "column_A": "n",
                "column_B": "m",
                "ignore_row_if": "either_value_is_missing",
            },
            False,
        ),
    ]
    suite = {"table": "scratch", "expectations": [{**entry, **warn} for entry, _ in entries]}
    expected = [passes for _, passes in entries]
    specs = quality.resolve_specs("scratch", suite, now=NOW, window=quality.plausible_window(CFG, NOW))

    gx_state = quality._gx_for(spark)
    judged, n, rest = quality._one_pass(spark, "scratch", df, specs, gx_state.engine)
    own = gx_state.batch_definition.get_batch(batch_parameters={"dataframe": df}).validate(
        quality._build_suite("scratch", specs), result_format={"result_format": "BOOLEAN_ONLY"}
    )

    assert (n, rest) == (5, [])
    assert [judged[i].success for i in range(len(specs))] == expected
    assert [r.success for r in sorted(own.results, key=quality._index)] == expected


def test_one_pass_leaves_what_it_cannot_count_to_gx_engine(spark):
    df = spark.createDataFrame([(1, 2), (3, 3), (1, 2)], "a int, b int").cache()
    suite = {
        "table": "scratch",
        "expectations": [
            {"type": "expect_column_values_to_not_be_null", "column": "a", "severity": "warning"},
            {"type": "expect_column_values_to_be_unique", "column": "a", "severity": "warning"},
        ],
    }
    specs = quality.resolve_specs("scratch", suite, now=NOW, window=quality.plausible_window(CFG, NOW))

    judged, rows, rest = quality._one_pass(spark, "scratch", df, specs, quality._gx_for(spark).engine)
    outcome = quality.validate_batch(spark, "scratch", df, run_id="r", cfg=CFG, suite=suite)

    assert (sorted(judged), rows, rest) == ([0], 3, [1])
    assert failed(outcome) == [("expect_column_values_to_be_unique", "a")]
    assert [r["unexpected_count"] for r in outcome.results] == [0, 2]


def test_one_pass_leaves_a_compound_key_on_a_missing_column_to_gx_engine_which_reports_it(spark):
    df = spark.createDataFrame([(1, 2), (1, 2)], "a int, b int").cache()
    suite = {
        "table": "scratch",
        "expectations": [
            {
                "type": "expect_compound_columns_to_be_unique",
                "column_list": ["a", "nope"],
                "ignore_row_if": "never",
                "severity": "critical",
            },
            {
                "type": "expect_compound_columns_to_be_unique",
                "column_list": ["a", "b"],
                "ignore_row_if": "never",
                "severity": "warning",
            },
        ],
    }

    outcome = quality.validate_batch(spark, "scratch", df, run_id="r", cfg=CFG, suite=suite)

    assert outcome.status == "failed"
    assert outcome.failures[0].startswith(
        "scratch: critical expect_compound_columns_to_be_unique failed on column a,nope: error"
    )
    assert outcome.warnings == [
        "scratch: warning expect_compound_columns_to_be_unique failed on column a,b: "
        "2 unexpected of 2 rows (100.00%), e.g. [a=1, b=2]; [a=1, b=2]"
    ]


def test_suites_resolve_in_threads_of_a_fresh_process_before_gx_is_imported(tmp_path):
    """The aggregates job gates its aggregates in threads; the first of them imports GX. A thread
    that looked an expectation type up while another was importing GX found its registry empty
    ("unknown expectation type 'expect_column_values_to_not_be_null'")."""
    script = tmp_path / "threads.py"
    script.write_text(
        "import datetime as dt, sys, threading, time\n"
        "from auditlake import quality\n"
        "assert 'great_expectations' not in sys.modules\n"
        "now = dt.datetime(2024, 3, 2, tzinfo=dt.UTC)\n"
        "tables = ['agg_cloudtrail_daily', 'agg_crawler_daily', 'entity_activity_daily',\n"
        "          'agg_s3_requests_daily', 'agg_glue_jobs_daily', 'agg_data_access_daily']\n"
        "errors = []\n"
        "def resolve(table, delay):\n"
        "    time.sleep(delay)  # arriving all through the first thread's import of GX\n"
        "    try:\n"
        "        quality.resolve_specs(table, quality.load_suite(table), now=now)\n"
        "    except Exception as exc:\n"
        "        errors.append(f'{table}: {exc}')\n"
        "threads = [threading.Thread(target=resolve, args=(t, 0.05 * i)) for i, t in enumerate(tables * 5)]\n"
        "[t.start() for t in threads]\n"
        "[t.join() for t in threads]\n"
        "print(errors or 'ok')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(quality.__file__).parents[1])}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "ok"
