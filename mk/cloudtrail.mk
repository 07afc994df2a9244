# CloudTrail ingest helpers (included by the Makefile).
.PHONY: cloudtrail-fixtures bench-cloudtrail test-cloudtrail

CT_BENCH_DIR ?= build/ct-bench
CT_BENCH_FILES ?= 400
CT_BENCH_RECORDS ?= 1000

cloudtrail-fixtures: setup ## rebuild tests/fixtures/cloudtrail from ../shared/samples/cloudtrail
	$(PY) tools/make_cloudtrail_fixtures.py

test-cloudtrail: setup ## run the CloudTrail ingest tests
	$(PY) -m pytest -q tests/test_cloudtrail.py

bench-cloudtrail: setup ## CloudTrail ingest vs DuckDB JSON->Parquet on a generated 400k-record set
	test -d $(CT_BENCH_DIR)/AWSLogs || $(PY) tools/gen_cloudtrail.py --out $(CT_BENCH_DIR) --files $(CT_BENCH_FILES) --records $(CT_BENCH_RECORDS)
	$(PY) tools/bench_cloudtrail.py --source $(CT_BENCH_DIR) --work build/ct-bench-out
