# S3 server access logs: tests (the parse benchmark is part of `make bench`).
.PHONY: test-s3access

test-s3access: ## S3 access log parser and ingest tests
	$(PY) -m pytest -q tests/test_s3_access.py
