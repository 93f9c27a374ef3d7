"""What a shipped folder must hold: the project modules its entry points import, read from the source.

Used by the tests of what ships (tests/test_deploy_azure.py: the Azure code folders;
tests/test_dockerfile.py: the dashboard image). Importing an entry point proves its top-level
imports resolve; this walk also follows the imports made inside functions (the lazy ones a page
or a command makes only when it runs), so a module that is imported late but not shipped is
found here instead of in Azure or in a container.

`run_isolated` runs Python code in a clean interpreter that sees only the given folder and the
installed libraries: `-I` (no PYTHONPATH, no user site, no script directory) and `-S` (no .pth
files, so not the editable install that points at the developer's checkout), then the venv's
site-packages appended by hand.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import sysconfig
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_PACKAGES = ("model", "dashboard", "deploy")


def module_file(root: Path, name: str) -> Path | None:
    """The file of module `name` under root (a module or a package's __init__.py), or None."""
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_name(root: Path, path: Path) -> str:
    """model/core/schema.py -> model.core.schema; model/core/__init__.py -> model.core."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_names(path: Path, module: str) -> tuple[set[str], set[str]]:
    """(modules, maybe_modules) named by the import statements anywhere in `path`.

    `import a.b` and the `a.b` of `from a.b import c` are modules; `a.b.c` may be a module or an
    attribute of a.b (the caller decides). Relative imports are resolved against `module`'s package.
    """
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    modules: set[str] = set()
    maybe: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            modules.add(base)
            maybe.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return modules, maybe


@dataclass
class Closure:
    """Project modules reached from the entry points, project modules imported but absent, and libraries."""

    modules: set[str] = field(default_factory=set)
    missing: dict[str, str] = field(default_factory=dict)  # module -> a module that imports it
    libraries: set[str] = field(default_factory=set)  # modules outside the stdlib and the project (dotted)
    files: set[Path] = field(default_factory=set)  # the modules' files, relative to the walked root

    def entries(self, package: str = "model") -> set[str]:
        """Entries of `package`'s folder the walk reached: {"__init__.py", "core", "serving", "train.py", ...}."""
        return {f.parts[1] for f in self.files if f.parts[0] == package}


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def import_closure(root: Path, entries: Iterable[str], reference: Path | None = None) -> Closure:
    """Walk the imports of the entry modules (dotted names) through the project files under root.

    `reference` (default: root) is the full source tree: `from pkg import name` counts as a module
    import when pkg/name is a module there, so a submodule that was not shipped is reported missing
    instead of being taken for an attribute.
    """
    reference = reference or root
    closure = Closure()
    todo = [(name, "<entry point>") for name in entries]
    while todo:
        name, importer = todo.pop()
        top = name.split(".")[0]
        if top not in PROJECT_PACKAGES:
            if top and top not in sys.stdlib_module_names:
                closure.libraries.add(name)
            continue
        for part in _with_parents(name):  # importing a.b.c runs a/__init__ and a/b/__init__ first
            if part in closure.modules:
                continue
            path = module_file(root, part)
            if path is None and root.joinpath(*part.split(".")).is_dir():
                continue  # a folder without __init__.py (dashboard/views/: page scripts) imports as a namespace
            if path is None:
                closure.missing.setdefault(part, importer)
                continue
            closure.modules.add(part)
            closure.files.add(path.relative_to(root))
            modules, maybe = _imported_names(path, part)
            todo.extend((imported, part) for imported in modules)
            todo.extend((imported, part) for imported in maybe if module_file(reference, imported) is not None)
    return closure


def site_packages() -> str:
    """The running interpreter's site-packages (the venv's): the libraries an image or a job installs."""
    return sysconfig.get_paths()["purelib"]


def run_isolated(
    code: str, folder: Path, env: Mapping[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run `code` in a clean interpreter whose sys.path is [folder, stdlib..., site-packages]."""
    prelude = (
        "import sys\n"
        f"sys.path.insert(0, {str(folder)!r})\n"
        f"sys.path.append({site_packages()!r})\n"
        # The isolated interpreter must not reach the checkout: no editable finder, no cwd entry.
        "assert not any('editable' in type(f).__name__.lower() for f in sys.meta_path), sys.meta_path\n"
    )
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", prelude + code],
        cwd=folder,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
