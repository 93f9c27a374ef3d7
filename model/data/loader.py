"""Reader of CDC case-surveillance files → canonical values and counts.

Reads every CDC schema version (current, and the 2020 one with
"Race and ethnicity (combined)") from CSV, gzip-compressed CSV or Parquet.
Rows are never touched in Python.

Two entry points:

* `load_counts(path)` → the counts table of docs/ARCHITECTURE.md + `LoadReport`
  (training). One polars streaming pass over the file (`model.data.scan`) groups it by
  the raw category strings, case month and an intake flag, with the checks as
  aggregations over the same pass; the few distinct raw spellings are then mapped
  onto schema values here (`schema.canonical_value`), and unknown ones named with
  their counts.
* `iter_canonical_batches(path, ...)` → canonical per-row batches (batch scoring,
  monitoring); streamed chunk by chunk with pyarrow (`arrow_batches`), each
  chunk dictionary-encoded so only its distinct raw values are mapped; it can mark
  unrecognised rows instead of raising. The same pyarrow reader names structural
  problems of files the polars pass cannot read.

Anything not recognised raises `DataError` saying what, where, how many, and
how to fix it. A file whose every outcome is unknown is NOT an error here:
`load_counts` returns an empty table and a report whose `rows_dropped` explains
why; deciding that there is nothing to train on is the trainer's call.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import re
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from model.core import schema
from model.data import case_dates

__all__ = [
    "CanonicalBatch",
    "ColumnCoder",
    "DataError",
    "LoadReport",
    "SourceInfo",
    "arrow_batches",
    "describe_source",
    "file_sha256",
    "iter_canonical_batches",
    "load_counts",
    "mark_problems",
]

# CSV block size. pyarrow's streaming reader parses many blocks ahead of the
# consumer, so its memory grows with the block size (measured on 2 cores: pool
# peak ~160 MB at 4 MiB, ~440 MB at 16 MiB, independent of file length); 4 MiB
# (~30k rows) keeps per-chunk Python overhead negligible and memory small.
CSV_BLOCK_BYTES = 4 << 20
PARQUET_BATCH_ROWS = 256 * 1024
SNIFF_BYTES = 64 << 10
HASH_BLOCK_BYTES = 1 << 20
NULL_KEY = "(null)"  # how a Parquet null is named in reports (JSON keys must be strings)
MAX_LISTED = 10  # offending values listed in one message

FORMAT_CSV = "csv"
FORMAT_CSV_GZ = "csv.gz"
FORMAT_PARQUET = "parquet"
VARIANT_CURRENT = "current"
VARIANT_LEGACY = "legacy-2020"

_CSV_SUFFIXES = (".csv", ".txt", ".tsv")
_PARQUET_SUFFIXES = (".parquet", ".pq")
# Magic bytes of files people upload by mistake → what to tell them.
_FOREIGN_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a ZIP archive (or an Excel .xlsx workbook); unzip it / export the sheet as CSV"),
    (b"\xd0\xcf\x11\xe0", "an old Excel/Office document; export it as CSV"),
    (b"%PDF", "a PDF document; download the CSV data file instead"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"BZh", "bzip2-compressed; decompress it (bunzip2) or re-compress with gzip"),
    (b"\xfd7zXZ\x00", "xz-compressed; decompress it (unxz) or re-compress with gzip"),
    (b"(\xb5/\xfd", "zstd-compressed; decompress it (unzstd) or re-compress with gzip"),
    (b"7z\xbc\xaf", "a 7-Zip archive; extract the CSV first"),
    (b"SQLite format 3\x00", "an SQLite database; export the table as CSV"),
)


class DataError(ValueError):
    """The input file cannot be used; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class SourceInfo:
    """What the header of a file told us (no rows read yet)."""

    source: str
    format: str  # "csv" | "csv.gz" | "parquet"
    schema_variant: str  # "current" | "legacy-2020"
    columns: tuple[str, ...]  # header as found in the file
    mapped: dict[str, str]  # schema column -> header name in the file
    renamed_columns: dict[str, str]  # header name -> schema column, where they differ
    ignored_columns: tuple[str, ...]  # header names the loader does not use


@dataclass
class LoadReport:
    """What `load_counts` read, used, dropped and re-spelled (goes into the model card)."""

    source: str
    sha256: str
    format: str
    schema_variant: str
    rows_read: int = 0
    rows_used: int = 0
    rows_dropped: dict[str, int] = field(default_factory=dict)
    # column -> {raw spelling -> {canonical spelling -> rows}}
    normalised: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    renamed_columns: dict[str, str] = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)
    chunks: int = 0
    # known-outcome rows outside the intake population (schema.INTAKE_EXCLUSION); part of rows_used
    known_outcome_outside_intake: int = 0
    # date column -> {"formats": [...], "unreadable": n[, "note"]}
    dates: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CanonicalBatch:
    """One chunk of rows in canonical spelling.

    `frame` has the requested schema columns as pandas Categoricals whose
    categories are the schema values in display order; its index is the 0-based
    data-row number in the file (header excluded). With on_unknown="mark",
    unrecognised cells are NaN and `problems` says why per row ("" = row fine);
    with on_unknown="raise", `problems` is None.
    """

    frame: pd.DataFrame
    problems: pd.Series | None
    row_start: int
    source: SourceInfo


# --------------------------------------------------------------------------- sniffing


def _values_of(column: str) -> tuple[str, ...]:
    return schema.TARGET_VALUES if column == schema.TARGET else schema.FEATURES_BY_NAME[column].values


def _known_columns() -> dict[str, str]:
    """Folded header spelling -> schema column (current names, dates and old aliases)."""
    names = (*schema.CURRENT_SCHEMA_COLUMNS, *schema.ALL_COLUMNS, schema.TARGET)
    known = {_fold(n): n for n in names}
    known.update({_fold(alias): target for alias, target in schema.COLUMN_ALIASES.items()})
    return known


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


def _detect_format(path: Path, head: bytes) -> str:
    name = path.name.lower()
    says_parquet = name.endswith(_PARQUET_SUFFIXES)
    says_gzip = name.endswith(".gz")
    says_csv = name.endswith(_CSV_SUFFIXES) or name.endswith(tuple(s + ".gz" for s in _CSV_SUFFIXES))
    if head.startswith(b"PAR1"):
        if says_csv or says_gzip:
            raise DataError(
                f"{path}: not a CSV file: it is a Parquet file named {path.name!r}. "
                "Rename it to end in .parquet so it is read as Parquet."
            )
        return FORMAT_PARQUET
    if says_parquet:
        raise DataError(
            f"{path}: named {path.name!r} but it is not a Parquet file (no 'PAR1' signature). "
            "If it is a CSV file, rename it to .csv; otherwise re-export it as Parquet."
        )
    if head.startswith(b"\x1f\x8b"):
        return FORMAT_CSV_GZ  # content decides: a gzip CSV without .gz is still readable
    if says_gzip:
        raise DataError(
            f"{path}: named {path.name!r} but it is not gzip-compressed (no gzip signature). "
            "If it is plain CSV, rename it to .csv; otherwise re-download the file."
        )
    for magic, what in _FOREIGN_MAGIC:
        if head.startswith(magic):
            raise DataError(f"{path}: not a CSV file: it is {what}.")
    return FORMAT_CSV


def _gzip_head(path: Path, raw: bytes) -> bytes:
    """First decompressed bytes of a gzip file; corrupt gzip -> DataError."""
    try:
        return zlib.decompressobj(wbits=31).decompress(raw, SNIFF_BYTES)
    except zlib.error as exc:
        raise DataError(
            f"{path}: the gzip data is corrupt ({exc}). Re-download or re-compress the file (gzip -t FILE checks it)."
        ) from exc


def _csv_header(path: Path, text_head: bytes) -> list[str]:
    """The header row's column names; DataError saying what the file is instead when it is not a CDC CSV."""
    header = _header_line(path, text_head)
    _refuse_other_text(path, header)
    names = next(csv.reader([header]))
    if len(names) == 1:
        _refuse_other_delimiter(path, names[0])
    return names


def _header_line(path: Path, text_head: bytes) -> str:
    """The first line as text; DataError for an empty or binary file, no line break, or bytes that are not UTF-8."""
    if not text_head:
        raise DataError(f"{path}: the file is empty (0 bytes of data). Give a CDC CSV file with a header row.")
    if b"\x00" in text_head:
        raise DataError(
            f"{path}: not a CSV file: it contains binary data (NUL bytes). Give the CDC data as CSV "
            "(optionally .csv.gz) or Parquet."
        )
    line, newline, _ = text_head.partition(b"\n")
    if not newline and len(text_head) >= SNIFF_BYTES:
        raise DataError(
            f"{path}: not a CSV file: no line break in the first {SNIFF_BYTES // 1024} KiB, "
            "so there is no header row. Give the CDC data as CSV, CSV.gz or Parquet."
        )
    try:
        return line.decode("utf-8-sig").strip("\r")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not a CSV file, or not UTF-8 text: the header row has byte {exc.object[exc.start]:#04x} "
            "that is not UTF-8. Re-save the file as UTF-8 CSV."
        ) from exc


def _refuse_other_text(path: Path, header: str) -> None:
    """DataError when the first line is an HTML/XML page, JSON, or blank: text, but not a CSV header."""
    lowered = header.lstrip().lower()
    if lowered.startswith(("<!doctype html", "<html", "<head", "<body", "<?xml")):
        raise DataError(
            f"{path}: not a CSV file: it is an HTML/XML page (often a login or error page saved "
            "instead of the download). Download the CSV data file itself."
        )
    if lowered.startswith(("{", "[")):
        raise DataError(f"{path}: not a CSV file: it looks like JSON. Export the data as CSV or Parquet.")
    if not header.strip():
        raise DataError(f"{path}: the first line is blank, so there is no header row. Remove leading blank lines.")


def _refuse_other_delimiter(path: Path, only_column: str) -> None:
    """DataError when a one-column header holds another delimiter (CDC files are comma-separated)."""
    for delimiter, label in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
        if delimiter in only_column:
            raise DataError(
                f"{path}: the header is one single column containing {label}: the file uses "
                f"{delimiter!r} as delimiter but CDC files are comma-separated. Re-export it with "
                "commas as the delimiter (e.g. pandas: read_csv(sep=...).to_csv(index=False))."
            )


def describe_source(path: str | Path) -> SourceInfo:
    """Sniff a file's format and header and map its columns onto the schema (reads no rows)."""
    path = Path(path)
    if not path.is_file():
        raise _not_a_file(path)
    with path.open("rb") as handle:
        raw = handle.read(SNIFF_BYTES)
    if not raw:
        raise DataError(f"{path}: the file is empty (0 bytes). Give a CDC CSV file with a header row.")
    fmt = _detect_format(path, raw)
    arrow_schema: pa.Schema | None = None
    if fmt == FORMAT_PARQUET:
        try:
            arrow_schema = pq.ParquetFile(path).schema_arrow
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{path}: the Parquet file is corrupt or truncated ({exc}). Re-export it.") from exc
        names = list(arrow_schema.names)
    else:
        head = _gzip_head(path, raw) if fmt == FORMAT_CSV_GZ else raw
        names = _csv_header(path, head)

    known = _known_columns()
    mapped: dict[str, str] = {}
    renamed: dict[str, str] = {}
    ignored: list[str] = []
    for name in names:
        target = known.get(_fold(name))
        if target is None:
            ignored.append(name)
            continue
        if target in mapped:
            raise DataError(
                f"{path}: columns {mapped[target]!r} and {name!r} both mean {target!r}. Keep only one of them."
            )
        mapped[target] = name
        if name != target:
            renamed[name] = target
    if arrow_schema is not None:
        _check_cell_types(path, arrow_schema, mapped)
    aliases = {_fold(a) for a in schema.COLUMN_ALIASES}
    legacy = any(_fold(name) in aliases for name in renamed)
    return SourceInfo(
        source=str(path),
        format=fmt,
        schema_variant=VARIANT_LEGACY if legacy else VARIANT_CURRENT,
        columns=tuple(names),
        mapped=mapped,
        renamed_columns=renamed,
        ignored_columns=tuple(ignored),
    )


def _not_a_file(path: Path) -> DataError:
    """Why `path` cannot be read as a data file: missing, a folder, or not a regular file."""
    if not path.exists():
        return DataError(f"{path}: no such file. Give the path of a CDC case surveillance file.")
    if path.is_dir():
        return DataError(f"{path}: is a folder, not a file. Give the path of a CDC data file inside it.")
    target = f" (it points to {path.resolve()})" if path.is_symlink() else ""
    return DataError(
        f"{path}: not a regular file{target}: a device, pipe or socket cannot be read as data. "
        "Give the path of a CDC CSV, CSV.gz or Parquet file."
    )


def _check_cell_types(path: Path, arrow_schema: pa.Schema, mapped: dict[str, str]) -> None:
    """A Parquet column the loader uses must hold one scalar per cell, not lists, structs or maps."""
    for column, name in mapped.items():
        kind = arrow_schema.field(name).type
        if pa.types.is_nested(kind):
            valued = column in (*schema.ALL_COLUMNS, schema.TARGET)
            example = f" such as {_values_of(column)[0]!r}" if valued else ""
            raise DataError(
                f"{path}: column {name!r} holds {kind} values, not one value per cell. Each cell must be a single "
                f"value{example}: flatten the column (e.g. take each list's only element) and re-export the file."
            )


def _require(info: SourceInfo, needed: Sequence[str], purpose: str) -> None:
    missing = [c for c in needed if c not in info.mapped]
    if not missing:
        return
    hints = []
    for name in missing:
        close = difflib.get_close_matches(name, info.columns, n=1, cutoff=0.6)
        if close:
            hints.append(f"{close[0]!r} looks like {name!r}")
    alias_text = ", ".join(f"{old!r} for {new!r}" for old, new in schema.COLUMN_ALIASES.items())
    raise DataError(
        f"{info.source}: missing required column(s) {', '.join(missing)} ({purpose}). "
        f"Found columns: {', '.join(info.columns) or '(none)'}. "
        + (f"Possible renames: {'; '.join(hints)}. " if hints else "")
        + f"The loader reads the current CDC schema ({', '.join(schema.CURRENT_SCHEMA_COLUMNS)}) and the "
        f"2020 schema (which used {alias_text} and had no cdc_case_earliest_dt); extra columns are ignored. "
        "Rename the columns or export the file with these headers."
    )


# --------------------------------------------------------------------------- streaming


def arrow_batches(
    info: SourceInfo, columns: Sequence[str] | None, chunk_rows: int | None = None
) -> Iterator[pa.RecordBatch]:
    """Stream the file as record batches of at most chunk_rows rows (CSV cells stay text).

    With `columns` (schema names): only those, renamed to schema names, in that order.
    With None: every column of the file, named and ordered as written (batch scoring
    writes rows back out as they were read). Raises DataError for an unreadable file
    or one with a header but no rows.
    """
    if chunk_rows is not None and chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive number of rows, not {chunk_rows}")
    raw_names = list(info.columns) if columns is None else [info.mapped[c] for c in columns]
    names = raw_names if columns is None else list(columns)
    path = Path(info.source)
    rows = 0
    try:
        if info.format == FORMAT_PARQUET:
            reader: Iterator[pa.RecordBatch] = pq.ParquetFile(path).iter_batches(
                batch_size=chunk_rows or PARQUET_BATCH_ROWS, columns=None if columns is None else raw_names
            )
        else:
            stream = pa.input_stream(path, compression="gzip" if info.format == FORMAT_CSV_GZ else None)
            reader = pa_csv.open_csv(
                stream,
                read_options=pa_csv.ReadOptions(block_size=CSV_BLOCK_BYTES),
                # A quoted value may hold a line break; without this a break that lands at a block
                # boundary splits the row and a valid file is rejected (no measurable cost on 2M rows).
                parse_options=pa_csv.ParseOptions(newlines_in_values=True),
                convert_options=pa_csv.ConvertOptions(
                    include_columns=None if columns is None else raw_names,
                    column_types=dict.fromkeys(raw_names, pa.string()),
                    strings_can_be_null=False,  # keeps "NA" and "" as text; canonical_value decides
                ),
            )
        for batch in reader:
            if columns is not None:
                # Columns come back in include order; name them by schema column.
                batch = pa.RecordBatch.from_arrays(
                    [batch.column(batch.schema.get_field_index(n)) for n in raw_names], names=names
                )
            step = chunk_rows or batch.num_rows or 1
            for offset in range(0, batch.num_rows, step):
                piece = batch.slice(offset, step)
                rows += piece.num_rows
                yield piece
    except (pa.ArrowException, OSError) as exc:
        raise _stream_error(info, exc, rows) from exc
    if rows == 0:
        raise _no_rows(info.source)


def _no_rows(source: str) -> DataError:
    return DataError(f"{source}: no data rows: the file has a header but no rows. Give a file with case rows.")


def _stream_error(info: SourceInfo, exc: Exception, rows: int) -> DataError:
    text = str(exc)
    # pyarrow numbers the file's columns from 0; say their names instead.
    column = re.search(r"In CSV column #(\d+)", text)
    if column and int(column.group(1)) < len(info.columns):
        text = text.replace(column.group(0), f"In column {info.columns[int(column.group(1))]!r}")
    where = f"{info.source}: in the first block of rows" if rows == 0 else f"{info.source}: after {rows:,} rows"
    if rows == 0 and "Empty CSV file" in text:
        return _no_rows(info.source)  # pyarrow's wording for a lone header line without a newline
    if "straddling object" in text:  # a row that does not fit in one read block
        return DataError(
            f"{where}: a single line is longer than {CSV_BLOCK_BYTES >> 20} MiB (or an opening quote is never "
            "closed, so the rest of the file reads as one value). CDC rows are a few hundred bytes: check that "
            "the file has line breaks and balanced quotes, or that it is the CDC CSV export at all."
        )
    if "Expected" in text and "columns, got" in text:
        return DataError(
            f"{where}: a row has a different number of fields than the header ({text.splitlines()[0]}). "
            "Check that values containing commas are quoted and that no line is truncated."
        )
    if "UTF8" in text or "UTF-8" in text:
        return DataError(f"{where}: the file is not UTF-8 text ({text}). Re-save it as UTF-8 CSV.")
    if info.format == FORMAT_CSV_GZ:
        return DataError(
            f"{where}: the gzip data is corrupt or truncated ({text}). Re-download or re-compress the file "
            "(gzip -t FILE checks it)."
        )
    if info.format == FORMAT_PARQUET:
        return DataError(f"{where}: the Parquet file cannot be read ({text}). Re-export it.")
    return DataError(f"{where}: the file cannot be parsed as CSV ({text}).")


class ColumnCoder:
    """Maps one column's raw cells onto schema codes, remembering re-spellings and rejects."""

    def __init__(self, column: str) -> None:
        self.column = column
        self.values = _values_of(column)
        self.normalised: dict[str, dict[str, int]] = {}
        self.unknown: dict[str, int] = {}
        self.unknown_first_row: dict[str, int] = {}

    def _lookup(self, raw: str | None) -> int:
        return schema.canonical_code(self.column, raw)

    def encode(self, array: pa.Array, row_start: int) -> tuple[np.ndarray, np.ndarray | None, list, np.ndarray]:
        """Codes per row (-1 = unrecognised), bad-row mask (None if all fine), distinct raws, row→distinct."""
        if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
            array = array.cast(pa.string())  # Parquet dictionary/other types
        encoded = pc.dictionary_encode(array, null_encoding="encode")
        distinct = encoded.dictionary.to_pylist()
        indices = encoded.indices.to_numpy(zero_copy_only=False)
        entry_codes = np.fromiter((self._lookup(v) for v in distinct), dtype=np.int64, count=len(distinct))
        codes = entry_codes[indices]
        respelled = [i for i, v in enumerate(distinct) if entry_codes[i] >= 0 and v != self.values[entry_codes[i]]]
        bad_entries = np.flatnonzero(entry_codes < 0)
        if respelled or bad_entries.size:
            per_entry = np.bincount(indices, minlength=len(distinct))
            for i in respelled:
                raw = NULL_KEY if distinct[i] is None else distinct[i]
                slot = self.normalised.setdefault(raw, {})
                canonical = self.values[entry_codes[i]]
                slot[canonical] = slot.get(canonical, 0) + int(per_entry[i])
        if not bad_entries.size:
            return codes, None, distinct, indices
        bad = codes < 0
        bad_idx = indices[bad]
        uniq, first = np.unique(bad_idx, return_index=True)
        bad_rows = np.flatnonzero(bad)
        for entry, pos in zip(uniq.tolist(), first.tolist(), strict=True):
            raw = NULL_KEY if distinct[entry] is None else distinct[entry]
            self.unknown[raw] = self.unknown.get(raw, 0) + int(per_entry[entry])
            self.unknown_first_row.setdefault(raw, row_start + int(bad_rows[pos]))
        return codes, bad, distinct, indices

    def error(self, source: str, scope: str) -> DataError:
        total = sum(self.unknown.values())
        ranked = sorted(self.unknown.items(), key=lambda kv: -kv[1])
        listed = ", ".join(
            f"{_show(raw)} ×{n:,} (first at data row {self.unknown_first_row[raw] + 1:,})"
            for raw, n in ranked[:MAX_LISTED]
        )
        more = f" and {len(ranked) - MAX_LISTED} more distinct values" if len(ranked) > MAX_LISTED else ""
        return DataError(
            f"{source}: column {self.column!r} has {total:,} row(s) {scope} with unrecognised value(s): "
            f"{listed}{more}. Allowed values: {', '.join(self.values)} (case and surrounding blanks are "
            "forgiven; an empty cell counts as Missing where Missing is allowed). Fix or remove these rows, "
            "or map them onto an allowed value."
        )


def _show(raw: str) -> str:
    return repr(raw if len(raw) <= 60 else raw[:57] + "...")


# --------------------------------------------------------------------------- hashing


def file_sha256(path: str | Path, stop: threading.Event | None = None) -> str:
    """sha256 of the file's bytes, streamed in 1 MiB blocks (constant memory); "" if `stop` is set meanwhile."""
    digest = hashlib.sha256()
    buffer = bytearray(HASH_BLOCK_BYTES)
    view = memoryview(buffer)
    with Path(path).open("rb", buffering=0) as handle:
        while n := handle.readinto(buffer):
            if stop is not None and stop.is_set():
                return ""
            digest.update(view[:n])
    return digest.hexdigest()


class _BackgroundHash:
    """`file_sha256` in a thread while the polars pass runs; stopped if the load fails.

    hashlib releases the GIL, and the streaming pass leaves part of the 2 cores idle:
    measured on the 2M-row file, 0.3-0.45 s less wall time than hashing after the pass,
    the same CPU time. (With the old pyarrow chunk loop a concurrent hash was slower.)
    """

    def __init__(self, path: str) -> None:
        self._stop = threading.Event()
        self._sha: str | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(path,), name="sha256", daemon=True)

    def _run(self, path: str) -> None:
        try:
            self._sha = file_sha256(path, self._stop)
        except BaseException as exc:  # handed to the caller by result()
            self._error = exc

    def __enter__(self) -> _BackgroundHash:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None:
            self._stop.set()
        self._thread.join()

    def result(self) -> str:
        """The digest (waits for it; call after leaving the `with` block)."""
        if self._error is not None:
            raise self._error
        return self._sha or ""


# --------------------------------------------------------------------------- public API


COUNT_COLUMNS: tuple[str, ...] = (*schema.ALL_COLUMNS, schema.TARGET)
# Columns of the counts table besides schema.ALL_COLUMNS (see docs/ARCHITECTURE.md).
CASE_MONTH = "case_month"  # "YYYY-MM" of the case date, or "unknown"
INTAKE_POPULATION = "intake_population"  # False for rows excluded by schema.INTAKE_EXCLUSION
OUTCOME_COUNTS = ("deaths", "survivors", "unknown_outcome")


def _date_columns(info: SourceInfo) -> list[str]:
    return [c for c in schema.DATE_COLUMNS if c in info.mapped]


def load_counts(
    path: str | Path,
    *,
    progress: Callable[[int], None] | None = None,
    chunk_rows: int | None = None,
) -> tuple[pd.DataFrame, LoadReport]:
    """Aggregate a CDC file into one row per combination of schema.ALL_COLUMNS, case month and intake flag.

    Returns a table with those columns plus `deaths`, `survivors` and
    `unknown_outcome` (death_yn Missing/Unknown/NA) patient counts, and the load
    report. The case month is `cdc_case_earliest_dt`, else the earliest of onset,
    positive specimen and report dates (`model.data.case_dates`). `intake_population`
    is False for rows matching `schema.INTAKE_EXCLUSION`.
    The file is read in one polars streaming pass (`model.data.scan`); `progress` is called
    during it with the number of data rows read so far: every `chunk_rows` rows (and
    once at the end), or after every batch polars streams when `chunk_rows` is None.
    Unrecognised category values anywhere raise DataError after the whole file has
    been scanned, so the message gives complete counts.
    """
    if chunk_rows is not None and chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive number of rows, not {chunk_rows}")
    info = describe_source(path)
    _require(info, COUNT_COLUMNS, "needed to train and to report per subgroup")
    from model.data import scan  # polars: only training reads counts (the batch scoring image has no polars)

    report = _empty_report(info)
    with _BackgroundHash(info.source) as sha256:
        counted = scan.count_rows(info, COUNT_COLUMNS, _date_columns(info), progress=progress, chunk_rows=chunk_rows)
        report.rows_read, report.chunks = counted.rows, counted.chunks
        codes = [_canonical_codes(info, counted, column, report) for column in COUNT_COLUMNS]
    report.sha256 = sha256.result()
    report.dates = counted.dates.report()
    keys = _group_keys(codes, counted.column(scan.CASE_MONTH), counted.column(scan.MAYBE_EXCLUDED))
    counts = counted.column(scan.ROWS)
    _count_unknown_outcomes(keys, counts, report)
    table = _counts_table(keys, counts)
    _summarise_outcomes(table, report)
    return table, report


def _empty_report(info: SourceInfo) -> LoadReport:
    """The load report before any row is read: the source, its format and how its columns were mapped."""
    return LoadReport(
        source=info.source,
        sha256="",
        format=info.format,
        schema_variant=info.schema_variant,
        renamed_columns=dict(info.renamed_columns),
        ignored_columns=list(info.ignored_columns),
    )


def _canonical_codes(info: SourceInfo, counted: Any, column: str, report: LoadReport) -> np.ndarray:
    """Schema code of `column` per group of the pass, mapping each distinct raw spelling once.

    Re-spellings go to `report.normalised`; unrecognised values raise DataError with
    their complete counts and first data rows. `counted` is a `model.data.scan.Counted`.
    """
    per_raw = counted.raw_counts(column)
    mapping = {raw: schema.canonical_code(column, raw) for raw, _ in per_raw}
    unknown = {raw: rows for raw, rows in per_raw if mapping[raw] < 0}
    if unknown:
        raise _unknown_values(info, column, unknown, report.rows_read)
    values = _values_of(column)
    for raw, rows in per_raw:
        canonical = values[mapping[raw]]
        if raw != canonical:
            slot = report.normalised.setdefault(column, {}).setdefault(NULL_KEY if raw is None else raw, {})
            slot[canonical] = slot.get(canonical, 0) + rows
    return counted.codes(column, mapping)


def _unknown_values(info: SourceInfo, column: str, unknown: dict[str | None, int], rows_read: int) -> DataError:
    """The DataError for unrecognised values: each with its count and first data row (one more pass)."""
    from model.data import scan

    first = scan.first_rows(info, column, list(unknown))
    coder = ColumnCoder(column)
    for raw, rows in unknown.items():
        name = NULL_KEY if raw is None else raw
        coder.unknown[name] = rows
        coder.unknown_first_row[name] = first.get(raw, 0)
    return coder.error(info.source, f"(of {rows_read:,})")


def _radix() -> tuple[int, ...]:
    """Digit bases of a group key: each ALL_COLUMNS code, case month, intake flag, death_yn code."""
    return (*(len(_values_of(c)) for c in schema.ALL_COLUMNS), case_dates.MONTH_CODES, 2, len(schema.TARGET_VALUES))


def _group_keys(codes: list[np.ndarray], months: np.ndarray, maybe_excluded: np.ndarray) -> np.ndarray:
    """One int64 per group: its canonical codes, case month, intake flag and death_yn as digits in `_radix()`.

    Intake is decided here, on the canonical status: probable cases the pass found
    without onset and specimen date are outside it (schema.INTAKE_EXCLUSION).
    """
    status = codes[COUNT_COLUMNS.index("current_status")]
    probable = _values_of("current_status").index("Probable Case")
    intake = ~((status == probable) & maybe_excluded)
    key = np.zeros(status.size, dtype=np.int64)
    for digits, base in zip((*codes[:-1], months, intake, codes[-1]), _radix(), strict=True):
        key = key * base + digits.astype(np.int64)
    return key


def _count_unknown_outcomes(keys: np.ndarray, counts: np.ndarray, report: LoadReport) -> None:
    """Rows whose death_yn is Missing/Unknown go to rows_dropped, so rows_read = rows_used + dropped."""
    n_target = len(schema.TARGET_VALUES)
    per_target = np.bincount(keys % n_target, weights=counts, minlength=n_target)
    for value in schema.TARGET_UNKNOWN_VALUES:
        n = int(per_target[schema.TARGET_VALUES.index(value)])
        if n:
            report.rows_dropped[f"{schema.TARGET}={value}"] = n


def _counts_table(keys: np.ndarray, counts: np.ndarray) -> pd.DataFrame:
    """Unravel (key, count) pairs into the counts table, one outcome column per death_yn group (rows in key order)."""
    radix = _radix()
    group, target = np.divmod(keys, radix[-1])
    outcome = np.full(radix[-1], 2)  # unknown_outcome
    outcome[schema.TARGET_VALUES.index(schema.TARGET_POSITIVE)] = 0
    outcome[schema.TARGET_VALUES.index(schema.TARGET_NEGATIVE)] = 1
    groups, inverse = np.unique(group, return_inverse=True)
    sums = np.zeros((groups.size, 3), dtype=np.int64)
    for j in range(3):
        mine = outcome[target] == j
        sums[:, j] = np.bincount(inverse[mine], weights=counts[mine], minlength=groups.size)
    digits = np.unravel_index(groups, radix[:-1])
    # Labels by an Arrow `take` of each column's values: the table's string columns in a third of the time.
    table = pd.DataFrame(
        {
            column: pd.Series(pa.array(_values_of(column)).take(d), dtype="str")
            for column, d in zip(schema.ALL_COLUMNS, digits, strict=False)
        }
    )
    months = pa.array([case_dates.month_label(m) for m in range(case_dates.MONTH_CODES)])
    table[CASE_MONTH] = pd.Series(months.take(digits[-2]), dtype="str")
    table[INTAKE_POPULATION] = digits[-1].astype(bool)
    for j, name in enumerate(OUTCOME_COUNTS):
        table[name] = sums[:, j]
    return table


def _summarise_outcomes(table: pd.DataFrame, report: LoadReport) -> None:
    # Rows with a known outcome (`rows_read == rows_used + sum(rows_dropped)`), and those of them
    # outside the intake population (schema.INTAKE_EXCLUSION), which training leaves out too.
    report.rows_used = int(table["deaths"].sum() + table["survivors"].sum())
    excluded = table[~table[INTAKE_POPULATION]]
    report.known_outcome_outside_intake = int(excluded["deaths"].sum() + excluded["survivors"].sum())


def iter_canonical_batches(
    path: str | Path,
    *,
    columns: Sequence[str] | None = None,
    require_target: bool = False,
    on_unknown: Literal["raise", "mark"] = "raise",
    chunk_rows: int | None = None,
) -> Iterator[CanonicalBatch]:
    """Stream a CDC file as batches of canonical values (for batch scoring).

    `columns`: schema columns to return (default: schema.MODEL_INPUTS, plus
    death_yn if the file has it); only these must be in the file, so a file with
    just the model inputs is fine. `require_target` adds death_yn as required.
    on_unknown="raise" raises DataError at the first batch holding an
    unrecognised value (earlier batches have already been yielded);
    on_unknown="mark" keeps going and explains each bad row in `problems`.
    """
    if on_unknown not in ("raise", "mark"):
        raise ValueError(f"on_unknown must be 'raise' or 'mark', not {on_unknown!r}")
    info = describe_source(path)
    wanted = _wanted_columns(info, columns, require_target)
    _require(info, wanted, "requested" if columns is not None else "the model's inputs")

    coders = [ColumnCoder(c) for c in wanted]
    rows = 0
    for batch in arrow_batches(info, wanted, chunk_rows):
        yield _canonical_batch(batch, coders, rows, info, on_unknown)
        rows += batch.num_rows


def _wanted_columns(info: SourceInfo, columns: Sequence[str] | None, require_target: bool) -> list[str]:
    """The schema columns `iter_canonical_batches` returns: the requested ones (checked against the schema), or
    the model's inputs plus death_yn when the file has it; death_yn added when `require_target`."""
    allowed = (*schema.ALL_COLUMNS, schema.TARGET)
    if columns is None:
        wanted = list(schema.MODEL_INPUTS)
        if schema.TARGET in info.mapped or require_target:
            wanted.append(schema.TARGET)
        return wanted
    unknown = [c for c in columns if c not in allowed]
    if unknown:
        raise ValueError(f"unknown schema column(s) {unknown}; choose from {list(allowed)}")
    wanted = list(dict.fromkeys(columns))
    if require_target and schema.TARGET not in wanted:
        wanted.append(schema.TARGET)
    return wanted


def _canonical_batch(
    batch: pa.RecordBatch, coders: list[ColumnCoder], rows: int, info: SourceInfo, on_unknown: str
) -> CanonicalBatch:
    """One Arrow batch (data rows from `rows` on) as canonical categoricals; an unknown value raises DataError
    (on_unknown="raise") or is explained in the batch's `problems` ("mark")."""
    n = batch.num_rows
    data: dict[str, pd.Categorical] = {}
    problems: np.ndarray | None = None
    for i, coder in enumerate(coders):
        codes, bad, distinct, indices = coder.encode(batch.column(i), rows)
        if bad is not None:
            if on_unknown == "raise":
                raise coder.error(info.source, f"in data rows {rows + 1:,}-{rows + n:,}")
            problems = mark_problems(problems, coder.column, bad, distinct, indices)
        data[coder.column] = pd.Categorical.from_codes(codes, categories=list(coder.values))
    index = pd.RangeIndex(rows, rows + n)
    frame = pd.DataFrame(data, index=index)
    marks = None
    if on_unknown == "mark":
        marks = pd.Series(np.full(n, "", dtype=object) if problems is None else problems, index=index)
    return CanonicalBatch(frame=frame, problems=marks, row_start=rows, source=info)


def mark_problems(
    problems: np.ndarray | None,
    column: str,
    bad: np.ndarray,
    distinct: list,
    indices: np.ndarray,
    *,
    list_allowed: bool = False,
) -> np.ndarray:
    """Add "<column>: unknown value '<raw>'" to each bad row's problem text (one message per distinct raw).

    `bad`, `distinct`, `indices` are what `ColumnCoder.encode` returns; `list_allowed`
    appends the allowed values (for reject files read by people, one row at a time).
    """
    if problems is None:
        problems = np.full(bad.size, "", dtype=object)
    allowed = f" (allowed: {', '.join(_values_of(column))})" if list_allowed else ""
    messages = np.array(
        [
            f"{column}: empty value{allowed}"
            if v is None or not v.strip()
            else f"{column}: unknown value {_show(v)}{allowed}"
            for v in distinct
        ],
        dtype=object,
    )
    rows = np.flatnonzero(bad)
    new = messages[indices[rows]]
    old = problems[rows]
    problems[rows] = np.where(old == "", new, old + "; " + new)
    return problems
