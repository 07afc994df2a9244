# S3 server access logs: tests and the parse benchmark against DuckDB.
S3ACCESS_BENCH ?= build/bench-s3access
# Scale 33 of the synthetic generator: about 2M lines in about 40k objects.
S3ACCESS_BENCH_SCALE ?= 33
.PHONY: test-s3access bench-s3access

test-s3access: ## S3 access log parser and ingest tests
	$(PY) -m pytest -q tests/test_s3_access.py

bench-s3access: setup ## synthetic S3 access logs (S3ACCESS_BENCH_SCALE, default 33: ~2M lines): listing, Spark parse, full job vs DuckDB regex->Parquet
	test -d $(S3ACCESS_BENCH)/src/s3access || $(PY) -m synth --out $(S3ACCESS_BENCH)/src --scale $(S3ACCESS_BENCH_SCALE) --sources s3access
	$(PY) -m bench.s3_access --src $(S3ACCESS_BENCH)/src/s3access --work $(S3ACCESS_BENCH)/work
