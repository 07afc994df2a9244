# CloudTrail ingest helpers (included by the Makefile).
.PHONY: cloudtrail-fixtures test-cloudtrail

cloudtrail-fixtures: setup ## rebuild tests/fixtures/cloudtrail from ../shared/samples/cloudtrail
	$(PY) dev/make_cloudtrail_fixtures.py

test-cloudtrail: setup ## run the CloudTrail ingest tests
	$(PY) -m pytest -q tests/test_cloudtrail.py
