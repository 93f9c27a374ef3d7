"""Batch scoring (CLI and Azure ML batch driver) against the real endpoint, on real and generated files.

The Azure ML batch runtime cannot exist here: its contract (init() once, run(list of
file paths) -> DataFrame, AZUREML_MODEL_DIR / AZUREML_BI_OUTPUT_PATH) is reproduced
by calling the driver the way the runtime does.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from model.core import schema
from model.serving import batch_score, lookup
from model.serving.client import EndpointClient, EndpointConfig
from model.synthetic import synth
from tests.conftest import REPO_ROOT
from tests.inprocess import run_main, run_ok

SAMPLE = 400


def _client(url: str) -> EndpointClient:
    return EndpointClient(EndpointConfig.from_sources(secrets=None, environ={"RISK_ENDPOINT_URL": url}))


def _read_strings(path: Path) -> pd.DataFrame:
    """A CSV exactly as written: every cell text, nothing turned into NaN."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _endpoint_results(url: str, rows: pd.DataFrame, columns: dict[str, str]) -> list[dict]:
    """Score the rows' raw input cells (race/ethnicity too when mapped) through the real endpoint client.

    A file's empty cell is the CDC's "Missing" (a request must say so)."""
    records = [{c: str(row[columns[c]]).strip() or schema.MISSING for c in columns} for _, row in rows.iterrows()]
    return _client(url).score(records).results


def _endpoint_probabilities(url: str, rows: pd.DataFrame, columns: dict[str, str]) -> np.ndarray:
    return np.array([r["probability"] for r in _endpoint_results(url, rows, columns)])


def test_legacy_file_scores_like_the_endpoint(
    legacy_cdc_file: Path, model_dir: Path, local_endpoint, tmp_path: Path
) -> None:
    out = tmp_path / "legacy.scored.parquet"
    proc = run_ok(
        "model.batch_score",
        "--data",
        str(legacy_cdc_file),
        "--out",
        str(out),
        "--model-dir",
        str(model_dir),
        "--json",
        "--quiet",
    )
    summary = json.loads(proc.stdout)
    assert summary["rows_read"] == 11_549
    assert summary["scored"] + summary["rejected"] == 11_549
    scored = pq.read_table(out).to_pandas()
    source = pd.read_csv(legacy_cdc_file, dtype=str, keep_default_na=False)
    assert len(scored) == summary["scored"]
    # The row number, then the original columns (old header spelling included) as read, in order.
    assert list(scored.columns) == [batch_score.ROW_COLUMN, *source.columns, *batch_score.OUTPUT_COLUMNS]
    joined = source.iloc[scored[batch_score.ROW_COLUMN].to_numpy() - 1].reset_index(drop=True)
    pd.testing.assert_frame_equal(scored[list(source.columns)], joined)  # each scored row joins back to its input
    if summary["rejected"] == 0:
        pd.testing.assert_frame_equal(scored[list(source.columns)], source)
    sample = scored.sample(n=SAMPLE, random_state=1)
    race = {schema.RACE: "Race and ethnicity (combined)"}  # the 2020 spelling of the column
    expected = _endpoint_probabilities(
        local_endpoint.scoring_url, sample, {**{c: c for c in schema.MODEL_INPUTS}, **race}
    )
    np.testing.assert_array_equal(sample["probability"].to_numpy(), expected)
    assert (sample["risk_band"].to_numpy() == lookup.risk_bands(expected)).all()
    assert (sample["flagged"].to_numpy() == (expected >= summary["threshold"])).all()


def test_generated_file_scores_like_the_endpoint(model_dir: Path, local_endpoint, tmp_path: Path) -> None:
    data = tmp_path / "generated.csv.gz"
    synth.write(data, rows=60_000, seed=31)
    out = tmp_path / "generated.scored.csv"
    proc = run_ok(
        "model.batch_score",
        "--data",
        str(data),
        "--out",
        str(out),
        "--model-dir",
        str(model_dir),
        "--threshold",
        "0.1",
        "--json",
    )
    summary = json.loads(proc.stdout)
    assert summary["rows_read"] == summary["scored"] == 60_000
    assert "rows/s" in proc.stderr  # progress for people
    scored = _read_strings(out)
    source = _read_strings(data)
    assert len(scored) == len(source)
    pd.testing.assert_frame_equal(scored[list(source.columns)], source)
    probability = scored["probability"].astype(float).to_numpy()
    assert math.isclose(probability.sum(), summary["expected_deaths"], rel_tol=1e-9)
    assert summary["flagged"] == int((probability >= 0.1).sum())
    sample = scored.sample(n=SAMPLE, random_state=2)
    # The generated file has a race column: the race-aware model scores it, as the endpoint does with race given.
    results = _endpoint_results(local_endpoint.scoring_url, sample, {c: c for c in schema.REQUEST_FIELDS})
    np.testing.assert_array_equal(sample["probability"].astype(float).to_numpy(), [r["probability"] for r in results])
    low = sample["probability_if_unrecorded_survived"].astype(float).to_numpy()
    np.testing.assert_array_equal(low, [r["probability_if_unrecorded_survived"] for r in results])
    assert (low <= sample["probability"].astype(float).to_numpy()).all()
    assert {r["model"] for r in results} <= {schema.INTAKE_RACE_MODEL, schema.IN_HOSPITAL_MODEL}
    # Every field of the scored file is the endpoint's answer: interval, model and the inputs it used.
    np.testing.assert_array_equal(sample["ci_low"].astype(float).to_numpy(), [r["interval"][0] for r in results])
    np.testing.assert_array_equal(sample["ci_high"].astype(float).to_numpy(), [r["interval"][1] for r in results])
    assert sample["model"].tolist() == [r["model"] for r in results]
    assert sample["inputs_used"].tolist() == [lookup.INPUTS_SEPARATOR.join(r["inputs_used"]) for r in results]
    assert set(scored["flag_rule"]) == {"probability >= 0.1"}  # the file says which end the flag uses, and where


def test_cli_in_process_writes_every_output_column_for_a_race_blind_file(model_dir: Path, tmp_path: Path) -> None:
    """A file without race: the race-blind intake model or the in-hospital one, named per row; the Parquet
    output keeps the repeated texts as dictionaries and every column a scored row promises."""
    data = tmp_path / "inputs.csv"
    data.write_text(BAD_ROWS)
    out = tmp_path / "inputs.scored.parquet"
    assert batch_score.main(["--data", str(data), "--out", str(out), "--model-dir", str(model_dir), "--quiet"]) == 0
    scored = pq.read_table(out)
    assert scored.column_names[-len(batch_score.OUTPUT_COLUMNS) :] == list(batch_score.OUTPUT_COLUMNS)
    rows = scored.to_pandas()
    risk = lookup.RiskLookup.from_model_dir(model_dir)
    records = [
        {c: v for c, v in zip(schema.MODEL_INPUTS, r, strict=True)} for r in rows[list(schema.MODEL_INPUTS)].values
    ]
    records = [{c: v.strip() or schema.MISSING for c, v in r.items()} for r in records]
    expected = risk.score_records(records)
    assert rows["model"].tolist() == [r["model"] for r in expected] == [schema.IN_HOSPITAL_MODEL, schema.INTAKE_MODEL]
    assert rows["inputs_used"].tolist() == [";".join(r["inputs_used"]) for r in expected]
    assert rows[["ci_low", "ci_high"]].values.tolist() == [r["interval"] for r in expected]
    assert rows["flag_rule"].tolist() == ["probability >= 0.05"] * 2
    assert (rows["ci_low"] <= rows["probability"]).all() and (rows["probability"] <= rows["ci_high"]).all()


BAD_ROWS = """age_group,sex,current_status,medcond_yn,hosp_yn,icu_yn,death_yn
80+ Years,Female,Laboratory-confirmed case,Yes,Yes,No,Yes
eighty,Female,Laboratory-confirmed case,Yes,Yes,No,No
 80+ years , male ,probable case,Unknown,,Missing,No
70 - 79 Years,Female,,Yes,Yes,Maybe,Missing
eighty,Male,Probable Case,No,No,No,No
"""


def test_unknown_categories_go_to_rejects_with_counts(model_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "mixed.csv"
    data.write_text(BAD_ROWS)
    out = tmp_path / "mixed.scored.parquet"
    proc = run_ok("model.batch_score", "--data", str(data), "--out", str(out), "--model-dir", str(model_dir))
    assert "rejected              3 rows" in proc.stdout
    rejects = pq.read_table(tmp_path / "mixed.scored.rejects.parquet").to_pandas()
    assert rejects[batch_score.ROW_COLUMN].tolist() == [2, 4, 5]
    assert rejects["age_group"].tolist() == ["eighty", "70 - 79 Years", "eighty"]
    reasons = rejects[batch_score.REASON_COLUMN].tolist()
    assert reasons[0].startswith("age_group: unknown value 'eighty'")
    assert "current_status: empty value" in reasons[1] and "icu_yn: unknown value 'Maybe'" in reasons[1]
    scored = pq.read_table(out).to_pandas()
    # Harmless spellings are forgiven and kept as written in the output.
    assert scored["age_group"].tolist() == ["80+ Years", " 80+ years "]
    assert len(scored) + len(rejects) == 5
    summary = batch_score.score_file(
        data,
        tmp_path / "again.csv",
        batch_score.lookup_scorer(lookup.RiskLookup.from_model_dir(model_dir)),
        threshold=0.05,
        model_version="x",
    )
    assert summary.rejected_by_reason[reasons[0]] == 2
    assert summary.scored == 2 and summary.rejected == 3


def test_clean_file_still_gets_an_empty_rejects_file(model_dir: Path, legacy_cdc_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    stale = tmp_path / "custom-rejects.csv"
    stale.write_text("left over from an earlier run\n")
    run_ok(
        "model.batch_score",
        "--data",
        str(legacy_cdc_file),
        "--out",
        str(out),
        "--model-dir",
        str(model_dir),
        "--rejects",
        str(stale),
        "--quiet",
    )
    lines = stale.read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith('"row_number"')


@pytest.mark.parametrize(
    ("content", "name", "expected"),
    [
        (b"%PDF-1.4 not data", "cases.csv", "not a CSV file"),
        (b"date,region\n2020-01-01,x\n", "cases.csv", "missing the model input column(s)"),
        (b"age_group,sex\n", "cases.parquet", "not a Parquet file"),
    ],
)
def test_bad_input_file_gives_a_clear_error(
    model_dir: Path, tmp_path: Path, content: bytes, name: str, expected: str
) -> None:
    data = tmp_path / name
    data.write_bytes(content)
    out = tmp_path / "out.csv"
    proc = run_main("model.batch_score", "--data", str(data), "--out", str(out), "--model-dir", str(model_dir))
    assert proc.returncode == 2
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_bad_output_name_is_refused_before_reading(model_dir: Path, legacy_cdc_file: Path, tmp_path: Path) -> None:
    args = ("--data", str(legacy_cdc_file), "--out", str(tmp_path / "out.xlsx"), "--model-dir", str(model_dir))
    proc = run_main("model.batch_score", *args)
    assert proc.returncode == 2 and ".csv.gz, .csv, .parquet" in proc.stderr


def test_batch_driver_rows_mode(
    model_dir: Path, legacy_cdc_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from model.serving import batch_driver

    # Azure mounts the registered folder one level down inside AZUREML_MODEL_DIR.
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(model_dir.parent))
    monkeypatch.delenv("RISK_BATCH_OUTPUT", raising=False)
    monkeypatch.delenv("RISK_BATCH_THRESHOLD", raising=False)
    bad = tmp_path / "mixed.csv"
    bad.write_text(BAD_ROWS)
    batch_driver.init()
    result = batch_driver.run([str(legacy_cdc_file), str(bad)])
    assert len(result) == 11_549 + 5
    mixed = result[result["file"] == "mixed.csv"]
    assert mixed[batch_score.ROW_COLUMN].tolist() == [1, 2, 3, 4, 5]
    assert mixed["probability"].isna().tolist() == [False, True, False, True, True]
    assert list(result.columns[-len(batch_score.OUTPUT_COLUMNS) - 1 : -1]) == list(batch_score.OUTPUT_COLUMNS)
    assert mixed["model"].isna().tolist() == [False, True, False, True, True]  # a reject has no model
    legacy = result[result["file"] == legacy_cdc_file.name]
    cli = tmp_path / "legacy.parquet"
    run_ok(
        "model.batch_score",
        "--data",
        str(legacy_cdc_file),
        "--out",
        str(cli),
        "--model-dir",
        str(model_dir),
        "--quiet",
    )
    np.testing.assert_array_equal(legacy["probability"].to_numpy(), pq.read_table(cli)["probability"].to_numpy())


def test_batch_driver_files_mode(
    model_dir: Path, legacy_cdc_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from model.serving import batch_driver

    output = tmp_path / "job-output"
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("RISK_BATCH_OUTPUT", "files")
    monkeypatch.setenv("AZUREML_BI_OUTPUT_PATH", str(output))
    monkeypatch.setenv("RISK_BATCH_THRESHOLD", "0.2")
    batch_driver.init()
    summary = batch_driver.run([str(legacy_cdc_file)])
    assert summary.to_dict("records")[0]["rows_read"] == 11_549
    stem = batch_driver.output_stem(legacy_cdc_file)
    assert stem.startswith("cdc_case_surveillance_extract_11549-")
    scored = pq.read_table(output / f"{stem}.scored.parquet").to_pandas()
    assert len(scored) + pq.read_metadata(output / f"{stem}.rejects.parquet").num_rows == 11_549
    assert (scored["flagged"] == (scored["probability"] >= 0.2)).all()


def test_docs_list_the_scored_file_columns_in_order() -> None:
    """docs/monitoring.md's table of the scored file's columns is OUTPUT_COLUMNS, in order."""
    docs = (REPO_ROOT / "docs" / "monitoring.md").read_text(encoding="utf-8")
    table = docs[docs.index("| column | what it is |") :].split("\n\n")[0]
    listed = [name.strip("` ") for line in table.splitlines()[2:] for name in line.split("|")[1].split(",")]
    assert listed == list(batch_score.OUTPUT_COLUMNS)
