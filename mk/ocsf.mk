# Entity activity, the cross-source timeline and the OCSF export for Security Lake (docs/ocsf.md).
OCSF_OUT ?= build/ocsf
OCSF_SCHEMA_GIT ?= ../ocsf-schema/.git
.PHONY: test-ocsf ocsf-export ocsf-schemas

test-ocsf: setup ## entity_activity_daily and OCSF export tests (rows validated against the OCSF 1.1.0 JSON schema)
	$(PY) -m pytest -q tests/test_entities.py tests/test_ocsf.py

ocsf-export: setup ## export the lake's CloudTrail as OCSF 1.1.0 Parquet (LAKE=..., OCSF_OUT=..., ARGS="--since D --until D")
	$(PY) jobs/export_ocsf.py --lake $(LAKE) --out $(OCSF_OUT) $(ARGS)

ocsf-schemas: ## regenerate tests/fixtures/ocsf/1.1.0 from an ocsf-schema clone (OCSF_SCHEMA_GIT=<clone>/.git)
	$(PY) dev/ocsf_schema/generate.py --git-dir $(OCSF_SCHEMA_GIT) --ref refs/tags/v1.1.0 --out tests/fixtures/ocsf/1.1.0 api_activity authentication
