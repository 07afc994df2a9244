# S3 server access logs: tests and the parse benchmark against DuckDB.
S3ACCESS_BENCH ?= build/bench-s3access
.PHONY: test-s3access bench-s3access

test-s3access: ## S3 access log parser and ingest tests
	$(PY) -m pytest -q tests/test_s3_access.py

bench-s3access: ## 2M lines / 5,000 objects: listing, Spark parse, full job vs DuckDB regex->Parquet
	test -d $(S3ACCESS_BENCH)/src || $(PY) tools/gen_s3_access.py $(S3ACCESS_BENCH)/src --lines 2000000 --objects 5000
	$(PY) tools/bench_s3_access.py --src $(S3ACCESS_BENCH)/src --work $(S3ACCESS_BENCH)/work
