# The mutated-input corpus (dev/chaos/corpus.py): every object loaded or quarantined as expected.
.PHONY: chaos-corpus

chaos-corpus: setup ## ingest the full mutated corpus (>100 objects, three sources) and check every object's outcome
	AUDITLAKE_CORPUS=full $(PY) -m pytest -q tests/test_chaos_corpus.py
