"""Find the row of a risk table (one row per combination of a model's inputs) for each patient."""

from __future__ import annotations

import numpy as np
import pandas as pd


def table_rows(table: pd.DataFrame, frame: pd.DataFrame, inputs: tuple[str, ...]) -> np.ndarray:
    """Row of `table` matching each row of `frame` on `inputs` (raises on a combination not in the table).

    Each input's values are coded by their position among the table's values and the codes combined
    mixed-radix into one integer key per row (no string keys: this runs several times per refit).
    """
    table_key, frame_key = np.zeros(len(table), dtype=np.int64), np.zeros(len(frame), dtype=np.int64)
    missing = np.zeros(len(frame), dtype=bool)
    for column in inputs:
        codes, values = pd.factorize(table[column])
        positions = _positions(pd.Index(values), frame[column])
        missing |= positions < 0
        table_key = table_key * len(values) + codes
        frame_key = frame_key * len(values) + positions
    rows = pd.Index(table_key).get_indexer(frame_key)
    rows[missing] = -1
    if (rows < 0).any():
        bad = frame[list(inputs)].iloc[int(np.flatnonzero(rows < 0)[0])].to_dict()
        raise ValueError(f"combination {bad} is not in the model's table")
    return rows


def _positions(values: pd.Index, column: pd.Series) -> np.ndarray:
    """Position of each of `column`'s values in `values` (-1 for a value not there)."""
    if isinstance(column.dtype, pd.CategoricalDtype):  # look up each category once, not each row
        found = values.get_indexer(column.cat.categories)
        codes = column.cat.codes.to_numpy()
        positions = np.where(codes >= 0, found[codes], -1)
    else:
        positions = values.get_indexer(column)
    return positions.astype(np.int64)
