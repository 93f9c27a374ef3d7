"""Every answer the models can give, computed once; and validation of scoring payloads.

The request fields are all categorical with a few values each, and every field but age may
be left out ("not known"), so the whole request space is small: each record becomes a
mixed-radix integer, one digit per field of `schema.REQUEST_FIELDS` (the value's position in
`schema`, or one past the last value when the field was left out). Each such index points at
one precomputed answer (`model/serving/submodels.py`): of the in-hospital model when hosp_yn and icu_yn
are both Yes/No, else of the race-aware intake model when race/ethnicity is given, else of the
race-blind intake model; a sub-model of it when inputs were left out. Scoring is an array
lookup with precomputed JSON. The endpoint, batch scoring and the monitor share it, so they
give bit-identical answers.

The *full-record* space (the six `schema.MODEL_INPUTS` all given, race not given: ~9.2k
combinations; `RiskLookup.table`, `indices`, `index_to_frame`) is what the monitor uses.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model.core import artifact, schema
from model.serving import submodels

# Largest batch one request may carry. 50k records is ~7 MB of JSON and scores
# in well under a second; bigger files belong to `model.serving.batch_score`.
MAX_RECORDS = 50_000

ACCEPTED_FIELDS: tuple[str, ...] = schema.REQUEST_FIELDS
REQUIRED_FIELDS: tuple[str, ...] = schema.REQUIRED_FIELDS

_VALUES: dict[str, tuple[str, ...]] = {c: schema.FEATURES_BY_NAME[c].values for c in schema.REQUEST_FIELDS}
# Full-record space: the six core inputs, each given.
_RADICES = np.array([len(_VALUES[c]) for c in schema.MODEL_INPUTS], dtype=np.int64)
# Stride of each digit; the first input is the most significant, like itertools.product.
_STRIDES = np.array(
    [int(np.prod(_RADICES[i + 1 :])) for i in range(len(_RADICES))],
    dtype=np.int64,
)
# Request space: every request field, optional ones with one more digit meaning "left out".
_OMITTED = {c: len(_VALUES[c]) for c in schema.OPTIONAL_FIELDS}
_REQUEST_RADICES = np.array([len(_VALUES[c]) + (c in _OMITTED) for c in schema.REQUEST_FIELDS], dtype=np.int64)
_REQUEST_STRIDES = np.array(
    [int(np.prod(_REQUEST_RADICES[i + 1 :])) for i in range(len(_REQUEST_RADICES))], dtype=np.int64
)
_REQUEST_STRIDE = dict(zip(schema.REQUEST_FIELDS, map(int, _REQUEST_STRIDES), strict=True))
# The index of a record that leaves every optional field out; each given value adds its offset.
_ALL_OMITTED = sum(_OMITTED[c] * _REQUEST_STRIDE[c] for c in _OMITTED)
# Fast path: exact spelling -> offset of the index (KeyError for any other field or spelling).
_EXACT_OFFSET: dict[str, dict[str, int]] = {
    c: {v: (i - _OMITTED.get(c, 0)) * _REQUEST_STRIDE[c] for i, v in enumerate(_VALUES[c])}
    for c in schema.REQUEST_FIELDS
}
# Answer arrays kept per request index (RiskLookup.request_*).
_REQUEST_COLUMNS = ("probability", "unrecorded", "ci_low", "ci_high")
INPUTS_SEPARATOR = ";"  # inputs_used as one text cell in a scored file: "age_group;sex;..."
_BAND_UPPERS = np.array([upper for upper, _ in schema.RISK_BANDS], dtype=np.float64)
_BAND_NAMES = tuple(name for _, name in schema.RISK_BANDS)


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
    """Request digits of one record, validating it completely; raises PayloadError naming the record."""
    if not isinstance(record, dict):
        raise PayloadError(
            f'record {index} is {_type_name(record)}, not an object. Each item of "data" must be an '
            f"object with {', '.join(REQUIRED_FIELDS)} and any of the optional fields "
            f"{', '.join(schema.OPTIONAL_FIELDS)}, e.g. {json.dumps(example_record())}."
        )
    unknown = [k for k in record if k not in ACCEPTED_FIELDS]
    if unknown:
        raise PayloadError(
            f"record {index} has unknown field(s) {', '.join(repr(k) for k in unknown)}. "
            f"Accepted fields: {', '.join(ACCEPTED_FIELDS)}. Check the spelling."
        )
    missing = [c for c in REQUIRED_FIELDS if c not in record]
    if missing:
        raise PayloadError(
            f"record {index} is missing the field(s) {', '.join(repr(c) for c in missing)}, which every record "
            f"needs. Leave out any of {', '.join(schema.OPTIONAL_FIELDS)} that is not known: the record is "
            "then scored without it."
        )
    return [
        _OMITTED[column] if column not in record else _field_code(index, column, record[column])
        for column in schema.REQUEST_FIELDS
    ]


def _field_code(index: int, column: str, value: object) -> int:
    """Digit of one field's value. An empty string or null is refused, not read as "not known": a field that is
    not known is left out, so a client bug never silently changes which model scores the record."""
    allowed = ", ".join(repr(v) for v in schema.FEATURES_BY_NAME[column].values)
    leave_out = " Leave the field out when it is not known." if column in _OMITTED else ""
    if not isinstance(value, str):
        raise PayloadError(
            f"record {index} field {column!r} is {_type_name(value)}; values are strings, one of: {allowed}."
            + leave_out
        )
    if not value.strip():
        raise PayloadError(f"record {index} field {column!r} is empty; choose one of: {allowed}.{leave_out}")
    code = schema.canonical_code(column, value)
    if code < 0:
        raise PayloadError(
            f"record {index} field {column!r} has the unknown value {value[:80]!r}. Allowed values: {allowed}."
        )
    return code


def _record_index(index: int, record: object) -> int:
    """Request index of one record; exact spellings take the fast path, the rest full validation."""
    if type(record) is dict and "age_group" in record:
        total = _ALL_OMITTED
        try:
            for key, value in record.items():
                total += _EXACT_OFFSET[key][value]
            return total
        except (KeyError, TypeError):  # unknown field, unhashable or re-spelled value
            pass
    return int(np.dot(_record_codes(index, record), _REQUEST_STRIDES))


def validate_indices(records: object, max_records: int = MAX_RECORDS) -> list[int]:
    """Validate a JSON-decoded payload; return each record's request index (raises PayloadError)."""
    items = _check_container(records, max_records)
    return [_record_index(i, r) for i, r in enumerate(items)]


def _codes_to_frame(codes: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {c: np.asarray(_VALUES[c], dtype=object)[codes[:, j]] for j, c in enumerate(schema.MODEL_INPUTS)}
    )


def all_combinations() -> pd.DataFrame:
    """Every full-record combination (the six core inputs), in lookup order (row i has index i)."""
    rows = list(itertools.product(*(_VALUES[c] for c in schema.MODEL_INPUTS)))
    return pd.DataFrame(rows, columns=list(schema.MODEL_INPUTS), dtype=object)


def full_record_request_indices() -> np.ndarray:
    """Request index of every full-record combination (race not given), in `all_combinations` order."""
    codes = np.indices(tuple(_RADICES)).reshape(len(_RADICES), -1)
    race = _OMITTED[schema.RACE] * _REQUEST_STRIDE[schema.RACE]
    return (codes.T @ _REQUEST_STRIDES[: len(_RADICES)]).astype(np.int64) + race


def _routing(models: dict[str, submodels.ModelAnswers]) -> np.ndarray:
    """Answer position (into the models' answers, concatenated in dict order) of every request index."""
    if schema.YES_NO_VALUES[: len(schema.HOSPITAL_KNOWN_VALUES)] != schema.HOSPITAL_KNOWN_VALUES:
        raise AssertionError("hospital Yes/No must be the first values of YES_NO_VALUES")
    codes = np.indices(tuple(_REQUEST_RADICES), dtype=np.int16).reshape(len(_REQUEST_RADICES), -1)
    digit = dict(zip(schema.REQUEST_FIELDS, codes, strict=True))
    hospital = np.ones(codes.shape[1], dtype=bool)
    for column in schema.HOSPITAL_FIELDS:
        hospital &= digit[column] < len(schema.HOSPITAL_KNOWN_VALUES)
    race_given = digit[schema.RACE] < _OMITTED[schema.RACE]
    choice = np.full(codes.shape[1], schema.INTAKE_MODEL, dtype=object)
    if schema.INTAKE_RACE_MODEL in models:
        choice[race_given] = schema.INTAKE_RACE_MODEL
    if schema.IN_HOSPITAL_MODEL in models:  # not trained when too few hospital answers are known
        choice[hospital] = schema.IN_HOSPITAL_MODEL
    position = np.empty(codes.shape[1], dtype=np.int32)
    offset = 0
    for name, answers in models.items():
        mask = choice == name
        position[mask] = offset + np.ravel_multi_index([digit[c][mask] for c in answers.inputs], answers.shape)
        offset += len(answers.baseline)
    return position


def _answer_dicts(models: dict[str, submodels.ModelAnswers]) -> tuple[list[str], list[str]]:
    """JSON text of every answer, plain and with its explanation (see docs/scoring_contract.md)."""
    plain, explained = [], []
    for name, m in models.items():
        a = m.answers
        bands = risk_bands(a["probability"])
        for i in range(len(m.baseline)):
            used = m.used(i)
            result = {
                "probability": float(a["probability"][i]),
                "risk_band": str(bands[i]),
                "interval": [float(a["ci_low"][i]), float(a["ci_high"][i])],
                "probability_if_unrecorded_survived": float(a["unrecorded"][i]),
                "interval_if_unrecorded_survived": [float(a["unrecorded_low"][i]), float(a["unrecorded_high"][i])],
                "model": name,
                "extrapolated": bool(m.extrapolated[i]),
                "inputs_used": list(used),
            }
            plain.append(json.dumps(result))
            shares = {c: float(m.contributions[i, m.inputs.index(c)]) for c in used}
            explained.append(json.dumps({**result, "baseline": float(m.baseline[i]), "contributions": shares}))
    return plain, explained


def _inputs_used_texts(models: dict[str, submodels.ModelAnswers]) -> np.ndarray:
    """Per answer (models concatenated in dict order): the inputs it used, joined by INPUTS_SEPARATOR."""
    texts = [INPUTS_SEPARATOR.join(m.used(i)) for m in models.values() for i in range(len(m.baseline))]
    return np.asarray(texts, dtype=object)


def risk_bands(probabilities: np.ndarray) -> np.ndarray:
    """Vectorised `schema.risk_band` (band upper bounds are exclusive)."""
    idx = np.searchsorted(_BAND_UPPERS, probabilities, side="right")
    return np.asarray(_BAND_NAMES, dtype=object)[np.minimum(idx, len(_BAND_NAMES) - 1)]


class RiskLookup:
    """Precomputed answers for every request of one model version (all models and sub-models, routed)."""

    def __init__(self, models: dict[str, submodels.ModelAnswers], model_version: str, data_period: str = "") -> None:
        if schema.INTAKE_MODEL not in models:
            raise ValueError("the intake model is required")
        self.model_version = model_version
        self.data_period = data_period
        self.models = models
        position = _routing(models)
        answers = {c: np.concatenate([m.answers[c] for m in models.values()]) for c in _REQUEST_COLUMNS}
        self._position = position
        # Per request index: the answer's probability and its low end (batch scoring, collection), and
        # what the scored file adds (batch scoring): the 95% interval, the model and the inputs it used.
        self.request_probability = answers["probability"][position]
        self.request_unrecorded = answers["unrecorded"][position]
        self.request_ci_low = answers["ci_low"][position]
        self.request_ci_high = answers["ci_high"][position]
        self.request_model = np.concatenate(
            [np.full(len(m.baseline), name, dtype=object) for name, m in models.items()]
        )[position]
        self.request_inputs_used = _inputs_used_texts(models)[position]
        # Full-record space (six core inputs given, race not): the monitor's and race-less files' table.
        self.table = self.request_probability[full_record_request_indices()]
        self.bands = risk_bands(self.table)
        self._result_json, self._explained_json = _answer_dicts(models)
        self._head = f'{{"model_version": {json.dumps(model_version)}, "data_period": {json.dumps(data_period)}, '

    @classmethod
    def from_model_dir(cls, model_dir: str | Path) -> RiskLookup:
        """Load every risk table and the card's `model_version` and `data_period` from an artifact directory."""
        directory = artifact.find_model_dir(model_dir)
        card = artifact.load_card(directory)
        models = {
            m: submodels.model_answers(artifact.load_risk_table(directory, m), m)
            for m in artifact.trained_models(directory)
        }
        return cls(models, str(card["model_version"]), str(card.get("data_period", "")))

    def indices(self, frame: pd.DataFrame) -> np.ndarray:
        """Full-record index of each row of a frame with `MODEL_INPUTS` columns (vectorised)."""
        missing = [c for c in schema.MODEL_INPUTS if c not in frame.columns]
        if missing:
            raise PayloadError(
                f"missing column(s) {', '.join(missing)}; the model needs {', '.join(schema.MODEL_INPUTS)}."
            )
        index = np.zeros(len(frame), dtype=np.int64)
        for column, stride in zip(schema.MODEL_INPUTS, _STRIDES, strict=True):
            index += _column_codes(frame[column], column) * stride
        return index

    def request_indices(self, frame: pd.DataFrame) -> np.ndarray:
        """Request index of each row of a frame with `MODEL_INPUTS` columns and, optionally, race/ethnicity.

        A CDC file with a race column is scored by the race-aware model (its "Unknown", "Missing" and
        empty cells mean what the CDC meant); without the column, race-blind.
        """
        full = self.indices(frame)
        codes = (full[:, None] // _STRIDES) % _RADICES
        index = codes @ _REQUEST_STRIDES[: len(_RADICES)]
        if schema.RACE in frame.columns:
            return index + _column_codes(frame[schema.RACE], schema.RACE) * _REQUEST_STRIDE[schema.RACE]
        return index + _OMITTED[schema.RACE] * _REQUEST_STRIDE[schema.RACE]

    def probabilities(self, frame: pd.DataFrame) -> np.ndarray:
        """P(death) for each row of a frame with `MODEL_INPUTS` columns (canonical values; race used if present)."""
        return self.request_probability[self.request_indices(frame)]

    def score_records(
        self, records: object, max_records: int = MAX_RECORDS, *, explain: bool = False
    ) -> list[dict[str, Any]]:
        """Validate JSON-decoded records and score them, in order (the endpoint's `results`)."""
        texts = self._explained_json if explain else self._result_json
        return [json.loads(texts[self._position[i]]) for i in validate_indices(records, max_records)]

    def response_json(self, indices: list[int], *, explain: bool = False) -> str:
        """The endpoint's response body for validated request indices (see docs/scoring_contract.md)."""
        texts = self._explained_json if explain else self._result_json
        position = self._position
        results = ", ".join([texts[position[i]] for i in indices])
        return f'{self._head}"results": [{results}]}}'


def request_frame(index: np.ndarray) -> pd.DataFrame:
    """The six core inputs of request indices, None where a field was left out (race is never returned)."""
    codes = (np.asarray(index, dtype=np.int64)[:, None] // _REQUEST_STRIDES) % _REQUEST_RADICES
    columns = {}
    for j, c in enumerate(schema.MODEL_INPUTS):
        values = np.asarray([*_VALUES[c], None], dtype=object)
        columns[c] = values[np.minimum(codes[:, j], len(_VALUES[c]))]
    return pd.DataFrame(columns)


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
