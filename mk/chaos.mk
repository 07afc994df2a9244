# Fault matrix (lib/auditlake/commits.py, run_log.py, aggregate_plan.py; dev/lakechaos).
CHAOS_OUT ?= build/chaos
CHAOS_SCALE ?= 0.01
CHAOS_ARGS ?=
.PHONY: chaos test-run-safety

chaos: setup ## kill every job at each of its Delta commits, rerun, compare every table with a clean run (CHAOS_ARGS=...)
	$(PY) -m lakechaos --out $(CHAOS_OUT) --scale $(CHAOS_SCALE) $(CHAOS_ARGS)

test-run-safety: setup ## run the kill / concurrency / DynamoDB log store tests only
	$(PY) -m pytest -q tests/test_run_safety.py tests/test_logstore.py
