"""Write the daily HTML audit report of one UTC day: --lake URI --date YYYY-MM-DD [--days N] --out report.html."""

import sys
from pathlib import Path

try:
    import auditlake  # noqa: F401
except ImportError:  # running from a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from auditlake.report.job import main

if __name__ == "__main__":
    raise SystemExit(main())
