"""Read-only, cached access to the model card and its evaluation tables.

The dashboard never touches raw data or the estimator: `model.core.artifact.load_card`
and `load_table` read only JSON and CSV files. Results are cached per
(directory, file modification time), so a retrained model shows up on the next
rerun and a slider move costs no disk read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from model.core import artifact


class ModelMissing(Exception):
    """No usable model directory; the message names the directory and the command that makes one."""


def _stamp(model_dir: Path) -> int:
    card = model_dir / artifact.CARD_JSON
    return card.stat().st_mtime_ns if card.exists() else 0


@st.cache_resource(show_spinner=False, max_entries=8)
def _card(model_dir: str, stamp: int) -> dict[str, Any]:
    return artifact.load_card(model_dir)


@st.cache_resource(show_spinner=False, max_entries=64)
def _table(model_dir: str, name: str, stamp: int) -> pd.DataFrame:
    # cache_resource (not cache_data) hands out the same frame without copying: callers must not mutate it.
    return artifact.load_table(model_dir, name)


@dataclass(frozen=True)
class ModelArtifact:
    """A model directory as the dashboard sees it."""

    directory: Path
    card: dict[str, Any]

    def table(self, name: str) -> pd.DataFrame:
        """One evaluation table (roc, pr, thresholds, calibration, subgroups). Do not mutate it."""
        return _table(str(self.directory), name, _stamp(self.directory))

    @property
    def version(self) -> str:
        return str(self.card.get("model_version", "unknown"))

    @property
    def synthetic(self) -> bool:
        return bool((self.card.get("data") or {}).get("synthetic", False))

    @property
    def prevalence(self) -> float:
        """Death rate of the test split (the population the stored tables describe); NaN if the card lacks it."""
        value = (self.card.get("prevalence") or {}).get("test")
        return float(value) if isinstance(value, int | float) else math.nan


def load_artifact(model_dir: Path) -> ModelArtifact:
    """The artifact at `model_dir`, or ModelMissing with the command to make one."""
    try:
        found = artifact.find_model_dir(model_dir)
        card = _card(str(found), _stamp(found))
    except (artifact.ArtifactError, OSError, ValueError) as exc:
        raise ModelMissing(
            f"No model found in `{model_dir}` ({exc.__class__.__name__}). Train one with "
            f"`python -m model.train --out {model_dir}`, or point the environment variable "
            "`RISK_MODEL_DIR` at an existing model directory, then reload this page."
        ) from exc
    return ModelArtifact(directory=found, card=card)
