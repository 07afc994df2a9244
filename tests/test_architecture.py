"""Imports point down: no module of the package imports one of a higher layer, and none imports dev/."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "lib" / "auditlake"

# Lowest first. A module may import modules of its own layer or of a lower one. Every module of
# the package (and every job in jobs/) must be named here: a new module gets a deliberate place.
LAYERS: list[tuple[str, set[str]]] = [
    (
        "foundation",
        {
            "auditlake",
            "auditlake.errors",
            "auditlake.resources",
            "auditlake.config",
            "auditlake.tables",
            "auditlake.metrics",
            "auditlake.logstore",
        },
    ),
    (
        "spark",
        {
            "auditlake.session",
            "auditlake.runtime_checks",
            "auditlake.hadoop_fs",
            "auditlake.commits",
            "auditlake.context",
            "auditlake.ingest",
            "auditlake.ingest.objects",
            "auditlake.ingest.quarantine",
            "auditlake.ingest.decoding",
            "auditlake.redact",
            "auditlake.aggregates",
            "auditlake.entities",
            "auditlake.ocsf",
            "auditlake.athena",
            "auditlake.athena.ddl",
            "auditlake.athena.queries",
        },
    ),
    (
        "storage",
        {
            "auditlake.lake",
            "auditlake.quality",
            "auditlake.ingest.listing",
            "auditlake.run_log",
            "auditlake.aggregate_plan",
        },
    ),
    (
        "sources",
        {
            "auditlake.runs",
            "auditlake.ingest.source",
            "auditlake.ingest.gate",
            "auditlake.sources",
            "auditlake.sources.cloudtrail",
            "auditlake.sources.s3_access",
            "auditlake.sources.crawler_logs",
        },
    ),
    (
        "orchestration",
        {
            "auditlake.ingest.runner",
            "auditlake.aggregate_job",
            "auditlake.athena.job",
            "auditlake.detect",
            "auditlake.maintenance",
            "auditlake.ocsf_job",
            "auditlake.pipeline",
            "auditlake.report",
            "auditlake.report.data",
            "auditlake.report.charts",
            "auditlake.report.html",
        },
    ),
    ("entrypoint", {"auditlake.cli", "auditlake.entrypoints", "auditlake.report.job"}),
    ("jobs", {"auditlake.demo", "jobs"}),
]
LAYER_OF = {module: i for i, (_, modules) in enumerate(LAYERS) for module in modules}
# Development tools live in dev/ and never ship: the package must not import them.
DEV_MODULES = {
    p.stem if p.is_file() else p.name for p in (REPO / "dev").iterdir() if not p.name.startswith((".", "_"))
}


def _module_name(path: Path) -> str:
    if path.is_relative_to(REPO / "jobs"):
        return "jobs"
    parts = path.relative_to(REPO / "lib").with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import in the file, also those inside functions."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from auditlake import lake`` imports the module auditlake.lake.
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
            found.append((node.lineno, node.module))
    return found


def _layer(module: str) -> int | None:
    """The layer of ``module`` or of the package module it names an attribute of."""
    while module:
        if module in LAYER_OF:
            return LAYER_OF[module]
        module = module.rpartition(".")[0]
    return None


def _files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py")) + sorted((REPO / "jobs").glob("*.py"))


def test_every_module_has_a_layer():
    missing = sorted({_module_name(p) for p in _files()} - set(LAYER_OF))
    assert missing == []


def violations(path: Path, module: str) -> list[str]:
    """One line per import in ``path`` (the file of ``module``) of a higher layer or of dev/."""
    out = []
    for line, imported in _imports(path):
        if imported.split(".")[0] in DEV_MODULES:
            out.append(f"{path.name}:{line} imports development tool {imported}")
        theirs = _layer(imported) if imported.startswith("auditlake") else None
        if theirs is not None and theirs > LAYER_OF[module]:
            out.append(
                f"{path.name}:{line} ({LAYERS[LAYER_OF[module]][0]}) imports {imported} ({LAYERS[theirs][0]})"
            )
    return out


def test_no_module_imports_a_higher_layer():
    found = [v for path in _files() for v in violations(path, _module_name(path))]
    assert found == []


def test_the_check_sees_an_upward_import(tmp_path):
    """A source that imported the runner or a dev tool, even inside a function, is reported."""
    bad = tmp_path / "cloudtrail.py"
    bad.write_text(
        "import datetime\n\n\ndef f():\n    from auditlake.ingest.runner import run_ingest\n    import synth\n"
    )
    assert violations(bad, "auditlake.sources.cloudtrail") == [
        "cloudtrail.py:5 (sources) imports auditlake.ingest.runner.run_ingest (orchestration)",
        "cloudtrail.py:5 (sources) imports auditlake.ingest.runner (orchestration)",
        "cloudtrail.py:6 imports development tool synth",
    ]


def test_the_cluster_zip_holds_the_package_only(tmp_path):
    """dist/auditlake.zip (for --py-files) carries auditlake/ and its data files, no development tool."""
    import zipfile

    from package import build

    names = zipfile.ZipFile(build(tmp_path / "auditlake.zip")).namelist()
    assert {n.split("/")[0] for n in names} == {"auditlake"}
    assert "auditlake/runs.py" in names and "auditlake/_data/schemas/job_runs.yaml" in names
    assert [n for n in names if "synth" in n or "trino" in n or "bench" in n] == []
