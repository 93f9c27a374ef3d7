"""The versioned model directory: write it once, read it anywhere.

Deployment registers the directory, the scoring script loads the estimator from
it, and the dashboard reads only its card and evaluation tables (never raw data,
never the estimator). See docs/ARCHITECTURE.md for the file list.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import joblib
import pandas as pd

MODEL_FILE = "model.joblib"
CARD_JSON = "model_card.json"
CARD_MD = "model_card.md"
EVALUATION_DIR = "evaluation"
TRAINING_DISTRIBUTION = "training_distribution.json"
TABLES = ("roc", "pr", "thresholds", "calibration", "subgroups")

DEFAULT_MODEL_DIR = Path("artifacts/model")


class ArtifactError(FileNotFoundError):
    """The model directory is missing or incomplete; the message says how to get one."""


def has_model(model_dir: Path) -> bool:
    return (Path(model_dir) / MODEL_FILE).is_file() and (Path(model_dir) / CARD_JSON).is_file()


def find_model_dir(root: str | os.PathLike[str]) -> Path:
    """The directory holding the artifact: `root` itself or its single child that does.

    Azure ML mounts a registered folder model *inside* AZUREML_MODEL_DIR
    (e.g. `$AZUREML_MODEL_DIR/model/`), while locally we point at it directly.
    """
    root = Path(root)
    if has_model(root):
        return root
    if root.is_dir():
        children = [c for c in sorted(root.iterdir()) if c.is_dir() and has_model(c)]
        if len(children) == 1:
            return children[0]
        if len(children) > 1:
            names = ", ".join(c.name for c in children)
            raise ArtifactError(f"{root} holds several model directories ({names}); point at one of them.")
    raise ArtifactError(
        f"No model found in {root} (expected {MODEL_FILE} and {CARD_JSON}). "
        "Train one with: python -m model.train --out " + str(root)
    )


def load_card(model_dir: str | os.PathLike[str]) -> dict[str, Any]:
    path = find_model_dir(model_dir) / CARD_JSON
    return json.loads(path.read_text(encoding="utf-8"))


def load_table(model_dir: str | os.PathLike[str], name: str) -> pd.DataFrame:
    if name not in TABLES:
        raise ValueError(f"unknown evaluation table {name!r}; choose one of {', '.join(TABLES)}")
    return pd.read_csv(find_model_dir(model_dir) / EVALUATION_DIR / f"{name}.csv")


def load_training_distribution(model_dir: str | os.PathLike[str]) -> dict[str, Any]:
    path = find_model_dir(model_dir) / TRAINING_DISTRIBUTION
    return json.loads(path.read_text(encoding="utf-8"))


def load_estimator(model_dir: str | os.PathLike[str]) -> Any:
    # joblib is pickle: load only artifacts this project wrote (the card's sha256 is in the registry tags).
    return joblib.load(find_model_dir(model_dir) / MODEL_FILE)


def write_artifact(
    out_dir: Path,
    *,
    estimator: Any,
    card: dict[str, Any],
    card_markdown: str,
    tables: dict[str, pd.DataFrame],
    training_distribution: dict[str, Any],
) -> Path:
    """Write every file to a sibling temp dir, then swap it in, so readers never see half a model."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the model is read by other users (containers, servers)
    try:
        joblib.dump(estimator, staging / MODEL_FILE, compress=3)
        (staging / CARD_JSON).write_text(json.dumps(card, indent=2, default=_json_default), encoding="utf-8")
        (staging / CARD_MD).write_text(card_markdown, encoding="utf-8")
        (staging / TRAINING_DISTRIBUTION).write_text(
            json.dumps(training_distribution, indent=2), encoding="utf-8"
        )
        (staging / EVALUATION_DIR).mkdir()
        for name in TABLES:
            tables[name].to_csv(staging / EVALUATION_DIR / f"{name}.csv", index=False)
        if out_dir.exists():
            backup = out_dir.with_name(f".{out_dir.name}-previous")
            shutil.rmtree(backup, ignore_errors=True)
            out_dir.rename(backup)
            staging.rename(out_dir)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def _json_default(value: Any) -> Any:
    # numpy scalars and paths in the card
    if hasattr(value, "item"):
        return value.item()
    return str(value)
