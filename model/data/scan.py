"""The loader's single pass over a CDC file, in polars: raw groups and the checks as aggregations.

`model.data.loader.load_counts` calls `count_rows`. One lazy scan, run by polars'
streaming engine on every core, groups the file by the RAW spellings of the
category columns (read as Categorical, so the keys are integers) plus each
row's case month and one intake flag, and in the same pass (a second sink of
the same scan, `pl.collect_all`) aggregates the checks: per date column the
cells no date spelling matched and which kinds of spelling were seen (they tell
the day/month order), and rows that may be short (no last field). Everything
after that works on the aggregated table of a few hundred thousand rows:
mapping the few distinct raw spellings onto schema values, naming unknown
values with their counts, the counts table itself.

Why raw spellings: a file holds a handful per column, so grouping by them costs
the same as grouping by canonical values, and the mapping (forgiving case and
blanks, `schema.canonical_value`) then runs once per distinct spelling, in
Python, with the exact rules of the rest of the product.

Dates are looked up, not parsed, per cell (`case_dates.spelling_table`). A file
with cells the table does not hold (blanks around a date, a time after it, a
year outside 2019-2030, garbage), or whose day/month order turns out different
from its first rows', costs two more passes: the distinct cells of the date
columns, then the same pass with their exact codes. Structural problems
(ragged rows, bad UTF-8, corrupt gzip, an over-long line) are diagnosed by the
pyarrow reader the loader already has (`loader.arrow_batches`), so the messages
stay the same; it runs only when polars failed or some row may be short.

polars is imported only here, and the loader imports this module only in
`load_counts`, so batch scoring and the scoring image do not need polars.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from model.core import schema
from model.data import case_dates
from model.data.loader import FORMAT_PARQUET, DataError, SourceInfo, _no_rows, arrow_batches

CASE_MONTH = "case_month"  # month code (Int16) in the pass; labelled by the loader
# True where a row could fall outside the intake population: no onset and no positive-specimen date,
# and a status that is not literally the confirmed spelling (the loader decides on the canonical status).
MAYBE_EXCLUDED = "maybe_excluded"
ROWS = "rows"
# The group-by keys read as Categorical (the loader's category columns and the target).
CATEGORY_KEYS = frozenset((*schema.ALL_COLUMNS, schema.TARGET))
# polars' CSV reader works in chunks of this many bytes. Its default grows with the file and so
# does memory (2M rows: 390 MiB at the default, 245 MiB at 4 MiB, same CPU); set before any scan.
CSV_CHUNK_BYTES = 4 << 20
os.environ.setdefault("POLARS_CSV_CHUNK_SIZE", str(CSV_CHUNK_BYTES))
SNIFF_ROWS = 20_000  # rows whose slash dates choose the lookup table's day/month order (the pass checks it)
_CONFIRMED = schema.FEATURES_BY_NAME["current_status"].values[0]
_LAST = "__last_field__"


@dataclass
class Counted:
    """What the pass found: raw groups, data rows, progress chunks, and how the dates were read.

    `groups` holds the category columns as Categorical (raw spellings; null is an empty
    CSV cell or a Parquet null), CASE_MONTH, MAYBE_EXCLUDED and ROWS.
    """

    groups: pl.DataFrame
    rows: int
    chunks: int
    dates: case_dates.DateReading
    csv: bool = True

    def _raw(self, value: str | None) -> str | None:
        """An empty CSV cell is "" to the rest of the product (as pyarrow read it); a Parquet null stays None."""
        return "" if value is None and self.csv else value

    def raw_counts(self, column: str) -> list[tuple[str | None, int]]:
        """Each distinct raw spelling of `column` with its rows."""
        per_raw = self.groups.group_by(column).agg(pl.col(ROWS).sum()).iter_rows()
        return [(self._raw(raw), int(rows)) for raw, rows in per_raw]

    def codes(self, column: str, mapping: dict[str | None, int]) -> np.ndarray:
        """`column` per group as the codes `mapping` gives its raw spellings (-1 for a spelling it lacks).

        Mapped on the Categorical's integer ids, so no group row is turned back into text.
        """
        distinct = self.groups.select(pl.col(column).unique()).to_series()
        ids = distinct.to_physical().to_list()
        known = {i: mapping.get(self._raw(raw), -1) for raw, i in zip(distinct.to_list(), ids, strict=True)}
        null_code = known.pop(None, -1)
        if not known:  # every group's cell is null
            return np.full(self.groups.height, null_code, dtype=np.int64)
        by_id = pl.col(column).to_physical().replace_strict(list(known), list(known.values()), return_dtype=pl.Int64)
        return self.groups.select(by_id.fill_null(null_code)).to_series().to_numpy()

    def column(self, name: str) -> np.ndarray:
        return self.groups[name].to_numpy()


class _Rows:
    """Counts rows as the pass streams them and tells `progress` (every chunk_rows rows, or every batch)."""

    def __init__(self, progress: Callable[[int], None] | None, chunk_rows: int | None) -> None:
        self.progress, self.chunk_rows = progress, chunk_rows
        self.rows = self.chunks = 0
        self.failed: BaseException | None = None
        self._lock = threading.Lock()

    def __call__(self, frame: pl.DataFrame) -> pl.DataFrame:
        with self._lock:  # polars may hand batches over from several threads
            before, self.rows = self.rows, self.rows + frame.height
            if self.chunk_rows is None:
                self._tell(self.rows)
            else:
                for boundary in range(before // self.chunk_rows + 1, self.rows // self.chunk_rows + 1):
                    self._tell(boundary * self.chunk_rows)
        return frame

    def finish(self, rows: int) -> None:
        """The last, partial chunk; re-raises what `progress` raised during the pass."""
        if self.failed is not None:
            raise self.failed
        if self.chunk_rows is not None and rows % self.chunk_rows:
            self._tell(rows)

    def _tell(self, rows: int) -> None:
        self.chunks += 1
        if self.progress is not None and self.failed is None:
            try:
                self.progress(rows)
            except BaseException as exc:  # raised again after the pass, not inside a polars thread
                self.failed = exc


# --------------------------------------------------------------------------- frames


def _frame(info: SourceInfo, columns: Sequence[str]) -> pl.LazyFrame:
    """The file as a lazy frame of `columns` (schema names, text), plus the file's last field for CSV."""
    path = Path(info.source)
    if info.format == FORMAT_PARQUET:
        lf = pl.scan_parquet(path, glob=False)
        file_schema = lf.collect_schema()
        return lf.select(
            _as_text(pl.col(info.mapped[c]), file_schema[info.mapped[c]], c in CATEGORY_KEYS).alias(c) for c in columns
        )
    # Positional names: the header was already read (and checked) by describe_source, whatever its spelling.
    names = [f"_{i}" for i in range(len(info.columns))]
    position = {c: info.columns.index(info.mapped[c]) for c in columns}
    lf = pl.scan_csv(
        path,
        glob=False,
        infer_schema=False,
        new_columns=names,
        # Categories as Categorical straight from the reader: the group-by keys are then integers,
        # not strings (13.4M rows: 330 MiB instead of 600 MiB peak, and less CPU than String keys).
        schema_overrides={names[position[c]]: pl.Categorical for c in columns if c in CATEGORY_KEYS},
        empty_string_is_null=True,  # a missing field reads as null, a quoted "" as ""; the loader maps both
    )
    return lf.select(*(pl.col(names[position[c]]).alias(c) for c in columns), pl.col(names[-1]).alias(_LAST))


def _as_text(column: pl.Expr, dtype: pl.DataType, category: bool) -> pl.Expr:
    """A Parquet column as text: dates as YYYY-MM-DD (what the date table holds), categories as Categorical
    (integer group keys, as for CSV), anything else cast to String."""
    if dtype.is_temporal() and dtype != pl.Time and dtype != pl.Duration:
        return column.cast(pl.Date).cast(pl.String)
    if category:
        return column.cast(pl.String).cast(pl.Categorical)
    return column if dtype == pl.String else column.cast(pl.String)


def _collect(*frames: pl.LazyFrame) -> list[pl.DataFrame]:
    return pl.collect_all(frames, engine="streaming")


# --------------------------------------------------------------------------- the pass


def _date_codes(dates: Sequence[str], table: tuple[Sequence[str], Sequence[int]]) -> list[pl.Expr]:
    """Per date column its looked-up cell (`month code + KIND_BASE * kind`, 0 = not in the table).

    The lookup is a cast to an Enum of the table's spellings (a cell it lacks becomes
    null), then a gather of the codes: a third cheaper than `replace_strict` (measured).
    """
    spellings = pl.Enum(table[0])
    codes = pl.lit(pl.Series([*table[1], 0], dtype=pl.Int16))  # the last code is for cells not in the table
    missing = len(table[0])
    return [
        codes.gather(pl.col(c).cast(spellings, strict=False).to_physical().fill_null(missing)).alias(f"{c}#code")
        for c in dates
    ]


def _month(column: str) -> pl.Expr:
    return pl.col(f"{column}#code") % case_dates.KIND_BASE


def _case_month(dates: Sequence[str]) -> pl.Expr:
    """cdc_case_earliest_dt where it has a date, else the earliest of the other dates (CDC's own definition)."""
    others = [_month(c) for c in dates if c != "cdc_case_earliest_dt"]
    fallback = pl.min_horizontal(pl.when(m > 0).then(m) for m in others).fill_null(0) if others else pl.lit(0)
    if "cdc_case_earliest_dt" not in dates:
        return fallback.cast(pl.Int16).alias(CASE_MONTH)
    given = _month("cdc_case_earliest_dt")
    return pl.when(given > 0).then(given).otherwise(fallback).cast(pl.Int16).alias(CASE_MONTH)


def _maybe_excluded(dates: Sequence[str]) -> pl.Expr:
    """No onset and no specimen date, status not literally confirmed (False when the file has no such columns)."""
    if "onset_dt" not in dates or "pos_spec_dt" not in dates:  # the file cannot tell; nobody is excluded
        return pl.lit(False).alias(MAYBE_EXCLUDED)
    dateless = (_month("onset_dt") == 0) & (_month("pos_spec_dt") == 0)
    return (dateless & pl.col("current_status").ne_missing(_CONFIRMED)).alias(MAYBE_EXCLUDED)


def _checks(dates: Sequence[str], csv: bool) -> list[pl.Expr]:
    """The pass's checks over all rows: unparsed date cells, spelling kinds seen (one bit per kind), short rows."""
    out = [pl.len().alias("all_rows")]
    bit_of_kind = pl.lit(pl.Series([1 << k for k in range(case_dates.KIND_EMPTY + 1)], dtype=pl.UInt8))
    for c in dates:
        code = pl.col(f"{c}#code")
        out.append(((code == 0) & pl.col(c).is_not_null()).sum().alias(f"{c}#unparsed"))
        out.append(bit_of_kind.gather(code // case_dates.KIND_BASE).bitwise_or().alias(f"{c}#kinds"))
    if csv:  # a row with fewer fields than the header has no last field; so has an unquoted empty last cell
        out.append((pl.col(_LAST).is_null() & ~pl.col("#blank")).sum().alias("maybe_short"))
    return out


def _run(
    info: SourceInfo,
    columns: Sequence[str],
    dates: Sequence[str],
    table: tuple[Sequence[str], Sequence[int]],
    rows: _Rows | None,
) -> tuple[pl.DataFrame, dict[str, int | bool]]:
    """One pass: raw groups (blank lines left out) and the checks."""
    csv = info.format != FORMAT_PARQUET
    lf = _frame(info, (*columns, *dates)).with_columns(*_date_codes(dates, table))
    read = [*columns, *dates, _LAST] if csv else [*columns, *dates]
    # A blank line (or one of bare commas) reads as a row of nulls; pyarrow skipped blank lines, so does this.
    blank = pl.all_horizontal(pl.col(c).is_null() for c in read) if csv else pl.lit(False)
    lf = lf.with_columns(blank.alias("#blank"), _case_month(dates), _maybe_excluded(dates))
    if rows is not None:
        lf = lf.map_batches(rows, streamable=True, schema=lf.collect_schema())
    keys = (*columns, CASE_MONTH, MAYBE_EXCLUDED)
    groups = lf.filter(~pl.col("#blank")).group_by(keys).agg(pl.len().cast(pl.Int64).alias(ROWS))
    found, checks = _collect(groups, lf.select(_checks(dates, csv)))
    return found, checks.row(0, named=True)


def sniff_order(info: SourceInfo, dates: Sequence[str]) -> str:
    """The slash order the first SNIFF_ROWS rows prove (month-first when they prove none)."""
    if not dates:
        return case_dates.FORMAT_MDY
    head = _frame(info, dates).head(SNIFF_ROWS).collect(engine="streaming")
    values = set().union(*(head[c].unique().to_list() for c in dates))
    return case_dates.slash_order(values) or case_dates.FORMAT_MDY


def distinct_dates(info: SourceInfo, dates: Sequence[str]) -> dict[str, dict[str | None, int]]:
    """Every distinct cell of each date column with its row count (one more pass, for the exact reading)."""
    lf = _frame(info, dates)
    found = _collect(*(lf.group_by(c).agg(pl.len().alias(ROWS)) for c in dates))
    return {c: dict(frame.iter_rows()) for c, frame in zip(dates, found, strict=True)}


def first_rows(info: SourceInfo, column: str, raws: Sequence[str | None]) -> dict[str | None, int]:
    """0-based data row of each raw value's first occurrence in `column` (for error messages)."""
    cell = pl.col(column)
    wanted = cell.is_in([r for r in raws if r is not None])
    if None in raws:
        wanted = wanted | cell.is_null()
    lf = _frame(info, [column]).with_row_index("#row").filter(wanted)
    found = lf.group_by(column).agg(pl.col("#row").min()).collect(engine="streaming")
    return dict(found.iter_rows())


def diagnose(info: SourceInfo, columns: Sequence[str]) -> None:
    """Read the file with the loader's pyarrow reader, which names structural problems (raises DataError)."""
    for _ in arrow_batches(info, columns):
        pass


def count_rows(
    info: SourceInfo,
    columns: Sequence[str],
    dates: Sequence[str],
    *,
    progress: Callable[[int], None] | None = None,
    chunk_rows: int | None = None,
) -> Counted:
    """Group the file by raw `columns`, case month and MAYBE_EXCLUDED; read the dates; check the structure."""
    rows, csv = _Rows(progress, chunk_rows), info.format != FORMAT_PARQUET
    try:
        order = sniff_order(info, dates)
        groups, checks = _run(info, columns, dates, case_dates.spelling_table(order), rows)
    except (pl.exceptions.PolarsError, OSError) as exc:
        diagnose(info, (*columns, *dates))
        raise DataError(f"{info.source}: the file cannot be read ({exc}).") from exc
    if checks.get("maybe_short"):
        diagnose(info, (*columns, *dates))  # raises if a row really is short; unquoted empty last cells are fine
    total = int(groups[ROWS].sum())
    rows.finish(total)
    if total == 0:
        raise _no_rows(info.source)
    kinds = {c: {k for k in range(case_dates.KIND_EMPTY + 1) if (checks[f"{c}#kinds"] or 0) >> k & 1} for c in dates}
    exact = any(checks[f"{c}#unparsed"] or case_dates.KIND_CONTRARY in kinds[c] for c in dates)
    if not exact:
        reading = case_dates.reading_from_kinds(tuple(dates), order, kinds)
        return Counted(groups, total, rows.chunks, reading, csv)
    reading, table = case_dates.exact_table(distinct_dates(info, dates))
    groups, _ = _run(info, columns, dates, (list(table), list(table.values())), None)
    return Counted(groups, total, rows.chunks, reading, csv)
