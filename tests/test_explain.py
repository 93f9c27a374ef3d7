"""Why this risk: exact Shapley contributions, served by the real endpoint, checked by brute force."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import requests

from deploy.local_endpoint import LocalEndpoint
from model import artifact, schema
from model.lookup import all_combinations


def post(endpoint: LocalEndpoint, body: object) -> requests.Response:
    return requests.post(endpoint.scoring_url, json=body, timeout=60)


def test_contributions_add_up_for_every_combination(local_endpoint: LocalEndpoint) -> None:
    records = all_combinations().to_dict("records")
    records[0] = {**records[0], "race_ethnicity_combined": "Hispanic/Latino"}  # accepted, never explained
    response = post(local_endpoint, {"data": records, "explain": True})
    assert response.status_code == 200, response.text[:300]
    results = response.json()["results"]
    assert len(results) == len(records)
    for result in results:
        contributions = result["contributions"]
        assert list(contributions) == list(schema.MODEL_FEATURES[result["model"]])
        assert "race_ethnicity_combined" not in contributions
        assert result["baseline"] + sum(contributions.values()) == pytest.approx(result["probability"], abs=1e-12)
    plain = post(local_endpoint, {"data": records[:3]}).json()["results"]
    assert all("contributions" not in r for r in plain), "explanations only on request"


def _brute_force(model_dir: Path, model: str, record: dict[str, str]) -> tuple[float, dict[str, float]]:
    """Shapley values by their definition: every ordering of the inputs, value = mean risk over training patients."""
    table = artifact.load_risk_table(model_dir, model)
    inputs = list(schema.MODEL_FEATURES[model])
    rows = table.to_dict("records")
    total = sum(r["train_patients"] for r in rows)
    risk = {tuple(r[c] for c in inputs): r["probability"] for r in rows}

    def value(coalition: frozenset[str]) -> float:
        # Each training patient with the coalition's inputs replaced by this record's.
        return (
            sum(r["train_patients"] * risk[tuple(record[c] if c in coalition else r[c] for c in inputs)] for r in rows)
            / total
        )

    shares = dict.fromkeys(inputs, 0.0)
    orderings = list(itertools.permutations(inputs))
    cache: dict[frozenset[str], float] = {}
    for order in orderings:
        before: frozenset[str] = frozenset()
        for name in order:
            after = before | {name}
            for c in (before, after):
                if c not in cache:
                    cache[c] = value(c)
            shares[name] += (cache[after] - cache[before]) / len(orderings)
            before = after
    return cache[frozenset()], shares


@pytest.mark.parametrize(
    "record",
    [
        {"age_group": "80+ Years", "sex": "Male", "current_status": "Laboratory-confirmed case", "medcond_yn": "Yes"},
        {"age_group": "10 - 19 Years", "sex": "Female", "current_status": "Probable Case", "medcond_yn": "No"},
        {
            "age_group": "60 - 69 Years",
            "sex": "Male",
            "current_status": "Laboratory-confirmed case",
            "medcond_yn": "Unknown",
            "hosp_yn": "Yes",
            "icu_yn": "No",
        },
    ],
)
def test_contributions_equal_a_brute_force_shapley_computation(
    local_endpoint: LocalEndpoint, model_dir: Path, record: dict[str, str]
) -> None:
    result = post(local_endpoint, {"data": [record], "explain": True}).json()["results"][0]
    baseline, shares = _brute_force(model_dir, result["model"], record)
    assert result["baseline"] == pytest.approx(baseline, abs=1e-12)
    for name, share in shares.items():
        assert result["contributions"][name] == pytest.approx(share, abs=1e-12), name
    assert math.isclose(baseline + sum(shares.values()), result["probability"], abs_tol=1e-12)
    if record["age_group"] == "80+ Years":  # the oldest patients' age carries most of their risk
        assert max(result["contributions"], key=result["contributions"].get) == "age_group"


def test_explain_must_be_a_boolean(local_endpoint: LocalEndpoint) -> None:
    record = schema.default_record()
    response = post(local_endpoint, {"data": [record], "explain": "yes"})
    assert response.status_code == 400 and '"explain" must be true or false' in response.json()["error"]
    assert np.isfinite(post(local_endpoint, {"data": [record], "explain": False}).json()["results"][0]["probability"])
