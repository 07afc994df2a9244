"""Ingest Glue crawler logs (CloudWatch Logs exports and Firehose deliveries) into the lake.

    python jobs/ingest_crawler_logs.py --source DIR_OR_URI --lake DIR_OR_URI [--since D --until D]

Loads crawler_log_events (exactly once) and keeps crawler_runs up to date for every run the new
events touch.
"""

import sys
from pathlib import Path

# From a checkout, use the checkout's own package (also when another copy is installed);
# elsewhere (dist/, Glue, EMR) the installed package or the --py-files zip.
_CHECKOUT_LIB = Path(__file__).resolve().parents[1] / "lib"
if (_CHECKOUT_LIB / "auditlake" / "__init__.py").is_file():
    sys.path.insert(0, str(_CHECKOUT_LIB))

from auditlake.cli import run_job  # noqa: E402
from auditlake.ingest.runner import run_ingest  # noqa: E402
from auditlake.sources.crawler_logs import CrawlerLogsSource  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(run_job("ingest_crawler_logs", lambda ctx: run_ingest(ctx, CrawlerLogsSource())))
