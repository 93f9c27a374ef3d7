"""Case dates from CDC date columns: month codes, the file's day/month order, and what was unreadable.

CDC files write dates three ways: `YYYY/MM/DD` (current releases), `M/D/YYYY`
(BI-tool exports such as the first-wave extract) and `DD/MM/YYYY` (some 2020
copies); Parquet files carry real dates. The slash order is one per file: a
first field over 12 anywhere means day-first, a second field over 12 month-first;
a file where nothing tells them apart is read month-first (US) and the report
says so.

Nothing here touches rows. The loader's single pass (`model.data.scan`) looks every
cell up in `spelling_table` (every date CDC can write from 2019-12 to 2030-12 in
the ISO and one slash order, a hash lookup per cell instead of a regex); a cell
the table does not hold is counted as "unparsed". Only then are the file's
*distinct* date strings parsed here one by one with the full rules
(`parse`: blanks around, a time after the date, unpadded fields, out-of-range
years), and the pass is repeated with their exact codes (`exact_table`).

A month code is 0 for "no usable date", else months since December 2019
(1 = 2019-12). Dates are never model inputs: an unreadable date is counted in
the load report and treated as absent, it does not reject the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

FIRST_YEAR = 2019
FIRST_MONTH = 12  # code 1 is 2019-12: the first cases
LAST_YEAR = 2030
NO_DATE = 0
MONTH_CODES = (LAST_YEAR - FIRST_YEAR) * 12 + 2  # 0 plus every month up to 2030-12

_ISO = re.compile(r"^\s*(\d{4})[/-](\d{1,2})[/-](\d{1,2})(?:[ T].*)?\s*$")
_SLASH = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/(\d{4})(?:\s.*)?\s*$")
FORMAT_ISO = "YYYY/MM/DD"
FORMAT_MDY = "M/D/YYYY"
FORMAT_DMY = "DD/MM/YYYY"
NOTE_ASSUMED = "day/month order could not be told apart in any date of the file; read as month-first (US)"

# A looked-up cell is `month code + KIND_BASE * kind`: the code, and what the spelling says about the file.
KIND_BASE = 256
KIND_ISO = 1  # YYYY/MM/DD or YYYY-MM-DD
KIND_SLASH = 2  # a slash date both orders could read (both fields <= 12)
KIND_SLASH_SURE = 3  # a slash date only the table's order reads (proves the order)
KIND_CONTRARY = 4  # a slash date only the other order reads (the table's order is wrong for this file)
KIND_EMPTY = 5  # a quoted empty cell: no date, and nothing unreadable about it


def month_code(year: int, month: int) -> int:
    """Month code of a calendar month (0 when outside 2019-12 .. 2030-12)."""
    code = (year - FIRST_YEAR) * 12 + (month - FIRST_MONTH) + 1
    return code if 1 <= code < MONTH_CODES else NO_DATE


def month_label(code: int) -> str:
    """'YYYY-MM' of a month code; 'unknown' for 0."""
    if code == NO_DATE:
        return "unknown"
    months = code - 1 + (FIRST_MONTH - 1)
    return f"{FIRST_YEAR + months // 12:04d}-{months % 12 + 1:02d}"


def slash_order(values: Iterable[str | None]) -> str | None:
    """The day/month order the values prove (FORMAT_DMY / FORMAT_MDY), or None when none or both are proven."""
    day_first = month_first = False
    for value in values:
        match = _SLASH.match(value or "")
        if match:
            day_first |= int(match.group(1)) > 12
            month_first |= int(match.group(2)) > 12
    if day_first == month_first:
        return None
    return FORMAT_DMY if day_first else FORMAT_MDY


def parse(value: str | None, order: str) -> tuple[int, str | None]:
    """Month code of one cell read with slash order `order`, and the format it matched (None: no date pattern).

    A cell matching a pattern with an impossible month or day, or a year outside
    the code range, has a format but code 0: it is unreadable.
    """
    if not value:
        return NO_DATE, None
    match = _ISO.match(value)
    if match:
        year, month, day = (int(g) for g in match.groups())
        fmt = FORMAT_ISO
    else:
        match = _SLASH.match(value)
        if not match:
            return NO_DATE, None
        first, second, year = (int(g) for g in match.groups())
        month, day = (first, second) if order == FORMAT_MDY else (second, first)
        fmt = order
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return NO_DATE, fmt
    return month_code(year, month), fmt


@lru_cache(maxsize=2)
def spelling_table(order: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Every readable date spelling (padded or not; ISO with / or -; slash dates both ways) -> encoded code.

    Slash dates are read in `order`; those only the other order can read are
    KIND_CONTRARY with code 0, so a pass that meets one knows it must start over.
    Days run to 31 in every month, as `parse` allows.
    """
    table: dict[str, int] = {}
    for year in range(FIRST_YEAR, LAST_YEAR + 1):
        for month in range(1, 13):
            code = month_code(year, month)
            if code == NO_DATE:
                continue
            for day in range(1, 32):
                for m in {f"{month}", f"{month:02d}"}:
                    for d in {f"{day}", f"{day:02d}"}:
                        table[f"{year}/{m}/{d}"] = table[f"{year}-{m}-{d}"] = code + KIND_BASE * KIND_ISO
                        _add_slash(table, order, code, m, d, year, day)
    table[""] = KIND_BASE * KIND_EMPTY
    return tuple(table), tuple(table.values())


def _add_slash(table: dict[str, int], order: str, code: int, m: str, d: str, year: int, day: int) -> None:
    """Put date (year, month m, day d) into the table as written in `order`, and as the other order writes it."""
    month_first, day_first = f"{m}/{d}/{year}", f"{d}/{m}/{year}"
    ours, theirs = (month_first, day_first) if order == FORMAT_MDY else (day_first, month_first)
    table[ours] = code + KIND_BASE * (KIND_SLASH_SURE if day > 12 else KIND_SLASH)
    if day > 12:  # only the other order reads this spelling
        table.setdefault(theirs, KIND_BASE * KIND_CONTRARY)


@dataclass
class DateReading:
    """How a file's date columns were read: the slash order, formats seen and unreadable cells per column."""

    columns: tuple[str, ...]
    order: str = FORMAT_MDY
    assumed: bool = False  # no date told the order apart: month-first was assumed
    formats: dict[str, set[str]] = field(default_factory=dict)
    unreadable: dict[str, int] = field(default_factory=dict)

    def report(self) -> dict[str, dict[str, object]]:
        """Per date column: {"formats": [...], "unreadable": n[, "note"]} (the load report's `dates`)."""
        out: dict[str, dict[str, object]] = {}
        for column in self.columns:
            formats = self.formats.get(column, set())
            entry: dict[str, object] = {"formats": sorted(formats), "unreadable": self.unreadable.get(column, 0)}
            if self.assumed and self.order in formats:
                entry["note"] = NOTE_ASSUMED
            out[column] = entry
        return out


def reading_from_kinds(columns: tuple[str, ...], order: str, kinds: Mapping[str, set[int]]) -> DateReading:
    """The reading of a pass where every cell was in `spelling_table(order)` (kinds seen per column)."""
    slash = any(k in (KIND_SLASH, KIND_SLASH_SURE) for seen in kinds.values() for k in seen)
    proven = any(KIND_SLASH_SURE in seen for seen in kinds.values())
    reading = DateReading(columns, order=order, assumed=slash and not proven)
    for column in columns:
        seen = kinds.get(column, set())
        reading.formats[column] = {FORMAT_ISO} if KIND_ISO in seen else set()
        if seen & {KIND_SLASH, KIND_SLASH_SURE}:
            reading.formats[column].add(order)
    return reading


def exact_table(distinct: Mapping[str, Mapping[str | None, int]]) -> tuple[DateReading, dict[str, int]]:
    """Read every distinct cell of every date column with the full rules; {cell: encoded code} for the re-run.

    `distinct` is column -> {cell -> rows}. The order is decided over every cell of the file.
    """
    columns = tuple(distinct)
    decided = slash_order(v for cells in distinct.values() for v in cells)
    reading = DateReading(columns, order=decided or FORMAT_MDY)
    table: dict[str, int] = {}
    for column, cells in distinct.items():
        seen = reading.formats.setdefault(column, set())
        bad = 0
        for value, rows in cells.items():
            code, fmt = parse(value, reading.order)
            if fmt:
                seen.add(fmt)
                reading.assumed |= decided is None and fmt != FORMAT_ISO
            if code != NO_DATE and value is not None:  # parse gives a code only to a non-empty cell
                table[value] = code + KIND_BASE * (KIND_ISO if fmt == FORMAT_ISO else KIND_SLASH)
            elif value and value.strip():
                bad += rows
        reading.unreadable[column] = bad
    return reading, table
