"""Train, select, calibrate and evaluate the death-risk model; write the model artifact.

    python -m model.train [--data FILE] [--out DIR]

The target is death_yn == "Yes" against death_yn == "No". Rows whose outcome is
Missing / Unknown / NA are excluded (and counted). The seed lab's notebook
label-encoded death_yn alphabetically and kept codes 0 and 1 -- "Missing" and
"No" -- so it learned who has a missing record, not who dies; see
tests/test_train.py::test_target_is_death_not_missing.

The feature space is finite, so the loader hands over one row per distinct
combination with patient counts; every fit and metric uses those counts as
sample weights. Cost grows with distinct combinations, not with rows.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from threadpoolctl import threadpool_limits

from model import artifact, evaluate, schema
from model.candidates import CANDIDATES
from model.exit_codes import BAD_INPUT, guarded
from model.loader import DataError, load_counts
from model.model_card import build_card, card_markdown
from model.provenance import is_synthetic

# Row-level split of patients (not of combinations): train / validation / test.
SPLIT_SHARES = (0.6, 0.2, 0.2)
# Selection metric on the validation split. PR-AUC (average precision) judges how
# well deaths are ranked above survivors when deaths are a few percent: ROC-AUC
# is dominated by the many easy survivors, and Brier mostly rewards predicting
# the base rate. Probabilities are calibrated afterwards, so ranking is what
# selection should judge.
SELECTION_METRIC = "pr_auc"
# Below these, metrics on the held-out splits are noise: stop and say so.
MIN_DEATHS_PER_HELD_OUT_SPLIT = 30
MIN_DEATHS_TOTAL = 150
# Isotonic calibration needs enough events to fit a step function; fewer -> Platt (sigmoid).
MIN_DEATHS_FOR_ISOTONIC = 500
DEFAULT_GENERATED_ROWS = 2_000_000
DEFAULT_SEED = 20201


class TrainingError(RuntimeError):
    """Training cannot produce a trustworthy model from this data; the message says why."""


class Progress:
    """Phase and elapsed time on stderr, so a person can follow a long run."""

    def __init__(self, quiet: bool = False, every_s: float = 2.0) -> None:
        self.start = time.perf_counter()
        self.quiet = quiet
        self.every_s = every_s
        self._last_rows_report = 0.0

    def __call__(self, message: str) -> None:
        if not self.quiet:
            print(f"[{time.perf_counter() - self.start:7.1f}s] {message}", file=sys.stderr, flush=True)

    def rows(self, rows: int) -> None:
        """Rows read so far, at most once every `every_s` seconds (the loader reports every chunk)."""
        now = time.perf_counter()
        if now - self._last_rows_report >= self.every_s:
            self._last_rows_report = now
            self(f"  {rows:,} rows read")


@dataclass
class Split:
    """One split as weighted rows: all schema columns, label y (1 = death), weight w (patients)."""

    frame: pd.DataFrame
    y: np.ndarray
    w: np.ndarray

    @property
    def deaths(self) -> float:
        return float(self.w[self.y == 1].sum())

    @property
    def patients(self) -> float:
        return float(self.w.sum())

    def for_fitting(self) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """Collapse the subgroup-only columns away: fewer rows, same weighted data."""
        frame = self.frame[list(schema.MODEL_INPUTS)].assign(y=self.y, w=self.w)
        grouped = frame.groupby([*schema.MODEL_INPUTS, "y"], observed=True, as_index=False)["w"].sum()
        return grouped[list(schema.MODEL_INPUTS)], grouped["y"].to_numpy(), grouped["w"].to_numpy()


def split_counts(counts: pd.DataFrame, seed: int) -> tuple[Split, Split, Split]:
    """Stratified row-level split: each combination's deaths and survivors are dealt out multinomially."""
    rng = np.random.default_rng(seed)
    deaths = rng.multinomial(counts["deaths"].to_numpy(dtype=np.int64), SPLIT_SHARES)
    survivors = rng.multinomial(counts["survivors"].to_numpy(dtype=np.int64), SPLIT_SHARES)
    columns = counts[list(schema.ALL_COLUMNS)].reset_index(drop=True)
    splits = []
    for k in range(len(SPLIT_SHARES)):
        pos = columns.assign(y=1, w=deaths[:, k])
        neg = columns.assign(y=0, w=survivors[:, k])
        both = pd.concat([pos, neg], ignore_index=True)
        both = both[both["w"] > 0].reset_index(drop=True)
        splits.append(
            Split(
                frame=both[list(schema.ALL_COLUMNS)],
                y=both["y"].to_numpy(dtype=np.int8),
                w=both["w"].to_numpy(dtype=np.float64),
            )
        )
    return splits[0], splits[1], splits[2]


def check_enough_outcomes(counts: pd.DataFrame, held_out: tuple[Split, Split]) -> None:
    deaths = int(counts["deaths"].sum())
    survivors = int(counts["survivors"].sum())
    if deaths + survivors == 0:
        raise TrainingError(
            "No row has a known outcome (death_yn is Missing/Unknown/NA everywhere), so there is "
            "nothing to learn from. Use a file where death_yn is 'Yes' or 'No' for many rows."
        )
    short = [s for s in held_out if s.deaths < MIN_DEATHS_PER_HELD_OUT_SPLIT]
    if deaths < MIN_DEATHS_TOTAL or short or survivors < MIN_DEATHS_TOTAL:
        raise TrainingError(
            f"Too few known outcomes to train and evaluate a death-risk model: {deaths:,} deaths and "
            f"{survivors:,} survivors among rows with a known outcome. At least {MIN_DEATHS_TOTAL} deaths "
            f"are needed (about {MIN_DEATHS_PER_HELD_OUT_SPLIT} in each of the validation and test splits) "
            "for the metrics to mean anything. Use a larger extract, the full CDC file, or omit --data to "
            "train on generated data."
        )


def fit_candidates(
    train: Split, validation: Split, names: list[str], seed: int, progress: Progress
) -> tuple[str, Any, dict[str, dict[str, Any]]]:
    """Fit each candidate on train, score it on validation; return the best by SELECTION_METRIC."""
    x_train, y_train, w_train = train.for_fitting()
    x_val, y_val, w_val = validation.for_fitting()
    results: dict[str, dict[str, Any]] = {}
    fitted: dict[str, Any] = {}
    for name in names:
        started = time.perf_counter()
        model = CANDIDATES[name](seed)
        # A few thousand aggregated rows: OpenMP threads cost more than they save, and on a busy
        # 2-core machine they oversubscribe (HistGradientBoosting took 25x longer with them).
        with threadpool_limits(limits=1, user_api="openmp"):
            model.fit(x_train, y_train, model__sample_weight=w_train)
        metrics = evaluate.summary_metrics(y_val, model.predict_proba(x_val)[:, 1], w_val)
        results[name] = {**metrics, "fit_seconds": round(time.perf_counter() - started, 2)}
        fitted[name] = model
        progress(
            f"candidate {name}: validation PR-AUC {metrics['pr_auc']:.4f}, ROC-AUC {metrics['roc_auc']:.4f}, "
            f"Brier {metrics['brier']:.5f} ({results[name]['fit_seconds']}s)"
        )
    best = max(names, key=lambda n: results[n][SELECTION_METRIC])
    return best, fitted[best], results


def calibrate(model: Any, validation: Split) -> tuple[Any, str]:
    """Calibrate the chosen model's probabilities on the held-out validation split."""
    x_val, y_val, w_val = validation.for_fitting()
    method = "isotonic" if validation.deaths >= MIN_DEATHS_FOR_ISOTONIC else "sigmoid"
    # One "split" whose calibration part is the whole validation set: the frozen model is not
    # refitted, so no folds are needed, and one calibrator sees every validation patient.
    everything = np.arange(len(x_val))
    calibrated = CalibratedClassifierCV(FrozenEstimator(model), method=method, cv=[(everything, everything)])
    with warnings.catch_warnings():
        # The frozen model is not refitted, so weights belong to the calibrator alone -- as intended.
        warnings.filterwarnings("ignore", message="Since FrozenEstimator does not appear to accept")
        calibrated.fit(x_val, y_val, sample_weight=w_val)
    return calibrated, method


def training_distribution(train: Split, train_scores: np.ndarray) -> dict[str, Any]:
    """What the model was trained on, for drift monitoring: category shares and the risk histogram."""
    total = train.w.sum()
    features = {}
    for name in schema.MODEL_INPUTS:
        shares = pd.Series(train.w).groupby(train.frame[name].to_numpy()).sum() / total
        features[name] = {v: float(shares.get(v, 0.0)) for v in schema.FEATURES_BY_NAME[name].values}
    return {
        "patients": float(total),
        "features": features,
        "predicted_risk": evaluate.risk_histogram(train_scores, train.w),
    }


def library_versions() -> dict[str, str]:
    import joblib
    import pyarrow
    import sklearn

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "pyarrow": pyarrow.__version__,
        "scikit-learn": sklearn.__version__,
        "joblib": joblib.__version__,
    }


def train(
    data: Path,
    out: Path,
    *,
    synthetic: bool,
    seed: int = DEFAULT_SEED,
    candidates: list[str] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the whole pipeline on `data` and write the artifact to `out`; return the model card."""
    progress = progress or Progress()
    names = candidates or list(CANDIDATES)
    progress(f"reading {data}")
    counts, report = load_counts(data, progress=progress.rows)
    progress(
        f"read {report.rows_read:,} rows; {report.rows_used:,} with a known outcome; "
        f"{counts['deaths'].sum():,} deaths; {len(counts):,} distinct combinations"
    )
    train_split, validation, test = split_counts(counts, seed)
    check_enough_outcomes(counts, (validation, test))
    progress(
        f"split patients {train_split.patients:,.0f} / {validation.patients:,.0f} / {test.patients:,.0f} "
        "(train / validation / test)"
    )
    best_name, best_model, selection = fit_candidates(train_split, validation, names, seed, progress)
    progress(f"selected {best_name} by validation {SELECTION_METRIC}")
    model, method = calibrate(best_model, validation)
    progress(f"calibrated with {method} regression on the validation split")

    test_scores = model.predict_proba(test.frame[list(schema.MODEL_INPUTS)])[:, 1]
    tables = {
        "roc": evaluate.roc_table(test.y, test_scores, test.w),
        "pr": evaluate.pr_table(test.y, test_scores, test.w),
        "thresholds": evaluate.threshold_table(test.y, test_scores, test.w),
        "calibration": evaluate.calibration_table(test.y, test_scores, test.w),
        "subgroups": evaluate.subgroup_table(
            test.frame, test.y, test_scores, test.w, schema.SUBGROUP_COLUMNS
        ),
    }
    test_metrics = evaluate.summary_metrics(test.y, test_scores, test.w)
    test_metrics["expected_calibration_error"] = evaluate.expected_calibration_error(tables["calibration"])
    uncalibrated = evaluate.summary_metrics(
        test.y, best_model.predict_proba(test.frame[list(schema.MODEL_INPUTS)])[:, 1], test.w
    )
    progress(
        f"test: ROC-AUC {test_metrics['roc_auc']:.4f}, PR-AUC {test_metrics['pr_auc']:.4f}, "
        f"Brier {test_metrics['brier']:.5f}, prevalence {test_metrics['prevalence']:.4f}"
    )
    train_scores = model.predict_proba(train_split.frame[list(schema.MODEL_INPUTS)])[:, 1]

    created = datetime.now(UTC)
    card = build_card(
        created=created,
        report=report.to_dict(),
        synthetic=synthetic,
        splits={"train": train_split, "validation": validation, "test": test},
        selection={
            "metric": SELECTION_METRIC,
            "split": "validation",
            "chosen": best_name,
            "candidates": selection,
        },
        calibration_method=method,
        test_metrics=test_metrics,
        uncalibrated_test_metrics=uncalibrated,
        tables=tables,
        library_versions=library_versions(),
        seed=seed,
    )
    artifact.write_artifact(
        out,
        estimator=model,
        card=card,
        card_markdown=card_markdown(card),
        tables=tables,
        training_distribution=training_distribution(train_split, train_scores),
    )
    progress(f"wrote model {card['model_version']} to {out}")
    return card


def default_generated_data(rows: int, seed: int) -> Path:
    """Generate (once) the embedded default data set and return its path."""
    from model import synth

    path = Path("data/generated") / f"synthetic-{rows}-seed{seed}.parquet"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        synth.write(path, rows=rows, seed=seed)  # also writes the provenance sidecar
    return path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m model.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="CDC case surveillance file (CSV, CSV.gz or Parquet). "
                        "Omitted: train on generated synthetic data.")
    parser.add_argument("--out", type=Path, default=artifact.DEFAULT_MODEL_DIR, help="model directory to write")
    parser.add_argument("--rows", type=int, default=DEFAULT_GENERATED_ROWS,
                        help="rows of synthetic data to generate when --data is omitted")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed for the split and the models")
    parser.add_argument("--candidates", nargs="+", choices=list(CANDIDATES), help="candidate models to compare")
    parser.add_argument("--synthetic", action="store_true",
                        help="label the model as trained on synthetic data (automatic for generated files)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    return parser.parse_args(argv)


@guarded
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    progress = Progress(quiet=args.quiet)

    try:
        if args.data is None:
            progress(f"no --data given: generating {args.rows:,} rows of synthetic CDC-like data")
            data = default_generated_data(args.rows, args.seed)
        else:
            data = args.data
            if not data.exists():
                raise DataError(f"--data {data}: no such file. Give the path of a CDC case surveillance file.")
        synthetic = args.synthetic or is_synthetic(data)
        train(data, args.out, synthetic=synthetic, seed=args.seed, candidates=args.candidates, progress=progress)
    except (DataError, TrainingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())
