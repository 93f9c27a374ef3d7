"""Drift and live-performance monitoring on generated files and on records collected by the real local endpoint."""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from deploy.local_endpoint import serve
from model.core import exit_codes, schema
from model.monitoring import monitor
from model.serving.client import EndpointClient, EndpointConfig
from model.stats import drift, performance
from model.synthetic import synth
from tests.conftest import FIXTURE_SEED, REAL_CDC_FILE, REPO_ROOT
from tests.inprocess import Ran, run_main

ROWS = 80_000


def _run(*args: str) -> Ran:
    """`python -m model.monitor args...`, its main in-process."""
    return run_main("model.monitor", *args)


def _monitor(*args: str) -> tuple[int, dict, str]:
    out = Path(args[args.index("--out") + 1])
    proc = _run(*args)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(out.read_text()), proc.stdout


# --- statistics ---------------------------------------------------------------------------------------------


def test_psi_js_and_g_test_known_values() -> None:
    assert drift.psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    # (0.7-0.5) ln(0.7/0.5) + (0.3-0.5) ln(0.3/0.5)
    assert drift.psi([0.5, 0.5], [0.7, 0.3]) == pytest.approx(0.2 * np.log(1.4) - 0.2 * np.log(0.6), rel=1e-3)
    assert drift.js_distance([1, 0], [0, 1]) == pytest.approx(1.0)
    assert drift.psi_status(0.05) == "stable" and drift.psi_status(0.15) == "moderate"
    assert drift.psi_status(0.25) == "major"
    with pytest.raises(ValueError, match="not in the schema"):
        drift.compare(("a", "b"), {"a": 1.0}, {"c": 1.0})
    with pytest.raises(ValueError, match="empty"):
        drift.psi([0, 0], [1, 1])
    # G = 2 * sum(O ln(O/E)): 60/40 observed against 50/50 expected.
    result = drift.g_test([0.5, 0.5], [60, 40])
    assert result["g"] == pytest.approx(2 * (60 * np.log(60 / 50) + 40 * np.log(40 / 50)))
    assert result["dof"] == 1 and 0.04 < result["p_value"] < 0.05
    # Categories expected below 5 rows are pooled, the pool with the next smallest while still under 5:
    # 100 rows over (0.90, 0.07, 0.01, 0.01, 0.01) are tested as 90 against 10 expected rows.
    pooled = drift.g_test([0.90, 0.07, 0.01, 0.01, 0.01], [88, 8, 2, 1, 1])
    assert pooled["dof"] == 1
    assert pooled["g"] == pytest.approx(2 * (88 * np.log(88 / 90) + 12 * np.log(12 / 10)), rel=1e-3)
    assert drift.holm({"a": 0.01, "b": 0.04, "c": 0.03}) == pytest.approx({"a": 0.03, "b": 0.06, "c": 0.06})


def test_holm_equals_its_definition_with_ties_and_the_cap_at_one() -> None:
    """Holm: the k-th smallest p-value becomes max over j <= k of min(1, (m - j + 1) p_(j)), written out here."""
    from statsmodels.stats.multitest import multipletests  # slow to import: only this test needs it

    rng = np.random.default_rng(5)
    for m in (1, 2, 5, 12):
        p = rng.uniform(0, 0.3, m)
        p[-1] = p[0]  # a tie
        ranks = np.argsort(np.argsort(p, kind="stable"), kind="stable")
        terms = np.minimum(1.0, (m - ranks) * p)
        expected = {f"t{i}": max(terms[j] for j in range(m) if p[j] <= p[i]) for i in range(m)}
        assert drift.holm({f"t{i}": p[i] for i in range(m)}) == pytest.approx(expected, rel=1e-12)
        # ... and equals statsmodels', which the product does not call (it runs gc.collect() each time).
        assert list(drift.holm({f"t{i}": p[i] for i in range(m)}).values()) == pytest.approx(
            multipletests(p, method="holm")[1], rel=1e-12
        )
    assert drift.holm({}) == {}


def test_a_tripled_small_category_is_not_stable() -> None:
    ages = schema.FEATURES_BY_NAME["age_group"].values
    reference = dict.fromkeys(ages, 0.0)
    reference.update({a: 0.97 / 8 for a in schema.AGE_GROUPS[:-1]} | {"80+ Years": 0.03})
    current = {a: s * 0.91 / 0.97 for a, s in reference.items()} | {"80+ Years": 0.09}
    counts = [current[a] * 3_000 for a in ages]
    result = drift.compare(ages, reference, current, counts=counts)
    assert result["psi"] < drift.PSI_MODERATE  # PSI alone calls this stable ...
    assert result["largest_change"]["value"] == "80+ Years" and result["largest_change"]["ratio"] == pytest.approx(3)
    assert drift.status(result["test"]["p_value"] < monitor.ALPHA, result["psi"], result["largest_change"]) == "major"


def test_performance_statistics_against_brute_force() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0.01, 0.6, 4_000)
    y = (rng.random(4_000) < p).astype(int)
    w = np.ones_like(p)
    oe = performance.observed_expected(y, p, w)
    assert oe["ratio"] == pytest.approx(y.sum() / p.sum())
    assert oe["ci_low"] < 1 < oe["ci_high"] and oe["p_value"] > 0.01
    # Aggregated weights give the same slope as one row per patient; a calibrated model has slope ~1.
    slope = performance.calibration_slope(y, p, w)
    assert abs(slope["slope"] - 1) < 3 * slope["se"] and slope["ci_high"] - slope["ci_low"] == pytest.approx(
        2 * 1.959964 * slope["se"]
    )
    from sklearn.linear_model import LogisticRegression

    x = np.log(p / (1 - p)).reshape(-1, 1)
    reference = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(x, y)
    assert slope["slope"] == pytest.approx(reference.coef_[0][0], rel=1e-5)
    doubled = performance.calibration_slope(y, p, w * 2)
    assert doubled["slope"] == pytest.approx(slope["slope"]) and doubled["se"] == pytest.approx(slope["se"] / 2**0.5)
    # Predictions twice as extreme on the logit scale: slope ~0.5, far off.
    extreme = 1 / (1 + np.exp(-2 * np.log(p / (1 - p))))
    assert performance.calibration_slope(y, extreme, w)["slope"] == pytest.approx(0.5, abs=0.1)
    auc = performance.roc_auc(y, p, w, reference=0.9)
    assert auc["ci_low"] < auc["roc_auc"] < auc["ci_high"] and auc["drop"] > 0 and auc["p_value"] < 0.01


def test_delong_on_aggregated_ties_equals_brute_force_and_a_bootstrap() -> None:
    """DeLong on weighted, tied scores = DeLong on one row per patient (pairwise), and close to a bootstrap SE."""
    rng = np.random.default_rng(3)
    p = rng.choice(np.linspace(0.02, 0.6, 25), 1_500)  # a finite feature space: many tied scores
    y = (rng.random(p.size) < p).astype(int)
    pos, neg = p[y == 1], p[y == 0]
    pairs = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = pairs.mean(axis=1), pairs.mean(axis=0)
    brute_se = np.sqrt(v10.var(ddof=1) / pos.size + v01.var(ddof=1) / neg.size)
    # The same patients aggregated per (score, outcome), as the monitor holds them.
    frame = pd.DataFrame({"p": p, "y": y}).value_counts().reset_index(name="w")
    auc, se = performance.delong(frame["y"].to_numpy(), frame["p"].to_numpy(), frame["w"].to_numpy(float))
    assert auc == pytest.approx(pairs.mean()) and se == pytest.approx(brute_se, rel=1e-9)
    draws = [performance.delong(y[i], p[i], np.ones(p.size))[0] for i in rng.integers(0, p.size, (300, p.size))]
    assert se == pytest.approx(np.std(draws, ddof=1), rel=0.2)


def test_observed_expected_interval_is_binomial_and_covers() -> None:
    """High risks: the binomial interval is narrower than Poisson's, and still covers the truth ~95% of the time."""
    rng = np.random.default_rng(4)
    p = rng.uniform(0.3, 0.7, 400)
    covered = 0
    for _ in range(400):
        y = (rng.random(p.size) < p).astype(int)
        oe = performance.observed_expected(y, p, np.ones(p.size))
        covered += oe["ci_low"] <= 1 <= oe["ci_high"]
    assert 0.92 <= covered / 400 <= 0.98, covered
    poisson_se_log = 1 / np.sqrt(p.sum())  # SE of ln(O/E) under Poisson at O = E
    assert oe["se_log"] < poisson_se_log / 1.3


# --- verdicts on generated files ------------------------------------------------------------------------------


def test_same_generator_other_seed_is_ok(synthetic_model_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "same.parquet"
    synth.write(data, rows=ROWS, seed=FIXTURE_SEED + 100)
    code, report, text = _monitor(
        "--reference", str(synthetic_model_dir), "--current", str(data), "--out", str(tmp_path / "r.json")
    )
    assert report["verdict"] == "ok", report["reasons"]
    assert code == 0
    assert "VERDICT: OK" in text and "family-wise alpha 0.01" in text
    assert set(report["features"]) == set(schema.MODEL_INPUTS)
    assert all(f["status"] in ("stable", "small") for f in report["features"].values())
    perf = report["performance"]
    assert perf["assessed"] and perf["verdict"] == "ok" and perf["reasons"] == []
    assert perf["observed_expected"]["ci_low"] < 1 < perf["observed_expected"]["ci_high"]
    assert report["current"]["drift_population"].startswith("rows with a known outcome")


def test_same_distribution_files_of_a_few_thousand_rows_rarely_alarm(synthetic_model_dir: Path, tmp_path: Path) -> None:
    """False-alarm rate over many same-distribution files (the benchmark runs 200 seeds per size)."""
    risk = monitor.load_model(synthetic_model_dir)
    verdicts: Counter[str] = Counter()
    for seed in range(2_000, 2_040):
        path = tmp_path / f"same-{seed}.parquet"
        synth.write(path, rows=3_000, seed=seed)
        verdicts[monitor.build_report(synthetic_model_dir, monitor.aggregate(path, risk), risk)["verdict"]] += 1
    alarms = sum(n for v, n in verdicts.items() if v not in ("ok", "insufficient data"))
    assert alarms <= 1, verdicts  # alpha is 1 %: ~0.4 expected in 40; the previous monitor gave 7-16 %
    assert verdicts["ok"] >= 35, verdicts


def test_tripled_80_plus_share_is_drift_not_stable(synthetic_model_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "old.csv"
    synth.write(data, rows=3_000, seed=FIXTURE_SEED + 150, age_shift={"80+ Years": 3.0})
    code, report, text = _monitor(
        "--reference", str(synthetic_model_dir), "--current", str(data), "--out", str(tmp_path / "r.json")
    )
    age = report["features"]["age_group"]
    assert age["status"] == "major" and age["largest_change"]["value"] == "80+ Years", age
    assert age["psi"] < drift.PSI_MAJOR  # PSI alone would not have called it major
    assert report["verdict"] == "drift" and code == 4
    assert any(r.startswith("age_group: major shift") for r in report["reasons"]), report["reasons"]
    assert "Collect outcomes" in report["action"] and "VERDICT: DRIFT" in text


def test_lower_fatality_with_the_same_ranking_says_recalibrate(synthetic_model_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "milder.parquet"
    synth.write(data, rows=ROWS, seed=FIXTURE_SEED + 200, death_rate_multiplier=0.5)
    code, report, text = _monitor(
        "--reference", str(synthetic_model_dir), "--current", str(data), "--out", str(tmp_path / "r.json")
    )
    perf = report["performance"]
    assert report["verdict"] == "recalibrate" and code == 5, report["reasons"]
    assert perf["observed_expected"]["ci_high"] < 1 / monitor.OE_MATERIAL
    low, high = monitor.SLOPE_NEAR
    assert low <= perf["calibration_slope"]["slope"] <= high
    assert any("calibration-in-the-large" in r for r in report["reasons"])
    assert "python -m model.recalibrate" in report["action"] and "observed/expected deaths 0." in text


def test_first_wave_patients_against_a_2020_2022_model_say_recalibrate(
    synthetic_model_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "first-wave.csv"
    synth.write(data, rows=30_000, seed=FIXTURE_SEED + 250, months=("2020-03", "2020-05"), variant="first-wave")
    code, report, _ = _monitor(
        "--reference", str(synthetic_model_dir), "--current", str(data), "--out", str(tmp_path / "r.json")
    )
    oe = report["performance"]["observed_expected"]
    assert oe["ci_low"] > 2, oe  # first-wave fatality is several-fold the 2020-2022 average
    assert report["verdict"] in ("recalibrate", "retrain") and code in (5, 6), report["reasons"]
    # The older first-wave case mix is seen too, as context.
    assert report["features"]["age_group"]["status"] in ("moderate", "major")


def test_lost_ranking_says_retrain(synthetic_model_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "source.parquet"
    synth.write(source, rows=ROWS, seed=FIXTURE_SEED + 300)
    table = pq.read_table(source).to_pandas()
    known = table[schema.TARGET].isin(["Yes", "No"]).to_numpy()
    # Outcomes shuffled among patients with a known outcome: same death rate, no relation to the inputs.
    table.loc[known, schema.TARGET] = np.random.default_rng(1).permutation(table.loc[known, schema.TARGET].to_numpy())
    shuffled = tmp_path / "shuffled.parquet"
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), shuffled)
    code, report, _ = _monitor(
        "--reference", str(synthetic_model_dir), "--current", str(shuffled), "--out", str(tmp_path / "r.json")
    )
    assert report["verdict"] == "retrain" and code == 6
    # No ranking left: the slope is near 0, so even the ROC-AUC expected from it is near 0.5.
    assert any(
        r.startswith("intake model: calibration slope") and "ranking carries little" in r for r in report["reasons"]
    ), report["reasons"]
    assert report["performance"]["roc_auc"]["ci_high"] < 0.6


def test_outcomes_file_gives_live_performance(synthetic_model_dir: Path, tmp_path: Path) -> None:
    inputs_only = tmp_path / "inputs.csv"
    labelled = tmp_path / "labelled.csv"
    synth.write(labelled, rows=ROWS, seed=FIXTURE_SEED + 300, death_rate_multiplier=2.0)
    pd.read_csv(labelled, dtype=str, keep_default_na=False)[list(schema.MODEL_INPUTS)].to_csv(inputs_only, index=False)
    code, without, _ = _monitor(
        "--reference", str(synthetic_model_dir), "--current", str(inputs_only), "--out", str(tmp_path / "a.json")
    )
    assert without["performance"] is None and without["verdict"] == "ok" and code == 0
    # Without outcomes, all rows are compared; the hospital/condition fields are not judged against a
    # known-outcome reference (they differ whatever happens), and the report says so.
    assert without["current"]["drift_population"].startswith("all rows")
    assert without["features"]["hosp_yn"]["status"] == "not compared"
    assert any("not judged" in w for w in without["warnings"])
    _, report, _ = _monitor(
        "--reference",
        str(synthetic_model_dir),
        "--current",
        str(inputs_only),
        "--outcomes",
        str(labelled),
        "--out",
        str(tmp_path / "b.json"),
    )
    perf = report["performance"]
    assert perf["assessed"] and perf["live"]["roc_auc"] is not None and perf["reference"]["roc_auc"] is not None
    assert perf["observed_expected"]["ci_low"] > monitor.OE_MATERIAL
    assert report["verdict"] in ("recalibrate", "retrain")


def test_small_sample_gives_no_drift_verdict(synthetic_model_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "tiny.csv"
    synth.write(data, rows=200, seed=5, age_shift={"80+ Years": 20.0})
    code, report, _ = _monitor(
        "--reference", str(synthetic_model_dir), "--current", str(data), "--out", str(tmp_path / "r.json")
    )
    assert report["verdict"] == "insufficient data"
    assert code == 3
    assert report["reasons"] == []
    assert any("no drift verdict" in w for w in report["warnings"])


def test_log_written_by_the_real_endpoint_is_read_back(synthetic_model_dir: Path, tmp_path: Path) -> None:
    collected = tmp_path / "collected"
    data = tmp_path / "requests.csv"
    synth.write(data, rows=3_000, seed=77)
    frame = pd.read_csv(data, dtype=str, keep_default_na=False)[list(schema.MODEL_INPUTS)]
    frame = frame.replace({"": schema.MISSING})
    records = frame.to_dict("records")
    with serve(synthetic_model_dir, env={"RISK_DATA_COLLECTION_DIR": str(collected)}, workers=1) as endpoint:
        client = EndpointClient(
            EndpointConfig.from_sources(secrets=None, environ={"RISK_ENDPOINT_URL": endpoint.scoring_url})
        )
        for start in range(0, len(records), 1_000):
            client.score(records[start : start + 1_000])
        deadline = time.monotonic() + 30  # the writer thread flushes off the request path
        while time.monotonic() < deadline:
            lines = sum(len(p.read_text().splitlines()) for p in collected.glob("scored-*.jsonl*"))
            if lines >= len(records):
                break
            time.sleep(0.2)
    code, report, _ = _monitor(
        "--reference", str(synthetic_model_dir), "--current", str(collected), "--out", str(tmp_path / "r.json")
    )
    current = report["current"]
    assert current["kind"] == "collected"
    assert current["rows_used"] == len(records) and current["rows_skipped"] == {}
    # Same generator as the training data: no alarm.
    assert report["verdict"] == "ok" and code == 0, report["reasons"]
    # The shares the monitor read back are the shares of what was sent.
    sent = frame["age_group"].value_counts(normalize=True)
    for value, share in report["features"]["age_group"]["current"].items():
        assert share == pytest.approx(float(sent.get(value, 0.0)), abs=1e-9)


def test_library_call_matches_cli(synthetic_model_dir: Path, legacy_cdc_file: Path) -> None:
    report = monitor.monitor(synthetic_model_dir, legacy_cdc_file)
    assert report["current"]["rows_read"] == 11_549
    # The real extract holds only two age groups: a massive shift, said as such.
    assert report["features"]["age_group"]["status"] == "major"
    assert report["verdict"] == "drift"


# --- real CDC data -------------------------------------------------------------------------------------------


def test_training_file_itself_is_ok_with_observed_expected_near_one(model_dir: Path) -> None:
    """The default model on its own training file: same population rule, each model on its own rows."""
    report = monitor.monitor(model_dir, REAL_CDC_FILE)
    assert report["verdict"] == "ok", report["reasons"]
    assert report["current"]["excluded_outside_intake_population"] > 2_000  # death-certificate cases left out
    for name, perf in report["performance"]["models"].items():
        assert perf["assessed"], name
        assert 0.98 <= perf["observed_expected"]["ratio"] <= 1.02, (name, perf["observed_expected"])
        assert abs(perf["roc_auc"]["roc_auc"] - perf["reference"]["roc_auc"]) < 0.01, name
    # No input "drifts" from the file it was trained on (before: p < 1e-12 for every input).
    assert all(f["p_adjusted"] > 0.5 for f in report["features"].values()), report["features"]


def test_later_real_cases_say_recalibrate_or_retrain(model_dir: Path, tmp_path: Path) -> None:
    """Real cases from June 2020 on (same extract) against the first-wave model: not ok."""
    frame = pd.read_csv(REAL_CDC_FILE, dtype=str, keep_default_na=False)
    columns = ("cdc_report_dt", "pos_spec_dt", "onset_dt")  # the loader's case date: the earliest of them
    dates = [pd.to_datetime(frame[c], format="%m/%d/%Y", errors="coerce") for c in columns]
    later = tmp_path / "later.csv"
    frame[pd.concat(dates, axis=1).min(axis=1) >= "2020-06-01"].to_csv(later, index=False)
    code, report, text = _monitor("--reference", str(model_dir), "--current", str(later), "--out", str(tmp_path / "r"))
    assert report["verdict"] in ("recalibrate", "retrain") and code in (5, 6), report["reasons"]
    intake = report["performance"]["models"]["intake"]
    assert intake["observed_expected"]["ci_low"] > 1.2  # later patients died more often than predicted
    assert "intake: " in text and "(DeLong)" in text


def test_a_flatter_slope_with_ranking_intact_says_recalibrate_not_retrain(
    synthetic_model_dir: Path, tmp_path: Path
) -> None:
    """True calibration slope 0.7 (the model's risks too extreme) and unchanged ranking: recalibrate fits it.

    Before, a slope outside [0.8, 1.25] gave "retrain" in 78-100% of such runs.
    """
    source = tmp_path / "source.parquet"
    synth.write(source, rows=ROWS, seed=FIXTURE_SEED + 400)
    table = pq.read_table(source).to_pandas()
    risk = monitor.load_model(synthetic_model_dir)
    p = risk.probabilities(table[list(schema.MODEL_INPUTS)].replace({"": schema.MISSING}))
    lp = np.log(p / (1 - p))
    known = table[schema.TARGET].isin(["Yes", "No"]).to_numpy()
    truth = 1 / (1 + np.exp(-(-0.6 + 0.7 * lp)))
    died = np.random.default_rng(2).random(len(table)) < truth
    table.loc[known, schema.TARGET] = np.where(died[known], "Yes", "No")
    flatter = tmp_path / "flatter.parquet"
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), flatter)
    code, report, _ = _monitor(
        "--reference", str(synthetic_model_dir), "--current", str(flatter), "--out", str(tmp_path / "r.json")
    )
    slope = report["performance"]["models"]["intake"]["calibration_slope"]
    assert slope["ci_high"] < monitor.SLOPE_NEAR[0], slope
    assert report["verdict"] == "recalibrate" and code == 5, report["reasons"]
    assert any("logistic recalibration refits the slope" in r for r in report["reasons"])


# --- errors never look like verdicts ------------------------------------------------------------------------


def _assert_one_line_error(proc: Ran, code: int, text: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert proc.returncode not in monitor.EXIT_CODES.values()
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert text in proc.stderr and proc.stdout == ""


def test_exit_codes_of_verdicts_and_errors_are_distinct() -> None:
    codes = list(monitor.EXIT_CODES.values())
    assert len(set(codes)) == len(codes)
    assert {exit_codes.INTERNAL_ERROR, exit_codes.BAD_INPUT}.isdisjoint(codes)
    assert 1 not in codes  # what Python itself exits with on an uncaught exception
    docs = (REPO_ROOT / "docs" / "monitoring.md").read_text(encoding="utf-8")
    for verdict, code in monitor.EXIT_CODES.items():
        assert f"| {code} | {verdict} |" in docs


def test_monitor_reports_missing_log_folder(synthetic_model_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    _assert_one_line_error(
        _run("--reference", str(synthetic_model_dir), "--current", str(empty)), 2, "no collected records"
    )


def test_parquet_with_a_list_column_is_a_data_error(synthetic_model_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "ok.parquet"
    synth.write(source, rows=100, seed=1)
    table = pq.read_table(source)
    bad = table.set_column(table.schema.get_field_index("sex"), "sex", pa.array([["Female"]] * table.num_rows))
    path = tmp_path / "list.parquet"
    pq.write_table(bad, path)
    _assert_one_line_error(_run("--reference", str(synthetic_model_dir), "--current", str(path)), 2, "monitor: error:")


def test_collected_record_with_an_object_value_is_skipped_not_a_crash(
    synthetic_model_dir: Path, tmp_path: Path
) -> None:
    collected = tmp_path / "collected"
    collected.mkdir()
    good = {c: schema.FEATURES_BY_NAME[c].default for c in schema.MODEL_INPUTS}
    lines = [json.dumps(good)] * 5 + [json.dumps({**good, "sex": {"nested": "object"}})]
    (collected / "scored-host-1.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = _run("--reference", str(synthetic_model_dir), "--current", str(collected), "--out", str(tmp_path / "r.json"))
    assert proc.returncode == 3 and "Traceback" not in proc.stderr, proc.stderr  # 5 rows: insufficient data
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["current"]["rows_used"] == 5 and sum(report["current"]["rows_skipped"].values()) == 1


def test_broken_model_directory_is_an_error_not_a_verdict(synthetic_model_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    synth.write(data, rows=2_000, seed=3)
    _assert_one_line_error(_run("--reference", str(tmp_path / "no-model"), "--current", str(data)), 2, "No model")
    broken = tmp_path / "broken"
    shutil.copytree(synthetic_model_dir, broken)
    (broken / "training_distribution.json").write_text("{not json", encoding="utf-8")
    _assert_one_line_error(_run("--reference", str(broken), "--current", str(data)), 2, "monitor: error:")
    # A reference of the wrong shape is a crash inside the monitor: exit 70 with one line, never a verdict.
    (broken / "training_distribution.json").write_text(json.dumps({"features": ["age_group"]}), encoding="utf-8")
    crashed = _run("--reference", str(broken), "--current", str(data))
    _assert_one_line_error(crashed, exit_codes.INTERNAL_ERROR, "model.monitoring.monitor: internal error")


# --- requests that left inputs out ("not known", issue 19) ---------------------------------------------------

LEFT_OUT_PLAN = (  # (inputs left out, share of the requests): as a clerk's form sends them
    ((), 0.4),
    (("sex",), 0.15),
    (("medcond_yn", "current_status"), 0.15),
    (("hosp_yn", "icu_yn"), 0.15),
    (("sex", "medcond_yn"), 0.15),  # some keep both hospital answers: the in-hospital model's sub-models
)


def _requests_leaving_inputs_out(rows: int) -> tuple[list[dict[str, str]], list[str]]:
    """Real first-wave patients with a recorded outcome, as requests leaving inputs out per LEFT_OUT_PLAN."""
    columns = [*schema.MODEL_INPUTS, schema.TARGET]
    frame = pd.read_csv(REAL_CDC_FILE, dtype=str, keep_default_na=False, usecols=columns)
    frame = frame[frame[schema.TARGET].isin(["Yes", "No"])].sample(rows, random_state=3)
    inputs = frame[list(schema.MODEL_INPUTS)].replace({"": schema.MISSING})
    plan = np.random.default_rng(5).choice(len(LEFT_OUT_PLAN), size=rows, p=[s for _, s in LEFT_OUT_PLAN])
    records = [
        {c: v for c, v in record.items() if c not in LEFT_OUT_PLAN[k][0]}
        for record, k in zip(inputs.to_dict("records"), plan, strict=True)
    ]
    return records, frame[schema.TARGET].tolist()


def _collect(model_dir: Path, folder: Path, records: list[dict[str, str]]) -> list[float]:
    """Score `records` on a real endpoint collecting into `folder`, in requests of 1,000; wait until every row is
    on disk. Returns the intake model's own answer for each record (asked as probes, which are not collected)."""
    with serve(model_dir, env={"RISK_DATA_COLLECTION_DIR": str(folder)}, workers=1) as endpoint:
        client = EndpointClient(
            EndpointConfig.from_sources(secrets=None, environ={"RISK_ENDPOINT_URL": endpoint.scoring_url})
        )
        for start in range(0, len(records), 1_000):
            client.score(records[start : start + 1_000])
        deadline = time.monotonic() + 30  # the writer thread flushes off the request path
        while sum(len(p.read_text().splitlines()) for p in folder.glob("scored-*.jsonl*")) < len(records):
            assert time.monotonic() < deadline, "the endpoint did not collect every record"
            time.sleep(0.2)
        probes = [{c: v for c, v in r.items() if c not in schema.HOSPITAL_FIELDS} for r in records]
        intake = [  # the intake model's own answer for each record (probes are scored, never collected)
            float(a["probability"])
            for start in range(0, len(probes), 1_000)
            for a in client.score(probes[start : start + 1_000], traffic=schema.PROBE).results
        ]
    return intake


def _linked(rows: list[dict], records: list[dict[str, str]], outcomes: list[str]) -> list[tuple[dict, str]]:
    """Each collected row with the outcome of the record it came from: a request's rows (by `record_index`) are
    matched to the request of 1,000 records they repeat (the workers' files do not keep the sending order)."""
    by_request: dict[str, list[dict]] = {}
    for row in rows:
        by_request.setdefault(row["request_id"], []).append(row)
    chunks = {
        tuple(tuple(r.get(c) for c in schema.MODEL_INPUTS) for r in records[start : start + 1_000]): start
        for start in range(0, len(records), 1_000)
    }
    out = []
    for request in by_request.values():
        request.sort(key=lambda r: r["record_index"])
        start = chunks[tuple(tuple(r[c] for c in schema.MODEL_INPUTS) for r in request)]
        out += [(row, outcomes[start + row["record_index"]]) for row in request]
    return out


def test_collected_requests_that_left_inputs_out(model_dir: Path, tmp_path: Path) -> None:
    """Collected rows hold null for inputs a request left out. The monitor counts them as left out (not as the
    CDC's "Missing", not skipped), scores them as the endpoint did and judges each model on the rows it scored."""
    records, outcomes = _requests_leaving_inputs_out(6_000)
    collected = tmp_path / "collected"
    intake_probability = _collect(model_dir, collected, records)
    rows = [json.loads(line) for p in sorted(collected.glob("scored-*.jsonl*")) for line in p.read_text().splitlines()]
    assert any(row["sex"] is None for row in rows), "the endpoint records a left-out input as null"

    # Outcomes linked to the collected rows afterwards (by request and position), as an operator would.
    linked = tmp_path / "linked"
    linked.mkdir()
    lines = [json.dumps({**row, schema.TARGET: death}) for row, death in _linked(rows, records, outcomes)]
    (linked / "scored-linked.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")

    _, report, text = _monitor(
        "--reference", str(model_dir), "--current", str(collected), "--out", str(tmp_path / "a.json")
    )
    current = report["current"]
    assert current["rows_used"] == len(records) and current["rows_skipped"] == {}, current["rows_skipped"]
    sent = pd.DataFrame(records)
    left_out = {c: int(sent[c].isna().sum()) for c in schema.MODEL_INPUTS}
    assert current["left_out"] == left_out and "rows that left inputs out (not known): sex" in text
    for column in ("sex", "medcond_yn", "hosp_yn"):
        feature = report["features"][column]
        assert feature["left_out"] == left_out[column], column
        given = sent[column].dropna().value_counts(normalize=True)
        for value, share in feature["current"].items():
            assert share == pytest.approx(float(given.get(value, 0.0)), abs=1e-9), (column, value)
    # Sub-model answers average over what was left out: the report says how many rows that concerns (an intake
    # request without the hospital fields is the intake model's own answer, not an average).
    averaged = int(sent[["sex", "current_status", "medcond_yn"]].isna().any(axis=1).sum())
    assert any(w.startswith(f"{averaged:,} compared rows left out inputs of the model") for w in report["warnings"])
    # Scored as the endpoint did: the predicted-risk mean is the mean of what the endpoint returned.
    returned = np.mean([row["probability"] for row in rows])
    assert report["predicted_risk"]["mean_current"] == pytest.approx(returned, rel=1e-9)

    _, report, _ = _monitor("--reference", str(model_dir), "--current", str(linked), "--out", str(tmp_path / "b.json"))
    models = report["performance"]["models"]
    death = np.array(outcomes) == "Yes"
    full = sent.notna().all(axis=1).to_numpy()
    hospital = sent[list(schema.HOSPITAL_FIELDS)].isin(schema.HOSPITAL_KNOWN_VALUES).all(axis=1).to_numpy()
    # Intake model: every full record with its own table, and the rows it scored itself (sub-models included).
    in_intake = full | ~hospital
    assert models["intake"]["patients"] == in_intake.sum() and models["intake"]["deaths"] == death[in_intake].sum()
    expected = float(np.sum(np.array(intake_probability)[in_intake]))
    assert models["intake"]["observed_expected"]["expected"] == pytest.approx(expected, rel=1e-9)
    # In-hospital model: the rows with both hospital answers, whatever else they left out, at what it returned.
    assert models["in_hospital"]["patients"] == hospital.sum()
    assert models["in_hospital"]["deaths"] == death[hospital].sum()
    known = schema.HOSPITAL_KNOWN_VALUES
    in_hospital = sum(r["probability"] for r in rows if r["hosp_yn"] in known and r["icu_yn"] in known)
    assert models["in_hospital"]["observed_expected"]["expected"] == pytest.approx(in_hospital, rel=1e-9)
