# Data quality: suites in schemas/<table>.quality.yaml, gate in lib/auditlake/quality.py.
QUALITY_ROWS ?= 400000

.PHONY: quality-overhead

quality-overhead: setup ## time the quality gate on a cached QUALITY_ROWS-row cloudtrail_events batch vs a plain count
	$(PY) -m bench.quality_overhead --rows $(QUALITY_ROWS)
