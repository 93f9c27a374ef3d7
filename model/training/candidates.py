"""The candidate models, simplest first, each a scikit-learn pipeline over one model's inputs.

Every pipeline takes a DataFrame with the model's input columns (canonical
values) and fits with `sample_weight` (patients per aggregated row). Categories
come from `schema.model_values`, so a model never meets a value it was not built
for. The order of `CANDIDATES` is the order of complexity: selection's
one-standard-error rule prefers the earlier one.

Regularisation is stated in patients: with weights in patients, logistic
regression's C=1 is a standard-normal prior on each coefficient, so a sparse
interaction cell is shrunk toward the main effects while big cells are not.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, PolynomialFeatures

from model.core import schema

AGE = "age_group"


def _one_hot(model: str, inputs: tuple[str, ...]) -> ColumnTransformer:
    categories = [list(schema.model_values(model, c)) for c in inputs]
    encoder = OneHotEncoder(categories=categories, handle_unknown="error", sparse_output=False)
    return ColumnTransformer([("onehot", encoder, list(inputs))])


def logistic_main_effects(model: str, inputs: tuple[str, ...], seed: int) -> Pipeline:
    """One coefficient per category: the simplest model, risk moves with each input independently on the logit."""
    return Pipeline([("encode", _one_hot(model, inputs)), ("model", LogisticRegression(C=1.0, max_iter=5000))])


def logistic_pairwise(model: str, inputs: tuple[str, ...], seed: int) -> Pipeline:
    """Main effects plus every two-way interaction (e.g. age x conditions), shrunk toward zero."""
    return Pipeline(
        [
            ("encode", _one_hot(model, inputs)),
            ("pairs", PolynomialFeatures(degree=2, interaction_only=True, include_bias=False)),
            ("model", LogisticRegression(C=1.0, max_iter=5000)),
        ]
    )


def _age_rank(frame: pd.DataFrame) -> np.ndarray:
    # 10-19 .. 80+ as 1..8; other values (0-9, Unknown, Missing, NA) NaN, handled by the categorical copy.
    ranks = {g: float(i + 1) for i, g in enumerate(schema.MONOTONE_AGE_GROUPS)}
    return frame[AGE].map(ranks).astype(float).to_numpy().reshape(-1, 1)


def gradient_boosting_monotone(model: str, inputs: tuple[str, ...], seed: int) -> Pipeline:
    """Boosted trees with risk forced non-decreasing in age from 10-19 up (the other inputs categorical)."""
    others = [c for c in inputs if c != AGE]
    encode = ColumnTransformer(
        [
            ("age_rank", FunctionTransformer(_age_rank), [AGE]),
            (
                "categories",
                OrdinalEncoder(categories=[list(schema.model_values(model, c)) for c in inputs]),
                [AGE, *others],
            ),
        ]
    )
    trees = HistGradientBoostingClassifier(
        categorical_features=[False] + [True] * len(inputs),
        monotonic_cst=[1] + [0] * len(inputs),
        learning_rate=0.1,
        max_iter=150,
        max_leaf_nodes=15,
        min_samples_leaf=5,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=seed,
    )
    return Pipeline([("encode", encode), ("model", trees)])


Builder = Callable[[str, tuple[str, ...], int], ClassifierMixin]
CANDIDATES: dict[str, Builder] = {
    "logistic_main_effects": logistic_main_effects,
    "logistic_pairwise": logistic_pairwise,
    "gradient_boosting_monotone": gradient_boosting_monotone,
}
