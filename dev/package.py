"""Build dist/auditlake.zip: the library plus its data files, for --py-files / --extra-py-files.

The zip holds ``auditlake/`` with ``auditlake/_data/{schemas,conf,queries}`` inside it, where
``auditlake.resources`` finds them when the package is imported from the zip.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA_DIRS = ("schemas", "conf", "queries")


def build(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted((REPO / "lib" / "auditlake").rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                zf.write(path, path.relative_to(REPO / "lib").as_posix())
        for kind in DATA_DIRS:
            folder = REPO / kind
            if folder.is_dir():
                for path in sorted(folder.iterdir()):
                    if path.is_file():
                        zf.write(path, f"auditlake/_data/{kind}/{path.name}")
    return out


if __name__ == "__main__":
    target = build(Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "dist" / "auditlake.zip"))
    print(f"wrote {target} ({target.stat().st_size // 1024} KiB)")
