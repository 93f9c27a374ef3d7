"""Tests of the synthetic data generator (model/synth.py).

Files are produced by the real CLI in a subprocess and read back with pyarrow,
then compared with the calibration tables the generator exposes.
"""

from __future__ import annotations

import csv
import gzip
import itertools
import math
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from model import schema, synth
from tests.conftest import REPO_ROOT, run_module

ROWS = 200_000
SEED = 11
KNOWN = (schema.TARGET_POSITIVE, schema.TARGET_NEGATIVE)
DATE_RE = re.compile(r"^\d{4}/\d{2}/\d{2}$")


def read_frame(path: Path) -> pd.DataFrame:
    """Read a generated file keeping every cell as the exact string written ("" for blanks)."""
    if path.suffix == ".parquet":
        table = pq.read_table(path)
    else:
        types = {name: pa.string() for name in schema.CURRENT_SCHEMA_COLUMNS}
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types))
    return table.to_pandas().fillna("")


def assert_share(hits: int, n: int, expected: float, what: str) -> None:
    """Binomial tolerance: 4.5 standard errors plus one count (so tiny expected shares are testable)."""
    assert n > 0, f"no rows for {what}"
    tolerance = 4.5 * math.sqrt(expected * (1 - expected) / n) + 1 / n
    observed = hits / n
    assert abs(observed - expected) <= tolerance, (
        f"{what}: observed {observed:.5f} ({hits}/{n}), expected {expected:.5f} ± {tolerance:.5f}"
    )


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI without failing on a non-zero exit (for the bad-argument tests)."""
    return subprocess.run(
        [sys.executable, "-m", "model.synth", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("synth") / "cases.csv"
    proc = run_module("model.synth", "--rows", str(ROWS), "--seed", str(SEED), "--out", str(path))
    return path, proc.stderr


@pytest.fixture(scope="module")
def frame(generated: tuple[Path, str]) -> pd.DataFrame:
    return read_frame(generated[0])


@pytest.fixture(scope="module")
def known(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame[schema.TARGET].isin(KNOWN)]


def test_columns_order_and_dates_follow_current_schema(generated: tuple[Path, str], frame: pd.DataFrame) -> None:
    with generated[0].open(newline="") as handle:
        header = next(csv.reader(handle))
    assert tuple(header) == schema.CURRENT_SCHEMA_COLUMNS
    assert len(frame) == ROWS
    for column in schema.DATE_COLUMNS:
        cells = frame[column]
        present = cells[cells != ""]
        assert present.str.match(DATE_RE).all(), f"{column} has cells not in YYYY/MM/DD: {present.head().tolist()}"
        pd.to_datetime(present, format="%Y/%m/%d")  # raises on impossible dates such as 2021/02/30
        blank_share = 1 - len(present) / len(cells)
        expected = synth.DATE_BLANK_SHARE.get(column, 0.0)
        assert_share(int((cells == "").sum()), len(cells), expected, f"blank {column}")
        assert blank_share < 1
    earliest = pd.to_datetime(frame["cdc_case_earliest_dt"], format="%Y/%m/%d")
    for column in ("cdc_report_dt", "pos_spec_dt", "onset_dt"):
        other = pd.to_datetime(frame[column].replace("", None), format="%Y/%m/%d")
        assert (earliest <= other).where(other.notna(), True).all(), f"cdc_case_earliest_dt after {column}"
    assert earliest.min() >= pd.Timestamp("2020-01-01") and earliest.max() <= pd.Timestamp("2023-03-01")


def test_every_value_is_allowed_by_the_schema(frame: pd.DataFrame) -> None:
    for column in schema.CURRENT_SCHEMA_COLUMNS:
        if column in schema.DATE_COLUMNS:
            continue
        allowed = schema.TARGET_VALUES if column == schema.TARGET else schema.FEATURES_BY_NAME[column].values
        bad = set(frame[column].unique()) - set(allowed)
        assert not bad, f"{column} has values outside the schema: {sorted(bad)}"
    # ICU implies hospitalised whenever both are reported.
    assert not ((frame["icu_yn"] == "Yes") & (frame["hosp_yn"] == "No")).any()


def test_progress_is_reported_on_stderr(generated: tuple[Path, str]) -> None:
    stderr = generated[1]
    assert f"{ROWS:,}/{ROWS:,} rows" in stderr and "elapsed" in stderr
    assert f"wrote {ROWS:,} rows" in stderr


def test_same_seed_same_bytes_other_seed_different(generated: tuple[Path, str], tmp_path: Path) -> None:
    again, other = tmp_path / "again.csv", tmp_path / "other.csv"
    run_module("model.synth", "--rows", str(ROWS), "--seed", str(SEED), "--out", str(again))
    run_module("model.synth", "--rows", str(ROWS), "--seed", str(SEED + 1), "--out", str(other))
    assert again.read_bytes() == generated[0].read_bytes()
    assert other.read_bytes() != generated[0].read_bytes()


def test_output_does_not_depend_on_chunk_size_and_is_a_prefix() -> None:
    rows = 2 * synth.BLOCK_ROWS + 1234  # spans block boundaries
    big = pa.Table.from_batches(list(synth.generate_batches(rows, 5)))
    small = pa.Table.from_batches(list(synth.generate_batches(rows, 5, chunk_rows=7_777)))
    assert big.num_rows == small.num_rows == rows
    assert small.equals(big)
    assert pa.Table.from_batches(list(synth.generate_batches(1000, 5))).equals(big.slice(0, 1000))


def test_death_share_by_age_matches_calibration_and_rises_with_age(known: pd.DataFrame) -> None:
    shares = []
    for age, expected in synth.DEATH_SHARE_BY_AGE.items():
        group = known[known["age_group"] == age]
        deaths = int((group[schema.TARGET] == schema.TARGET_POSITIVE).sum())
        assert_share(deaths, len(group), expected, f"death share, {age}")
        shares.append(deaths / len(group))
    assert list(synth.DEATH_SHARE_BY_AGE.values()) == sorted(synth.DEATH_SHARE_BY_AGE.values())
    # From 30 up there are enough deaths in 200k rows for the observed gradient to be strict.
    assert all(a < b for a, b in itertools.pairwise(shares[3:])), shares
    assert max(shares[:3]) < shares[4]
    assert synth.DEATH_SHARE_BY_AGE["80+ Years"] / synth.DEATH_SHARE_BY_AGE["0 - 9 Years"] > 100


def test_overall_death_share_is_a_few_percent(known: pd.DataFrame) -> None:
    deaths = int((known[schema.TARGET] == schema.TARGET_POSITIVE).sum())
    assert 0.01 <= deaths / len(known) <= 0.03
    assert_share(deaths, len(known), synth.expected_death_share(), "overall death share")


def test_mixes_and_clinical_shares_match_tables(frame: pd.DataFrame) -> None:
    n = len(frame)
    ages = frame[frame["age_group"].isin(schema.AGE_GROUPS)]
    for age, share in synth.AGE_MIX.items():
        assert_share(int((ages["age_group"] == age).sum()), len(ages), share, f"age mix, {age}")
    for value, share in synth.RACE_MIX.items():
        assert_share(int((frame["race_ethnicity_combined"] == value).sum()), n, share, f"race mix, {value}")
    for value, share in synth.CURRENT_STATUS_MIX.items():
        assert_share(int((frame["current_status"] == value).sum()), n, share, f"status, {value}")
    male = frame["sex"].isin(["Male", "Female"])
    assert_share(int((frame["sex"] == "Male").sum()), int(male.sum()), synth.MALE_SHARE, "male share")
    # Reporting gaps are independent of the truth, so shares among reported rows are unbiased.
    for age in schema.AGE_GROUPS:
        group = frame[frame["age_group"] == age]
        hosp = group[group["hosp_yn"].isin(KNOWN)]
        assert_share(int((hosp["hosp_yn"] == "Yes").sum()), len(hosp), synth.HOSP_SHARE_BY_AGE[age], f"hosp {age}")
        med = group[group["medcond_yn"].isin(KNOWN)]
        assert_share(
            int((med["medcond_yn"] == "Yes").sum()), len(med), synth.MEDCOND_SHARE_BY_AGE[age], f"medcond {age}"
        )
    icu = frame[(frame["hosp_yn"] == "Yes") & frame["icu_yn"].isin(KNOWN) & frame["age_group"].isin(schema.AGE_GROUPS)]
    # Pooled over ages, weighted by each age's share of hospitalised rows.
    expected = sum(
        synth.ICU_SHARE_OF_HOSP_BY_AGE[a] * (icu["age_group"] == a).sum() / len(icu) for a in schema.AGE_GROUPS
    )
    assert_share(int((icu["icu_yn"] == "Yes").sum()), len(icu), float(expected), "ICU among hospitalised")


def test_missing_and_unknown_shares_are_large_as_configured(frame: pd.DataFrame) -> None:
    for column, gaps in synth.REPORTING_GAPS.items():
        for value, share in gaps.items():
            assert_share(int((frame[column] == value).sum()), len(frame), share, f"{column}={value}")
    # The requirement the table encodes: outcomes are mostly unreported, as in the real file.
    assert 0.4 <= sum(synth.REPORTING_GAPS["death_yn"].values()) <= 0.6
    for column in ("hosp_yn", "icu_yn", "medcond_yn"):
        assert sum(synth.REPORTING_GAPS[column].values()) > 0.5
    # Gaps cluster in rows (poor-reporting sources): a missing death_yn makes a missing hosp_yn likelier.
    death_gap = frame["death_yn"].isin(schema.TARGET_UNKNOWN_VALUES)
    hosp_gap = frame["hosp_yn"].isin(schema.TARGET_UNKNOWN_VALUES)
    assert hosp_gap[death_gap].mean() > hosp_gap[~death_gap].mean() + 0.1


def test_death_rises_with_hosp_icu_medcond_and_male_sex(known: pd.DataFrame) -> None:
    def rate(mask: pd.Series) -> float:
        return float((known.loc[mask, schema.TARGET] == schema.TARGET_POSITIVE).mean())

    assert rate(known["icu_yn"] == "Yes") > rate(known["hosp_yn"] == "Yes") > 3 * rate(known["hosp_yn"] == "No")
    assert rate(known["medcond_yn"] == "Yes") > 2 * rate(known["medcond_yn"] == "No")
    assert rate(known["sex"] == "Male") > 1.2 * rate(known["sex"] == "Female")


@pytest.mark.parametrize("name", ["cases.csv.gz", "cases.parquet"])
def test_compressed_and_parquet_outputs_read_back_identically(
    name: str, generated: tuple[Path, str], frame: pd.DataFrame, tmp_path: Path
) -> None:
    out = tmp_path / name
    run_module("model.synth", "--rows", str(ROWS), "--seed", str(SEED), "--out", str(out))
    if name.endswith(".gz"):
        assert gzip.decompress(out.read_bytes()) == generated[0].read_bytes()
    else:
        assert pq.read_schema(out).names == list(schema.CURRENT_SCHEMA_COLUMNS)
    again = read_frame(out)
    pd.testing.assert_frame_equal(again, frame)
    assert not list(tmp_path.glob(".*partial")), "temporary file left behind"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rows", "0"], "--rows must be a positive integer"),
        (["--rows", "-5"], "--rows must be a positive integer"),
        (["--rows", "ten"], "invalid int value"),
        (["--rows", "10", "--seed", "-1"], "--seed must be >= 0"),
        (["--rows", "10", "--age-shift", "90+ Years=2"], "not an age group"),
        (["--rows", "10", "--age-shift", "80+ Years"], "expected GROUP=FACTOR"),
        (["--rows", "10", "--death-rate-multiplier", "0"], "death_rate_multiplier must be"),
    ],
)
def test_bad_cli_arguments_exit_non_zero_with_a_clear_message(args: list[str], message: str, tmp_path: Path) -> None:
    out = tmp_path / "x.csv"
    proc = cli(*args, "--out", str(out))
    assert proc.returncode != 0
    assert message in proc.stderr
    assert not out.exists()


@pytest.mark.parametrize("name", ["cases.txt", "cases.csv.bz2", ".csv"])
def test_unknown_extension_is_rejected(name: str, tmp_path: Path) -> None:
    proc = cli("--rows", "10", "--seed", "1", "--out", str(tmp_path / name))
    assert proc.returncode != 0
    assert "must end in .csv.gz, .csv, .parquet" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_library_rejects_bad_arguments_clearly() -> None:
    with pytest.raises(ValueError, match="rows must be an integer >= 1"):
        next(synth.generate_batches(0, 1))
    with pytest.raises(ValueError, match="age_shift"):
        next(synth.generate_batches(10, 1, age_shift={"80+ Years": -1.0}))
    with pytest.raises(ValueError, match="output format"):
        synth.write("/tmp/never-written.xlsx", 10, 1)


def _summary(table: pa.Table) -> tuple[float, float]:
    df = table.select(["age_group", schema.TARGET]).to_pandas()
    known = df[df[schema.TARGET].isin(KNOWN)]
    return float((df["age_group"] == "80+ Years").mean()), float((known[schema.TARGET] == "Yes").mean())


def test_shift_parameters_shift_age_mix_and_death_rate(tmp_path: Path) -> None:
    rows = 150_000
    base_80, base_death = _summary(pa.Table.from_batches(list(synth.generate_batches(rows, 3))))
    old_80, old_death = _summary(
        pa.Table.from_batches(list(synth.generate_batches(rows, 3, age_shift={"80+ Years": 3.0})))
    )
    _, doubled_death = _summary(pa.Table.from_batches(list(synth.generate_batches(rows, 3, death_rate_multiplier=2.0))))
    assert 2.5 < old_80 / base_80 < 3.2  # 3x weight, renormalised
    assert old_death > 1.5 * base_death  # older mix, more deaths
    assert 1.8 < doubled_death / base_death <= 2.0  # x2 per row, a little less where capped at 1
    # The same through write() and the CLI flags.
    out = tmp_path / "drift.parquet"
    run_module(
        "model.synth", "--rows", str(rows), "--seed", "3", "--out", str(out),
        "--age-shift", "80+ Years=3", "--death-rate-multiplier", "2",
    )  # fmt: skip
    drift_80, drift_death = _summary(pq.read_table(out))
    assert drift_80 == pytest.approx(old_80)
    assert drift_death > old_death


def test_data_card_quotes_the_calibration_tables() -> None:
    card = (REPO_ROOT / "docs" / "data_card.md").read_text(encoding="utf-8")
    assert synth.calibration_markdown() in card, "regenerate the table with synth.calibration_markdown()"
    assert "SYNTHETIC" in card
    for name in ("DEATH_ODDS_RATIOS", "REPORTING_GAPS", "MONTHLY_CASES_MILLIONS"):
        assert name in card
