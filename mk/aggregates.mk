# Daily aggregates (jobs/build_daily_aggregates.py).
LAKE ?= build/demo-lake
.PHONY: aggregates test-aggregates

aggregates: setup ## rebuild the daily aggregates of the days ingest touched (LAKE=..., ARGS="--since D --until D")
	$(PY) jobs/build_daily_aggregates.py --lake $(LAKE) $(ARGS)

test-aggregates: setup ## run the aggregate tests only
	$(PY) -m pytest -q tests/test_aggregates.py
