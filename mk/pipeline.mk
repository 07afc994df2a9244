# The nightly pipeline in one SparkSession (jobs/run_pipeline.py): three ingests, then the aggregates.
PIPELINE_RAW ?= demo/raw
PIPELINE_LAKE ?= build/pipeline-lake
.PHONY: pipeline test-pipeline

pipeline: setup ## ingest all three sources then the aggregates in one session (PIPELINE_RAW, PIPELINE_LAKE, PIPELINE_ARGS="--no-parallel --detect")
	$(PY) jobs/run_pipeline.py --lake $(PIPELINE_LAKE) --cloudtrail-source $(PIPELINE_RAW)/cloudtrail \
		--s3-access-source $(PIPELINE_RAW)/s3access --crawler-source $(PIPELINE_RAW)/crawler $(PIPELINE_ARGS)

test-pipeline: setup ## run the one-session pipeline tests only
	$(PY) -m pytest -q tests/test_pipeline.py
