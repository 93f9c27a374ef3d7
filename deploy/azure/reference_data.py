"""The monitoring schedule's reference data: an MLTable built from the model's training distribution.

The data-drift signal compares the categories in the deployment's collected `model_inputs`
with a reference table. The model artifact keeps, per model input, the share of each category
among the training rows (`training_distribution.json`, read with
`model.core.artifact.load_training_distribution`). This module turns those shares into a table of
`rows` records whose per-column category counts match the shares to within one row
(largest-remainder rounding), each column shuffled independently with a fixed seed.

What it preserves and what it does not: Azure ML's data drift metrics for categorical features
(Jensen-Shannon distance, Pearson's chi-squared) are computed per feature, from each feature's
category distribution, so matching marginals is all they read. The joint distribution of the
inputs is not preserved (the artifact does not store it), so do not use this table for anything
that needs combinations of inputs.

The prediction-drift signal gets a fixed reference too (`prediction_frame`): the model's
predicted risk over its training patients (the artifact's `predicted_risk` histogram), as
`probability` and `risk_band` rows, the two columns the deployment collects as `model_outputs`.
Comparing this week's outputs with the deployment's own earlier outputs (the previous design)
left the reference empty for weeks after every rollout and could never see slow drift.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from azure.ai.ml.constants import AssetTypes
from azure.ai.ml.entities import Data

from model.core import artifact
from model.serving import lookup

TABLE_FILE = "reference.csv"
MLTABLE_FILE = "MLTable"
DEFAULT_ROWS = 10_000
MLTABLE = {
    "$schema": "https://azuremlschemas.azureedge.net/latest/MLTable.schema.json",
    "type": "mltable",
    "paths": [{"file": f"./{TABLE_FILE}"}],
    "transformations": [{"read_delimited": {"delimiter": ",", "encoding": "utf8", "header": "all_files_same_headers"}}],
}


class ReferenceDataError(ValueError):
    """The training distribution cannot make a reference table; the message says why."""


def _counts(shares: dict[str, float], rows: int) -> dict[str, int]:
    """Integer counts summing to `rows`, proportional to `shares` (largest remainder, ties by name)."""
    total = sum(shares.values())
    if total <= 0:
        raise ReferenceDataError("a feature's category shares sum to 0; retrain the model")
    exact = {k: v / total * rows for k, v in shares.items()}
    counts = {k: int(x) for k, x in exact.items()}
    for k in sorted(exact, key=lambda k: (-(exact[k] - counts[k]), k))[: rows - sum(counts.values())]:
        counts[k] += 1
    return counts


def reference_frame(distribution: dict[str, Any], rows: int = DEFAULT_ROWS, seed: int = 0) -> pd.DataFrame:
    """`rows` records whose per-feature category counts follow the training shares."""
    features = distribution.get("features")
    if not isinstance(features, dict) or not features:
        raise ReferenceDataError(
            "training_distribution.json has no 'features' shares; retrain with `python -m model.train`"
        )
    rng = np.random.default_rng(seed)
    columns = {}
    for name, shares in features.items():
        counts = _counts({str(k): float(v) for k, v in shares.items()}, rows)
        values = np.repeat(np.array(list(counts), dtype=object), list(counts.values()))
        columns[name] = rng.permutation(values)
    return pd.DataFrame(columns)


def prediction_frame(distribution: dict[str, Any], rows: int = DEFAULT_ROWS) -> pd.DataFrame:
    """`rows` model outputs (probability, risk_band) following the training patients' predicted-risk histogram.

    Each histogram bin gets its share of rows (largest remainder), spread evenly inside the bin;
    the band edges (1%, 5%, 20%) are bin edges, so every row's band is its bin's band exactly.
    """
    histogram = distribution.get("predicted_risk") or {}
    bins, shares = histogram.get("bins"), histogram.get("shares")
    if not bins or not shares or len(bins) != len(shares) + 1:
        raise ReferenceDataError(
            "training_distribution.json has no 'predicted_risk' histogram (bins, shares); retrain with "
            "`python -m model.train`"
        )
    counts = _counts({str(i): float(s) for i, s in enumerate(shares)}, rows)
    parts = []
    for i, n in sorted(counts.items(), key=lambda item: int(item[0])):
        low, high = float(bins[int(i)]), float(bins[int(i) + 1])
        parts.append(low + (np.arange(n) + 0.5) / max(n, 1) * (high - low))
    probability = np.concatenate(parts)
    return pd.DataFrame({"probability": probability, "risk_band": lookup.risk_bands(probability)})


def _write_table(frame: pd.DataFrame, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out_dir / TABLE_FILE, index=False)
    (out_dir / MLTABLE_FILE).write_text(yaml.safe_dump(MLTABLE, sort_keys=False), encoding="utf-8")
    return out_dir


def write_reference(model_dir: Path, out_dir: Path, rows: int = DEFAULT_ROWS) -> Path:
    """Write reference.csv and its MLTable file into out_dir (a folder to register as an mltable asset)."""
    return _write_table(reference_frame(artifact.load_training_distribution(model_dir), rows), out_dir)


def write_prediction_reference(model_dir: Path, out_dir: Path, rows: int = DEFAULT_ROWS) -> Path:
    """The prediction-drift reference (probability, risk_band) as reference.csv + MLTable in out_dir."""
    return _write_table(prediction_frame(artifact.load_training_distribution(model_dir), rows), out_dir)


INPUTS_DESCRIPTION = "Reference for input drift: per-feature category shares of the model's training rows."
OUTPUTS_DESCRIPTION = "Reference for prediction drift: the model's predicted risk over its training patients."


def build_reference_data(
    name: str,
    folder: str,
    version: str | None = None,
    model_version: str | None = None,
    description: str = INPUTS_DESCRIPTION,
) -> Data:
    """The MLTable data asset (version None: Azure numbers it on registration)."""
    return Data(
        name=name,
        version=version,
        type=AssetTypes.MLTABLE,
        path=folder,
        description=description,
        tags={"model_version": model_version} if model_version else {},
    )
