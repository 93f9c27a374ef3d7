"""Stage the code folders uploaded to Azure ML: each holds the parts of `model` its job runs, nothing else.

Why staged folders instead of pointing `code:` at the repository: Azure ML uploads the whole
code folder and honours only an .amlignore/.gitignore at that folder's root, so the repo root
would ship tests, the dashboard, docs and anything untracked. Why two: the scoring folder
(online deployments, managed and Kubernetes, and the batch deployment) needs only the schema,
the artifact readers, the file readers and the serving code; the training job also needs the
statistics and the training code. The synthetic data generator, capacity planning and the
monitor ship in neither (as azureml-examples' `code: ../../model-1/onlinescoring/` holds the
scoring script and what it imports). tests/test_deploy_azure.py imports every entry point from
its staged folder in a clean interpreter, so a part left out here fails there, not in Azure.

The scoring script (`model/serving/score.py`) and the batch driver put the parent of `model/`
on sys.path, so a folder holding `model/` with these parts is all they need.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from deploy.azure.config import REPO_ROOT
from deploy.azure.entities import DEFAULT_CODE_DIR, DEFAULT_TRAIN_CODE_DIR

_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".pytest_cache")

# Entries of model/ each folder holds (files or subpackages).
SCORING_PARTS: tuple[str, ...] = ("__init__.py", "core", "data", "serving")
TRAINING_PARTS: tuple[str, ...] = ("__init__.py", "core", "data", "stats", "training")


def stage_package(dest: Path, parts: tuple[str, ...], repo_root: Path = REPO_ROOT) -> Path:
    """Replace dest with a fresh dest/model holding only `parts` of repo_root/model; returns dest."""
    source = repo_root / "model"
    if not (source / "__init__.py").is_file():
        raise FileNotFoundError(f"{source} is not the model package (no __init__.py); run from the repository")
    missing = [part for part in parts if not (source / part).exists()]
    if missing:
        raise FileNotFoundError(
            f"model/{', model/'.join(missing)} not found in {repo_root}: update the parts in deploy/azure/staging.py "
            "to the package's current layout"
        )
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "model").mkdir(parents=True)
    for part in parts:
        if (source / part).is_dir():
            shutil.copytree(source / part, dest / "model" / part, ignore=_IGNORE)
        else:
            shutil.copy2(source / part, dest / "model" / part)
    return dest


def stage_scoring_code(dest: Path = DEFAULT_CODE_DIR, repo_root: Path = REPO_ROOT) -> Path:
    """The online and batch deployments' code folder (score.py, batch_driver.py and what they import)."""
    return stage_package(dest, SCORING_PARTS, repo_root)


def stage_training_code(dest: Path = DEFAULT_TRAIN_CODE_DIR, repo_root: Path = REPO_ROOT) -> Path:
    """The training job's code folder (model.training.train, model.training.mlflow_log and what they import)."""
    return stage_package(dest, TRAINING_PARTS, repo_root)
