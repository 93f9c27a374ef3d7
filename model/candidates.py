"""The candidate models, each a scikit-learn pipeline taking the schema's string columns.

Every pipeline accepts a DataFrame with `schema.MODEL_INPUTS` (canonical values)
and fits with `sample_weight` (patients per aggregated row). Categories are
fixed from the schema, so a model never meets a value it was not built for.
"""

from __future__ import annotations

from collections.abc import Callable

from sklearn.base import ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder
from sklearn.tree import DecisionTreeClassifier

from model import schema


def _categories() -> list[list[str]]:
    return [list(schema.FEATURES_BY_NAME[c].values) for c in schema.MODEL_INPUTS]


def _one_hot() -> ColumnTransformer:
    encoder = OneHotEncoder(categories=_categories(), handle_unknown="error", sparse_output=False)
    return ColumnTransformer([("onehot", encoder, list(schema.MODEL_INPUTS))])


def _ordinal() -> ColumnTransformer:
    # Schema order is meaningful for age (youngest to oldest), which trees can split on.
    encoder = OrdinalEncoder(categories=_categories(), handle_unknown="error")
    return ColumnTransformer([("ordinal", encoder, list(schema.MODEL_INPUTS))])


def logistic_regression(seed: int) -> Pipeline:
    return Pipeline([("encode", _one_hot()), ("model", LogisticRegression(C=1.0, max_iter=5000))])


def gradient_boosting(seed: int) -> Pipeline:
    model = HistGradientBoostingClassifier(
        categorical_features=[True] * len(schema.MODEL_INPUTS),
        learning_rate=0.1,
        max_iter=200,
        max_leaf_nodes=31,
        # Rows are combinations, not patients: keep leaves small, regularise instead.
        min_samples_leaf=5,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=seed,
    )
    return Pipeline([("encode", _ordinal()), ("model", model)])


def decision_tree(seed: int) -> Pipeline:
    # The seed lab's model family, kept as a baseline.
    model = DecisionTreeClassifier(max_depth=8, min_weight_fraction_leaf=0.0005, random_state=seed)
    return Pipeline([("encode", _ordinal()), ("model", model)])


def random_forest(seed: int) -> Pipeline:
    model = RandomForestClassifier(
        n_estimators=150,
        max_depth=12,
        min_weight_fraction_leaf=0.0002,
        n_jobs=2,
        random_state=seed,
    )
    return Pipeline([("encode", _ordinal()), ("model", model)])


CANDIDATES: dict[str, Callable[[int], ClassifierMixin]] = {
    "logistic_regression": logistic_regression,
    "hist_gradient_boosting": gradient_boosting,
    "decision_tree": decision_tree,
    "random_forest": random_forest,
}
