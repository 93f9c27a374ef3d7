"""model.serving.lookup on the real trained artifact: exact agreement with each model's table, payload validation."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model.core import artifact, schema
from model.serving.lookup import (
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
    """Every combination, built independently of model.serving.lookup and shuffled (order must not matter)."""
    rows = list(itertools.product(*(schema.FEATURES_BY_NAME[c].values for c in schema.MODEL_INPUTS)))
    frame = pd.DataFrame(rows, columns=list(schema.MODEL_INPUTS))
    return frame.sample(frac=1.0, random_state=3).reset_index(drop=True)


def test_lookup_equals_the_routed_model_table_for_every_combination(model_dir: Path, lookup, grid) -> None:
    """Every full record (race not given) gets exactly its model's table row, and its recording share's low end."""
    tables = {}
    for model in artifact.trained_models(model_dir):
        table = artifact.load_risk_table(model_dir, model)
        inputs = schema.MODEL_FEATURES[model]
        tables[model] = {tuple(row[c] for c in inputs): row for row in table.to_dict("records")}
    expected = []
    for record in grid.to_dict("records"):
        model = schema.model_for(record)
        row = tables[model][tuple(record[c] for c in schema.MODEL_FEATURES[model])]
        share = min(row["recorded_share"], 1.0)
        expected.append(
            {
                "probability": row["probability"],
                "risk_band": schema.risk_band(row["probability"]),
                "interval": [row["ci_low"], row["ci_high"]],
                "probability_if_unrecorded_survived": row["probability"] * share,
                "interval_if_unrecorded_survived": [row["ci_low"] * share, row["ci_high"] * share],
                "model": model,
                "extrapolated": bool(row["extrapolated"]),
                "inputs_used": list(schema.MODEL_FEATURES[model]),
            }
        )
    assert len(grid) == schema.combination_count()
    assert lookup.score_records(grid.to_dict("records")) == expected
    np.testing.assert_array_equal(lookup.probabilities(grid), [e["probability"] for e in expected])
    assert {e["model"] for e in expected} == {schema.INTAKE_MODEL, schema.IN_HOSPITAL_MODEL}


def test_race_given_is_scored_by_the_race_aware_model(model_dir: Path, lookup) -> None:
    table = artifact.load_risk_table(model_dir, schema.INTAKE_RACE_MODEL)
    inputs = schema.MODEL_FEATURES[schema.INTAKE_RACE_MODEL]
    rows = {tuple(row[c] for c in inputs): row for row in table.to_dict("records")}
    for race in schema.FEATURES_BY_NAME[schema.RACE].values:  # every CDC value, incl. Unknown and Missing
        record = {**example_record(), "medcond_yn": "Yes", schema.RACE: race}
        result = lookup.score_records([record])[0]
        assert result["model"] == schema.INTAKE_RACE_MODEL
        assert result["inputs_used"] == list(inputs)
        assert result["probability"] == rows[tuple(record[c] for c in inputs)]["probability"]
    # In hospital with both answers known: the in-hospital model, which does not use race, and says so.
    in_hospital = {**example_record(), schema.RACE: "Asian, Non-Hispanic", "hosp_yn": "Yes", "icu_yn": "No"}
    result = lookup.score_records([in_hospital])[0]
    assert result["model"] == schema.IN_HOSPITAL_MODEL and schema.RACE not in result["inputs_used"]
    assert result == lookup.score_records([{k: v for k, v in in_hospital.items() if k != schema.RACE}])[0]


def _brute_force_submodel(table: pd.DataFrame, inputs: tuple[str, ...], record: dict[str, str]) -> float:
    """The risk of all training patients like `record` (its given inputs), whatever their other answers."""
    given = [c for c in inputs if c in record]
    like = np.ones(len(table), dtype=bool)
    for c in given:
        like &= (table[c] == record[c]).to_numpy()
    n, p = table["train_patients"].to_numpy()[like], table["probability"].to_numpy()[like]
    return float(np.sum(n * p) / np.sum(n))


def test_left_out_inputs_average_over_the_training_patients(model_dir: Path, lookup) -> None:
    """A record without an input gets the patient-weighted mean risk over that input's answers (brute force)."""
    table = artifact.load_risk_table(model_dir, schema.INTAKE_MODEL)
    inputs = schema.MODEL_FEATURES[schema.INTAKE_MODEL]
    checked = 0
    for age in schema.AGE_GROUPS:
        for sex in ("Female", "Male"):
            for left_out in (("medcond_yn",), ("sex", "medcond_yn"), ("current_status",)):
                full = {"age_group": age, "sex": sex, "current_status": "Laboratory-confirmed case"}
                record = {c: v for c, v in full.items() if c not in left_out}
                result = lookup.score_records([record])[0]
                assert result["inputs_used"] == [c for c in inputs if c in record]
                assert result["model"] == schema.INTAKE_MODEL
                # Pseudo-count of one patient for empty strata: negligible in these well-populated ones.
                assert result["probability"] == pytest.approx(_brute_force_submodel(table, inputs, record), rel=2e-3)
                assert result["interval"][0] <= result["probability"] <= result["interval"][1]
                checked += 1
    assert checked == 54


def test_every_answer_keeps_the_recording_range_ordered(lookup) -> None:
    """probability_if_unrecorded_survived is never above the risk; each end has its interval around it."""
    for model, answers in lookup.models.items():
        a = answers.answers
        assert (a["unrecorded"] <= a["probability"]).all(), model
        assert (a["unrecorded"] > 0).all(), model
        assert (a["unrecorded_low"] <= a["unrecorded"]).all() and (a["unrecorded"] <= a["unrecorded_high"]).all()
        assert (a["ci_low"] <= a["probability"]).all() and (a["probability"] <= a["ci_high"]).all()


def test_the_form_defaults_never_route_a_blank_to_a_cdc_category(lookup) -> None:
    """Issue 19: a man aged 60-69 whose conditions are not known is scored without them, not as Missing/Unknown."""
    man = {"age_group": "60 - 69 Years", "sex": "Male", "current_status": "Laboratory-confirmed case"}
    by_answer = {v: lookup.score_records([{**man, "medcond_yn": v}])[0]["probability"] for v in ("Yes", "No")}
    missing = lookup.score_records([{**man, "medcond_yn": "Missing"}])[0]["probability"]
    unknown = lookup.score_records([{**man, "medcond_yn": "Unknown"}])[0]["probability"]
    not_known = lookup.score_records([man])[0]
    assert "medcond_yn" not in not_known["inputs_used"]
    assert by_answer["No"] < not_known["probability"] < by_answer["Yes"]
    assert not_known["probability"] not in (missing, unknown)


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


def test_validation_normalises_spellings(lookup) -> None:
    record = {**example_record(), "sex": "  male ", "race_ethnicity_combined": " hispanic/latino"}
    same = {**example_record(), "sex": "Male", "race_ethnicity_combined": "Hispanic/Latino"}
    assert validate_indices([record], MAX_RECORDS) == validate_indices([same])
    assert lookup.score_records([record]) == lookup.score_records([same])


@pytest.mark.parametrize(
    ("payload", "fragments"),
    [
        ({"age_group": "80+ Years"}, ['"data" must be a JSON array', "an object"]),
        ("text", ['"data" must be a JSON array', "a str"]),
        ([], ["empty array"]),
        ([example_record(), 7], ["record 1 is a number, not an object", "age_group"]),
        ([{k: v for k, v in example_record().items() if k != "age_group"}], ["record 0", "missing", "'age_group'"]),
        ([{**example_record(), "agegroup": "80+ Years"}], ["unknown field", "'agegroup'", "Accepted fields"]),
        ([{**example_record(), "sex": 1}], ["record 0 field 'sex' is a number", "'Female'"]),
        ([{**example_record(), "sex": None}], ["field 'sex' is null", "'Missing'", "Leave the field out"]),
        ([{**example_record(), "race_ethnicity_combined": "Martian"}], ["'race_ethnicity_combined'", "'Martian'"]),
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
