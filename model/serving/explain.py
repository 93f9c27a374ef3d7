"""Why this risk: exact Shapley values of each input a result used, in probability points.

A model's input space is finite (its risk table holds every combination), so the
Shapley values need no sampling: for every coalition S of inputs the value
function is computed exactly over the training population,

    v_S(x) = sum over z of P(z_notS) * f(x_S, z_notS),

with P the joint distribution of the training patients (the table's
`train_patients`), i.e. "the risk of a training patient whose inputs in S are
set to this patient's". Then v_empty is the mean risk of the training
population (the baseline), v_all(x) = f(x), and the contributions add up exactly:
baseline + sum(contributions) = probability. Each coalition is a tensor
contraction of the risk table, so all combinations of a model take milliseconds.

This is the *interventional* value function (the inputs outside S are drawn from
the training patients' joint distribution of those inputs, not conditionally on
the inputs in S). A result from a sub-model (inputs left out, model/serving/submodels.py)
is explained the same way over the inputs it used, with that sub-model's risks.
"""

from __future__ import annotations

from itertools import combinations
from math import factorial

import numpy as np
import pandas as pd

from model.core import schema


def _shape(model: str) -> tuple[int, ...]:
    return tuple(len(schema.model_values(model, c)) for c in schema.MODEL_FEATURES[model])


def tensor_coalition_values(risk: np.ndarray, weight: np.ndarray) -> dict[frozenset[int], np.ndarray]:
    """v_S for every coalition S of the tensor's axes (one axis per input), each broadcast to the full shape.

    `weight` is the joint distribution of the training patients over the same axes (any scale).
    """
    shape = risk.shape
    n = len(shape)
    weight = weight / weight.sum() if weight.sum() > 0 else np.full(shape, 1.0 / weight.size)
    values = {}
    for size in range(n + 1):
        for members in combinations(range(n), size):
            inside = tuple(members)
            outside = tuple(i for i in range(n) if i not in members)
            # Distribution of the other inputs (summed over the coalition's), then the expectation over them.
            others = weight.sum(axis=inside, keepdims=True) if inside else weight
            v = (risk * others).sum(axis=outside, keepdims=True) if outside else risk
            values[frozenset(members)] = np.broadcast_to(v, shape)
    return values


def tensor_shapley(risk: np.ndarray, weight: np.ndarray) -> tuple[float, np.ndarray]:
    """(baseline, contributions) of a risk tensor: contributions[i, j] is axis j's share of cell i's risk (C order).

    Used for every sub-model too: a result that left inputs out is explained over the inputs it used.
    """
    n = risk.ndim
    values = tensor_coalition_values(risk, weight)
    contributions = np.zeros((risk.size, n))
    for j in range(n):
        for coalition, v in values.items():
            if j in coalition:
                continue
            share = factorial(len(coalition)) * factorial(n - len(coalition) - 1) / factorial(n)
            contributions[:, j] += share * (values[coalition | {j}] - v).reshape(-1)
    return float(values[frozenset()].reshape(-1)[0]), contributions


def coalition_values(table: pd.DataFrame, model: str) -> dict[frozenset[int], np.ndarray]:
    """v_S for every coalition S (a set of input positions) of a model's full table."""
    shape = _shape(model)
    risk = table["probability"].to_numpy(dtype=float).reshape(shape)  # table rows are in itertools.product order
    return tensor_coalition_values(risk, table["train_patients"].to_numpy(dtype=float).reshape(shape))


def shapley(table: pd.DataFrame, model: str) -> tuple[float, np.ndarray]:
    """(baseline, contributions): contributions[i, j] is input j's share of combination i's risk."""
    shape = _shape(model)
    risk = table["probability"].to_numpy(dtype=float).reshape(shape)
    return tensor_shapley(risk, table["train_patients"].to_numpy(dtype=float).reshape(shape))
