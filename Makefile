# auditlake: `make demo` and `make test` are all a newcomer needs; both do their own set-up.
SHELL := /bin/bash
PY_SYS ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
JARS_STAMP := jvm/jars/.stamp
VENV_STAMP := $(VENV)/.stamp
CDS_STAMP := jvm/cds/.stamp
SCALE ?= 1
# dev/ holds the development tools (generator, benchmark, Athena check); it is never packaged.
export PYTHONPATH := $(CURDIR)/lib:$(CURDIR)/dev
export PYSPARK_PYTHON := $(CURDIR)/$(PY)
export PYSPARK_DRIVER_PYTHON := $(CURDIR)/$(PY)
export GX_ANALYTICS_ENABLED := False

.DEFAULT_GOAL := help
.PHONY: help setup demo test lint package cluster-test bench bench-scale athena-check clean

help: ## list targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  %-20s %s\n", $$1, $$2}'

$(VENV_STAMP): pyproject.toml
	$(PY_SYS) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

LOGSTORE_SRC := jvm/logstore/pom.xml $(shell find jvm/logstore/src -name '*.java' 2>/dev/null)

# The pinned jars, plus our DynamoDB log store and local file system (jvm/logstore) built into
# jvm/jars/auditlake-logstore.jar.
$(JARS_STAMP): jvm/pom.xml $(LOGSTORE_SRC)
	cd jvm && mvn -q -B dependency:copy-dependencies -DoutputDirectory=jars -DincludeScope=runtime
	cd jvm/logstore && mvn -q -B -DskipTests package
	cp jvm/logstore/target/auditlake-logstore.jar jvm/jars/auditlake-logstore.jar
	touch $@

# The JVM class-data-sharing archive local sessions start from (dev/cds_archive.py: one pipeline run
# over demo/raw). Tied to the JDK and to the driver's class path (pyspark's jars and ours, put on it
# by lib/auditlake/session.py) and to its JVM options: rebuilt when either stamp, that file, the
# script or conf/local.yaml changes. Should the run fail, it says why once and local jobs start
# without it (a few seconds slower each).
$(CDS_STAMP): $(VENV_STAMP) $(JARS_STAMP) lib/auditlake/session.py dev/cds_archive.py conf/local.yaml
	rm -rf jvm/cds && mkdir -p jvm/cds
	-$(PY) dev/cds_archive.py jvm/cds/auditlake.jsa
	touch $@

setup: $(VENV_STAMP) $(JARS_STAMP) $(CDS_STAMP) ## create .venv, fetch the pinned JVM jars, build our log store jar and the JVM's class archive (once)

demo: setup ## run the main jobs on the bundled sample logs into a local lake and print a summary
	rm -rf build/demo-lake
	$(PY) -m auditlake.demo --lake build/demo-lake

test: setup ## run the whole test suite
	$(PY) -m pytest -q --durations=25 tests

lint: setup ## ruff check and format check over the whole repo (lib, dev, jobs, tests); cfn-lint on deploy/
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/cfn-lint deploy/cloudformation/*.yaml

package: setup ## build dist/: the wheel, auditlake.zip, the job scripts, requirements-glue.txt
	$(PY) dev/dist.py

cluster-test: setup package ## run one job on a loopback Spark standalone master + worker
	$(PY) dev/cluster_test.py

-include mk/*.mk

clean: ## remove build outputs (keeps .venv and jars)
	rm -rf build dist spark-warehouse metastore_db derby.log
