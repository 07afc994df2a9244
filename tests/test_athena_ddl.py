"""Athena DDL generation, Glue registration (moto), Trino translation and query rendering. No Spark, no Trino."""

from __future__ import annotations

import datetime as dt

import boto3
import pytest
from moto import mock_aws

from athena_check import trino_ddl
from auditlake.athena import ddl, queries
from auditlake.tables import ColumnSpec, TableContract, load_contract

LAKE = "s3://audit-bucket/lake"


def agg_contract() -> TableContract:
    return TableContract(
        name="agg_requests_daily",
        format="parquet",
        partition_by=("dt",),
        keys=("dt", "bucket"),
        columns=(
            ColumnSpec("bucket", "string", False, "bucket name; it's the key"),
            ColumnSpec("requests", "bigint"),
            ColumnSpec("ips", "array<struct<ip:string,n:integer>>"),
            ColumnSpec("dt", "date", False, "UTC day"),
        ),
        description="Requests per bucket and day.",
    )


def test_delta_table_is_an_athena_native_delta_table():
    spec = ddl.table_spec(load_contract("cloudtrail_events"), LAKE + "/", "audit")
    sql = ddl.render_table(spec)
    statement = [line for line in sql.splitlines() if not line.startswith("--")]
    assert statement == [
        "CREATE EXTERNAL TABLE IF NOT EXISTS `audit`.`cloudtrail_events`",
        "LOCATION 's3://audit-bucket/lake/cloudtrail_events/'",
        "TBLPROPERTIES (",
        "  'table_type'='DELTA'",
        ");",
    ]
    assert "--   resources array<struct<arn:string,account_id:string,type:string>>" in sql


def test_parquet_table_uses_partition_projection_on_dt():
    sql = ddl.render_table(ddl.table_spec(agg_contract(), "s3a://audit-bucket/lake", "audit"))
    assert sql.splitlines()[1:] == [
        "CREATE EXTERNAL TABLE IF NOT EXISTS `audit`.`agg_requests_daily` (",
        "  `bucket` string COMMENT 'bucket name; it\\'s the key',",
        "  `requests` bigint,",
        "  `ips` array<struct<ip:string,n:int>>",
        ")",
        "COMMENT 'Requests per bucket and day.'",
        "PARTITIONED BY (`dt` date COMMENT 'UTC day')",
        "STORED AS PARQUET",
        "LOCATION 's3://audit-bucket/lake/agg_requests_daily/'",
        "TBLPROPERTIES (",
        "  'projection.enabled'='true',",
        "  'projection.dt.type'='date',",
        "  'projection.dt.format'='yyyy-MM-dd',",
        "  'projection.dt.range'='2010-01-01,NOW',",
        "  'projection.dt.interval'='1',",
        "  'projection.dt.interval.unit'='DAYS',",
        "  'storage.location.template'='s3://audit-bucket/lake/agg_requests_daily/dt=${dt}/',",
        "  'parquet.compression'='SNAPPY'",
        ");",
    ]


def test_lake_must_be_s3_and_names_lowercase():
    with pytest.raises(ValueError, match="s3:// URI"):
        ddl.table_spec(agg_contract(), "/tmp/lake", "audit")
    with pytest.raises(ValueError, match="database name"):
        ddl.table_spec(agg_contract(), LAKE, "Audit-DB")


def test_every_contract_renders_and_translates_back():
    script = ddl.render_ddl(ddl.all_table_specs(LAKE, "audit"))
    assert script.count("CREATE EXTERNAL TABLE") == len(ddl.all_table_specs(LAKE, "audit"))
    translated = dict(trino_ddl.translate_script(script, LAKE, "local:///lake"))
    assert translated["audit"] == 'CREATE SCHEMA IF NOT EXISTS hive."audit"'
    assert translated["quarantine"] == (
        "CALL delta.system.register_table(schema_name => 'audit', table_name => 'quarantine', "
        "table_location => 'local:///lake/quarantine')"
    )


def test_parquet_translation_keeps_types_partitions_and_projection():
    script = ddl.render_table(ddl.table_spec(agg_contract(), LAKE, "audit"))
    [(name, sql)] = trino_ddl.translate_script(script, LAKE, "local:///lake")
    assert name == "agg_requests_daily"
    assert sql.splitlines() == [
        'CREATE TABLE hive."audit"."agg_requests_daily" (',
        '  "bucket" varchar,',
        '  "requests" bigint,',
        '  "ips" array(row("ip" varchar, "n" integer)),',
        "  \"dt\" date WITH (partition_projection_type = 'DATE', partition_projection_format = 'yyyy-MM-dd', "
        "partition_projection_range = ARRAY['2010-01-01', 'NOW'], partition_projection_interval = 1, "
        "partition_projection_interval_unit = 'DAYS')",
        ")",
        "COMMENT 'Requests per bucket and day.'",
        "WITH (",
        "  format = 'PARQUET',",
        "  external_location = 'local:///lake/agg_requests_daily',",
        "  partition_projection_enabled = true,",
        "  partition_projection_location_template = 'local:///lake/agg_requests_daily/dt=${dt}/',",
        "  partitioned_by = ARRAY['dt']",
        ")",
    ]


def test_translation_refuses_unknown_properties():
    script = ddl.render_table(ddl.table_spec(agg_contract(), LAKE, "audit")).replace(
        "'parquet.compression'='SNAPPY'", "'skip.header.line.count'='1'"
    )
    with pytest.raises(ValueError, match="skip.header.line.count"):
        trino_ddl.translate_script(script, LAKE, "local:///lake")


def test_glue_registration_creates_then_updates():
    specs = [
        ddl.table_spec(agg_contract(), LAKE, "audit"),
        ddl.table_spec(load_contract("s3_access_logs"), LAKE, "audit"),
    ]
    with mock_aws():
        glue = boto3.client("glue", region_name="us-east-1")
        assert ddl.register_in_glue(glue, specs) == {
            "agg_requests_daily": "created",
            "s3_access_logs": "created",
        }
        assert ddl.register_in_glue(glue, specs) == {
            "agg_requests_daily": "updated",
            "s3_access_logs": "updated",
        }
        agg = glue.get_table(DatabaseName="audit", Name="agg_requests_daily")["Table"]
        delta = glue.get_table(DatabaseName="audit", Name="s3_access_logs")["Table"]
    assert agg["PartitionKeys"] == [{"Name": "dt", "Type": "date", "Comment": "UTC day"}]
    assert (
        agg["Parameters"]["storage.location.template"]
        == "s3://audit-bucket/lake/agg_requests_daily/dt=${dt}/"
    )
    assert agg["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
    assert delta["Parameters"]["table_type"] == "DELTA"
    assert delta["StorageDescriptor"]["Location"] == "s3://audit-bucket/lake/s3_access_logs/"


def test_query_parameters_render_as_typed_literals():
    query = queries.load_query("who_deleted_table")
    sql = queries.render(
        query,
        {
            "database": "sales",
            "table": "o'rders",
            "start_date": dt.date(2024, 3, 1),
            "end_date": "2024-03-31",
        },
    )
    assert "BETWEEN DATE '2024-03-01' AND DATE '2024-03-31'" in sql
    assert "= 'o''rders'" in sql
    assert "{{" not in sql
    with pytest.raises(ValueError, match="missing parameter table"):
        queries.render(query, {"database": "sales", "start_date": "2024-03-01", "end_date": "2024-03-02"})
    with pytest.raises(ValueError):
        queries.render(
            query, {"database": "x", "table": "t", "start_date": "2024-13-01", "end_date": "2024-03-02"}
        )


def test_defaults_and_lists():
    failed = queries.render(queries.load_query("failed_crawlers"), {})
    assert "run_date = (current_date - INTERVAL '1' DAY)" in failed
    untrusted = queries.render(
        queries.load_query("queries_from_untrusted_networks"),
        {
            "start_date": "2024-03-01",
            "end_date": "2024-03-01",
            "trusted_cidrs": ["10.0.0.0/8", "192.168.0.0/16"],
        },
    )
    assert "any_match(ARRAY['10.0.0.0/8', '192.168.0.0/16'], cidr ->" in untrusted


def test_every_query_filters_on_a_partition_column():
    partition_columns = ("event_date", "request_date", "run_date", "dt")
    for name in queries.list_queries():
        query = queries.load_query(name)
        where = query.sql.split("WHERE", 1)[1]
        assert any(col in where.split("AND")[0] for col in partition_columns), name
