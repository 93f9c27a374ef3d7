"""The Azure ML environments: conda specs generated from requirements.txt.

The pins inside the Azure ML image must equal the ones the local endpoint and the tests
run with, otherwise the pickled estimator can behave differently (or fail to load) in
Azure. So the conda files are *generated* from requirements.txt; a test checks the
committed files under deploy/azure/environment/ equal what the functions here render.

Two environments: the online/training one (azmlinfsrv, data collection) and the batch one.
Azure ML's batch driver needs `azureml-core` in the image (every batch example in
Azure/azureml-examples lists it), which the online image does not need; its pin lives in
environment/batch-requirements.txt because it is never installed locally.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from deploy.azure.config import REPO_ROOT

REQUIREMENTS = REPO_ROOT / "requirements.txt"
ENV_DIR = Path(__file__).resolve().parent / "environment"
CONDA_FILE = ENV_DIR / "conda.yaml"
BATCH_CONDA_FILE = ENV_DIR / "batch-conda.yaml"
BATCH_REQUIREMENTS = ENV_DIR / "batch-requirements.txt"
TRAIN_CONDA_FILE = ENV_DIR / "train-conda.yaml"
TRAIN_REQUIREMENTS = ENV_DIR / "train-requirements.txt"
# Curated Azure ML inference/training base image (Ubuntu 22.04, conda, no Python packages).
BASE_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
PYTHON_VERSION = "3.11"
ENVIRONMENT_NAME = "covid19-death-risk-scoring"
BATCH_ENVIRONMENT_NAME = "covid19-death-risk-batch"
TRAIN_ENVIRONMENT_NAME = "covid19-death-risk-train"
# The subset of requirements.txt the model code needs inside Azure ML (scoring, batch
# driver, training job). Dashboard and deployment tooling stay out of the image.
SCORING_PACKAGES = (
    "numpy",
    "pandas",
    "pyarrow",
    "scikit-learn",
    "scipy",
    "inference-schema",
    "azureml-inference-server-http",
    "azureml-ai-monitoring",
    "pydantic",  # settings of the scoring script and data collection (model/core/settings.py)
    "pydantic-settings",
)
# What model/serving/batch_driver.py imports (no server, no data collection), plus the batch-only pins.
BATCH_PACKAGES = ("numpy", "pandas", "pyarrow", "scikit-learn", "scipy")
BATCH_ONLY_PACKAGES = ("azureml-core",)
# The training job: the model's pins + MLflow for Azure ML's tracking (model/training/mlflow_log.py).
# Training reads with polars (model/data/scan.py); the scheduled update (model.recalibrate) fits statsmodels GLMs.
TRAIN_PACKAGES = ("numpy", "pandas", "pyarrow", "scikit-learn", "scipy", "polars", "statsmodels")
TRAIN_ONLY_PACKAGES = ("mlflow-skinny", "azureml-mlflow")
_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(requirements: Path = REQUIREMENTS) -> dict[str, str]:
    """`name==version` lines of a requirements file as {normalised name: version}."""
    pins: dict[str, str] = {}
    for line in requirements.read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line)
        if match:
            pins[_normalise(match.group(1))] = match.group(2)
    return pins


def _pinned(packages: tuple[str, ...], requirements: Path) -> dict[str, str]:
    pins = read_pins(requirements)
    missing = [p for p in packages if _normalise(p) not in pins]
    if missing:
        raise ValueError(
            f"{requirements} does not pin {', '.join(missing)} with '=='; the Azure ML environment "
            "needs an exact version of every package it installs"
        )
    return {p: pins[_normalise(p)] for p in packages}


def scoring_pins(requirements: Path = REQUIREMENTS) -> dict[str, str]:
    """The scoring packages with their exact versions; fails if one is not pinned."""
    return _pinned(SCORING_PACKAGES, requirements)


def batch_pins(requirements: Path = REQUIREMENTS, batch_requirements: Path = BATCH_REQUIREMENTS) -> dict[str, str]:
    """The batch environment's packages: the model's pins from requirements.txt + azureml-core."""
    return {**_pinned(BATCH_PACKAGES, requirements), **_pinned(BATCH_ONLY_PACKAGES, batch_requirements)}


def train_pins(requirements: Path = REQUIREMENTS, train_requirements: Path = TRAIN_REQUIREMENTS) -> dict[str, str]:
    """The training job's packages: the model's pins from requirements.txt + MLflow (train-requirements.txt)."""
    return {**_pinned(TRAIN_PACKAGES, requirements), **_pinned(TRAIN_ONLY_PACKAGES, train_requirements)}


def _conda(name: str, pins: dict[str, str]) -> dict[str, Any]:
    """A conda environment as a dict (python from conda, everything else pip-pinned)."""
    return {
        "name": name,
        "channels": ["conda-forge"],
        "dependencies": [f"python={PYTHON_VERSION}", "pip", {"pip": [f"{n}=={v}" for n, v in pins.items()]}],
    }


def conda_spec(requirements: Path = REQUIREMENTS) -> dict[str, Any]:
    return _conda(ENVIRONMENT_NAME, scoring_pins(requirements))


def batch_conda_spec(
    requirements: Path = REQUIREMENTS, batch_requirements: Path = BATCH_REQUIREMENTS
) -> dict[str, Any]:
    return _conda(BATCH_ENVIRONMENT_NAME, batch_pins(requirements, batch_requirements))


def train_conda_spec(
    requirements: Path = REQUIREMENTS, train_requirements: Path = TRAIN_REQUIREMENTS
) -> dict[str, Any]:
    return _conda(TRAIN_ENVIRONMENT_NAME, train_pins(requirements, train_requirements))


_HEADER = (
    "# GENERATED from {source} by deploy.azure.environment.{fn}();\n"
    "# regenerate with `python -m deploy.azure dry-run --write-specs`. Do not edit by hand.\n"
)


def render_conda_yaml(requirements: Path = REQUIREMENTS) -> str:
    header = _HEADER.format(source="requirements.txt", fn="render_conda_yaml")
    return header + yaml.safe_dump(conda_spec(requirements), sort_keys=False)


def render_batch_conda_yaml(requirements: Path = REQUIREMENTS, batch_requirements: Path = BATCH_REQUIREMENTS) -> str:
    header = _HEADER.format(
        source="requirements.txt and environment/batch-requirements.txt", fn="render_batch_conda_yaml"
    )
    return header + yaml.safe_dump(batch_conda_spec(requirements, batch_requirements), sort_keys=False)


def render_train_conda_yaml(requirements: Path = REQUIREMENTS, train_requirements: Path = TRAIN_REQUIREMENTS) -> str:
    header = _HEADER.format(
        source="requirements.txt and environment/train-requirements.txt", fn="render_train_conda_yaml"
    )
    return header + yaml.safe_dump(train_conda_spec(requirements, train_requirements), sort_keys=False)


def write_conda_yaml(path: Path = CONDA_FILE, requirements: Path = REQUIREMENTS) -> Path:
    """Write the three conda files (online at `path`; batch-conda.yaml and train-conda.yaml beside it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_conda_yaml(requirements), encoding="utf-8")
    (path.parent / BATCH_CONDA_FILE.name).write_text(render_batch_conda_yaml(requirements), encoding="utf-8")
    (path.parent / TRAIN_CONDA_FILE.name).write_text(render_train_conda_yaml(requirements), encoding="utf-8")
    return path
