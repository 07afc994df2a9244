# CloudTrail ingest helpers (included by the Makefile).
.PHONY: cloudtrail-fixtures bench-cloudtrail test-cloudtrail

CT_BENCH_DIR ?= build/ct-bench
# Scale 7 of the synthetic generator: about 400k CloudTrail records.
CT_BENCH_SCALE ?= 7

cloudtrail-fixtures: setup ## rebuild tests/fixtures/cloudtrail from ../shared/samples/cloudtrail
	$(PY) dev/make_cloudtrail_fixtures.py

test-cloudtrail: setup ## run the CloudTrail ingest tests
	$(PY) -m pytest -q tests/test_cloudtrail.py

bench-cloudtrail: setup ## CloudTrail ingest vs DuckDB JSON->Parquet on synthetic logs (CT_BENCH_SCALE, default 7: ~400k records)
	test -d $(CT_BENCH_DIR)/cloudtrail || $(PY) -m synth --out $(CT_BENCH_DIR) --scale $(CT_BENCH_SCALE) --sources cloudtrail
	$(PY) -m bench.cloudtrail --source $(CT_BENCH_DIR)/cloudtrail --work build/ct-bench-out
