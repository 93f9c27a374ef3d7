"""Azure ML batch deployment driver (scoring script of the batch endpoint).

Azure ML calls `init()` once per worker process and `run(mini_batch)` with a list
of input file paths (uri_folder input; `mini_batch_size` files at a time). Each
file is scored by `model.serving.batch_score.iter_scored` with the same `RiskLookup`
table the online endpoint serves, so every row gets exactly the endpoint's answer.

Two output modes (deployment environment variable `RISK_BATCH_OUTPUT`):

* `rows` (default, for `output_action: append_row`): `run` returns a DataFrame with
  one row per input row: `file`, `row_number`, the model inputs as read,
  `model.serving.batch_score.OUTPUT_COLUMNS` (`probability`, `ci_low`, `ci_high`,
  `probability_if_unrecorded_survived`, `risk_band`, `flagged`, `flag_rule`, `model`,
  `inputs_used`), `reject_reason` ("" when scored).
  Azure appends them to the job's `predictions.csv`. Rejected rows are in it too,
  with an empty probability, so nothing is dropped.
* `files` (for `output_action: summary_only` and large files): each input file is
  written next to the job output (`AZUREML_BI_OUTPUT_PATH`) as
  `<name>-<hash>.scored.parquet` plus `<name>-<hash>.rejects.parquet` (`output_stem`: the
  input's name without its data suffix and a hash of its full path, so no two inputs share
  an output); `run` returns one summary row per file with `input` and `output` (Azure counts
  one returned element per processed input).

`RISK_BATCH_THRESHOLD` overrides the flag threshold (default: batch_score's, the 'high' band).
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pandas as pd

try:
    from model.core import artifact, schema
    from model.data.loader import describe_source
    from model.serving import batch_score, lookup
except ModuleNotFoundError:  # in Azure the code folder's parent may not be on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from model.core import artifact, schema
    from model.data.loader import describe_source
    from model.serving import batch_score, lookup

MODE_ENV = "RISK_BATCH_OUTPUT"
THRESHOLD_ENV = "RISK_BATCH_THRESHOLD"
OUTPUT_PATH_ENV = "AZUREML_BI_OUTPUT_PATH"

_RISK: lookup.RiskLookup | None = None
_SCORER: batch_score.Scorer | None = None
_THRESHOLD: float = schema.DEFAULT_THRESHOLD
_MODE = "rows"
_OUTPUT: Path | None = None


def init() -> None:
    """Load the model registered with the deployment (AZUREML_MODEL_DIR) and read the settings."""
    global _RISK, _SCORER, _THRESHOLD, _MODE, _OUTPUT
    root = os.environ.get("AZUREML_MODEL_DIR")
    if not root:
        raise RuntimeError("AZUREML_MODEL_DIR is not set: point it at a model directory (python -m model.train).")
    model_dir = artifact.find_model_dir(root)
    _RISK = lookup.RiskLookup.from_model_dir(model_dir)
    _SCORER = batch_score.lookup_scorer(_RISK)
    _THRESHOLD = batch_score.resolve_threshold(os.environ.get(THRESHOLD_ENV) or None, model_dir)
    _MODE = os.environ.get(MODE_ENV, "rows").strip().lower()
    if _MODE not in ("rows", "files"):
        raise RuntimeError(f"{MODE_ENV}={_MODE!r} is not a mode; use 'rows' or 'files'")
    if _MODE == "files":
        raw = os.environ.get(OUTPUT_PATH_ENV)
        if not raw:
            raise RuntimeError(f"{MODE_ENV}=files needs {OUTPUT_PATH_ENV} (set by Azure ML batch jobs)")
        _OUTPUT = Path(raw)
        _OUTPUT.mkdir(parents=True, exist_ok=True)
    print(f"batch driver ready: model {_RISK.model_version}, threshold {_THRESHOLD:g}, mode {_MODE}", flush=True)


def _loaded() -> tuple[batch_score.Scorer, lookup.RiskLookup]:
    """The scorer and model that init() loaded."""
    if _SCORER is None or _RISK is None:
        raise RuntimeError("run() called before init(): Azure ML calls init() once per worker, then run()")
    return _SCORER, _RISK


def _rows_of(path: Path) -> pd.DataFrame:
    """Every input row of one file: scored rows and rejected rows, in file order."""
    scorer, _ = _loaded()
    mapped = describe_source(path).mapped  # schema column -> header in this file
    parts = []
    for chunk in batch_score.iter_scored(path, scorer, _THRESHOLD):
        scored = chunk.scored.to_pandas()
        frame = _input_columns(scored, path, mapped)
        frame.insert(1, batch_score.ROW_COLUMN, chunk.scored_rows)
        for column in batch_score.OUTPUT_COLUMNS:
            frame[column] = scored[column].to_numpy()
        frame[batch_score.REASON_COLUMN] = ""
        parts.append(frame)
        if chunk.rejected is not None:
            rejected = chunk.rejected.to_pandas()
            bad = _input_columns(rejected, path, mapped)
            bad.insert(1, batch_score.ROW_COLUMN, rejected[batch_score.ROW_COLUMN].to_numpy())
            for column in batch_score.OUTPUT_COLUMNS:  # a reject has no score: empty cells, not flagged
                bad[column] = None
            bad["probability"], bad["risk_band"], bad["flagged"] = float("nan"), "", False
            bad[batch_score.REASON_COLUMN] = rejected[batch_score.REASON_COLUMN].to_numpy()
            parts.append(bad)
    return pd.concat(parts, ignore_index=True).sort_values(batch_score.ROW_COLUMN, kind="stable", ignore_index=True)


def _input_columns(frame: pd.DataFrame, path: Path, mapped: dict[str, str]) -> pd.DataFrame:
    """`file` + the model inputs as read, under their schema names (old files spell headers differently)."""
    out = pd.DataFrame({"file": path.name}, index=frame.index)
    for column in schema.MODEL_INPUTS:
        out[column] = frame[mapped[column]].astype(str).to_numpy()
    return out.reset_index(drop=True)


_DATA_SUFFIXES = (".csv.gz", ".csv", ".parquet")


def output_stem(path: Path) -> str:
    """The name an input file's outputs get: its name without the data suffix, plus a hash of its full path.

    Every input of a job writes into one shared output folder, from several workers and nodes at
    once. The name alone is not unique (`cases.2020.csv` and `cases.2021.csv` once both became
    `cases`; `a/x.csv` and `b/x.csv` still share `x`), so 8 hex digits of the SHA-256 of the
    absolute input path keep them apart; a retried mini batch rewrites its own files, nobody else's.
    Example: /mnt/in/2020/cases.2020.csv -> cases.2020-<8 hex>.
    """
    name = path.name
    for suffix in _DATA_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    digest = hashlib.sha256(str(path.absolute()).encode("utf-8")).hexdigest()[:8]
    return f"{name}-{digest}"


def _write_files(path: Path) -> dict[str, object]:
    scorer, risk = _loaded()
    if _OUTPUT is None:
        raise RuntimeError(f"{MODE_ENV}=files without an output folder: init() reads it from {OUTPUT_PATH_ENV}")
    stem = output_stem(path)
    summary = batch_score.score_file(
        path,
        _OUTPUT / f"{stem}.scored.parquet",
        scorer,
        threshold=_THRESHOLD,
        model_version=risk.model_version,
        rejects=_OUTPUT / f"{stem}.rejects.parquet",
    )
    return {
        "file": path.name,
        "input": str(path),
        "rows_read": summary.rows_read,
        "scored": summary.scored,
        "rejected": summary.rejected,
        "flagged": summary.flagged,
        "expected_deaths": summary.expected_deaths,
        "output": summary.out,
    }


def run(mini_batch: list[str]) -> pd.DataFrame:
    """Score the files of one mini batch; a file that cannot be read fails the mini batch with its reason."""
    _loaded()  # refuses a run() before init()
    paths = [Path(p) for p in mini_batch]
    if _MODE == "files":
        return pd.DataFrame([_write_files(p) for p in paths])
    frames = [_rows_of(p) for p in paths]
    if not frames:
        return pd.DataFrame(
            columns=[
                "file",
                batch_score.ROW_COLUMN,
                *schema.MODEL_INPUTS,
                *batch_score.OUTPUT_COLUMNS,
                batch_score.REASON_COLUMN,
            ]
        )
    return pd.concat(frames, ignore_index=True)
