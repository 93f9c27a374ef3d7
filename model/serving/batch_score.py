"""Batch scoring of CDC files: every row in, every row out (scored or rejected with a reason).

    python -m model.batch_score --data FILE --out FILE [--threshold T|max-f1] [--model-dir DIR] [--rejects FILE]

Reads CSV / CSV.gz / Parquet in any CDC schema version `model.data.loader` knows (or
a file holding only the model's input columns), chunk by chunk with pyarrow, and
writes each input row with its `row_number` and original columns as read, plus (`OUTPUT_COLUMNS`):
`probability` (the risk among recorded outcomes: the high end of the outcome-recording range),
`ci_low`, `ci_high` (its 95% interval), `probability_if_unrecorded_survived` (the risk counting
every case whose outcome was never recorded as a survival: the low end), `risk_band` and `flagged`
(both from `probability`, the high end: `flagged` = `probability` >= threshold), `flag_rule`
(that rule with the threshold, e.g. "probability >= 0.05"), `model` (which model scored the row:
intake, intake_race or in_hospital) and `inputs_used` (its inputs, joined by ";"). A file with a
`race_ethnicity_combined` column is scored by the race-aware intake model (its "Unknown",
"Missing" and empty cells mean what the CDC meant); without the column, race-blind. The output format follows
the extension of --out (.csv, .csv.gz, .parquet). Rows whose model inputs are
not schema values go to the rejects file (default: beside --out, named
`<out>.rejects.<ext>`) with their data-row number and the reason; it is always
written, possibly empty, so a stale one from an earlier run never lingers.

Probabilities come from `model.serving.lookup.RiskLookup`, the table the scoring script
serves, so a row scores exactly as the endpoint would score it.

Default threshold: the lower edge of the schema's "high" risk band (5 %), the
dashboard's default operating point, so `flagged` means "high or very high".
`--threshold max-f1` uses the model's best-F1 threshold from its test split.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import queue
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from model.core import artifact, schema
from model.core.exit_codes import BAD_INPUT, guarded
from model.data.loader import (
    FORMAT_PARQUET,
    ColumnCoder,
    DataError,
    SourceInfo,
    arrow_batches,
    describe_source,
    mark_problems,
)
from model.serving import lookup

# What a scored row adds to its input columns, in this order (docs/monitoring.md lists them):
# the risk among recorded outcomes (the high end) with its 95% interval, the low end of the outcome-recording
# range, the band and the flag (both from `probability`), the rule the flag used, the model that scored the
# row and the inputs it used. Input columns with these names (a file scored before) are replaced.
OUTPUT_COLUMNS: tuple[str, ...] = (
    "probability",
    "ci_low",
    "ci_high",
    "probability_if_unrecorded_survived",
    "risk_band",
    "flagged",
    "flag_rule",
    "model",
    "inputs_used",
)
FLAG_COLUMN = "flagged"
ROW_COLUMN = "row_number"  # 1-based data-row number in the input (header excluded)
REASON_COLUMN = "reject_reason"
PROGRESS_EVERY_S = 2.0
GZIP_LEVEL = 1
WRITE_QUEUE = 3  # chunks waiting for the writer thread


def resolve_threshold(value: str | float | None, model_dir: Path) -> float:
    """A number in [0, 1], 'max-f1' (best F1 on the model's test split) or None (the default)."""
    if value is None:
        return schema.DEFAULT_THRESHOLD
    if isinstance(value, str) and value.strip().lower() == "max-f1":
        return artifact.max_f1_threshold(artifact.load_table(model_dir, "thresholds"))
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"threshold {value!r} is not a number; give a probability between 0 and 1, or max-f1"
        ) from None
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"threshold {number} is outside [0, 1]; give a probability such as 0.05")
    return number


# --------------------------------------------------------------------------- reading


def _require_inputs(info: SourceInfo) -> None:
    missing = [c for c in schema.MODEL_INPUTS if c not in info.mapped]
    if missing:
        raise DataError(
            f"{info.source}: missing the model input column(s) {', '.join(missing)}. Found columns: "
            f"{', '.join(info.columns) or '(none)'}. The file needs {', '.join(schema.MODEL_INPUTS)} "
            "(any CDC schema version, or just these columns); rename the columns or re-export the file."
        )


# --------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class Scores:
    """A scorer's answer for each row of a chunk, in order (the endpoint's fields, as arrays).

    `probability` and `risk_band` are required; a field left None (a scorer that cannot give it)
    becomes an empty (null) column, never a made-up value.
    """

    probability: np.ndarray  # risk among recorded outcomes: the high end of the recording range
    risk_band: np.ndarray
    unrecorded: np.ndarray | None = None  # probability_if_unrecorded_survived: the low end
    ci_low: np.ndarray | None = None  # 95% interval of `probability`
    ci_high: np.ndarray | None = None
    model: np.ndarray | pa.Array | None = None  # which model scored the row (schema.MODEL_FEATURES key)
    inputs_used: np.ndarray | pa.Array | None = None  # the inputs it used, joined by lookup.INPUTS_SEPARATOR


# (canonical MODEL_INPUTS frame, plus race_ethnicity_combined when the file has it) -> Scores, one per row.
Scorer = Callable[[pd.DataFrame], Scores]


def lookup_scorer(risk: lookup.RiskLookup) -> Scorer:
    """Score with the precomputed answers the scoring script serves (bit-identical to the endpoint)."""
    bands = lookup.risk_bands(risk.request_probability)
    # The repeated texts as codes into their few distinct values, so a chunk's columns are integer lookups.
    model_codes, models = pd.factorize(risk.request_model)
    inputs_codes, inputs = pd.factorize(risk.request_inputs_used)
    model_names, inputs_texts = pa.array(list(models), pa.string()), pa.array(list(inputs), pa.string())

    def score(frame: pd.DataFrame) -> Scores:
        index = risk.request_indices(frame)
        return Scores(
            probability=risk.request_probability[index],
            risk_band=bands[index],
            unrecorded=risk.request_unrecorded[index],
            ci_low=risk.request_ci_low[index],
            ci_high=risk.request_ci_high[index],
            model=pa.DictionaryArray.from_arrays(pa.array(model_codes[index].astype(np.int32)), model_names),
            inputs_used=pa.DictionaryArray.from_arrays(pa.array(inputs_codes[index].astype(np.int32)), inputs_texts),
        )

    return score


def flag_rule(threshold: float) -> str:
    """The flag's rule in words, written into every scored row: which end it uses and the threshold."""
    return f"probability >= {threshold:g}"


def _input_columns(info: SourceInfo) -> tuple[str, ...]:
    """The columns scored: the six model inputs, and race/ethnicity when the file has it."""
    return (*schema.MODEL_INPUTS, *((schema.RACE,) if schema.RACE in info.mapped else ()))


_TEXT = pa.dictionary(pa.int32(), pa.string())  # repeated texts (model, inputs used, flag rule): 4 bytes a row


def _column(values: np.ndarray | pa.Array | None, n: int, kind: pa.DataType) -> pa.Array:
    """One output column: the scorer's values, or nulls when the scorer did not give them."""
    if values is None:
        return pa.nulls(n, kind)
    if isinstance(values, pa.Array):
        return values if values.type == kind else values.cast(kind)
    if kind == _TEXT:
        return pa.array(values, type=pa.string()).dictionary_encode()
    return pa.array(np.asarray(values, dtype=np.float64) if kind == pa.float64() else values, type=kind)


def _outputs(scorer: Scorer, frame: pd.DataFrame, threshold: float) -> list[pa.Array]:
    """The output columns (OUTPUT_COLUMNS order) of one chunk's valid rows."""
    n = len(frame)
    s = scorer(frame) if n else Scores(np.empty(0), np.empty(0, dtype=object))
    probability = np.asarray(s.probability, dtype=np.float64)
    rule = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array([flag_rule(threshold)]))
    return [
        pa.array(probability),
        _column(s.ci_low, n, pa.float64()),
        _column(s.ci_high, n, pa.float64()),
        _column(s.unrecorded, n, pa.float64()),
        _column(s.risk_band, n, pa.string()),
        pa.array(probability >= threshold),
        rule,
        _column(s.model, n, _TEXT),
        _column(s.inputs_used, n, _TEXT),
    ]


@dataclass
class ScoredChunk:
    """One chunk: scored rows (row number, original columns, outputs), rejected rows (row number, columns, reason)."""

    scored: pa.RecordBatch
    rejected: pa.RecordBatch | None
    rows_read: int  # rows of the input in this chunk
    reasons: Counter[str]
    scored_rows: np.ndarray  # 1-based data-row numbers of the scored rows
    bytes_read: int = 0  # the chunk's unpacked size as read (every column), before any column was dropped


@dataclass(frozen=True)
class PassThrough:
    """Which input columns a scored row keeps, for callers that hold the result in memory (the Batch page).

    The model's inputs and `death_yn` always; then the first `columns` other columns of the file,
    every kept text cell cut to `max_chars` characters. Why: a file may carry any number of columns of
    any width (a 3.3 MB .csv.gz unpacked to 3 GB of extra cells once took the dashboard to 6.6 GB);
    with these bounds what is held per row is bounded too. The CLI writes every column to disk instead.
    """

    columns: int = 5
    max_chars: int = 200

    def apply(self, batch: pa.RecordBatch, info: SourceInfo) -> pa.RecordBatch:
        """`batch` with only the kept columns, in file order, text cells cut to `max_chars`."""
        needed = {info.mapped[c] for c in (*schema.MODEL_INPUTS, schema.TARGET) if c in info.mapped}
        others = [n for n in batch.schema.names if n not in needed][: self.columns]
        keep = [n for n in batch.schema.names if n in needed or n in others]
        columns = [self._cut(batch.column(batch.schema.get_field_index(n))) for n in keep]
        return pa.RecordBatch.from_arrays(columns, names=keep)

    def _cut(self, column: pa.Array) -> pa.Array:
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            return pc.utf8_slice_codeunits(column, 0, self.max_chars)
        return column


def _without_outputs(batch: pa.RecordBatch, reserved: tuple[str, ...]) -> pa.RecordBatch:
    keep = [i for i, name in enumerate(batch.schema.names) if name not in reserved]
    if len(keep) == batch.num_columns:
        return batch
    return pa.RecordBatch.from_arrays([batch.column(i) for i in keep], names=[batch.schema.names[i] for i in keep])


def iter_scored(
    data: str | Path, scorer: Scorer, threshold: float, pass_through: PassThrough | None = None
) -> Iterator[ScoredChunk]:
    """Stream a file and score it chunk by chunk; no row is dropped (bad rows come back as rejects).

    Every input column is kept, unless `pass_through` bounds them. Input columns named like an
    output column (e.g. a file scored before) are replaced. Raises DataError for an unreadable
    file or one without the model's input columns.
    """
    info = describe_source(data)
    _require_inputs(info)
    coders = [ColumnCoder(c) for c in _input_columns(info)]
    raw_names = [info.mapped[c] for c in _input_columns(info)]
    start = 0
    for batch in arrow_batches(info, None):  # every column as written: rows are written back out
        n, bytes_read = batch.num_rows, batch.nbytes
        if pass_through is not None:
            batch = pass_through.apply(batch, info)
        codes: dict[str, np.ndarray] = {}
        reasons: np.ndarray | None = None  # per row; a row may fail on several columns: all are named
        for coder, raw_name in zip(coders, raw_names, strict=True):
            column = batch.column(batch.schema.get_field_index(raw_name))
            codes[coder.column], bad, distinct, indices = coder.encode(column, start)
            if bad is not None:
                reasons = mark_problems(reasons, coder.column, bad, distinct, indices, list_allowed=True)
        good = None if reasons is None else reasons == ""
        kept = batch if good is None else batch.filter(pa.array(good))
        frame = pd.DataFrame(
            {
                c: pd.Categorical.from_codes(v if good is None else v[good], categories=list(coders[i].values))
                for i, (c, v) in enumerate(codes.items())
            }
        )
        outputs = _outputs(scorer, frame, threshold)
        kept = _without_outputs(kept, (ROW_COLUMN, *OUTPUT_COLUMNS))
        numbers = np.arange(start + 1, start + n + 1) if good is None else np.flatnonzero(good) + start + 1
        scored = pa.RecordBatch.from_arrays(  # the row number first, so a scored file joins back to its input
            [pa.array(numbers), *kept.columns, *outputs],
            names=[ROW_COLUMN, *kept.schema.names, *OUTPUT_COLUMNS],
        )
        rejected = None
        counts: Counter[str] = Counter()
        if reasons is not None:  # exactly when `good` is
            bad = reasons != ""
            rows = _without_outputs(batch.filter(pa.array(bad)), (ROW_COLUMN, REASON_COLUMN))
            bad_reasons = reasons[bad]
            counts.update(bad_reasons.tolist())
            rejected = pa.RecordBatch.from_arrays(
                [pa.array(np.flatnonzero(bad) + start + 1), *rows.columns, pa.array(bad_reasons, type=pa.string())],
                names=[ROW_COLUMN, *rows.schema.names, REASON_COLUMN],
            )
        yield ScoredChunk(scored, rejected, n, counts, numbers, bytes_read)
        start += n


# --------------------------------------------------------------------------- writing

OUTPUT_FORMATS = ("csv.gz", "csv", "parquet")  # longest ending first


def output_format(path: str | Path) -> str:
    """'csv', 'csv.gz' or 'parquet' from the file name; ValueError naming the allowed endings otherwise."""
    name = Path(path).name.lower()
    for fmt in OUTPUT_FORMATS:
        if name.endswith("." + fmt) and len(name) > len(fmt) + 1:
            return fmt
    raise ValueError(
        f"cannot tell the output format of {str(path)!r}: the file name must end in "
        f"{', '.join('.' + f for f in OUTPUT_FORMATS)}"
    )


# OWASP "CSV injection": a spreadsheet runs a cell that begins with one of these as a formula.
FORMULA_STARTS = r"^[=+\-@\t\r]"


def neutralise_formulas(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Text cells that a spreadsheet would run as a formula (`=HYPERLINK(...)`, `@SUM(1+1)`, `-2+3`,
    `=cmd|' /C calc'!A0`) get a leading apostrophe, so they open as the text they are (OWASP).

    Why: a scored or rejects CSV carries the input's cells back to whoever opens it in Excel.
    Numbers stay numbers (only text columns change); `-` as a CDC value does not occur.
    """
    columns = []
    for column in batch.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            risky = pc.fill_null(pc.match_substring_regex(column, FORMULA_STARTS), False)
            if pc.any(risky).as_py():
                column = pc.if_else(risky, pc.binary_join_element_wise("'", column, ""), column)
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


class ChunkWriter:
    """Writes record batches to CSV / CSV.gz / Parquet (by extension), atomically on close.

    CSV cells that would run as spreadsheet formulas are neutralised (`neutralise_formulas`).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.format = output_format(self.path)  # ValueError naming the allowed endings
        self.rows = 0
        self._partial = self.path.with_name(f".{self.path.name}.partial")
        self._writer: Any = None
        self._sink: Any = None
        self._gzip: gzip.GzipFile | None = None
        self._schema: pa.Schema | None = None

    def _open(self, schema_: pa.Schema) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.format == "parquet":
            self._writer = pq.ParquetWriter(self._partial, schema_, compression="zstd")
        else:
            if self.format == "csv.gz":
                # gzip level 1: several times faster than pyarrow's fixed level, files ~20 % larger.
                self._gzip = gzip.open(self._partial, "wb", compresslevel=GZIP_LEVEL)  # noqa: SIM115 (closed in close())
                self._sink = pa.PythonFile(self._gzip, mode="w")
            else:
                self._sink = pa.OSFile(str(self._partial), "wb")
            self._writer = pa_csv.CSVWriter(self._sink, schema_)
        self._schema = schema_

    def _plain(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """CSV cannot hold dictionary columns (Parquet input): decode them."""
        if self.format == "parquet" or not any(pa.types.is_dictionary(f.type) for f in batch.schema):
            return batch
        columns = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in batch.columns]
        return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)

    def write(self, batch: pa.RecordBatch) -> None:
        batch = self._plain(batch)
        if self.format != "parquet":
            batch = neutralise_formulas(batch)
        if self._writer is None:
            self._open(batch.schema)
        elif batch.schema != self._schema:
            batch = batch.cast(self._schema)
        self._writer.write_batch(batch)
        self.rows += batch.num_rows

    def close(self, empty_schema: pa.Schema | None = None) -> Path:
        """Finish the file; with no rows written, write just the header (`empty_schema`)."""
        if self._writer is None:
            self._open(self._plain(pa.RecordBatch.from_pylist([], schema=empty_schema)).schema)
        self._writer.close()
        if self._sink is not None and not self._sink.closed:
            self._sink.close()
        if self._gzip is not None:
            self._gzip.close()
        os.replace(self._partial, self.path)
        return self.path

    def abort(self) -> None:
        try:
            if self._writer is not None:
                self._writer.close()
        except (pa.ArrowException, OSError):
            pass
        self._partial.unlink(missing_ok=True)


class _BackgroundWriter:
    """Writes batches in a thread so reading/scoring the next chunk overlaps writing this one.

    pyarrow releases the GIL while encoding and compressing; the bounded queue keeps at
    most WRITE_QUEUE chunks in memory, so memory stays bounded however big the file is.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[ChunkWriter, pa.RecordBatch] | None] = queue.Queue(maxsize=WRITE_QUEUE)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="batch-score-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    item[0].write(item[1])
                except BaseException as exc:  # re-raised in the main thread
                    self._error = exc

    def put(self, writer: ChunkWriter, batch: pa.RecordBatch) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put((writer, batch))

    def finish(self, raise_errors: bool = True) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if raise_errors and self._error is not None:
            raise self._error


def _check_csv_can_hold(data: Path, outputs: list[Path]) -> None:
    """Rows are written back with every input column: a CSV output cannot hold Parquet list/struct columns."""
    csv_outputs = [p for p in outputs if output_format(p) != "parquet"]
    if not csv_outputs or describe_source(data).format != FORMAT_PARQUET:
        return
    nested = [f"{f.name!r} ({f.type})" for f in pq.ParquetFile(data).schema_arrow if pa.types.is_nested(f.type)]
    if nested:
        raise DataError(
            f"{data}: column(s) {', '.join(nested)} hold lists or structs, which a CSV file cannot hold, and "
            f"every input column is written back to {csv_outputs[0]}. Write the output as Parquet "
            "(--out NAME.parquet) or drop those columns from the input."
        )


def default_rejects_path(out: Path) -> Path:
    fmt = output_format(out)
    stem = out.name[: -len(fmt) - 1]
    return out.with_name(f"{stem}.rejects.{fmt}")


# --------------------------------------------------------------------------- orchestration


@dataclass
class BatchSummary:
    """What a batch run read, scored and rejected (printed and returned as JSON)."""

    source: str
    out: str
    rejects: str
    model_version: str
    threshold: float
    rows_read: int = 0
    scored: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    flagged: int = 0
    expected_deaths: float = 0.0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Progress:
    """Rows, rows/s and elapsed time on stderr, at most every PROGRESS_EVERY_S seconds."""

    def __init__(self, stream: TextIO | None = sys.stderr, every_s: float = PROGRESS_EVERY_S) -> None:
        self.stream = stream
        self.every_s = every_s
        self.started = time.perf_counter()
        self._last = 0.0

    def __call__(self, rows: int, final: bool = False) -> None:
        now = time.perf_counter()
        if self.stream is None or (not final and now - self._last < self.every_s):
            return
        self._last = now
        elapsed = now - self.started
        rate = rows / elapsed if elapsed > 0 else 0.0
        minutes, seconds = divmod(int(elapsed), 60)
        word = "done" if final else "scoring"
        print(
            f"{word}: {rows:,} rows | {rate:,.0f} rows/s | {minutes:02d}:{seconds:02d} elapsed",
            file=self.stream,
            flush=True,
        )


def score_file(
    data: str | Path,
    out: str | Path,
    scorer: Scorer,
    *,
    threshold: float,
    model_version: str,
    rejects: str | Path | None = None,
    progress: Callable[..., None] | None = None,
) -> BatchSummary:
    """Score `data` into `out` (and rejects); both files appear only when the run succeeds."""
    out = Path(out)
    rejects_path = Path(rejects) if rejects is not None else default_rejects_path(out)
    if out.resolve() == Path(data).resolve() or rejects_path.resolve() == Path(data).resolve():
        raise ValueError(f"--out/--rejects must not be the input file {data}; choose another name")
    _check_csv_can_hold(Path(data), [out, rejects_path])
    writer, reject_writer = ChunkWriter(out), ChunkWriter(rejects_path)
    summary = BatchSummary(str(data), str(out), str(rejects_path), model_version, threshold)
    reasons: Counter[str] = Counter()
    began = time.perf_counter()
    reject_schema: pa.Schema | None = None
    background = _BackgroundWriter()
    try:
        for chunk in iter_scored(data, scorer, threshold):
            background.put(writer, chunk.scored)
            if chunk.rejected is not None:
                background.put(reject_writer, chunk.rejected)
            else:
                reject_schema = reject_schema or pa.schema(
                    [
                        *list(chunk.scored.schema)[: -len(OUTPUT_COLUMNS)],  # row number and the original columns
                        pa.field(REASON_COLUMN, pa.string()),
                    ]
                )
            reasons.update(chunk.reasons)
            probability = chunk.scored.column(chunk.scored.schema.get_field_index("probability"))
            flagged = chunk.scored.column(chunk.scored.schema.get_field_index(FLAG_COLUMN))
            summary.rows_read += chunk.rows_read
            summary.scored += chunk.scored.num_rows
            summary.flagged += int(pc.sum(flagged).as_py() or 0)
            summary.expected_deaths += float(pc.sum(probability).as_py() or 0.0)
            if progress is not None:
                progress(summary.rows_read)
        background.finish()
        writer.close()
        reject_writer.close(empty_schema=reject_schema)
    except BaseException:
        background.finish(raise_errors=False)
        writer.abort()
        reject_writer.abort()
        raise
    summary.rejected = reject_writer.rows
    summary.rejected_by_reason = dict(reasons.most_common())
    summary.seconds = round(time.perf_counter() - began, 3)
    if progress is not None:
        progress(summary.rows_read, final=True)
    if summary.scored + summary.rejected != summary.rows_read:  # the promise: nothing silently dropped
        raise RuntimeError(f"row accounting broke: {summary.scored} + {summary.rejected} != {summary.rows_read}")
    return summary


def format_summary(summary: BatchSummary, max_reasons: int = 10) -> str:
    lines = [
        f"model {summary.model_version}, threshold {summary.threshold:g}",
        f"read     {summary.rows_read:>14,} rows from {summary.source}",
        f"scored   {summary.scored:>14,} rows -> {summary.out}",
        f"rejected {summary.rejected:>14,} rows -> {summary.rejects}",
    ]
    for i, (reason, n) in enumerate(summary.rejected_by_reason.items()):
        if i == max_reasons:
            lines.append(f"           ... and {len(summary.rejected_by_reason) - max_reasons} more reasons")
            break
        lines.append(f"  {n:>14,}  {reason}")
    lines += [
        f"flagged  {summary.flagged:>14,} rows (probability >= {summary.threshold:g})",
        f"expected deaths among recorded outcomes (sum of probability, the high end): {summary.expected_deaths:,.1f}",
        f"took {summary.seconds:,.1f} s ({summary.rows_read / max(summary.seconds, 1e-9):,.0f} rows/s)",
    ]
    return "\n".join(lines)


def default_model_dir() -> Path:
    return artifact.model_dir_from_env()


@guarded
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m model.batch_score",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 2)[2],
    )
    parser.add_argument("--data", required=True, type=Path, help="CDC file: .csv, .csv.gz or .parquet")
    parser.add_argument("--out", required=True, type=Path, help="scored file: .csv, .csv.gz or .parquet")
    parser.add_argument(
        "--threshold",
        default=None,
        help="flag rows with probability >= T (0-1) or 'max-f1' "
        f"(default {schema.DEFAULT_THRESHOLD:g}, the 'high' risk band)",
    )
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=None,
        help=f"model artifact (default ${artifact.MODEL_DIR_ENV} or {artifact.DEFAULT_MODEL_DIR})",
    )
    parser.add_argument("--rejects", type=Path, help="rows that cannot be scored (default <out>.rejects.<ext>)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    model_dir = args.model_dir or default_model_dir()
    try:
        for path in (args.out, args.rejects):
            if path is not None:
                output_format(path)
        threshold = resolve_threshold(args.threshold, model_dir)
        risk = lookup.RiskLookup.from_model_dir(model_dir)
        summary = score_file(
            args.data,
            args.out,
            lookup_scorer(risk),
            threshold=threshold,
            model_version=risk.model_version,
            rejects=args.rejects,
            progress=None if args.quiet else Progress(sys.stderr),  # today's stderr, not the one at import
        )
    except (DataError, artifact.ArtifactError, ValueError, OSError) as exc:  # the input, not a bug
        print(f"error: {exc}", file=sys.stderr)
        return BAD_INPUT
    print(json.dumps(summary.to_dict(), indent=2) if args.json else format_summary(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
