"""Build hook: ship the top-level ``schemas/``, ``conf/``, ``queries/`` and ``jobs/`` inside the package.

The repository keeps them at the top level, where people edit them; a built wheel (or
``dist/auditlake.zip``) carries them as ``auditlake/_data/<kind>/``, where
``auditlake.resources`` reads them through ``importlib.resources``. Everything else about the
build is in ``pyproject.toml``.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DATA_DIRS = ("schemas", "conf", "queries", "detections", "jobs")
ROOT = Path(__file__).resolve().parent


class BuildPyWithData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the files from the checkout itself
        for kind in DATA_DIRS:
            target = Path(self.build_lib) / "auditlake" / "_data" / kind
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            for path in sorted((ROOT / kind).iterdir()):
                if path.is_file():
                    shutil.copy2(path, target / path.name)


setup(cmdclass={"build_py": BuildPyWithData})
