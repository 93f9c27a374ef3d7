"""CSV downloads of scored rows: made when the button is pressed, batch by batch, formulas neutralised."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from model.serving.batch_score import neutralise_formulas

BATCH_ROWS = 50_000


def csv_download(
    table: pa.Table, flagged: np.ndarray | None = None, flag_rule: str | None = None
) -> Callable[[], bytes]:
    """A callable for `st.download_button(data=...)` that writes `table` as CSV when the button is pressed.

    Why a callable: bytes passed to st.download_button are built and kept on every rerun, a second
    copy of the whole result; Streamlit runs a callable only on the click. `flagged` (one bool per
    row) replaces the table's `flagged` column and `flag_rule` its `flag_rule` column, so the file
    follows, and states, the threshold set now. Text cells a spreadsheet would run as formulas get a
    leading apostrophe (model.serving.batch_score.neutralise_formulas).
    """

    def make() -> bytes:
        out = table
        if flagged is not None:
            out = out.set_column(out.schema.get_field_index("flagged"), "flagged", pa.array(flagged))
        if flag_rule is not None and "flag_rule" in out.column_names:
            rule = pa.DictionaryArray.from_arrays(pa.array(np.zeros(out.num_rows, np.int32)), pa.array([flag_rule]))
            out = out.set_column(out.schema.get_field_index("flag_rule"), "flag_rule", rule)
        sink = io.BytesIO()
        with pa_csv.CSVWriter(sink, _decoded_schema(out.schema)) as writer:
            for batch in out.to_batches(max_chunksize=BATCH_ROWS):
                writer.write_batch(neutralise_formulas(_decoded(batch)))
        return sink.getvalue()

    return make


def _decoded(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Dictionary columns (Parquet input) as their values: CSV holds values."""
    columns = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in batch.columns]
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def _decoded_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema(
        [pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type) for f in schema]
    )
