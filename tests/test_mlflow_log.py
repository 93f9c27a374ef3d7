"""The training job reports the card to Azure ML through MLflow (model/training/mlflow_log.py), offline.

Real: the card of the default model trained on the real first-wave CDC file, the committed training
environment and job spec (loaded by azure-ai-ml's own loader). Stand-in: `Recorder` takes the place
of the `mlflow` module (not installed locally on purpose: only the job's environment has it), so what
would be sent is checked, not Azure ML's tracking server.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from azure.ai.ml.entities._load_functions import load_job

from deploy.azure import entities as ent
from deploy.azure.environment import CONDA_FILE, TRAIN_CONDA_FILE, read_pins, render_train_conda_yaml
from deploy.azure.staging import stage_training_code
from model.training.mlflow_log import card_metrics, log_card

REPO = Path(__file__).resolve().parent.parent


class Recorder:
    """Stand-in for the mlflow module: records the calls log_card makes."""

    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}
        self.tags: dict[str, str] = {}
        self.artifacts: list[tuple[str, str]] = []

    def log_metrics(self, metrics: dict[str, float]) -> None:
        self.metrics.update(metrics)

    def set_tags(self, tags: dict[str, str]) -> None:
        self.tags.update(tags)

    def log_artifact(self, path: str, artifact_path: str) -> None:
        self.artifacts.append((Path(path).name, artifact_path))


def test_card_figures_become_metrics(model_dir: Path) -> None:
    card: dict[str, Any] = json.loads((model_dir / "model_card.json").read_text())
    metrics = card_metrics(card)
    test = card["metrics"]["test"]
    assert metrics["test_roc_auc"] == test["roc_auc"] and metrics["test_brier"] == test["brier"]
    assert metrics["test_observed_expected"] == test["observed_expected"]["oe"]
    assert metrics["test_calibration_slope"] == test["calibration_line"]["slope"]
    subgroup_keys = [k for k in metrics if k.startswith("subgroup_oe/")]
    assert len(subgroup_keys) == len([g for g in card["subgroups"] if g["oe"] is not None])
    assert "subgroup_oe/age_group/80_ Years" in metrics  # "+" is not allowed in an MLflow key


def test_log_card_sends_metrics_tags_and_the_card(model_dir: Path) -> None:
    recorder = Recorder()
    sent = log_card(model_dir, recorder)
    assert recorder.metrics == sent and recorder.tags["model_version"]
    assert sorted(recorder.artifacts) == [("model_card.json", "model_card"), ("model_card.md", "model_card")]


def test_without_mlflow_the_command_says_where_it_lives(model_dir: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "model.training.mlflow_log", str(model_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "training job's environment only" in proc.stderr


def test_only_the_training_job_gets_mlflow(tmp_path: Path) -> None:
    assert TRAIN_CONDA_FILE.read_text() == render_train_conda_yaml(), "regenerate: dry-run --write-specs"
    train = yaml.safe_load(TRAIN_CONDA_FILE.read_text())
    pip = next(d["pip"] for d in train["dependencies"] if isinstance(d, dict))
    assert any(p.startswith("mlflow-skinny==") for p in pip) and any(p.startswith("azureml-mlflow==") for p in pip)
    pins = read_pins(REPO / "requirements.txt")
    assert f"scikit-learn=={pins['scikit-learn']}" in pip  # the same model code as locally
    assert "mlflow" not in CONDA_FILE.read_text() and "mlflow" not in (REPO / "requirements.txt").read_text()
    # The committed job spec runs both commands in that environment.
    root = tmp_path / "repo"
    shutil.copytree(REPO / "deploy" / "azure" / "specs", root / "deploy" / "azure" / "specs")
    shutil.copytree(CONDA_FILE.parent, root / "deploy" / "azure" / "environment")
    stage_training_code(root / "artifacts" / "azure" / "train-code", REPO)
    job = load_job(root / "deploy" / "azure" / "specs" / "train-job.yml")
    assert job.command == ent.TRAIN_COMMAND and "python -m model.training.mlflow_log ${{outputs.model}}" in job.command
    assert job.environment.conda_file == train
