"""The intake model on the real first-wave file, scored through the real endpoint (azmlinfsrv on loopback).

These are the figures a clinician's trust rests on: on the random 20% test split of
the bundled real CDC file (patients with a known outcome), the risks the endpoint
returns must match observed deaths (observed/expected, calibration slope) and rank
patients (ROC-AUC); no answer may claim certainty; risk never falls with age.
The split is rebuilt here from the file and the card's seed, independently of training.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import requests
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from deploy.local_endpoint import LocalEndpoint
from model import artifact, schema
from model.loader import load_counts
from model.lookup import all_combinations
from model.splits import known_intake_outcomes, split_counts
from tests.conftest import REAL_CDC_FILE

FIGURES = Path(__file__).resolve().parent.parent / "test-output" / "intake_holdout_through_endpoint.json"


def score(endpoint: LocalEndpoint, records: list[dict[str, str]]) -> dict:
    response = requests.post(endpoint.scoring_url, json={"data": records}, timeout=60)
    assert response.status_code == 200, response.text[:500]
    return response.json()


@pytest.fixture(scope="module")
def holdout(model_dir: Path) -> tuple[list[dict[str, str]], np.ndarray, np.ndarray]:
    """The test split's intake patients: (distinct intake records, deaths, survivors) per record."""
    seed = artifact.load_card(model_dir)["seed"]
    _, _, test = split_counts(known_intake_outcomes(load_counts(REAL_CDC_FILE)[0]), seed)
    inputs = list(schema.MODEL_FEATURES[schema.INTAKE_MODEL])
    frame = test.frame[inputs].assign(deaths=test.w * (test.y == 1), survivors=test.w * (test.y == 0))
    grouped = frame.groupby(inputs, as_index=False)[["deaths", "survivors"]].sum()
    return grouped[inputs].to_dict("records"), grouped["deaths"].to_numpy(), grouped["survivors"].to_numpy()


def test_intake_model_on_the_real_holdout_through_the_endpoint(
    local_endpoint: LocalEndpoint, model_dir: Path, holdout
) -> None:
    records, deaths, survivors = holdout
    body = score(local_endpoint, records)
    assert {r["model"] for r in body["results"]} == {"intake"}
    assert body["data_period"].startswith("real CDC cases, case dates Mar 2020 to Apr 2020")
    p = np.array([r["probability"] for r in body["results"]])
    observed, expected = deaths.sum(), float(np.sum(p * (deaths + survivors)))
    y = np.r_[np.ones(len(p)), np.zeros(len(p))]
    w = np.r_[deaths, survivors]
    lp = np.log(p / (1 - p))
    slope = LogisticRegression(C=np.inf).fit(np.r_[lp, lp].reshape(-1, 1), y, sample_weight=w).coef_[0, 0]
    auc = roc_auc_score(y, np.r_[p, p], sample_weight=w)
    figures = {
        "patients": float(w.sum()),
        "deaths": float(observed),
        "observed_expected": observed / expected,
        "calibration_slope": float(slope),
        "roc_auc": float(auc),
    }
    FIGURES.parent.mkdir(exist_ok=True)
    FIGURES.write_text(json.dumps(figures, indent=2))
    print(figures)
    assert 50_000 < w.sum() < 60_000  # 20% of the 274,752 intake patients with a known outcome
    assert 0.95 <= observed / expected <= 1.05
    assert 0.9 <= slope <= 1.1
    assert auc >= 0.87


def test_every_answer_is_bounded_and_monotone_in_age(local_endpoint: LocalEndpoint) -> None:
    grid = all_combinations()
    body = score(local_endpoint, grid.to_dict("records"))
    results = body["results"]
    p = np.array([r["probability"] for r in results])
    assert p.min() > 0.0001 and p.max() < 0.99, (p.min(), p.max())
    low = np.array([r["interval"][0] for r in results])
    high = np.array([r["interval"][1] for r in results])
    assert (low <= p).all() and (p <= high).all()
    models = {r["model"] for r in results}
    assert models == {"intake", "in_hospital"}
    grid = grid.assign(p=p, model=[r["model"] for r in results])
    ranks = {a: i for i, a in enumerate(schema.MONOTONE_AGE_GROUPS)}
    ordered = grid[grid["age_group"].isin(ranks)].assign(rank=lambda f: f["age_group"].map(ranks))
    others = [c for c in schema.MODEL_INPUTS if c != "age_group"]
    strata = 0
    for _, stratum in ordered.sort_values("rank").groupby(others):
        assert np.all(np.diff(stratum["p"].to_numpy()) >= 0), stratum
        strata += 1
    assert strata == len(grid) // len(schema.FEATURES_BY_NAME["age_group"].values)
    # An intake record and the same record with unknown hospital answers get the same risk.
    base = {c: v for c, v in grid.iloc[0].items() if c in schema.MODEL_FEATURES["intake"]}
    pair = score(local_endpoint, [base, {**base, "hosp_yn": "Unknown", "icu_yn": "Unknown"}])["results"]
    assert pair[0] == pair[1]
