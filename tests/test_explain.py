"""Why this risk: exact Shapley contributions, served by the real endpoint, checked by brute force."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import requests

from deploy.local_endpoint import LocalEndpoint
from model.core import artifact, schema
from model.serving.lookup import all_combinations


def post(endpoint: LocalEndpoint, body: object) -> requests.Response:
    # Probe traffic: checks of the model, never collected as patients for the monitor.
    return requests.post(endpoint.scoring_url, json=body, headers={schema.TRAFFIC_HEADER: schema.PROBE}, timeout=60)


def test_contributions_add_up_for_every_combination(local_endpoint: LocalEndpoint) -> None:
    records = all_combinations().to_dict("records")
    records[0] = {**schema.default_record(), "race_ethnicity_combined": "Hispanic/Latino"}
    response = post(local_endpoint, {"data": records, "explain": True})
    assert response.status_code == 200, response.text[:300]
    results = response.json()["results"]
    assert len(results) == len(records)
    assert results[0]["model"] == schema.INTAKE_RACE_MODEL
    assert "race_ethnicity_combined" in results[0]["contributions"]  # given: used and explained
    for result in results:
        contributions = result["contributions"]
        assert list(contributions) == result["inputs_used"] == list(schema.MODEL_FEATURES[result["model"]])
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


@pytest.mark.parametrize(
    "record",
    [
        {"age_group": "70 - 79 Years", "sex": "Female", "current_status": "Laboratory-confirmed case"},
        {"age_group": "50 - 59 Years", "medcond_yn": "Yes"},
        {"age_group": "40 - 49 Years", "sex": "Male", "race_ethnicity_combined": "Black, Non-Hispanic"},
    ],
)
def test_left_out_inputs_are_not_explained_and_the_rest_is_exact(
    local_endpoint: LocalEndpoint, model_dir: Path, record: dict[str, str]
) -> None:
    """A sub-model's answer is explained over the inputs it used, by the Shapley values of the served risks.

    Brute force: every ordering of the used inputs; v(S) = mean over the training patients (their used inputs)
    of the endpoint's own answer with the inputs in S set to this record's.
    """
    result = post(local_endpoint, {"data": [record], "explain": True}).json()["results"][0]
    used = result["inputs_used"]
    assert used == [c for c in schema.MODEL_FEATURES[result["model"]] if c in record]
    assert list(result["contributions"]) == used
    table = artifact.load_risk_table(model_dir, result["model"])
    patients = table.groupby(used)["train_patients"].sum()
    combos = [dict(zip(used, key, strict=True)) for key in patients.index]
    served = post(local_endpoint, {"data": combos}).json()["results"]
    risk = {tuple(c.values()): r["probability"] for c, r in zip(combos, served, strict=True)}
    weights = patients.to_numpy() / patients.sum()

    def value(coalition: frozenset[str]) -> float:
        keys = [tuple(record[c] if c in coalition else c_v for c, c_v in zip(used, key, strict=True)) for key in risk]
        return float(np.sum(weights * np.array([risk[k] for k in keys])))

    shares = dict.fromkeys(used, 0.0)
    orderings = list(itertools.permutations(used))
    for order in orderings:
        before: frozenset[str] = frozenset()
        for name in order:
            shares[name] += (value(before | {name}) - value(before)) / len(orderings)
            before = before | {name}
    for name in used:
        assert result["contributions"][name] == pytest.approx(shares[name], abs=1e-9), name
    assert result["baseline"] + sum(result["contributions"].values()) == pytest.approx(result["probability"], abs=1e-12)


def test_explain_must_be_a_boolean(local_endpoint: LocalEndpoint) -> None:
    record = schema.default_record()
    response = post(local_endpoint, {"data": [record], "explain": "yes"})
    assert response.status_code == 400 and '"explain" must be true or false' in response.json()["error"]
    assert np.isfinite(post(local_endpoint, {"data": [record], "explain": False}).json()["results"][0]["probability"])
