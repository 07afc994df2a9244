# Benchmark: synthetic logs -> floor, DuckDB, ingest, rerun, aggregates; see bench/README.md.
# SCALE (Makefile default 1: ~60k CloudTrail records, ~60k S3 access lines in ~1200 objects, ~14k crawler
# events) takes about 25 minutes on 2 cores (every step is its own process; see bench/README.md).
BENCH_ARGS ?=

bench: setup ## benchmark every source at SCALE (default 1); results in bench/results and bench/README.md
	$(PY) -m bench run --scale $(SCALE) $(BENCH_ARGS)

# The curve: SCALE, then each factor of it (1x, 4x, 16x); the history step does not depend on the
# scale, so it is left out. At SCALE 1 the 16x run holds about 940k CloudTrail records
# and takes about 20 minutes on 2 cores (the whole curve about 32).
BENCH_SCALE_FACTORS ?= 4,16
bench-scale: setup ## the benchmark at SCALE, 4 x and 16 x SCALE: how time and memory grow
	$(PY) -m bench scale --scale $(SCALE) --factor $(BENCH_SCALE_FACTORS) --skip history $(BENCH_ARGS)

bench-data: ## only write the synthetic logs + manifest (build/bench/synth-$(SCALE))
	$(PY) -m synth --out build/bench/synth-$(SCALE) --scale $(SCALE)

bench-incremental: setup ## one new hour on 7 vs 30 days of history: rerun time and list calls (HISTORY_ARGS)
	$(PY) -m bench.incremental $(HISTORY_ARGS)

# Scale 7: about 400k CloudTrail records; S3 access at scale 33: about 2M lines, in objects of 400 lines
# on average, so about 5,000 objects (the generator's default, ~50 lines, makes about 40k).
BENCH_LARGE_SCALE ?= 7
BENCH_LARGE_S3_SCALE ?= 33
BENCH_LARGE_S3_LINES_PER_OBJECT ?= 400

bench-large: setup ## the benchmark at the sizes of the performance targets (400k CloudTrail records, 2M S3 lines)
	$(PY) -m bench run --scale $(BENCH_LARGE_SCALE) --source-scale s3access=$(BENCH_LARGE_S3_SCALE) \
		--s3-lines-per-object $(BENCH_LARGE_S3_LINES_PER_OBJECT) $(BENCH_ARGS)
