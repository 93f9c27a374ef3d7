"""The versioned model directory: write it once, read it anywhere.

Deployment registers the directory, the scoring script loads the risk tables
from it (plain CSV: every combination of each model's inputs with its probability
and interval, so no pickle is ever loaded), and the dashboard reads its card and
evaluation tables. See docs/ARCHITECTURE.md for the file list.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from model.core import schema
from model.core.json_safe import json_default

RISK_TABLE_DIR = "risk_tables"
CARD_JSON = "model_card.json"
CARD_MD = "model_card.md"
EVALUATION_DIR = "evaluation"
TRAINING_DISTRIBUTION = "training_distribution.json"
_PER_MODEL = ("roc", "pr", "thresholds", "calibration", "calibration_smooth", "subgroups")
# Evaluation tables: the intake model's under their plain names (the dashboard's operating model),
# the in-hospital model's prefixed, then the reports of the whole training run.
TABLES = (
    *_PER_MODEL,
    *(f"in_hospital_{name}" for name in _PER_MODEL),
    *(f"intake_race_{name}" for name in _PER_MODEL),
    "icu_by_threshold",
    "deaths_by_month",
    "outcome_known",
)
MODELS = (schema.INTAKE_MODEL, schema.IN_HOSPITAL_MODEL, schema.INTAKE_RACE_MODEL)
# The in-hospital model needs patients with both hospital answers known; a file without them has none.
# An artifact without the race-aware intake model (older versions) scores race-blind, and says so.
OPTIONAL_MODELS = (schema.IN_HOSPITAL_MODEL, schema.INTAKE_RACE_MODEL)

DEFAULT_MODEL_DIR = Path("artifacts/model")
MODEL_DIR_ENV = "RISK_MODEL_DIR"


def model_dir_from_env() -> Path:
    """The model directory every CLI and the dashboard use by default: $RISK_MODEL_DIR, else artifacts/model."""
    raw = os.environ.get(MODEL_DIR_ENV, "").strip()
    return Path(raw).expanduser() if raw else DEFAULT_MODEL_DIR


class ArtifactError(FileNotFoundError):
    """The model directory is missing or incomplete; the message says how to get one."""


def risk_table_path(model_dir: Path, model: str) -> Path:
    return Path(model_dir) / RISK_TABLE_DIR / f"{model}.csv"


def has_model(model_dir: Path) -> bool:
    model_dir = Path(model_dir)
    required = [m for m in MODELS if m not in OPTIONAL_MODELS]
    return (model_dir / CARD_JSON).is_file() and all(risk_table_path(model_dir, m).is_file() for m in required)


def trained_models(model_dir: str | os.PathLike[str]) -> tuple[str, ...]:
    """The models this artifact holds a table for (the intake model always)."""
    directory = find_model_dir(model_dir)
    return tuple(m for m in MODELS if risk_table_path(directory, m).is_file())


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
        f"No model found in {root} (expected {CARD_JSON} and {RISK_TABLE_DIR}/{{{','.join(MODELS)}}}.csv). "
        "Train one with: python -m model.train --out " + str(root)
    )


def load_card(model_dir: str | os.PathLike[str]) -> dict[str, Any]:
    path = find_model_dir(model_dir) / CARD_JSON
    return json.loads(path.read_text(encoding="utf-8"))


def load_table(model_dir: str | os.PathLike[str], name: str) -> pd.DataFrame:
    """An evaluation table; category values such as "NA" stay text (pandas would read them as missing)."""
    if name not in TABLES:
        raise ValueError(f"unknown evaluation table {name!r}; choose one of {', '.join(TABLES)}")
    return _read_csv(find_model_dir(model_dir) / EVALUATION_DIR / f"{name}.csv")


def max_f1_threshold(thresholds: pd.DataFrame) -> float:
    """The threshold with the best F1 in a stored thresholds table (`load_table(model_dir, "thresholds")`).

    What batch scoring's `--threshold max-f1` and the dashboard's "Best F1" preset both use; of tied rows
    the first (the table lists thresholds from low to high, so the lowest).
    """
    return float(thresholds.loc[thresholds["f1"].idxmax(), "threshold"])


def load_risk_table(model_dir: str | os.PathLike[str], model: str) -> pd.DataFrame:
    """One model's table: its inputs (canonical values), probability, ci_low, ci_high, train_patients, extrapolated."""
    table = _read_csv(risk_table_path(find_model_dir(model_dir), model))
    table["extrapolated"] = table["extrapolated"].astype(str).str.lower().eq("true")
    return table


def _read_csv(path: Path) -> pd.DataFrame:
    # keep_default_na=False: "NA" is a CDC category, "" the only missing cell.
    frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    for column in frame.columns:
        if column in schema.FEATURES_BY_NAME or column in ("column", "value", "month"):
            frame[column] = frame[column].astype(str)
    return frame


def load_training_distribution(model_dir: str | os.PathLike[str]) -> dict[str, Any]:
    path = find_model_dir(model_dir) / TRAINING_DISTRIBUTION
    return json.loads(path.read_text(encoding="utf-8"))


class OutDirError(ValueError):
    """--out names something a model must not replace; the message says what was found and what to do."""


# What a model directory may hold, so `--out` can tell a model folder from anything else before replacing it.
_MODEL_ENTRIES: dict[str, frozenset[str] | None] = {
    RISK_TABLE_DIR: frozenset(f"{m}.csv" for m in MODELS),
    EVALUATION_DIR: frozenset(f"{name}.csv" for name in TABLES),
    CARD_JSON: None,
    CARD_MD: None,
    TRAINING_DISTRIBUTION: None,
}
_LISTED = 5  # entries named in an OutDirError


def _foreign_entries(out_dir: Path) -> list[str]:
    """Entries of `out_dir` (relative paths) that a model directory never holds; [] for a model folder."""
    foreign: list[str] = []
    for entry in sorted(out_dir.iterdir()):
        allowed = _MODEL_ENTRIES.get(entry.name)  # None: a file, or not an entry at all (checked first)
        if entry.name not in _MODEL_ENTRIES or entry.is_symlink() or entry.is_dir() != (allowed is not None):
            foreign.append(entry.name + ("/" if entry.is_dir() else ""))
            continue
        if allowed is not None:
            for inner in sorted(entry.iterdir()):
                if inner.name not in allowed or inner.is_symlink() or not inner.is_file():
                    foreign.append(f"{entry.name}/{inner.name}")
    return foreign


def check_out_dir(out_dir: str | os.PathLike[str]) -> Path:
    """Refuse an --out that is not new, empty or a model directory, before any work is done.

    Why: replacing `--out artifacts` (instead of artifacts/model) or `--out .` used to delete the
    collected patient records or the repository. Only a folder holding nothing but model files
    (the entries `write_artifact` writes) may be replaced. Raises OutDirError naming what was found.
    """
    out_dir = Path(out_dir)
    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        kind = "a symbolic link" if out_dir.is_symlink() else "a file"
        raise OutDirError(f"--out {out_dir} is {kind}, not a model folder. Give a new folder name, e.g. {_example()}.")
    if not out_dir.exists():
        return out_dir
    foreign = _foreign_entries(out_dir)
    if foreign:
        shown = ", ".join(foreign[:_LISTED]) + (f" and {len(foreign) - _LISTED} more" if len(foreign) > _LISTED else "")
        raise OutDirError(
            f"--out {out_dir} is a folder that is not a model folder: it holds {shown}. Nothing was changed. "
            f"A model is written only to a new or empty folder, or over an earlier model; give one, e.g. {_example()}."
        )
    return out_dir


def _example() -> str:
    return str(DEFAULT_MODEL_DIR)


def write_artifact(
    out_dir: Path,
    *,
    risk_tables: dict[str, pd.DataFrame],
    card: dict[str, Any],
    card_markdown: str,
    tables: dict[str, pd.DataFrame],
    training_distribution: dict[str, Any],
) -> Path:
    """Write every file to a sibling temp dir, then swap it in, so readers never see half a model.

    The previous model stays in place until the new one is complete; only then is it moved aside
    and its model files (and nothing else) removed. Raises OutDirError for an --out that is not
    a new or empty folder or an earlier model (`check_out_dir`).
    """
    out_dir = check_out_dir(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the model is read by other users (containers, servers)
    try:
        _write_files(staging, risk_tables, card, card_markdown, tables, training_distribution)
        _swap_in(staging, out_dir)
    except BaseException:
        _remove_model_files(staging)
        raise
    return out_dir


def _write_files(
    staging: Path,
    risk_tables: dict[str, pd.DataFrame],
    card: dict[str, Any],
    card_markdown: str,
    tables: dict[str, pd.DataFrame],
    training_distribution: dict[str, Any],
) -> None:
    (staging / RISK_TABLE_DIR).mkdir()
    for model, table in risk_tables.items():
        table.to_csv(risk_table_path(staging, model), index=False)
    (staging / CARD_JSON).write_text(json.dumps(card, indent=2, default=json_default), encoding="utf-8")
    (staging / CARD_MD).write_text(card_markdown, encoding="utf-8")
    (staging / TRAINING_DISTRIBUTION).write_text(json.dumps(training_distribution, indent=2), encoding="utf-8")
    (staging / EVALUATION_DIR).mkdir()
    for name, table in tables.items():
        if name not in TABLES:
            raise ValueError(f"unknown evaluation table {name!r}; add it to artifact.TABLES")
        table.to_csv(staging / EVALUATION_DIR / f"{name}.csv", index=False)


def _swap_in(staging: Path, out_dir: Path) -> None:
    """Rename the complete new model into place; the earlier one is moved aside first, then its files removed."""
    if not out_dir.exists():
        staging.rename(out_dir)
        return
    check_out_dir(out_dir)  # again: something may have been put there while the model was trained
    if not any(out_dir.iterdir()):  # an empty folder (e.g. a job's output mount): move the files into it
        for entry in staging.iterdir():
            entry.rename(out_dir / entry.name)
        staging.rmdir()
        return
    previous = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-previous-", dir=out_dir.parent))
    previous.rmdir()  # a free name beside out_dir: rename() needs it not to exist
    out_dir.rename(previous)
    try:
        staging.rename(out_dir)
    except BaseException:
        previous.rename(out_dir)  # the earlier model back where it was
        raise
    _remove_model_files(previous)


def _remove_model_files(directory: Path) -> None:
    """Delete the model entries `write_artifact` writes, then the folders if empty: never anything else."""
    if not directory.is_dir() or directory.is_symlink():
        return
    for name, inner in _MODEL_ENTRIES.items():
        path = directory / name
        if inner is None:
            if path.is_file() and not path.is_symlink():
                path.unlink()
        elif path.is_dir() and not path.is_symlink():
            for child in inner:
                if (path / child).is_file() and not (path / child).is_symlink():
                    (path / child).unlink()
            _rmdir_if_empty(path)
    _rmdir_if_empty(directory)


def _rmdir_if_empty(path: Path) -> None:
    with contextlib.suppress(OSError):  # something else is in it: left alone
        path.rmdir()
