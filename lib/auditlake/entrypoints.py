"""The ``auditlake`` console command: ``auditlake <job> [job arguments]``.

It runs the same job script as ``python jobs/<job>.py`` (the wheel carries ``jobs/*.py`` as
package data), so a job added to ``jobs/`` is a sub-command with no further edit, and the
arguments are the script's own.
"""

from __future__ import annotations

import runpy
import sys
import tempfile
from pathlib import Path

from auditlake import resources


def job_names() -> list[str]:
    """The jobs this installation can run (the ``jobs/*.py`` scripts it carries)."""
    return [name.removesuffix(".py") for name in resources.list_names("jobs", ".py")]


def _usage() -> str:
    return (
        "usage: auditlake <job> [--source URI] --lake URI [--env local|emr|glue] ...\n"
        f"jobs: {', '.join(job_names())}\n`auditlake <job> --help` lists a job's arguments"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the job script named by the first argument with the remaining arguments."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    job = argv[0].replace("-", "_")
    if job not in job_names():
        print(f"auditlake: unknown job {argv[0]!r}\n{_usage()}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="auditlake-") as tmp:
        # The script may live inside a zip; runpy needs a file.
        script = Path(tmp) / f"{job}.py"
        script.write_text(resources.read_text("jobs", f"{job}.py"), encoding="utf-8")
        saved = sys.argv
        sys.argv = [str(script), *argv[1:]]
        try:
            runpy.run_path(str(script), run_name="__main__")
        except SystemExit as exc:
            code = exc.code
            return code if isinstance(code, int) else (0 if code is None else 1)
        finally:
            sys.argv = saved
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
