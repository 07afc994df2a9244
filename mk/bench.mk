# Benchmark (issue #9): synthetic logs -> floor, DuckDB, ingest, rerun, aggregates; see bench/README.md.
# SCALE (Makefile default 1: ~60k CloudTrail records, ~60k S3 access lines in ~1200 objects, ~14k crawler
# events) finishes in well under 10 minutes on 2 cores.
BENCH_ARGS ?=

bench: setup ## benchmark every source at SCALE (default 1); results in bench/results and bench/README.md
	$(PY) tools/bench.py run --scale $(SCALE) $(BENCH_ARGS)

bench-scale: setup ## the benchmark at SCALE and 4 x SCALE: how time and memory grow
	$(PY) tools/bench.py scale --scale $(SCALE) --factor 4 $(BENCH_ARGS)

bench-data: ## only write the synthetic logs + manifest (build/bench/synth-$(SCALE))
	$(PY) -m auditlake.synth --out build/bench/synth-$(SCALE) --scale $(SCALE)
