"""Patients of the intake population, split at patient level into train / validation / test."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from model import schema
from model.fitting import Weighted
from model.loader import CASE_MONTH, INTAKE_POPULATION

# Row-level split of patients (not of combinations): train / validation / test.
SPLIT_SHARES = (0.6, 0.2, 0.2)
SPLIT_COLUMNS = (*schema.ALL_COLUMNS, CASE_MONTH)


@dataclass
class Split:
    """One split as weighted rows: SPLIT_COLUMNS, label y (1 = death), weight w (patients)."""

    frame: pd.DataFrame
    y: np.ndarray
    w: np.ndarray

    @property
    def deaths(self) -> float:
        return float(self.w[self.y == 1].sum())

    @property
    def patients(self) -> float:
        return float(self.w.sum())

    def for_model(self, model: str) -> Split:
        """The rows a model is trained and judged on: in-hospital needs both hospital answers as Yes/No."""
        if model == schema.INTAKE_MODEL:
            return self
        keep = np.ones(len(self.frame), dtype=bool)
        for column in schema.HOSPITAL_FIELDS:
            keep &= self.frame[column].isin(schema.HOSPITAL_KNOWN_VALUES).to_numpy()
        return Split(self.frame[keep].reset_index(drop=True), self.y[keep], self.w[keep])

    def weighted(self, model: str) -> Weighted:
        part = self.for_model(model)
        return Weighted.collapse(part.frame, part.y, part.w, schema.MODEL_FEATURES[model])

    def summary(self) -> dict[str, float]:
        return {
            "patients": self.patients,
            "deaths": self.deaths,
            "prevalence": self.deaths / self.patients if self.patients else 0.0,
        }


def known_intake_outcomes(counts: pd.DataFrame) -> pd.DataFrame:
    """Rows of the intake population with a known outcome: the patients every model learns from."""
    keep = counts[INTAKE_POPULATION] & ((counts["deaths"] + counts["survivors"]) > 0)
    return counts[keep].reset_index(drop=True)


def split_counts(counts: pd.DataFrame, seed: int, shares: tuple[float, ...] = SPLIT_SHARES) -> tuple[Split, ...]:
    """Stratified row-level split: each combination's deaths and survivors are dealt out multinomially."""
    rng = np.random.default_rng(seed)
    deaths = rng.multinomial(counts["deaths"].to_numpy(dtype=np.int64), shares)
    survivors = rng.multinomial(counts["survivors"].to_numpy(dtype=np.int64), shares)
    columns = counts[list(SPLIT_COLUMNS)].reset_index(drop=True)
    splits = []
    for k in range(len(shares)):
        both = pd.concat([columns.assign(y=1, w=deaths[:, k]), columns.assign(y=0, w=survivors[:, k])])
        both = both[both["w"] > 0].reset_index(drop=True)
        splits.append(Split(both[list(SPLIT_COLUMNS)], both["y"].to_numpy(np.int8), both["w"].to_numpy(np.float64)))
    return tuple(splits)
