"""model.lookup against the real trained artifact: exact agreement with each model's table, payload validation."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model import artifact, schema
from model.lookup import (
    MAX_RECORDS,
    PayloadError,
    RiskLookup,
    example_record,
    risk_bands,
    validate_indices,
)


@pytest.fixture(scope="module")
def lookup(model_dir: Path) -> RiskLookup:
    return RiskLookup.from_model_dir(model_dir)


@pytest.fixture(scope="module")
def grid() -> pd.DataFrame:
    """Every combination, built independently of model.lookup and shuffled (order must not matter)."""
    rows = list(itertools.product(*(schema.FEATURES_BY_NAME[c].values for c in schema.MODEL_INPUTS)))
    frame = pd.DataFrame(rows, columns=list(schema.MODEL_INPUTS))
    return frame.sample(frac=1.0, random_state=3).reset_index(drop=True)


def test_lookup_equals_the_routed_model_table_for_every_combination(model_dir: Path, lookup, grid) -> None:
    """Brute force: for each of the ~9k combinations, pick the model by hand and read its table row by row."""
    tables = {}
    for model in artifact.MODELS:
        table = artifact.load_risk_table(model_dir, model)
        inputs = schema.MODEL_FEATURES[model]
        tables[model] = {tuple(row[c] for c in inputs): row for row in table.to_dict("records")}
    expected = []
    for record in grid.to_dict("records"):
        model = schema.model_for(record)
        row = tables[model][tuple(record[c] for c in schema.MODEL_FEATURES[model])]
        expected.append(
            {
                "probability": row["probability"],
                "risk_band": schema.risk_band(row["probability"]),
                "interval": [row["ci_low"], row["ci_high"]],
                "model": model,
                "extrapolated": bool(row["extrapolated"]),
            }
        )
    assert len(grid) == schema.combination_count()
    assert lookup.score_records(grid.to_dict("records")) == expected
    np.testing.assert_array_equal(lookup.probabilities(grid), [e["probability"] for e in expected])
    assert {e["model"] for e in expected} == set(artifact.MODELS)


def test_hospital_fields_are_optional_and_route_to_intake(lookup) -> None:
    intake = lookup.score_records([example_record()])[0]
    assert intake["model"] == "intake" and "hosp_yn" not in example_record()
    for hosp, icu in (("Unknown", "Unknown"), ("Yes", "Missing"), ("Missing", "No")):
        assert lookup.score_records([{**example_record(), "hosp_yn": hosp, "icu_yn": icu}])[0] == intake
    assert lookup.score_records([{**example_record(), "hosp_yn": "Yes", "icu_yn": "No"}])[0]["model"] == "in_hospital"


def test_model_version_comes_from_the_card(model_dir: Path, lookup) -> None:
    import json

    assert lookup.model_version == json.loads((model_dir / "model_card.json").read_text())["model_version"]


def test_probabilities_accepts_string_categorical_and_respelled_columns(lookup, grid) -> None:
    expected = lookup.probabilities(grid)
    as_str = grid.astype("string")
    as_cat = grid.astype({c: pd.CategoricalDtype(list(schema.FEATURES_BY_NAME[c].values)) for c in grid})
    np.testing.assert_array_equal(lookup.probabilities(as_str), expected)
    np.testing.assert_array_equal(lookup.probabilities(as_cat), expected)
    respelled = grid.copy()
    respelled["sex"] = respelled["sex"].str.upper() + "  "
    np.testing.assert_array_equal(lookup.probabilities(respelled), expected)


def test_probabilities_rejects_unknown_values_with_counts(lookup, grid) -> None:
    frame = grid.head(10).copy()
    frame.loc[[0, 3], "age_group"] = "85+"
    with pytest.raises(PayloadError) as err:
        lookup.probabilities(frame)
    assert "'85+' (2 rows)" in str(err.value) and "'80+ Years'" in str(err.value)
    with pytest.raises(PayloadError, match="missing column"):
        lookup.probabilities(grid.drop(columns=["icu_yn"]))


def test_risk_bands_match_schema_at_the_edges() -> None:
    edges = np.array([0.0, 0.0099999, 0.01, 0.049, 0.05, 0.1999, 0.2, 0.999, 1.0])
    assert list(risk_bands(edges)) == [schema.risk_band(p) for p in edges]


def test_validation_normalises_and_ignores_race(lookup) -> None:
    record = {**example_record(), "sex": "  male ", "race_ethnicity_combined": "Hispanic/Latino"}
    assert validate_indices([record], MAX_RECORDS) == validate_indices([{**example_record(), "sex": "Male"}])
    plain = lookup.score_records([{**example_record(), "sex": "Male"}])
    assert lookup.score_records([record]) == plain


@pytest.mark.parametrize(
    ("payload", "fragments"),
    [
        ({"age_group": "80+ Years"}, ['"data" must be a JSON array', "an object"]),
        ("text", ['"data" must be a JSON array', "a str"]),
        ([], ["empty array"]),
        ([example_record(), 7], ["record 1 is a number, not an object", "age_group"]),
        ([{k: v for k, v in example_record().items() if k != "sex"}], ["record 0", "missing", "'sex'", "optional"]),
        ([{**example_record(), "agegroup": "80+ Years"}], ["unknown field", "'agegroup'", "Accepted fields"]),
        ([{**example_record(), "sex": 1}], ["record 0 field 'sex' is a number", "'Female'"]),
        ([{**example_record(), "sex": None}], ["field 'sex' is null", "'Missing'"]),
        ([{**example_record(), "icu_yn": ["Yes"]}], ["field 'icu_yn' is an array"]),
        ([{**example_record(), "hosp_yn": "Maybe"}], ["field 'hosp_yn'", "'Maybe'", "'Yes'"]),
        ([example_record(), {**example_record(), "age_group": "85"}], ["record 1", "'85'", "'80+ Years'", "'NA'"]),
    ],
)
def test_validation_explains_every_bad_payload(payload: object, fragments: list[str]) -> None:
    with pytest.raises(PayloadError) as err:
        validate_indices(payload, MAX_RECORDS)
    for fragment in fragments:
        assert fragment in str(err.value)


def test_validation_enforces_the_record_limit() -> None:
    validate_indices([example_record()] * 5, max_records=5)
    with pytest.raises(PayloadError, match="holds 6 records; at most 5"):
        validate_indices([example_record()] * 6, max_records=5)
