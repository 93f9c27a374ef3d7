"""Case dates from CDC date columns, as month codes, without touching rows in Python.

CDC files write dates three ways: `YYYY/MM/DD` (current releases), `M/D/YYYY`
(BI-tool exports such as the first-wave extract) and `DD/MM/YYYY` (some 2020
copies); Parquet files carry real dates. Each chunk's *distinct* strings are
parsed once (dates repeat thousands of times), and the slash order is decided
per file from the first value that only one order can read (a first field
over 12 means day-first, a second field over 12 month-first).

A month code is 0 for "no usable date", else months since December 2019
(1 = 2019-12). Dates are never model inputs: an unreadable date is counted in
the load report and treated as absent, it does not reject the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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


@dataclass
class FileDates:
    """Turns a file's date columns into month codes; one day/month order per file, decided from any column."""

    columns: tuple[str, ...]
    slash_order: str | None = None  # FORMAT_MDY or FORMAT_DMY once decided
    formats: dict[str, set[str]] = field(default_factory=dict)
    unreadable: dict[str, int] = field(default_factory=dict)
    ambiguous_assumed: bool = False
    # value -> month code, across chunks: a date repeats in every chunk (filled once the order is known)
    _cache: dict[str, tuple[int, str]] = field(default_factory=dict)

    def month_codes(self, arrays: list[pa.Array]) -> dict[str, np.ndarray]:
        """Month code per row for each date column (arrays in `columns` order)."""
        encoded = []
        for array in arrays:
            if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
                array = array.cast(pa.string())  # Parquet dates/timestamps print as ISO
            encoded.append(pc.dictionary_encode(array, null_encoding="encode"))
        distinct = [e.dictionary.to_pylist() for e in encoded]
        if self.slash_order is None:
            self._decide_order([v for values in distinct for v in values])
        out = {}
        for column, values, enc in zip(self.columns, distinct, encoded, strict=True):
            seen = self.formats.setdefault(column, set())
            per_value = np.fromiter((self._cached(v, seen) for v in values), dtype=np.int16, count=len(values))
            indices = enc.indices.to_numpy(zero_copy_only=False)
            bad = [i for i, v in enumerate(values) if per_value[i] == NO_DATE and v and v.strip()]
            if bad:
                self.unreadable[column] = self.unreadable.get(column, 0) + int(np.isin(indices, bad).sum())
            out[column] = per_value[indices]
        return out

    def _cached(self, value: str | None, seen: set[str]) -> int:
        hit = self._cache.get(value) if value else None
        if hit is not None:
            seen.add(hit[1])
            return hit[0]
        found: set[str] = set()
        code = self._parse(value, found)
        seen |= found
        # A slash date read before the day/month order was known may be read differently later.
        if value and found and (self.slash_order is not None or not _SLASH.match(value)):
            self._cache[value] = (code, next(iter(found)))
        return code

    def _decide_order(self, values: list[str | None]) -> None:
        day_first = month_first = False
        for value in values:
            match = _SLASH.match(value or "")
            if match:
                day_first |= int(match.group(1)) > 12
                month_first |= int(match.group(2)) > 12
        if day_first != month_first:
            self.slash_order = FORMAT_DMY if day_first else FORMAT_MDY

    def _parse(self, value: str | None, seen: set[str]) -> int:
        if not value:
            return NO_DATE
        match = _ISO.match(value)
        if match:
            year, month, day = (int(g) for g in match.groups())
            seen.add(FORMAT_ISO)
        else:
            match = _SLASH.match(value)
            if not match:
                return NO_DATE
            first, second, year = (int(g) for g in match.groups())
            if self.slash_order is None:  # nothing so far tells the order: US order, and say so
                self.ambiguous_assumed = True
            order = self.slash_order or FORMAT_MDY
            month, day = (first, second) if order == FORMAT_MDY else (second, first)
            seen.add(order)
        if not (1 <= month <= 12 and 1 <= day <= 31):
            return NO_DATE
        return month_code(year, month)

    def report(self) -> dict[str, dict[str, object]]:
        out: dict[str, dict[str, object]] = {}
        for column in self.columns:
            entry: dict[str, object] = {
                "formats": sorted(self.formats.get(column, ())),
                "unreadable": self.unreadable.get(column, 0),
            }
            if self.ambiguous_assumed and FORMAT_MDY in self.formats.get(column, ()):
                entry["note"] = "day/month order could not be told apart in the first rows; read as month-first (US)"
            out[column] = entry
        return out


def earliest(codes: list[np.ndarray]) -> np.ndarray:
    """Per row, the earliest non-zero month code across columns (0 where none has a date)."""
    stacked = np.vstack([np.where(c == NO_DATE, np.int16(MONTH_CODES), c) for c in codes])
    first = stacked.min(axis=0)
    return np.where(first == MONTH_CODES, NO_DATE, first).astype(np.int16)
