"""Tests of the synthetic data generator (model/synthetic/synth.py).

Files are produced by the real CLI (its main, in-process) and read back with pyarrow,
then compared with the calibration tables the generator exposes.
"""

from __future__ import annotations

import csv
import gzip
import itertools
import json
import math
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from model.core import schema
from model.data.loader import load_counts
from model.synthetic import synth
from tests.conftest import REPO_ROOT, SHARED_DATA
from tests.inprocess import Ran, run_main, run_ok

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


def cli(*args: str) -> Ran:
    """Run the CLI (its main, in-process) without failing on a non-zero exit (for the bad-argument tests)."""
    return run_main("model.synth", *args)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("synth") / "cases.csv"
    proc = run_ok("model.synth", "--rows", str(ROWS), "--seed", str(SEED), "--out", str(path))
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
    run_ok("model.synth", "--rows", str(ROWS), "--seed", str(SEED), "--out", str(again))
    run_ok("model.synth", "--rows", str(ROWS), "--seed", str(SEED + 1), "--out", str(other))
    assert again.read_bytes() == generated[0].read_bytes()
    assert other.read_bytes() != generated[0].read_bytes()


def test_output_does_not_depend_on_chunk_size_and_is_a_prefix() -> None:
    rows = 2 * synth.BLOCK_ROWS + 1234  # spans block boundaries
    big = pa.Table.from_batches(list(synth.generate_batches(rows, 5)))
    small = pa.Table.from_batches(list(synth.generate_batches(rows, 5, chunk_rows=7_777)))
    assert big.num_rows == small.num_rows == rows
    assert small.equals(big)
    assert pa.Table.from_batches(list(synth.generate_batches(1000, 5))).equals(big.slice(0, 1000))


FIRST_WAVE = ("2020-03", "2020-05")
REAL_FIRST_WAVE = SHARED_DATA / "cdc_case_surveillance_first_wave_500k.csv.gz"


def generated_frame(rows: int, seed: int, **options: object) -> pd.DataFrame:
    """Generate in process (same code path as the CLI's write) and return string cells ("" for blanks)."""
    return pa.Table.from_batches(list(synth.generate_batches(rows, seed, **options))).to_pandas().fillna("")


def death_share(frame: pd.DataFrame) -> float:
    outcome = frame[schema.TARGET]
    return float((outcome == schema.TARGET_POSITIVE).sum() / outcome.isin(KNOWN).sum())


def death_share_by(frame: pd.DataFrame, column: str) -> dict[str, float]:
    known = frame[frame[schema.TARGET].isin(KNOWN)]
    return (known[schema.TARGET] == schema.TARGET_POSITIVE).groupby(known[column]).mean().to_dict()


@pytest.fixture(scope="module")
def first_wave() -> pd.DataFrame:
    return generated_frame(300_000, SEED, months=FIRST_WAVE)


@pytest.fixture(scope="module")
def real_first_wave() -> pd.DataFrame:
    if not REAL_FIRST_WAVE.exists():
        pytest.fail(f"{REAL_FIRST_WAVE} is missing: the shared data folder must sit beside the repo")
    return pd.read_csv(REAL_FIRST_WAVE, dtype=str, keep_default_na=False)


def test_first_wave_death_share_by_age_matches_the_real_file(first_wave: pd.DataFrame) -> None:
    known = first_wave[first_wave[schema.TARGET].isin(KNOWN)]
    shares = []
    for age, expected in synth.FIRST_WAVE_DEATH_SHARE_BY_AGE.items():
        group = known[known["age_group"] == age]
        deaths = int((group[schema.TARGET] == schema.TARGET_POSITIVE).sum())
        assert_share(deaths, len(group), expected, f"first-wave death share, {age}")
        shares.append(deaths / len(group))
    assert all(a < b for a, b in itertools.pairwise(shares[2:])), shares
    assert_share(
        int((known[schema.TARGET] == "Yes").sum()),
        len(known),
        synth.expected_first_wave_death_share(),
        "first-wave death share",
    )


def test_missingness_depends_on_severity_as_in_the_real_file(
    first_wave: pd.DataFrame, frame: pd.DataFrame, real_first_wave: pd.DataFrame
) -> None:
    for label, data, unknown_over_no in (("real", real_first_wave, 10.0), ("generated", first_wave, 5.0)):
        hosp = death_share_by(data, "hosp_yn")
        # Unknown hospitalisation dies far more often than No, and Missing lies between No and Yes.
        assert hosp["Unknown"] > unknown_over_no * hosp["No"], (label, hosp)
        assert hosp["No"] < hosp["Missing"] < hosp["Yes"], (label, hosp)
        medcond = death_share_by(data, "medcond_yn")
        assert medcond["Unknown"] > 5 * medcond["No"] and medcond["No"] < medcond["Missing"], (label, medcond)
        # Death-certificate ascertainment: probable cases with unknown conditions mostly died.
        known = data[data[schema.TARGET].isin(KNOWN)]
        cert = known[(known["current_status"] == "Probable Case") & (known["medcond_yn"] == schema.UNKNOWN)]
        assert len(cert) > 300 and (cert[schema.TARGET] == "Yes").mean() > 0.5, (label, len(cert))
        # Severe rows keep their outcome more often: a smaller share of the 80+ than of 20-29 has no outcome.
        gap = data[schema.TARGET].isin(schema.TARGET_UNKNOWN_VALUES).groupby(data["age_group"]).mean()
        assert gap["80+ Years"] < gap["20 - 29 Years"] - 0.03, (label, gap.to_dict())
    # The same holds over 2020-2022, where deaths are rarer.
    hosp = death_share_by(frame, "hosp_yn")
    assert hosp["Unknown"] > 3 * hosp["No"], hosp
    # Fields go missing together (one reporting source): a missing death_yn makes a missing hosp_yn likelier.
    death_gap = frame["death_yn"].isin(schema.TARGET_UNKNOWN_VALUES)
    hosp_gap = frame["hosp_yn"].isin(schema.TARGET_UNKNOWN_VALUES)
    assert hosp_gap[death_gap].mean() > hosp_gap[~death_gap].mean() + 0.1


def _age_standardised_ratio(later: pd.DataFrame, reference: pd.DataFrame) -> float:
    """Observed later deaths / deaths expected at the reference's death share in the same age, sex, condition cell."""
    cells = ["age_group", "sex", "medcond_yn"]
    ref = reference[reference[schema.TARGET].isin(KNOWN)]
    rate = (ref[schema.TARGET] == "Yes").groupby([ref[c] for c in cells]).mean().rename("rate")
    now = later[later[schema.TARGET].isin(KNOWN)].join(rate, on=cells)
    now = now[now["rate"].notna()]
    return float((now[schema.TARGET] == "Yes").sum() / now["rate"].sum())


def test_case_fatality_falls_after_the_first_wave(first_wave: pd.DataFrame) -> None:
    late_2020 = generated_frame(300_000, SEED + 1, months=("2020-09", "2020-12"))
    early_2021 = generated_frame(300_000, SEED + 2, months=("2021-01", "2021-06"))
    omicron = generated_frame(300_000, SEED + 3, months=("2022-01", "2022-12"))
    ratios = [_age_standardised_ratio(f, first_wave) for f in (late_2020, early_2021, omicron)]
    # A first-wave model over-predicts later cases several-fold (issue 11: O/E ≈ 0.4 late 2020, ≈ 0.2 early 2021).
    assert 0.2 < ratios[0] < 0.5, ratios
    assert 0.1 < ratios[1] < 0.3 and ratios[1] < ratios[0], ratios
    assert ratios[2] < ratios[1], ratios
    # Crude shares fall too (younger case mix on top of lower fatality).
    assert death_share(first_wave) > 3 * death_share(late_2020) > 3 * death_share(omicron)
    # Dates carry the period: case dates lie in the window (a case known only by its report date may be
    # reported up to 2 x MAX_DELAY_DAYS after its onset month).
    for data, (first, last) in ((first_wave, FIRST_WAVE), (early_2021, ("2021-01", "2021-06"))):
        earliest = pd.to_datetime(data["cdc_case_earliest_dt"], format="%Y/%m/%d")
        months = earliest.dt.strftime("%Y-%m")
        assert months.min() >= first and (months <= last).mean() > 0.97
        assert earliest.max() <= pd.Timestamp(f"{last}-01") + pd.DateOffset(months=1, days=2 * synth.MAX_DELAY_DAYS)


# Published figures (../shared/cdc_published_figures.md) and how close the generator must come, in
# percentage points: SUBSET and APPROX figures get a wider tolerance than FULL ones.
PUBLISHED_GAPS = {  # column -> value -> (share of all rows, tolerance), §2A FULL (Missing), §2D APPROX (Unknown)
    "death_yn": {"Missing": (41.49, 1.5), "Unknown": (10.2, 1.5)},
    "hosp_yn": {"Missing": (38.40, 1.5), "Unknown": (15.6, 1.5)},
    "icu_yn": {"Missing": (73.51, 1.5), "Unknown": (12.0, 1.5)},
    "medcond_yn": {"Missing": (72.14, 1.5), "Unknown": (10.0, 1.5)},
}


def test_marginals_are_within_tolerance_of_the_published_figures(frame: pd.DataFrame) -> None:
    for column, values in PUBLISHED_GAPS.items():
        for value, (published, tolerance) in values.items():
            share = 100 * float((frame[column] == value).mean())
            assert abs(share - published) <= tolerance, f"{column}={value}: {share:.2f}% vs published {published}%"

    def yes_share(column: str) -> float:
        reported = frame[column][frame[column].isin(KNOWN)]
        return 100 * float((reported == "Yes").mean())

    # §2B (SUBSET of the Dec 2020 release): hospitalised 13.34 %, conditions 52.2 % among Yes/No; §2D ≈ 11.6 %.
    assert 11.0 <= yes_share("hosp_yn") <= 14.5
    assert abs(yes_share("medcond_yn") - 52.2) <= 4.0
    # §2B: female 52.09 / (52.09 + 47.25) of Female/Male; probable cases 4.71 %.
    sexes = frame["sex"][frame["sex"].isin(["Female", "Male"])]
    assert abs(100 * (sexes == "Female").mean() - 52.43) <= 1.0
    assert abs(100 * (frame["current_status"] == "Probable Case").mean() - 4.71) <= 0.5
    # §2A: race Missing 7.16 % (FULL); §2B: White NH 35.5 %, race Unknown 28.9 % of the subset.
    race = frame["race_ethnicity_combined"]
    assert abs(100 * (race == "Missing").mean() - 7.16) <= 0.5
    assert abs(100 * (race == "White, Non-Hispanic").mean() / 0.9284 - 35.48 / 0.9627) <= 1.5
    # §2A: pos_spec_dt blank 65.84 %, onset_dt blank 47.70 % (FULL).
    assert abs(100 * (frame["pos_spec_dt"] == "").mean() - 65.84) <= 1.5
    assert abs(100 * (frame["onset_dt"] == "").mean() - 47.70) <= 1.5


def test_age_mix_follows_the_releases_and_cumulative_fatality_the_published_shares() -> None:
    to_nov = generated_frame(300_000, SEED + 4, months=("2020-03", "2020-11"))
    later = generated_frame(200_000, SEED + 5, months=("2020-06", "2022-12"))
    first = generated_frame(200_000, SEED + 6, months=FIRST_WAVE)
    for data, counts, label in ((first, synth.AGE_COUNTS_FIRST_WAVE, "§2C"), (later, synth.AGE_COUNTS_LATER, "§2D")):
        ages = data["age_group"][data["age_group"].isin(schema.AGE_GROUPS)]
        total = sum(counts.values())
        for age, count in counts.items():
            assert abs((ages == age).mean() - count / total) <= 0.01, (label, age)
    # Deaths among known outcomes, cumulative to the 4 Dec 2020 release: 4.70 % (§2B, SUBSET).
    assert abs(100 * death_share(to_nov) - 4.70) <= 1.0, death_share(to_nov)


def test_clinical_structure_death_rises_with_hosp_icu_medcond_and_male_sex(first_wave: pd.DataFrame) -> None:
    known = first_wave[first_wave[schema.TARGET].isin(KNOWN)]

    def rate(mask: pd.Series) -> float:
        return float((known.loc[mask, schema.TARGET] == schema.TARGET_POSITIVE).mean())

    assert rate(known["icu_yn"] == "Yes") > rate(known["hosp_yn"] == "Yes") > 3 * rate(known["hosp_yn"] == "No")
    assert rate(known["medcond_yn"] == "Yes") > 2 * rate(known["medcond_yn"] == "No")
    assert rate(known["sex"] == "Male") > 1.2 * rate(known["sex"] == "Female")


@pytest.mark.parametrize(
    ("variant", "header", "date_re", "date_format"),
    [
        (
            "legacy-2020",
            [
                c if c != "race_ethnicity_combined" else "Race and ethnicity (combined)"
                for c in schema.CURRENT_SCHEMA_COLUMNS[1:]
            ],
            r"^\d{2}/\d{2}/\d{4}$",
            "%d/%m/%Y",
        ),
        ("first-wave", list(schema.CURRENT_SCHEMA_COLUMNS[1:]), r"^\d{1,2}/\d{1,2}/\d{4}$", "%m/%d/%Y"),
    ],
)
def test_2020_schema_variants_are_written_as_published(
    variant: str, header: list[str], date_re: str, date_format: str, tmp_path: Path
) -> None:
    out = tmp_path / f"{variant}.csv"
    run_ok("model.synth", "--rows", "20000", "--seed", "3", "--out", str(out), "--schema", variant)
    with out.open(newline="") as handle:
        assert next(csv.reader(handle)) == header
    data = pd.read_csv(out, dtype=str, keep_default_na=False)
    for column in ("cdc_report_dt", "pos_spec_dt", "onset_dt"):
        present = data[column][data[column] != ""]
        assert present.str.match(date_re).all(), present.head().tolist()
        pd.to_datetime(present, format=date_format)
    # "NA" (suppressed) appeared after 2020: these variants never contain it.
    assert not (data.drop(columns=["cdc_report_dt", "pos_spec_dt", "onset_dt"]) == schema.NA).any().any()
    # Same rows as the current variant, only written differently.
    current = generated_frame(20_000, 3)
    assert (data["death_yn"] == current["death_yn"]).all()
    same_day = pd.to_datetime(data["cdc_report_dt"], format=date_format).dt.strftime("%Y/%m/%d")
    assert (same_day == current["cdc_report_dt"]).all()
    provenance = json.loads(out.with_name(out.name + ".provenance.json").read_text())
    assert provenance["synthetic"] is True and provenance["schema_variant"] == variant
    # The project's loader reads it.
    _, report = load_counts(out)
    assert report.rows_read == 20_000


@pytest.mark.parametrize("name", ["cases.csv.gz", "cases.parquet"])
def test_compressed_and_parquet_outputs_read_back_identically(
    name: str, generated: tuple[Path, str], frame: pd.DataFrame, tmp_path: Path
) -> None:
    out = tmp_path / name
    run_ok("model.synth", "--rows", str(ROWS), "--seed", str(SEED), "--out", str(out))
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
        (["--rows", "10", "--schema", "2019"], "invalid choice: '2019'"),
        (["--rows", "10", "--months", "2020-03"], "expected FIRST:LAST"),
        (["--rows", "10", "--months", "2019-01:2020-05"], "must be YYYY-MM between 2020-03 and 2022-12"),
        (["--rows", "10", "--months", "2021-01:2020-05"], "is after the last month"),
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
    run_ok(
        "model.synth",
        "--rows",
        str(rows),
        "--seed",
        "3",
        "--out",
        str(out),
        "--age-shift",
        "80+ Years=3",
        "--death-rate-multiplier",
        "2",
    )
    drift_80, drift_death = _summary(pq.read_table(out))
    assert drift_80 == pytest.approx(old_80)
    assert drift_death > old_death


def test_data_card_quotes_the_calibration_tables() -> None:
    card = (REPO_ROOT / "docs" / "data_card.md").read_text(encoding="utf-8")
    assert synth.calibration_markdown() in card, "regenerate the table with synth.calibration_markdown()"
    assert synth.periods_markdown() in card, "regenerate the table with synth.periods_markdown()"
    assert "SYNTHETIC" in card
    for name in (
        "DEATH_ODDS_RATIOS",
        "REPORTING_GAPS",
        "MONTHLY_CASES_MILLIONS",
        "HIDE_FACTOR_IF_YES",
        "DEATH_CERTIFICATE_SHARE",
        "FIRST_WAVE_DEATH_SHARE_BY_AGE",
        "cdc_published_figures.md",
    ):
        assert name in card
