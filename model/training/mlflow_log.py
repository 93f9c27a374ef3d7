"""Report a trained model's card to the Azure ML job's MLflow run (the training job's second command).

    python -m model.training.mlflow_log MODEL_DIR

Azure ML shows a command job's MLflow metrics and artifacts in the studio and compares runs by them,
so the job logs the card's test figures (ROC-AUC, PR-AUC, Brier, log loss, observed/expected deaths,
calibration intercept and slope, prevalence, per-subgroup observed/expected) as metrics and the card
itself (JSON and Markdown) as artifacts. mlflow is installed only in the job's environment
(deploy/azure/environment/train-requirements.txt); locally `card_metrics` is all that runs.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from model.core import exit_codes

_KEY = re.compile(r"[^A-Za-z0-9_.\-/ ]")  # MLflow metric keys: letters, digits, _ - . / and spaces


def _key(text: str) -> str:
    return _KEY.sub("_", text).strip()


def card_metrics(card: dict[str, Any]) -> dict[str, float]:
    """The card's test figures as flat MLflow metrics (no missing or non-numeric values)."""
    test = (card.get("metrics") or {}).get("test") or {}
    metrics: dict[str, Any] = {
        f"test_{name}": test.get(name)
        for name in ("roc_auc", "pr_auc", "brier", "log_loss", "prevalence", "mean_predicted", "patients", "deaths")
    }
    oe = test.get("observed_expected") or {}
    metrics.update(test_observed_expected=oe.get("oe"), test_oe_low=oe.get("oe_low"), test_oe_high=oe.get("oe_high"))
    line = test.get("calibration_line") or {}
    metrics.update(test_calibration_slope=line.get("slope"), test_calibration_intercept=line.get("intercept"))
    for group in card.get("subgroups") or []:
        metrics[_key(f"subgroup_oe/{group['column']}/{group['value']}")] = group.get("oe")
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and v == v}


def log_card(model_dir: Path, mlflow: Any) -> dict[str, float]:
    """Log the metrics, tags and card files of `model_dir` to the active MLflow run."""
    card = json.loads((model_dir / "model_card.json").read_text(encoding="utf-8"))
    metrics = card_metrics(card)
    mlflow.log_metrics(metrics)
    mlflow.set_tags({"model_version": str(card.get("model_version")), "data_period": str(card.get("data_period"))})
    for name in ("model_card.json", "model_card.md"):
        if (model_dir / name).is_file():
            mlflow.log_artifact(str(model_dir / name), artifact_path="model_card")
    return metrics


@exit_codes.guarded
def main(argv: list[str] | None = None) -> int:
    """Log MODEL_DIR's card to the active MLflow run; 2 for a wrong folder or no mlflow, 70 for a bug (`guarded`)."""
    args = sys.argv[1:] if argv is None else argv
    if args in (["-h"], ["--help"]):
        print(__doc__)
        return exit_codes.OK
    if len(args) != 1 or not (Path(args[0]) / "model_card.json").is_file():
        return exit_codes.bad_input(
            "usage: python -m model.training.mlflow_log MODEL_DIR (a folder written by python -m model.train)"
        )
    try:
        import mlflow
    except ModuleNotFoundError:
        return exit_codes.bad_input(
            "mlflow is not installed: it is part of the Azure ML training job's environment only "
            "(deploy/azure/environment/train-requirements.txt)"
        )
    metrics = log_card(Path(args[0]), mlflow)
    print(f"logged {len(metrics)} metrics and the model card to MLflow")
    return exit_codes.OK


if __name__ == "__main__":
    sys.exit(main())
