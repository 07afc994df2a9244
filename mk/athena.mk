# Athena: generated DDL and the real-Trino judge of DDL, types and the query pack.
ATHENA_LAKE ?= s3://my-audit-bucket/lake
ATHENA_DATABASE ?= auditlake

.PHONY: athena-ddl

athena-ddl: setup ## print the Athena DDL for every table (ATHENA_LAKE=s3://... ATHENA_DATABASE=...)
	$(PY) jobs/athena_ddl.py --lake $(ATHENA_LAKE) --database $(ATHENA_DATABASE)

athena-check: setup trino-fetch ## build a lake from the samples, load the generated DDL into a real Trino, check types and every query against Spark
	$(PY) -m athena_check
