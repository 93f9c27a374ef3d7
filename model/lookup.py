"""Every answer the models can give, computed once; and validation of scoring payloads.

The request fields are all categorical with a few values each, so the whole
input space is small (`schema.combination_count()`, ~9.2k). Training writes one
table per model (intake, in-hospital) with every combination of its inputs; here
each full combination of the six request fields is routed to the model that
scores it (`schema.model_for`: in-hospital only when hosp_yn and icu_yn are both
Yes/No) and its answer precomputed. Scoring is then an array lookup: each record
becomes a mixed-radix integer (one digit per field, the digit is the value's
position in `schema`). The endpoint, batch scoring and the monitor share it, so
they give bit-identical answers.
"""

from __future__ import annotations

import itertools
import json
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model import artifact, explain, schema

# Largest batch one request may carry. 50k records is ~7 MB of JSON and scores
# in well under a second; bigger files belong to `model.batch_score`.
MAX_RECORDS = 50_000

# Accepted but not used by the model (reported per subgroup only).
IGNORED_FIELDS: tuple[str, ...] = tuple(c for c in schema.ALL_COLUMNS if c not in schema.MODEL_INPUTS)
ACCEPTED_FIELDS: tuple[str, ...] = schema.MODEL_INPUTS + IGNORED_FIELDS

_VALUES: dict[str, tuple[str, ...]] = {c: schema.FEATURES_BY_NAME[c].values for c in schema.MODEL_INPUTS}
_RADICES = np.array([len(_VALUES[c]) for c in schema.MODEL_INPUTS], dtype=np.int64)
# Stride of each digit; the first input is the most significant, like itertools.product.
_STRIDES = np.array(
    [int(np.prod(_RADICES[i + 1 :])) for i in range(len(_RADICES))],
    dtype=np.int64,
)
# Exact spelling -> digit, the fast path; other spellings go through schema.canonical_value.
_INPUT_FIELDS = frozenset(schema.MODEL_INPUTS)
_BAND_UPPERS = np.array([upper for upper, _ in schema.RISK_BANDS], dtype=np.float64)
_BAND_NAMES = tuple(name for _, name in schema.RISK_BANDS)
# Fast path: a record whose values are all exact spellings is one dict lookup of its value tuple.
_GET_INPUTS = operator.itemgetter(*schema.MODEL_INPUTS)
_COMBINATION_INDEX: dict[tuple[str, ...], int] = {
    combo: i for i, combo in enumerate(itertools.product(*(_VALUES[c] for c in schema.MODEL_INPUTS)))
}
# Intake fields must be sent; hospital fields may be left out (then the intake model scores the record).
REQUIRED_FIELDS: tuple[str, ...] = schema.MODEL_FEATURES[schema.INTAKE_MODEL]
_ABSENT_HOSPITAL_CODE = {c: _VALUES[c].index(schema.MISSING) for c in schema.HOSPITAL_FIELDS}


class PayloadError(ValueError):
    """The payload cannot be scored; the message says what was wrong and how to fix it."""


def example_record() -> dict[str, str]:
    """A valid intake record made of the schema defaults (used in error messages, docs and health checks)."""
    return schema.default_record()


def _allowed(column: str) -> str:
    return ", ".join(repr(v) for v in _VALUES[column])


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def _check_container(records: object, max_records: int) -> Sequence[Any]:
    if not isinstance(records, list):
        raise PayloadError(
            f'"data" must be a JSON array of records, got {_type_name(records)}. '
            f'Send {{"data": [{{...}}, ...]}} with one object per patient, e.g. {json.dumps(example_record())}.'
        )
    if not records:
        raise PayloadError('"data" is an empty array: send at least one record to score.')
    if len(records) > max_records:
        raise PayloadError(
            f'"data" holds {len(records)} records; at most {max_records} are accepted per request. '
            "Split the batch into smaller requests, or score files with python -m model.batch_score."
        )
    return records


def _record_codes(index: int, record: object) -> list[int]:
    """Digits of one record, validating it completely; raises PayloadError naming the record."""
    if not isinstance(record, dict):
        raise PayloadError(
            f'record {index} is {_type_name(record)}, not an object. Each item of "data" must be an '
            f"object with the fields {', '.join(schema.MODEL_INPUTS)}, e.g. {json.dumps(example_record())}."
        )
    if len(record) != len(schema.MODEL_INPUTS) or any(k not in _INPUT_FIELDS for k in record):
        # The hospital fields may be absent; anything else must be there and known.
        unknown = [k for k in record if k not in ACCEPTED_FIELDS]
        if unknown:
            raise PayloadError(
                f"record {index} has unknown field(s) {', '.join(repr(k) for k in unknown)}. "
                f"Accepted fields: {', '.join(ACCEPTED_FIELDS)} "
                f"({', '.join(IGNORED_FIELDS)} is accepted and ignored). Check the spelling."
            )
        missing = [c for c in REQUIRED_FIELDS if c not in record]
        if missing:
            raise PayloadError(
                f"record {index} is missing the field(s) {', '.join(repr(c) for c in missing)}. "
                f"Every record needs all of: {', '.join(REQUIRED_FIELDS)} "
                f"({', '.join(schema.HOSPITAL_FIELDS)} are optional); "
                f"send {schema.UNKNOWN!r} or {schema.MISSING!r} where a value is not known (if allowed)."
            )
    codes = []
    for column in schema.MODEL_INPUTS:
        if column not in record:  # an optional hospital field: not known, so the intake model scores it
            codes.append(_ABSENT_HOSPITAL_CODE[column])
            continue
        codes.append(_field_code(index, column, record[column]))
    for column in IGNORED_FIELDS:  # accepted and ignored, but only as a valid value: no silent junk
        if column in record:
            _field_code(index, column, record[column])
    return codes


def _field_code(index: int, column: str, value: object) -> int:
    """Digit of one field's value; an API caller must say "Missing", an empty string is not a silent Missing."""
    allowed = ", ".join(repr(v) for v in schema.FEATURES_BY_NAME[column].values)
    if not isinstance(value, str):
        raise PayloadError(
            f"record {index} field {column!r} is {_type_name(value)}; values are strings, one of: {allowed}."
        )
    if not value.strip():
        missing = f"send {schema.MISSING!r} when it is not recorded, or " if schema.MISSING in allowed else ""
        raise PayloadError(f"record {index} field {column!r} is empty; {missing}choose one of: {allowed}.")
    code = schema.canonical_code(column, value)
    if code < 0:
        raise PayloadError(
            f"record {index} field {column!r} has the unknown value {value[:80]!r}. Allowed values: {allowed}."
        )
    return code


def _record_index(index: int, record: object) -> int:
    """Lookup index of one record; exact spellings take the fast path, the rest full validation."""
    if type(record) is dict and len(record) == len(_STRIDES):
        try:
            return _COMBINATION_INDEX[_GET_INPUTS(record)]
        except (KeyError, TypeError):  # missing field, unhashable or re-spelled value
            pass
    return int(np.dot(_record_codes(index, record), _STRIDES))


def validate_indices(records: object, max_records: int = MAX_RECORDS) -> list[int]:
    """Validate a JSON-decoded payload; return each record's lookup index (raises PayloadError)."""
    items = _check_container(records, max_records)
    return [_record_index(i, r) for i, r in enumerate(items)]


def _codes_to_frame(codes: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {c: np.asarray(_VALUES[c], dtype=object)[codes[:, j]] for j, c in enumerate(schema.MODEL_INPUTS)}
    )


def risk_bands(probabilities: np.ndarray) -> np.ndarray:
    """Vectorised `schema.risk_band` (band upper bounds are exclusive)."""
    idx = np.searchsorted(_BAND_UPPERS, probabilities, side="right")
    return np.asarray(_BAND_NAMES, dtype=object)[np.minimum(idx, len(_BAND_NAMES) - 1)]


def all_combinations() -> pd.DataFrame:
    """Every model-input combination, in lookup order (row i has index i)."""
    rows = list(itertools.product(*(_VALUES[c] for c in schema.MODEL_INPUTS)))
    return pd.DataFrame(rows, columns=list(schema.MODEL_INPUTS), dtype=object)


@dataclass(frozen=True)
class Answer:
    """What the endpoint says about one combination (see docs/scoring_contract.md)."""

    probability: float
    risk_band: str
    interval: tuple[float, float]
    model: str
    extrapolated: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "probability": self.probability,
            "risk_band": self.risk_band,
            "interval": list(self.interval),
            "model": self.model,
            "extrapolated": self.extrapolated,
        }


def route(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Every full combination (lookup order) with the answer of the model that scores it.

    Columns: the six request fields, `model`, `probability`, `ci_low`, `ci_high`, `extrapolated`, and the
    explanation (`model.explain`): `baseline` and `contributions` ({input: probability points}).
    """
    grid = all_combinations()
    hospital = np.ones(len(grid), dtype=bool)
    for column in schema.HOSPITAL_FIELDS:
        hospital &= grid[column].isin(schema.HOSPITAL_KNOWN_VALUES).to_numpy()
    if schema.IN_HOSPITAL_MODEL not in tables:  # not trained (too few known hospital answers): intake scores all
        hospital[:] = False
    grid["model"] = np.where(hospital, schema.IN_HOSPITAL_MODEL, schema.INTAKE_MODEL)
    answers = ("probability", "ci_low", "ci_high", "extrapolated", "baseline", "contributions")
    out = {
        name: np.empty(len(grid), dtype=object if name in ("extrapolated", "contributions") else float)
        for name in answers
    }
    for model, table in tables.items():
        baseline, shares = explain.shapley(table, model)
        table = table.assign(
            baseline=baseline,
            contributions=[dict(zip(schema.MODEL_FEATURES[model], map(float, row), strict=True)) for row in shares],
        )
        inputs = schema.MODEL_FEATURES[model]
        mask = (grid["model"] == model).to_numpy()
        keys = pd.MultiIndex.from_frame(table[list(inputs)].astype(str))
        rows = keys.get_indexer(pd.MultiIndex.from_frame(grid.loc[mask, list(inputs)].astype(str)))
        if (rows < 0).any():
            raise ValueError(f"the {model} risk table lacks {int((rows < 0).sum())} combinations; retrain the model")
        for name in answers:
            out[name][mask] = table[name].to_numpy()[rows]
    for name in answers:
        grid[name] = out[name].astype(bool) if name == "extrapolated" else out[name]
    return grid


class RiskLookup:
    """Precomputed answers for every request combination of one model version (both models, routed)."""

    def __init__(self, routed: pd.DataFrame, model_version: str, data_period: str = "") -> None:
        if len(routed) != schema.combination_count():
            raise ValueError(f"expected {schema.combination_count()} combinations, got {len(routed)}")
        self.model_version = model_version
        self.data_period = data_period
        self.routed = routed
        self.table = routed["probability"].to_numpy(dtype=np.float64)
        self.bands = risk_bands(self.table)
        self.answers = [
            Answer(float(p), str(b), (float(lo), float(hi)), str(m), bool(x))
            for p, b, lo, hi, m, x in zip(
                self.table,
                self.bands,
                routed["ci_low"],
                routed["ci_high"],
                routed["model"],
                routed["extrapolated"],
                strict=True,
            )
        ]
        self._py_results = [a.as_dict() for a in self.answers]
        # The JSON text of each combination's result, byte-identical to json.dumps of the dict:
        # a 10k-record response is then one str.join instead of 10k dict encodings.
        self._result_json: list[str] = [json.dumps(r) for r in self._py_results]
        self._py_explained = [
            {**r, "baseline": float(b), "contributions": c}
            for r, b, c in zip(self._py_results, routed["baseline"], routed["contributions"], strict=True)
        ]
        self._explained_json: list[str] = [json.dumps(r) for r in self._py_explained]
        self._head = f'{{"model_version": {json.dumps(model_version)}, "data_period": {json.dumps(data_period)}, '

    @classmethod
    def from_model_dir(cls, model_dir: str | Path) -> RiskLookup:
        """Load both risk tables and the card's `model_version` and `data_period` from an artifact directory."""
        directory = artifact.find_model_dir(model_dir)
        card = artifact.load_card(directory)
        tables = {m: artifact.load_risk_table(directory, m) for m in artifact.trained_models(directory)}
        return cls(route(tables), str(card["model_version"]), str(card.get("data_period", "")))

    def indices(self, frame: pd.DataFrame) -> np.ndarray:
        """Lookup index of each row of a frame with `MODEL_INPUTS` columns (vectorised)."""
        missing = [c for c in schema.MODEL_INPUTS if c not in frame.columns]
        if missing:
            raise PayloadError(
                f"missing column(s) {', '.join(missing)}; the model needs {', '.join(schema.MODEL_INPUTS)}."
            )
        index = np.zeros(len(frame), dtype=np.int64)
        for column, stride in zip(schema.MODEL_INPUTS, _STRIDES, strict=True):
            index += _column_codes(frame[column], column) * stride
        return index

    def probabilities(self, frame: pd.DataFrame) -> np.ndarray:
        """P(death) for each row of a frame with `MODEL_INPUTS` columns (canonical values)."""
        return self.table[self.indices(frame)]

    def score_records(
        self, records: object, max_records: int = MAX_RECORDS, *, explain: bool = False
    ) -> list[dict[str, Any]]:
        """Validate JSON-decoded records and score them, in order (the endpoint's `results`)."""
        results = self._py_explained if explain else self._py_results
        return [dict(results[i]) for i in validate_indices(records, max_records)]

    def response_json(self, indices: list[int], *, explain: bool = False) -> str:
        """The endpoint's response body for validated lookup indices (see docs/scoring_contract.md)."""
        texts = self._explained_json if explain else self._result_json
        results = ", ".join([texts[i] for i in indices])
        return f'{self._head}"results": [{results}]}}'


def index_to_frame(index: np.ndarray) -> pd.DataFrame:
    """Canonical input values of lookup indices (inverse of `RiskLookup.indices`)."""
    codes = (np.asarray(index, dtype=np.int64)[:, None] // _STRIDES) % _RADICES
    return _codes_to_frame(codes)


def _column_codes(values: pd.Series, column: str) -> np.ndarray:
    """Digits of one column; re-spelled values are normalised, unknown ones rejected with counts."""
    allowed = list(_VALUES[column])
    if isinstance(values.dtype, pd.CategoricalDtype) and list(values.cat.categories) == allowed:
        return values.cat.codes.to_numpy(dtype=np.int64)
    # factorize is the fastest vectorised step (hash each cell once); the few distinct
    # values are then mapped to digits in Python, normalising harmless re-spellings.
    raw_codes, uniques = pd.factorize(values, use_na_sentinel=True)
    digits = [schema.canonical_code(column, str(v)) for v in uniques]
    null_digit = schema.canonical_code(column, None)
    unknown = [(repr(v), i) for i, v in enumerate(uniques) if digits[i] < 0]
    has_null = bool((raw_codes < 0).any())
    if unknown or (has_null and null_digit < 0):
        counts = np.bincount(raw_codes[raw_codes >= 0], minlength=len(uniques))
        shown = [f"{v} ({int(counts[i])} rows)" for v, i in unknown[:10]]
        if has_null and null_digit < 0:
            shown.append(f"empty/null ({int((raw_codes < 0).sum())} rows)")
        raise PayloadError(
            f"column {column!r} has value(s) outside the schema: {', '.join(shown)}. "
            f"Allowed values: {_allowed(column)}."
        )
    # Last entry serves the null sentinel (-1).
    lut = np.array([*digits, max(null_digit, 0)], dtype=np.int64)
    return lut[raw_codes]
