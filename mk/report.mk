# The daily HTML audit report (jobs/audit_report.py) and its real-browser test (headless Chromium).
REPORT_LAKE ?= build/demo-lake
REPORT_DATE ?=
REPORT_DAYS ?= 7
REPORT_OUT ?= build/audit-report-$(REPORT_DATE).html
CHROMIUM ?= chromium

.PHONY: report browser-setup test-report

report: setup ## write the HTML audit report of one day (REPORT_DATE=YYYY-MM-DD REPORT_LAKE=... REPORT_DAYS=7 REPORT_OUT=...)
	@test -n "$(REPORT_DATE)" || { echo "make report: set REPORT_DATE=YYYY-MM-DD" >&2; exit 2; }
	$(PY) jobs/audit_report.py --lake $(REPORT_LAKE) --date $(REPORT_DATE) --days $(REPORT_DAYS) --out $(REPORT_OUT)

# Debian's chromium for the report's browser test; nothing to do when it is on the PATH already.
browser-setup: ## install Debian's chromium (apt, as root) for the report's browser test; no-op when installed
	@command -v $(CHROMIUM) >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" != 0 ]; then echo "browser-setup: chromium is missing; run 'make browser-setup' as root (apt-get install chromium)" >&2; exit 1; fi; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; \
	  command -v $(CHROMIUM) >/dev/null; }

# The whole suite includes the browser test, so it needs the browser too.
test: browser-setup

test-report: setup browser-setup ## the report tests, with the headless-Chromium test (screenshot in build/report-test/)
	$(PY) -m pytest -q tests/test_report.py
