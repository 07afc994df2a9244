# CloudTrail ingest helpers (included by the Makefile).
.PHONY: cloudtrail-fixtures test-cloudtrail

cloudtrail-fixtures: setup ## rebuild tests/fixtures/cloudtrail from public samples: SAMPLES=dir (see tests/fixtures/PROVENANCE.md)
	@test -n "$(SAMPLES)" || { echo "usage: make cloudtrail-fixtures SAMPLES=<folder of the public CloudTrail samples>"; exit 2; }
	$(PY) dev/make_cloudtrail_fixtures.py --samples $(SAMPLES)

test-cloudtrail: setup ## run the CloudTrail ingest tests
	$(PY) -m pytest -q tests/test_cloudtrail.py
