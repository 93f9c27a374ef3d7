"""The scoring/training environment: conda spec generated from requirements.txt.

The pins inside the Azure ML image must equal the ones the local endpoint and the tests
run with, otherwise the pickled estimator can behave differently (or fail to load) in
Azure. So the conda file is *generated* from requirements.txt; a test checks the
committed deploy/azure/environment/conda.yaml equals `render_conda_yaml()`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from deploy.azure.config import REPO_ROOT

REQUIREMENTS = REPO_ROOT / "requirements.txt"
CONDA_FILE = Path(__file__).resolve().parent / "environment" / "conda.yaml"
# Curated Azure ML inference/training base image (Ubuntu 22.04, conda, no Python packages).
BASE_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
PYTHON_VERSION = "3.11"
ENVIRONMENT_NAME = "covid19-death-risk-scoring"
# The subset of requirements.txt the model code needs inside Azure ML (scoring, batch
# driver, training job). Dashboard and deployment tooling stay out of the image.
SCORING_PACKAGES = (
    "numpy",
    "pandas",
    "pyarrow",
    "scikit-learn",
    "scipy",
    "joblib",
    "inference-schema",
    "azureml-inference-server-http",
    "azureml-ai-monitoring",
)
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


def scoring_pins(requirements: Path = REQUIREMENTS) -> dict[str, str]:
    """The scoring packages with their exact versions; fails if one is not pinned."""
    pins = read_pins(requirements)
    missing = [p for p in SCORING_PACKAGES if _normalise(p) not in pins]
    if missing:
        raise ValueError(
            f"{requirements} does not pin {', '.join(missing)} with '=='; the Azure ML environment "
            "needs an exact version of every scoring package"
        )
    return {p: pins[_normalise(p)] for p in SCORING_PACKAGES}


def conda_spec(requirements: Path = REQUIREMENTS) -> dict[str, Any]:
    """The conda environment as a dict (python from conda, everything else pip-pinned)."""
    pip = [f"{name}=={version}" for name, version in scoring_pins(requirements).items()]
    return {
        "name": ENVIRONMENT_NAME,
        "channels": ["conda-forge"],
        "dependencies": [f"python={PYTHON_VERSION}", "pip", {"pip": pip}],
    }


def render_conda_yaml(requirements: Path = REQUIREMENTS) -> str:
    header = (
        "# GENERATED from requirements.txt by deploy.azure.environment.render_conda_yaml();\n"
        "# regenerate with `python -m deploy.azure dry-run --write-specs`. Do not edit by hand.\n"
    )
    return header + yaml.safe_dump(conda_spec(requirements), sort_keys=False)


def write_conda_yaml(path: Path = CONDA_FILE, requirements: Path = REQUIREMENTS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_conda_yaml(requirements), encoding="utf-8")
    return path
