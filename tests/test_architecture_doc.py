"""docs/ARCHITECTURE.md's Layout against the folders and pyproject.toml.

The layout table must name every module under model/, dashboard/ and deploy/ (by its path, or by a
folder row such as `dashboard/views/`; a package's `__init__.py` goes with any row inside its folder),
and every path it names must exist. Its list of import layers must be pyproject.toml's layers contract,
in order, the one `lint-imports` enforces.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = (REPO / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
PACKAGES = ("model", "dashboard", "deploy")


def layout_section() -> str:
    start = DOC.index("## Layout\n")
    end = DOC.index("\n## ", start + 1)
    return DOC[start:end]


def layout_paths(section: str | None = None) -> list[str]:
    """The backticked paths in the first column of the layout table."""
    paths = []
    for line in (section or layout_section()).splitlines():
        cells = line.split("|")
        if len(cells) < 3 or set(cells[1].strip()) <= {"-"} or cells[1].strip() == "path":
            continue
        paths += re.findall(r"`([^`]+)`", cells[1])
    return paths


def uncovered(paths: list[str], root: Path = REPO) -> list[str]:
    """Modules under the packages that no path names (directly, by folder, or for __init__.py by a sibling)."""
    folders = [p for p in paths if p.endswith("/")]
    missing = []
    for package in PACKAGES:
        for module in sorted((root / package).rglob("*.py")):
            rel = module.relative_to(root).as_posix()
            if "__pycache__" in rel or rel in paths or any(rel.startswith(f) for f in folders):
                continue
            parent = module.parent.relative_to(root).as_posix() + "/"
            if module.name == "__init__.py" and any(p.startswith(parent) for p in paths):
                continue
            missing.append(rel)
    return missing


def test_every_module_has_a_row() -> None:
    assert uncovered(layout_paths()) == [], "add these to the Layout table of docs/ARCHITECTURE.md"


def stale(paths: list[str], root: Path = REPO) -> list[str]:
    """Paths the table names that do not exist (a folder row must be a folder)."""
    return [p for p in paths if not (root / p).exists() or (p.endswith("/") and not (root / p).is_dir())]


def test_every_path_in_the_layout_exists() -> None:
    paths = layout_paths()
    assert len(paths) > 50
    assert stale(paths) == [], "the Layout table of docs/ARCHITECTURE.md names paths that do not exist"


def test_the_checks_catch_a_missing_row_and_a_stale_path(tmp_path: Path) -> None:
    files = ("model/__init__.py", "model/core/schema.py", "model/core/new.py", "dashboard/x/__init__.py")
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    (tmp_path / "deploy").mkdir()
    table = "| path | job |\n|---|---|\n| `model/core/schema.py`, `model/old.py`, `dashboard/y/` | x |\n"
    paths = layout_paths(table)
    assert uncovered(paths, tmp_path) == ["model/core/new.py", "dashboard/x/__init__.py"]
    assert stale(paths, tmp_path) == ["model/old.py", "dashboard/y/"]


def test_the_layer_list_is_the_import_linter_contract() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    (layers,) = [c["layers"] for c in contracts if c["type"] == "layers"]
    section = layout_section()
    listed = re.findall(r"^\d+\. `([^`]+)`$", section[section.index("### Import layers") :], re.MULTILINE)
    assert listed == layers
