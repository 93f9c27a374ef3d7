"""Patients of the intake population, split at patient level into train / validation / test."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from model.core import schema
from model.data.loader import CASE_MONTH, INTAKE_POPULATION
from model.training.fitting import Weighted

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
        if model != schema.IN_HOSPITAL_MODEL:
            return self
        keep = hospital_known(self.frame)
        return Split(self.frame[keep].reset_index(drop=True), self.y[keep], self.w[keep])

    def weighted(self, model: str) -> Weighted:
        part = self.for_model(model)
        return Weighted.collapse(part.frame, part.y, part.w, schema.MODEL_FEATURES[model])

    def collapsed(self, columns: list[str]) -> Split:
        """The same patients with only `columns`, identical (columns, outcome) rows merged (weights summed).

        Rows keep the order in which each (columns, outcome) first appears, so a group-by over any of
        `columns` meets its values in the same order as on the full split. Every weighted figure computed
        from `columns` and the outcome is unchanged; the test split shrinks from ~10^5 rows to ~10^3-10^4.
        """
        rows, first = first_appearance_groups(self.frame[columns], self.y)
        w = np.bincount(rows, weights=self.w, minlength=first.size)
        return Split(self.frame[columns].iloc[first].reset_index(drop=True), self.y[first], w)

    def summary(self) -> dict[str, float]:
        return {
            "patients": self.patients,
            "deaths": self.deaths,
            "prevalence": self.deaths / self.patients if self.patients else 0.0,
        }


def first_appearance_groups(frame: pd.DataFrame, y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Group of each row over all of `frame`'s columns (and `y`), numbered in order of first appearance,
    and each group's first row. Integer keys (mixed-radix codes), no string comparisons."""
    key = np.zeros(len(frame), dtype=np.int64)
    for column in frame.columns:
        codes, uniques = pd.factorize(frame[column])
        key = key * (len(uniques) + 1) + codes + 1
    if y is not None:
        key = key * 2 + np.asarray(y, dtype=np.int64)
    rows, _ = pd.factorize(key)
    first = np.full(int(rows.max()) + 1 if rows.size else 0, len(frame), dtype=np.int64)
    np.minimum.at(first, rows, np.arange(len(frame)))
    return rows, first


def hospital_known(frame: pd.DataFrame) -> np.ndarray:
    """Rows with both hospital answers Yes/No: the in-hospital model's patients."""
    keep = np.ones(len(frame), dtype=bool)
    for column in schema.HOSPITAL_FIELDS:
        keep &= frame[column].isin(schema.HOSPITAL_KNOWN_VALUES).to_numpy()
    return keep


def recording_data(known: tuple[Split, ...], unknown: tuple[pd.DataFrame, ...], model: str) -> Weighted:
    """A model's cases labelled 1 = outcome recorded, 0 = never recorded (weights: cases), over its inputs."""
    inputs = schema.MODEL_FEATURES[model]
    frames, labels, weights = [], [], []
    for split in known:
        part = split.for_model(model)
        frames.append(part.frame[list(inputs)])
        labels.append(np.ones(len(part.frame), dtype=np.int8))
        weights.append(part.w)
    for frame in unknown:
        rows = frame[hospital_known(frame)] if model == schema.IN_HOSPITAL_MODEL else frame
        frames.append(rows[list(inputs)])
        labels.append(np.zeros(len(rows), dtype=np.int8))
        weights.append(rows["w"].to_numpy(np.float64))
    frame = pd.concat(frames, ignore_index=True)
    return Weighted.collapse(frame, np.concatenate(labels), np.concatenate(weights), inputs)


def known_intake_outcomes(counts: pd.DataFrame) -> pd.DataFrame:
    """Rows of the intake population with a known outcome: the patients every model learns from."""
    keep = counts[INTAKE_POPULATION] & ((counts["deaths"] + counts["survivors"]) > 0)
    return counts[keep].reset_index(drop=True)


def split_unknown_outcomes(
    counts: pd.DataFrame, seed: int, shares: tuple[float, ...] = SPLIT_SHARES
) -> tuple[pd.DataFrame, ...]:
    """The intake population's cases with NO recorded outcome, split at patient level like the known ones.

    One frame per split: SPLIT_COLUMNS plus `w` (cases). Each combination's unknown-outcome cases are
    dealt out multinomially with the same shares, from a random stream of its own (seed, 1), so the
    split of the known-outcome patients (`split_counts`, same seed) stays exactly what it was: together
    they are a patient-level split of every case. Used to learn which cases get an outcome recorded.
    """
    rows = counts[counts[INTAKE_POPULATION] & (counts["unknown_outcome"] > 0)].reset_index(drop=True)
    rng = np.random.default_rng([seed, 1])
    dealt = rng.multinomial(rows["unknown_outcome"].to_numpy(dtype=np.int64), shares)
    columns = rows[list(SPLIT_COLUMNS)]
    parts = []
    for k in range(len(shares)):
        part = columns.assign(w=dealt[:, k].astype(np.float64))
        parts.append(part[part["w"] > 0].reset_index(drop=True))
    return tuple(parts)


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
