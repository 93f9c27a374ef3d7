"""model.data.loader on real files: the shared 2020 CDC extract, and files written here to tmp_path.

Expected counts are computed independently of the loader (pandas groupby on the
rows the test itself wrote), so a wrong aggregation fails.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import itertools
import random
import threading
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from model.core import schema
from model.data.loader import (
    CASE_MONTH,
    INTAKE_POPULATION,
    OUTCOME_COUNTS,
    DataError,
    LoadReport,
    describe_source,
    iter_canonical_batches,
    load_counts,
)

KEYS = [*schema.ALL_COLUMNS, CASE_MONTH, INTAKE_POPULATION]
DATE = "2021/03/04"


# --------------------------------------------------------------------------- fixture makers


def current_rows(n: int = 3000, seed: int = 3) -> list[dict[str, str]]:
    """Deterministic current-schema rows covering every schema value of every column."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        row = {c: (DATE if i % 7 else "") for c in schema.DATE_COLUMNS}
        for name in schema.ALL_COLUMNS:
            values = schema.FEATURES_BY_NAME[name].values
            row[name] = values[i % len(values)] if i < 50 else rng.choice(values)
        row[schema.TARGET] = schema.TARGET_VALUES[i % 5] if i < 50 else rng.choice(("Yes", "No", "No", "No", "Missing"))
        rows.append(row)
    return rows


def write_csv(path: Path, rows: list[dict[str, str]], columns: list[str] | None = None, delimiter: str = ",") -> Path:
    columns = columns or list(schema.CURRENT_SCHEMA_COLUMNS)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, delimiter=delimiter, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def expected_counts(rows: list[dict[str, str]] | pd.DataFrame) -> pd.DataFrame:
    """The counts table computed the slow, obvious way (rows assumed canonical, dates YYYY/MM/DD)."""
    frame = pd.DataFrame(rows).copy()
    dates = [pd.to_datetime(frame[c], format="%Y/%m/%d", errors="coerce") for c in schema.DATE_COLUMNS if c in frame]
    earliest = pd.concat(dates, axis=1).min(axis=1)
    frame[CASE_MONTH] = earliest.dt.strftime("%Y-%m").fillna("unknown")
    dateless = frame["onset_dt"].eq("") & frame["pos_spec_dt"].eq("")
    frame[INTAKE_POPULATION] = ~(frame["current_status"].eq("Probable Case") & dateless)
    frame["deaths"] = (frame[schema.TARGET] == "Yes").astype("int64")
    frame["survivors"] = (frame[schema.TARGET] == "No").astype("int64")
    frame["unknown_outcome"] = 1 - frame["deaths"] - frame["survivors"]
    return frame.groupby(KEYS, as_index=False)[list(OUTCOME_COUNTS)].sum()


def same_counts(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == [*KEYS, *OUTCOME_COUNTS]
    assert (got.dtypes[list(OUTCOME_COUNTS)] == "int64").all()
    a = got.astype({k: str for k in KEYS}).sort_values(KEYS).reset_index(drop=True)
    b = want.astype({k: str for k in KEYS}).sort_values(KEYS).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)


def check_invariants(table: pd.DataFrame, report: LoadReport) -> None:
    assert report.rows_read == report.rows_used + sum(report.rows_dropped.values())
    assert report.rows_used == int(table.deaths.sum() + table.survivors.sum())
    assert report.rows_read == int(table[list(OUTCOME_COUNTS)].to_numpy().sum())


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    return current_rows()


@pytest.fixture
def current_csv(tmp_path: Path, rows: list[dict[str, str]]) -> Path:
    return write_csv(tmp_path / "current.csv", rows)


# --------------------------------------------------------------------------- good files


def test_real_legacy_file_loads(legacy_cdc_file: Path) -> None:
    table, report = load_counts(legacy_cdc_file)
    assert report.schema_variant == "legacy-2020"
    assert report.format == "csv"
    assert report.rows_read == 11549
    assert int(table.deaths.sum()) == 6
    assert int(table.survivors.sum()) == 5316
    assert report.rows_dropped == {"death_yn=Missing": 4441, "death_yn=Unknown": 1786}
    assert report.renamed_columns == {"Race and ethnicity (combined)": "race_ethnicity_combined"}
    assert report.sha256 == hashlib.sha256(legacy_cdc_file.read_bytes()).hexdigest()
    assert set(table.age_group) == {"10 - 19 Years", "20 - 29 Years"}
    assert not table.duplicated(KEYS).any()
    check_invariants(table, report)
    assert report.to_dict()["rows_dropped"]["death_yn=Missing"] == 4441
    # DD/MM/YYYY dates, told apart from M/D/YYYY by a day over 12 in any date column.
    assert all(d["formats"] == ["DD/MM/YYYY"] for d in report.dates.values())
    assert set(table[CASE_MONTH]) >= {"2020-03", "2020-10"} and report.known_outcome_outside_intake == 9


def test_first_wave_file_reads_dates_and_intake_population() -> None:
    """The real first-wave export: M/D/YYYY dates, no cdc_case_earliest_dt, death-certificate cases flagged."""
    from tests.conftest import REAL_CDC_FILE

    table, report = load_counts(REAL_CDC_FILE)
    assert report.rows_read == 500_000 and report.schema_variant == "current"
    assert all(d == {"formats": ["M/D/YYYY"], "unreadable": 0} for d in report.dates.values())
    by_month = table.groupby(CASE_MONTH)[["deaths", "survivors"]].sum()
    assert by_month.loc["2020-03"].sum() > by_month.loc["2020-04"].sum() > 50_000
    outside = table[~table[INTAKE_POPULATION]]
    assert set(outside["current_status"]) == {"Probable Case"}
    assert int(outside["deaths"].sum()) == 1861 and int(outside["survivors"].sum()) == 167
    assert report.known_outcome_outside_intake == 2028


def test_current_schema_csv(current_csv: Path, rows: list[dict[str, str]]) -> None:
    table, report = load_counts(current_csv)
    same_counts(table, expected_counts(rows))
    assert report.schema_variant == "current"
    assert report.rows_read == len(rows)
    dropped = pd.Series([r[schema.TARGET] for r in rows]).value_counts()
    assert report.rows_dropped == {f"death_yn={v}": int(dropped[v]) for v in ("Unknown", "Missing", "NA")}
    assert report.normalised == {}
    check_invariants(table, report)


def test_gzip_and_parquet_give_identical_counts(tmp_path: Path, current_csv: Path, rows) -> None:
    want, want_report = load_counts(current_csv)
    gz = write_csv(tmp_path / "current.csv.gz", rows)
    no_suffix_gz = tmp_path / "download"  # gzip detected by its magic bytes, not its name
    no_suffix_gz.write_bytes(gz.read_bytes())
    parquet = tmp_path / "current.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet, row_group_size=700)
    for path, fmt in ((gz, "csv.gz"), (no_suffix_gz, "csv.gz"), (parquet, "parquet")):
        table, report = load_counts(path)
        assert report.format == fmt
        pd.testing.assert_frame_equal(table, want)
        assert report.rows_dropped == want_report.rows_dropped


def test_column_order_and_extra_columns(tmp_path: Path, rows) -> None:
    columns = [*reversed(schema.CURRENT_SCHEMA_COLUMNS), "res_state", "notes"]
    extra = [{**r, "res_state": "NY", "notes": "x,y"} for r in rows]
    table, report = load_counts(write_csv(tmp_path / "shuffled.csv", extra, columns))
    same_counts(table, expected_counts(rows))
    assert report.ignored_columns == ["res_state", "notes"]


def test_respellings_are_normalised_and_reported(tmp_path: Path, rows) -> None:
    messy = [dict(r) for r in rows]
    for r in messy[:100]:
        if r["current_status"] == "Probable Case":
            r["current_status"] = "Probable case"
        if r["sex"] == "Female":
            r["sex"] = "  female "
        if r["medcond_yn"] == "Missing":
            r["medcond_yn"] = ""
        if r[schema.TARGET] == "Yes":
            r[schema.TARGET] = "YES"
    respelled = (("current_status", "Probable case"), ("sex", "  female "), ("medcond_yn", ""), ("death_yn", "YES"))
    changed = {col: {raw: sum(1 for r in messy if r[col] == raw)} for col, raw in respelled}
    assert all(n > 0 for d in changed.values() for n in d.values())
    table, report = load_counts(write_csv(tmp_path / "messy.csv", messy))
    same_counts(table, expected_counts(rows))
    assert report.normalised == {
        "current_status": {"Probable case": {"Probable Case": changed["current_status"]["Probable case"]}},
        "sex": {"  female ": {"Female": changed["sex"]["  female "]}},
        "medcond_yn": {"": {"Missing": changed["medcond_yn"][""]}},
        "death_yn": {"YES": {"Yes": changed["death_yn"]["YES"]}},
    }


def test_parquet_nulls_and_dictionary_columns(tmp_path: Path, rows) -> None:
    frame = pd.DataFrame(rows[:500])
    frame.loc[:9, "hosp_yn"] = None
    frame["sex"] = frame["sex"].astype("category")  # stored as a Parquet dictionary column
    path = tmp_path / "nulls.parquet"
    frame.to_parquet(path)
    table, report = load_counts(path)
    assert report.normalised["hosp_yn"] == {"(null)": {"Missing": 10}}
    want = frame.astype({"sex": str}).fillna({"hosp_yn": "Missing"}).to_dict("records")
    same_counts(table, expected_counts(want))


def test_small_chunks_give_the_same_result(current_csv: Path, tmp_path: Path, rows) -> None:
    whole, whole_report = load_counts(current_csv)
    seen: list[int] = []
    chunked, report = load_counts(current_csv, chunk_rows=97, progress=seen.append)
    pd.testing.assert_frame_equal(chunked, whole)
    assert report.chunks == -(-len(rows) // 97)
    assert seen == sorted(seen) and seen[-1] == len(rows) and len(seen) == report.chunks
    assert report.rows_dropped == whole_report.rows_dropped
    parquet = tmp_path / "c.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    pd.testing.assert_frame_equal(load_counts(parquet, chunk_rows=101)[0], whole)


def test_every_outcome_unknown_gives_an_empty_table(tmp_path: Path, rows) -> None:
    unknown = [{**r, schema.TARGET: "Unknown"} for r in rows[:40]]
    table, report = load_counts(write_csv(tmp_path / "unknown.csv", unknown))
    assert list(table.columns) == [*KEYS, *OUTCOME_COUNTS]
    assert table["unknown_outcome"].sum() == 40 and table[["deaths", "survivors"]].to_numpy().sum() == 0
    assert report.rows_read == 40 and report.rows_used == 0
    assert report.rows_dropped == {"death_yn=Unknown": 40}


def test_generated_file_loads(synthetic_csv: Path) -> None:
    from tests.conftest import FIXTURE_ROWS

    table, report = load_counts(synthetic_csv)
    assert report.rows_read == FIXTURE_ROWS
    assert report.schema_variant == "current"
    assert 0 < table.deaths.sum() < table.survivors.sum()
    check_invariants(table, report)


# --------------------------------------------------------------------------- bad files


def _bad_files(tmp: Path, rows: list[dict[str, str]]) -> dict[str, tuple[Path, list[str]]]:
    """name -> (file, fragments the DataError message must contain)."""
    files: dict[str, tuple[Path, list[str]]] = {}

    def put(name: str, data: bytes, *needles: str) -> None:
        path = tmp / name
        path.write_bytes(data)
        files[name] = (path, list(needles))

    no_sex = [c for c in schema.CURRENT_SCHEMA_COLUMNS if c != "sex"]
    files["missing.csv"] = (
        write_csv(tmp / "missing.csv", rows[:5], [*no_sex, "gender"]),
        ["missing required column(s) sex", "Found columns:", "gender", "Race and ethnicity (combined)"],
    )
    bad_values = [dict(r) for r in rows[:200]]
    for i in (3, 8, 13):
        bad_values[i]["age_group"] = "90+ Years"
    bad_values[20]["age_group"] = "abc"
    files["values.csv"] = (
        write_csv(tmp / "values.csv", bad_values),
        ["'age_group'", "4 row(s)", "'90+ Years' ×3", "'abc' ×1", "first at data row 4", "Allowed values"],
    )
    put("empty.csv", b"", "empty", "0 bytes")
    put("header_only.csv", (",".join(schema.CURRENT_SCHEMA_COLUMNS) + "\n").encode(), "no data rows")
    put("header_only.csv.gz", gzip.compress(",".join(schema.CURRENT_SCHEMA_COLUMNS).encode()), "no data rows")
    write_csv(tmp / "semicolon.csv", rows[:5], delimiter=";")
    files["semicolon.csv"] = (tmp / "semicolon.csv", ["';'", "delimiter", "comma"])
    write_csv(tmp / "tab.csv", rows[:5], delimiter="\t")
    files["tab.csv"] = (tmp / "tab.csv", ["'\\t'", "delimiter"])
    put("random.csv", random.Random(1).randbytes(5000), "not a CSV")
    pq.write_table(pa.Table.from_pylist(rows[:5]), tmp / "p.parquet")
    put("parquet.csv", (tmp / "p.parquet").read_bytes(), "Parquet file", ".parquet")
    put("fake.parquet", b"a,b\n1,2\n", "not a Parquet file")
    put("page.csv", b"<!DOCTYPE html>\n<html><body>Sign in</body></html>\n", "HTML")
    put("book.csv", b"PK\x03\x04" + bytes(100), "ZIP")
    good = write_csv(tmp / "good.csv.gz", current_rows(20000)).read_bytes()
    put("truncated.csv.gz", good[: len(good) // 2], "gzip", "corrupt or truncated")
    put("garbled.csv.gz", good[:10] + bytes(200) + good[210:], "gzip", "corrupt")
    put("plain.csv.gz", b"a,b\n1,2\n", "not gzip-compressed")
    text = write_csv(tmp / "t.csv", rows[:5]).read_text()
    put("ragged.csv", (text + "a,b,c\n").encode(), "different number of fields")
    put("latin1.csv", text.replace("Female", "Fémale").encode("latin-1"), "UTF-8", "'sex'")
    return files


BAD_NAMES = [
    "missing.csv",
    "values.csv",
    "empty.csv",
    "header_only.csv",
    "header_only.csv.gz",
    "semicolon.csv",
    "tab.csv",
    "random.csv",
    "parquet.csv",
    "fake.parquet",
    "page.csv",
    "book.csv",
    "truncated.csv.gz",
    "garbled.csv.gz",
    "plain.csv.gz",
    "ragged.csv",
    "latin1.csv",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_file_gets_a_clear_error(tmp_path: Path, rows, name: str) -> None:
    path, needles = _bad_files(tmp_path, rows)[name]
    with pytest.raises(DataError) as caught:
        load_counts(path)
    message = str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert str(path) in message
    for needle in needles:
        assert needle in message, f"{needle!r} not in: {message}"
    # The batch API gives the same verdict.
    with pytest.raises(DataError):
        list(iter_canonical_batches(path, columns=schema.ALL_COLUMNS if name == "missing.csv" else None))


def test_bad_files_are_all_covered(tmp_path: Path, rows) -> None:
    assert sorted(_bad_files(tmp_path, rows)) == sorted(BAD_NAMES)


def test_no_such_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        load_counts(tmp_path / "nope.csv")


# --------------------------------------------------------------------------- batch API


def test_batches_mark_bad_rows_and_keep_good_ones(tmp_path: Path, rows) -> None:
    data = [dict(r) for r in rows[:300]]
    data[5]["age_group"] = "abc"
    data[6]["current_status"] = ""
    data[6]["sex"] = "robot"
    data[250]["hosp_yn"] = "maybe"
    path = write_csv(tmp_path / "mixed.csv", data)
    batches = list(iter_canonical_batches(path, on_unknown="mark", chunk_rows=100))
    assert [b.row_start for b in batches] == [0, 100, 200]
    frame = pd.concat([b.frame for b in batches])
    problems = pd.concat([b.problems for b in batches])
    assert list(frame.columns) == [*schema.MODEL_INPUTS, schema.TARGET]
    assert list(frame.index) == list(range(300))
    assert problems[5] == "age_group: unknown value 'abc'"
    assert problems[6] == "sex: unknown value 'robot'; current_status: empty value"
    assert problems[250] == "hosp_yn: unknown value 'maybe'"
    assert (problems.drop([5, 6, 250]) == "").all()
    good = frame.drop([5, 6, 250])
    want = pd.DataFrame(data).drop([5, 6, 250])[list(frame.columns)]
    assert (good.astype(str).to_numpy() == want.to_numpy()).all()
    assert pd.isna(frame.loc[5, "age_group"]) and frame.loc[5, "sex"] == data[5]["sex"]
    assert list(frame["age_group"].cat.categories) == list(schema.FEATURES_BY_NAME["age_group"].values)

    with pytest.raises(DataError, match=r"'age_group'.*data rows 1-100.*'abc' ×1"):
        list(iter_canonical_batches(path, chunk_rows=100))


def test_model_inputs_only_file_works_for_batches(tmp_path: Path, rows) -> None:
    path = write_csv(tmp_path / "inputs.csv", rows[:120], list(schema.MODEL_INPUTS))
    batches = list(iter_canonical_batches(path))
    frame = pd.concat([b.frame for b in batches])
    assert list(frame.columns) == list(schema.MODEL_INPUTS)
    assert len(frame) == 120 and batches[0].problems is None
    assert frame.astype(str).to_dict("records") == [{c: r[c] for c in schema.MODEL_INPUTS} for r in rows[:120]]
    with pytest.raises(DataError, match="death_yn"):
        list(iter_canonical_batches(path, require_target=True))
    with pytest.raises(DataError, match="race_ethnicity_combined"):
        load_counts(path)


def test_batches_of_requested_columns_and_legacy_file(legacy_cdc_file: Path) -> None:
    info = describe_source(legacy_cdc_file)
    assert info.schema_variant == "legacy-2020"
    assert info.mapped["race_ethnicity_combined"] == "Race and ethnicity (combined)"
    batches = list(iter_canonical_batches(legacy_cdc_file, columns=["race_ethnicity_combined", "death_yn"]))
    frame = pd.concat([b.frame for b in batches])
    assert len(frame) == 11549
    assert frame["death_yn"].value_counts()["Yes"] == 6
    with pytest.raises(ValueError, match="unknown schema column"):
        next(iter_canonical_batches(legacy_cdc_file, columns=["age"]))


def test_all_schema_values_round_trip(tmp_path: Path) -> None:
    """Every allowed value of every column is accepted as written (guards against schema/loader drift)."""
    columns = [*schema.ALL_COLUMNS, schema.TARGET]
    longest = max(len(schema.FEATURES_BY_NAME[c].values) if c in schema.FEATURES_BY_NAME else 5 for c in columns)
    values = {
        c: list(
            itertools.islice(
                itertools.cycle(schema.FEATURES_BY_NAME[c].values if c != schema.TARGET else schema.TARGET_VALUES),
                longest,
            )
        )
        for c in columns
    }
    data = [{c: values[c][i] for c in columns} for i in range(longest)]
    path = write_csv(tmp_path / "all.csv", data, columns)
    frame = pd.concat([b.frame for b in iter_canonical_batches(path, columns=columns)])
    assert frame.astype(str).to_dict("records") == data


def test_header_spelling_is_forgiven_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"
    path.write_text(
        " Current_Status ,SEX,age_group,Race and ethnicity (combined),hosp_yn,icu_yn,death_yn,medcond_yn,extra\n"
        "Probable case,male,80+ years,,yes,no,No,Unknown,1\n"
    )
    table, report = load_counts(path)
    assert table.drop(columns=list(OUTCOME_COUNTS)).to_dict("records") == [
        {
            "age_group": "80+ Years",
            "sex": "Male",
            "current_status": "Probable Case",
            "medcond_yn": "Unknown",
            "hosp_yn": "Yes",
            "icu_yn": "No",
            "race_ethnicity_combined": "Missing",
            # No date columns: the file cannot tell a death-certificate case, so nobody is excluded.
            "case_month": "unknown",
            "intake_population": True,
        }
    ]
    assert report.renamed_columns == {
        " Current_Status ": "current_status",
        "SEX": "sex",
        "Race and ethnicity (combined)": "race_ethnicity_combined",
    }
    assert report.ignored_columns == ["extra"]
    assert report.normalised["race_ethnicity_combined"] == {"": {"Missing": 1}}


# --------------------------------------------------------------------------- the single polars pass (issue 25)


def test_generated_file_matches_a_pandas_group_by(synthetic_csv: Path) -> None:
    """The whole pass (date lookups, case month, intake flag, raw-string groups) against pandas on 400k rows."""
    table, report = load_counts(synthetic_csv)
    same_counts(table, expected_counts(pd.read_csv(synthetic_csv, dtype=str, keep_default_na=False)))
    assert report.sha256 == hashlib.sha256(synthetic_csv.read_bytes()).hexdigest()
    assert all(d == {"formats": ["YYYY/MM/DD"], "unreadable": 0} for d in report.dates.values())


def _dated(rows: list[dict[str, str]], dates: list[str]) -> list[dict[str, str]]:
    """`rows` with every date column set to the i-th of `dates` (cycled)."""
    return [{**r, **dict.fromkeys(schema.DATE_COLUMNS, dates[i % len(dates)])} for i, r in enumerate(rows)]


def test_odd_date_cells_are_read_exactly(tmp_path: Path, rows) -> None:
    """Cells outside the lookup table (blanks, times, unpadded, out of range, garbage) take the exact path."""
    cells = [
        "2021/03/04",
        " 2021/3/4 ",
        "2021-03-04T10:00:00",
        "2021/03/04 00:00",
        "2018/05/01",
        "2021/13/01",
        "soon",
        " ",
    ]
    table, report = load_counts(write_csv(tmp_path / "odd.csv", _dated(rows, cells)))
    months = table.groupby(CASE_MONTH)[list(OUTCOME_COUNTS)].sum().sum(axis=1)
    per_cell = len(rows) // len(cells)
    assert months["2021-03"] == 4 * per_cell and months["unknown"] == 4 * per_cell
    # 2018 (before the first cases), month 13 and "soon" are unreadable; a blank cell is just empty.
    assert all(d == {"formats": ["YYYY/MM/DD"], "unreadable": 3 * per_cell} for d in report.dates.values())
    check_invariants(table, report)


def test_day_month_order_is_decided_over_the_whole_file(tmp_path: Path, rows) -> None:
    """A DD/MM/YYYY file whose first 60,000 rows (7 MiB) fit both orders: late day-first dates decide for all.

    (The loader before issue 25 decided from its first 4 MiB block and read the early rows month-first.)
    """
    from model.data.scan import SNIFF_ROWS

    early = _dated(rows, ["02/03/2021"]) * (max(SNIFF_ROWS, 60_000) // len(rows))  # 2 March, or 3 February US-style
    late = _dated(rows[:10], ["25/03/2021"])
    table, report = load_counts(write_csv(tmp_path / "dmy.csv", early + late))
    assert set(table[CASE_MONTH]) == {"2021-03"}
    assert all(d == {"formats": ["DD/MM/YYYY"], "unreadable": 0} for d in report.dates.values())


def test_ambiguous_and_contradictory_slash_dates(tmp_path: Path, rows) -> None:
    ambiguous, report = load_counts(write_csv(tmp_path / "ambiguous.csv", _dated(rows, ["02/03/2021"])))
    assert set(ambiguous[CASE_MONTH]) == {"2021-02"}  # read month-first, and the report says so
    assert all(d["formats"] == ["M/D/YYYY"] and "could not be told apart" in d["note"] for d in report.dates.values())
    mixed, report = load_counts(write_csv(tmp_path / "mixed.csv", _dated(rows, ["02/25/2021", "25/02/2021"])))
    assert set(mixed[CASE_MONTH]) == {"2021-02", "unknown"}  # month-first; the day-first half is unreadable
    assert all(d["unreadable"] == len(rows) // 2 for d in report.dates.values())


def test_parquet_date_and_timestamp_columns(tmp_path: Path, rows, current_csv: Path) -> None:
    frame = pd.DataFrame(rows)
    for column in schema.DATE_COLUMNS:
        frame[column] = pd.to_datetime(frame[column], format="%Y/%m/%d")
    frame["onset_dt"] = frame["onset_dt"].dt.date  # a Parquet date32 column; the others are timestamps
    path = tmp_path / "dates.parquet"
    frame.to_parquet(path)
    table, report = load_counts(path)
    pd.testing.assert_frame_equal(table, load_counts(current_csv)[0])
    assert all(d == {"formats": ["YYYY/MM/DD"], "unreadable": 0} for d in report.dates.values())


def test_a_short_row_is_an_error_even_where_missing_is_allowed(tmp_path: Path, rows) -> None:
    """A line cut before its last field (medcond_yn, which allows Missing) must not load as Missing."""
    text = write_csv(tmp_path / "t.csv", rows[:50]).read_text()
    cut = text.rstrip("\n").rsplit(",", 1)[0] + "\n"  # the last line loses its last field
    path = tmp_path / "cut.csv"
    path.write_text(cut)
    with pytest.raises(DataError, match="different number of fields"):
        load_counts(path)


def test_blank_lines_and_empty_last_cells(tmp_path: Path, rows) -> None:
    """Blank lines are skipped (as pyarrow did); an unquoted empty last cell is a cell, not a short row."""
    data = [dict(r) for r in rows[:300]]
    for r in data[::3]:
        r["medcond_yn"] = ""  # last column of the file, written unquoted
    lines = write_csv(tmp_path / "t.csv", data).read_text().splitlines()
    path = tmp_path / "blank.csv"
    path.write_text("\n".join([*lines[:100], "", *lines[100:], "", ""]) + "\n")
    table, report = load_counts(path)
    assert report.rows_read == 300
    assert report.normalised["medcond_yn"] == {"": {"Missing": 100}}
    want = [{**r, "medcond_yn": r["medcond_yn"] or "Missing"} for r in data]
    same_counts(table, expected_counts(want))


def test_unknown_parquet_null_is_named_with_its_first_row(tmp_path: Path, rows) -> None:
    frame = pd.DataFrame(rows[:200])
    frame.loc[[7, 9], "current_status"] = None  # current_status has no Missing value
    path = tmp_path / "null_status.parquet"
    frame.to_parquet(path)
    with pytest.raises(DataError, match=r"'current_status' has 2 row\(s\).*'\(null\)' ×2 \(first at data row 8\)"):
        load_counts(path)


def test_progress_runs_during_the_pass_and_its_error_stops_the_load(current_csv: Path, rows) -> None:
    seen: list[int] = []
    load_counts(current_csv, chunk_rows=1000, progress=seen.append)
    assert seen == [1000, 2000, 3000]

    class Stop(Exception):
        pass

    def stop(rows_read: int) -> None:
        raise Stop(rows_read)

    threads = threading.active_count()
    with pytest.raises(Stop):
        load_counts(current_csv, chunk_rows=1000, progress=stop)
    assert threading.active_count() == threads  # the background hash was stopped and joined


def test_every_cell_quoted(tmp_path: Path, rows, current_csv: Path) -> None:
    """Quoted empty cells ("") are empty cells too: the same table as the plain file, no unreadable date."""
    path = tmp_path / "quoted.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(schema.CURRENT_SCHEMA_COLUMNS), quoting=csv.QUOTE_ALL)
        writer.writeheader()
        writer.writerows(rows)
    assert '""' in path.read_text()
    table, report = load_counts(path)
    want, want_report = load_counts(current_csv)
    pd.testing.assert_frame_equal(table, want)
    assert report.dates == want_report.dates and report.normalised == want_report.normalised
