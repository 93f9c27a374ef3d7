"""Stage the code folder uploaded to Azure ML: just the `model` package.

Why a staged folder instead of pointing `code:` at the repository: Azure ML uploads the
whole code folder and honours only an .amlignore/.gitignore at that folder's root, so the
repo root would ship tests, the dashboard, docs and anything untracked. The scoring script
(`model/serving/score.py`) and the batch driver put the parent of `model/` on sys.path, so a folder
holding only `model/` is exactly what they need, and it is small and reproducible.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from deploy.azure.config import REPO_ROOT
from deploy.azure.entities import DEFAULT_CODE_DIR

_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".pytest_cache")


def stage_code(dest: Path = DEFAULT_CODE_DIR, repo_root: Path = REPO_ROOT) -> Path:
    """Replace dest with a fresh copy of repo_root/model; returns dest."""
    source = repo_root / "model"
    if not (source / "__init__.py").is_file():
        raise FileNotFoundError(f"{source} is not the model package (no __init__.py); run from the repository")
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest / "model", ignore=_IGNORE)
    return dest
