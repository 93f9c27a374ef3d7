"""Train the intake and in-hospital death-risk models and the ICU-need model; write the artifact.

    python -m model.train [--data FILE] [--out DIR]

Without --data it trains on the real CDC first-wave extract bundled in `data/`
(public-domain CDC data; onsets mostly March-April 2020), so the embedded default
describes real patients and says which period they come from.

The target is death_yn == "Yes" against "No". Rows whose outcome is Missing /
Unknown / NA are excluded (counted per age group and month in the card). The
seed lab's notebook label-encoded death_yn alphabetically and kept codes 0 and 1
-- "Missing" and "No" -- so it learned who has a missing record, not who dies;
see tests/test_train.py::test_target_is_death_not_missing.

The feature space is finite, so the loader hands over one row per distinct
combination with patient counts; every fit and metric uses those counts as
sample weights. Cost grows with distinct combinations, not with rows.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pandas as pd

from model.core import artifact, schema
from model.core.exit_codes import BAD_INPUT, guarded
from model.core.provenance import is_synthetic
from model.data.loader import DataError, LoadReport, load_counts
from model.stats import evaluate
from model.training import period_validation, reporting
from model.training.candidates import CANDIDATES
from model.training.fitting import FittedModel, Runner, Weighted, attach_recording, fit_model, one_thread, run_here
from model.training.model_card import build_card, card_markdown, temporal_text
from model.training.splits import Split, known_intake_outcomes, recording_data, split_counts, split_unknown_outcomes

# Below these, metrics on the held-out splits are noise: stop and say so.
MIN_DEATHS_PER_HELD_OUT_SPLIT = 30
MIN_DEATHS_TOTAL = 150
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "data" / "cdc_first_wave_500k.csv.gz"
DEFAULT_SEED = 20201


class Job:
    """One call handed to `Background`: its result, computed here if the worker has not started it yet."""

    def __init__(
        self,
        future: Future | None,
        function: Callable[..., Any],
        args: tuple,
        kwargs: dict,
        worker_lost: Callable[[], None],
    ) -> None:
        self.future, self.call = future, (function, args, kwargs)
        self._worker_lost = worker_lost  # Background's: says once that the worker is gone
        self._local: tuple[Any] | None = None

    def steal(self) -> None:
        """Run it in this process now unless the worker already has it (work stealing at the end of training)."""
        if self._local is None and (self.future is None or self.future.cancel()):
            self._run_here()

    def _run_here(self) -> None:
        function, args, kwargs = self.call
        self._local = (in_one_thread(function, *args, **kwargs),)

    def result(self) -> Any:
        self.steal()
        if self._local is None:  # the worker has started it (steal() ran every other job here)
            try:
                return cast(Future, self.future).result()
            except BrokenProcessPool:  # the worker died (killed, out of memory): the job is pure, so run it here
                self._worker_lost()
                self._run_here()
        return cast(tuple[Any], self._local)[0]


class Background:
    """A second process for the validation refits, so they run while this one fits and evaluates (2 cores).

    The leave-one-month-out and temporal refits need only the counts and each model's chosen candidate,
    and they are most of the fitting (one refit per month and model). Once this process is done with its
    own work it takes back the jobs the worker has not started (`Job.steal`), so both cores stay busy to
    the end; the results do not depend on where a job ran. With `workers=1` every job runs here when
    its result is asked for. The worker is started after the file is read (`start`: its imports would
    slow polars' read on 2 cores); a context manager, so it is stopped even when training fails.
    The worker is spawned (a fork would inherit polars' and OpenMP's thread state), so a script calling
    `train` with 2 workers needs the usual `if __name__ == "__main__":` guard.
    """

    def __init__(self, workers: int | None) -> None:
        self.workers = workers  # None: decided by `default_workers` when the worker would start
        self.pool: ProcessPoolExecutor | None = None
        self._lost_said = False

    def _worker_lost(self) -> None:
        """One stderr line the first time the worker is found gone (its jobs then run in this process)."""
        if not self._lost_said:
            self._lost_said = True
            print("training: the second process stopped unexpectedly; its jobs run in this one", file=sys.stderr)

    def start(self) -> int:
        """Start the worker (a fresh interpreter) when there is to be one; return the processes in use."""
        if self.workers is None:
            self.workers = default_workers()
        if self.workers > 1 and self.pool is None:
            self.pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        return self.workers

    def submit(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Job:
        """`function(*args, **kwargs)` on one OpenMP/BLAS thread, in the worker when there is one."""
        future = None
        if self.pool is not None:
            try:
                future = self.pool.submit(in_one_thread, function, *args, **kwargs)
            except BrokenProcessPool:  # the worker is gone: this process runs the job when asked (Job.result)
                self._worker_lost()
        return Job(future, function, args, kwargs, self._worker_lost)

    def map(self, function: Callable[..., Any], calls: list[tuple[Any, ...]]) -> list[Any]:
        """`function(*args)` for each of `calls`, on both processes: the worker takes them from the front while
        this process takes them from the back (a `fitting.Runner`, for the bootstrap refits)."""
        jobs = [self.submit(function, *args) for args in calls]
        for job in reversed(jobs):
            job.steal()
        return [job.result() for job in jobs]

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def in_one_thread(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run `function` with one OpenMP / BLAS thread (see `train`); importable, so a worker process can run it."""
    with one_thread():
        return function(*args, **kwargs)


# A second process pays when at least this much of a core is left idle by everything else (see default_workers).
MIN_IDLE_CORES = 0.75


def idle_cores(seconds: float = 0.1) -> float | None:
    """Cores the whole machine leaves idle, measured over `seconds` from /proc/stat (None where it cannot be read)."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as stat:
            ticks = [int(v) for v in stat.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
        return ticks[3] + ticks[4], sum(ticks)

    try:
        idle_before, total_before = sample()
        time.sleep(seconds)
        idle_after, total_after = sample()
    except (OSError, ValueError, IndexError):
        return None
    return (idle_after - idle_before) / max(total_after - total_before, 1) * (os.cpu_count() or 1)


def default_workers() -> int:
    """Processes training uses: 2 when it may run on 2 cores or more and MIN_IDLE_CORES of them are idle, else 1.

    Measured when the fitting starts (after the read), not from the load average: the one-minute average
    still counts the read's own two busy cores (and a benchmark's floor run before it), so it said "busy"
    on an otherwise idle machine. On a busy machine a second process only competes for the same share
    of the cores and adds its start-up (about 2 s of CPU for its imports): measured slower there
    (13.4M rows, load 6-7: 54-59 s against 23-46 s), and faster with a core free (load 2: 12.2 s against 19.0 s).
    """
    if len(os.sched_getaffinity(0)) < 2:
        return 1
    idle = idle_cores()
    if idle is None:
        return 2 if os.getloadavg()[0] <= len(os.sched_getaffinity(0)) - 1 else 1
    return 2 if idle >= MIN_IDLE_CORES else 1


class Validations:
    """The validation refits of each model's chosen candidate, one job per month, started once it is chosen."""

    def __init__(self, background: Background, known: pd.DataFrame, seed: int) -> None:
        self.background, self.known, self.seed = background, known, seed
        self.periods: dict[str, tuple[str, list[Job]]] = {}
        self.temporal: Job | None = None

    def start(self, model: str, candidate: str) -> None:
        """Leave-one-month-out refits of `model`'s candidate; for the intake model, temporal validation too."""
        counts = period_validation.model_counts(self.known, model)
        if model == schema.INTAKE_MODEL:
            # The chosen candidate refitted on earlier months: the question is how *this* model ages.
            self.temporal = self.background.submit(
                reporting.temporal_validation, counts, seed=self.seed, names=[candidate]
            )
        jobs = [
            self.background.submit(period_validation.leave_one_out, counts, model, candidate, month, self.seed)
            for month in period_validation.months_to_leave_out(counts)
        ]
        self.periods[model] = (candidate, jobs)

    def results(self, fitted: dict[str, FittedModel]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The card's period validation (widening each table's intervals, in place) and temporal validation."""
        assert self.temporal is not None  # the intake model is always fitted (check_enough_outcomes)
        every = [self.temporal, *(job for name in fitted for job in self.periods[name][1])]
        for job in reversed(every):  # the worker takes jobs from the front: take back from the end
            job.steal()
        periods = {
            name: period_validation.pooled_result(
                [job.result() for job in self.periods[name][1]], self.periods[name][0]
            )
            for name in fitted
        }
        return period_validation.combine(periods, fitted), self.temporal.result()


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


def check_enough_outcomes(known: pd.DataFrame, held_out: tuple[Split, Split]) -> None:
    deaths = int(known["deaths"].sum())
    survivors = int(known["survivors"].sum())
    if deaths + survivors == 0:
        raise TrainingError(
            "No row of the intake population has a known outcome (death_yn is Missing/Unknown/NA everywhere), "
            "so there is nothing to learn from. Use a file where death_yn is 'Yes' or 'No' for many rows."
        )
    short = [s for s in held_out if s.deaths < MIN_DEATHS_PER_HELD_OUT_SPLIT]
    if deaths < MIN_DEATHS_TOTAL or short or survivors < MIN_DEATHS_TOTAL:
        raise TrainingError(
            f"Too few known outcomes to train and evaluate a death-risk model: {deaths:,} deaths and "
            f"{survivors:,} survivors among intake-population rows with a known outcome. "
            f"At least {MIN_DEATHS_TOTAL} deaths "
            f"are needed (about {MIN_DEATHS_PER_HELD_OUT_SPLIT} in each of the validation and test splits) "
            "for the metrics to mean anything. Use a larger extract, the full CDC file, or omit --data to "
            "train on the bundled real first-wave extract."
        )


def too_few_for(model: str, splits: tuple[Split, ...]) -> str | None:
    """Why a model cannot be trained on these splits (None when it can). Only the in-hospital one can fall short:
    the intake model's patients are checked for the whole run by `check_enough_outcomes`."""
    deaths = [split.for_model(model).deaths for split in splits]
    if deaths[1] >= MIN_DEATHS_PER_HELD_OUT_SPLIT and deaths[2] >= MIN_DEATHS_PER_HELD_OUT_SPLIT:
        return None
    return (
        f"{sum(deaths):,.0f} deaths among patients with both hospital answers known (Yes/No); about "
        f"{MIN_DEATHS_PER_HELD_OUT_SPLIT} are needed in each of the validation and test splits. Records are "
        "scored by the intake model."
    )


def evaluate_model(fitted: FittedModel, test: Split, seed: int) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """Test-split metrics (with intervals) and evaluation tables of one model.

    Scores depend on the model's inputs only, so every metric but the per-subgroup table
    runs on the test patients collapsed to (inputs, outcome): the same weighted data, far fewer rows.
    """
    # Only the model's inputs and the subgroup columns matter below: their distinct rows, not the patients' rows.
    part = test.for_model(fitted.name).collapsed(list(dict.fromkeys([*fitted.inputs, *schema.SUBGROUP_COLUMNS])))
    collapsed = Weighted.collapse(part.frame, part.y, part.w, fitted.inputs)
    y, w, scores = collapsed.y, collapsed.w, fitted.predict(collapsed.x)
    metrics: dict[str, Any] = dict(evaluate.summary_metrics(y, scores, w))
    tables = {
        "roc": evaluate.roc_table(y, scores, w),
        "pr": evaluate.pr_table(y, scores, w),
        "thresholds": evaluate.threshold_table(y, scores, w),
        "calibration": evaluate.calibration_table(y, scores, w),
        "calibration_smooth": evaluate.smoothed_calibration(y, scores, w),
        "subgroups": evaluate.subgroup_table(
            part.frame, part.y, fitted.predict(part.frame), part.w, schema.SUBGROUP_COLUMNS
        ),
    }
    metrics["expected_calibration_error"] = evaluate.expected_calibration_error(tables["calibration"])
    metrics["intervals_95"] = evaluate.bootstrap_intervals(y, scores, w, seed=seed)
    metrics["calibration_line"] = evaluate.calibration_line(y, scores, w)
    metrics["observed_expected"] = evaluate.observed_expected(y, scores, w)
    return metrics, tables


def _describe(name: str, fitted: FittedModel, metrics: dict[str, Any], progress: Progress) -> None:
    oe, line = metrics["observed_expected"], metrics["calibration_line"]
    progress(
        f"{name} ({fitted.candidate}): test ROC-AUC {metrics['roc_auc']:.4f}, O/E {oe['oe']:.3f} "
        f"[{oe['oe_low']:.3f}, {oe['oe_high']:.3f}], calibration slope {line['slope']:.3f}, "
        f"prevalence {metrics['prevalence']:.4f}"
    )


def train(
    data: Path,
    out: Path,
    *,
    synthetic: bool,
    seed: int = DEFAULT_SEED,
    candidates: list[str] | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Run the whole pipeline on `data` and write the artifact to `out`; return the model card.

    Every fit and prediction runs on one OpenMP / BLAS thread: the data are a few thousand aggregated
    rows, and on 2 shared cores the threads' spin-waits made each boosted-tree prediction 3-20x slower
    (polars' own thread pool, which reads the file, is not affected).
    """
    with one_thread(), Background(workers) as background:
        return _train(
            data, out, synthetic=synthetic, seed=seed, candidates=candidates, progress=progress, background=background
        )


def _train(
    data: Path,
    out: Path,
    *,
    synthetic: bool,
    seed: int,
    candidates: list[str] | None,
    progress: Progress | None,
    background: Background,
) -> dict[str, Any]:
    progress = progress or Progress()
    artifact.check_out_dir(out)  # before the work: --out must be new, empty or an earlier model
    counts, report, known = _read(data, progress)
    progress(f"fitting on {background.start()} process(es)")
    splits = split_counts(known, seed)
    check_enough_outcomes(known, (splits[1], splits[2]))
    unknown = split_unknown_outcomes(counts, seed)
    validations = Validations(background, known, seed)
    fitted, evaluation, skipped = _fit_and_evaluate(
        splits, unknown, seed, candidates, progress, validations.start, background.map
    )
    tables, icu_card, period = _card_tables(counts, fitted, evaluation, splits, synthetic=synthetic, seed=seed)
    periods, temporal = validations.results(fitted)  # leave-one-month-out widens the intervals by tau
    progress(f"period validation: {_periods_text(periods)}")
    progress(f"temporal validation: {temporal_text(temporal)}")
    card = build_card(
        created=datetime.now(UTC),
        report=report.to_dict(),
        synthetic=synthetic,
        period=period,
        splits={
            name: split.for_model(schema.INTAKE_MODEL)
            for name, split in zip(("train", "validation", "test"), splits, strict=True)
        },
        models={
            **{name: reporting.model_summary(fitted[name], evaluation[name][0], splits) for name in fitted},
            **skipped,
        },
        icu=icu_card,
        temporal=temporal,
        tables=tables,
        seed=seed,
        recording=reporting.recording_summary(splits, unknown),
    ) | {"period_validation": periods}
    artifact.write_artifact(
        out,
        risk_tables={name: model.table for name, model in fitted.items()},
        card=card,
        card_markdown=card_markdown(card) + period_validation.markdown(periods),
        tables=tables,
        training_distribution=reporting.training_distribution(splits[0], fitted),
    )
    progress(f"wrote model {card['model_version']} to {out}")
    return card


_Evaluation = tuple[dict[str, Any], dict[str, pd.DataFrame]]  # test metrics and tables (evaluate_model)


def _read(data: Path, progress: Progress) -> tuple[pd.DataFrame, LoadReport, pd.DataFrame]:
    """The file's counts table, its load report and the intake rows with a known outcome (what is trained on)."""
    progress(f"reading {data}")
    counts, report = load_counts(data, progress=progress.rows)
    counts = _as_categories(counts)
    known = known_intake_outcomes(counts)
    progress(
        f"read {report.rows_read:,} rows; {int(known['deaths'].sum() + known['survivors'].sum()):,} intake "
        f"patients with a known outcome; {int(known['deaths'].sum()):,} deaths"
    )
    return counts, report, known


def _as_categories(counts: pd.DataFrame) -> pd.DataFrame:
    """The counts table with its input columns as pandas Categoricals (same values, integer codes underneath).

    Why: the period validation splits, filters and regroups this table dozens of times; Arrow-backed
    string columns made every such step a string `take` (seconds in all on a multi-year file).
    """
    return counts.assign(**{column: counts[column].astype("category") for column in schema.ALL_COLUMNS})


def _fit_and_evaluate(
    splits: tuple[Split, ...],
    unknown: tuple[pd.DataFrame, ...],
    seed: int,
    candidates: list[str] | None,
    progress: Progress,
    on_selected: Callable[[str, str], None] = lambda model, candidate: None,
    runner: Runner = run_here,
) -> tuple[dict[str, FittedModel], dict[str, _Evaluation], dict[str, dict[str, Any]]]:
    """Fit and test each model the splits can support; the others are skipped with the reason for the card.

    Each fitted table also gets its outcome-recording share, learned on the training and validation
    cases (`unknown`: the cases without a recorded outcome, split like the known ones).
    """
    fitted: dict[str, FittedModel] = {}
    evaluation: dict[str, _Evaluation] = {}
    skipped: dict[str, dict[str, Any]] = {}
    for model in (schema.INTAKE_MODEL, schema.IN_HOSPITAL_MODEL, schema.INTAKE_RACE_MODEL):
        shortfall = too_few_for(model, splits)
        if shortfall:
            skipped[model] = {"label": schema.MODEL_LABELS[model], "trained": False, "reason": shortfall}
            progress(f"{model} model not trained: {shortfall}")
            continue
        fitted[model] = fit_model(
            model,
            splits[0].weighted(model),
            splits[1].weighted(model),
            seed=seed,
            names=candidates,
            progress=progress,
            on_selected=functools.partial(on_selected, model),
            runner=runner,
        )
        attach_recording(fitted[model], recording_data(splits[:2], unknown[:2], model), seed)
        evaluation[model] = evaluate_model(fitted[model], splits[2], seed)
        _describe(model, fitted[model], evaluation[model][0], progress)
    return fitted, evaluation, skipped


def _periods_text(periods: dict[str, Any]) -> str:
    """One progress line: months left out and the between-month SD of ln(O/E) per model."""
    return "; ".join(
        f"{name} {len(result['months'])} months, tau {result['interval_tau_log']:.3f}"
        for name, result in periods["models"].items()
    )


def _card_tables(
    counts: pd.DataFrame,
    fitted: dict[str, FittedModel],
    evaluation: dict[str, _Evaluation],
    splits: tuple[Split, ...],
    *,
    synthetic: bool,
    seed: int = DEFAULT_SEED,
) -> tuple[dict[str, pd.DataFrame], dict[str, Any], dict[str, Any]]:
    """The artifact's tables (intake, in-hospital with its prefix, ICU, period), the ICU card and the period."""
    tables = dict(evaluation[schema.INTAKE_MODEL][1])
    for model in (schema.IN_HOSPITAL_MODEL, schema.INTAKE_RACE_MODEL):
        if model in evaluation:
            tables.update({f"{model}_{k}": v for k, v in evaluation[model][1].items()})
    icu_card, icu_table = reporting.icu_need(counts, fitted[schema.INTAKE_MODEL], splits, tables["thresholds"], seed)
    if icu_table is not None:
        tables["icu_by_threshold"] = icu_table
    period = reporting.period_summary(counts, synthetic=synthetic)
    tables["deaths_by_month"] = period.pop("table")
    tables["outcome_known"] = reporting.outcome_known(counts)
    return tables, icu_card, period


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m model.train", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help="CDC case surveillance file (CSV, CSV.gz or Parquet; any schema version). "
        f"Default: the bundled real first-wave extract ({DEFAULT_DATA.name}).",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=artifact.DEFAULT_MODEL_DIR,
        help="model directory to write: a new or empty folder, or an earlier model (replaced once the new one "
        "is complete); a folder holding anything else is refused",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed for the split, the models and bootstrap")
    parser.add_argument("--candidates", nargs="+", choices=list(CANDIDATES), help="candidate models to compare")
    parser.add_argument(
        "--synthetic",
        action="store_true",
        help="label the model as trained on synthetic data (automatic for generated files)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        choices=(1, 2),
        help="processes: 2 runs the validation refits beside the model fits (default: 2 when 2 cores are free to use)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    return parser.parse_args(argv)


@guarded
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    progress = Progress(quiet=args.quiet)
    try:
        if not args.data.exists():
            raise DataError(f"--data {args.data}: no such file. Give the path of a CDC case surveillance file.")
        synthetic = args.synthetic or is_synthetic(args.data)
        train(
            args.data,
            args.out,
            synthetic=synthetic,
            seed=args.seed,
            candidates=args.candidates,
            progress=progress,
            workers=args.workers,
        )
    except (DataError, TrainingError, artifact.OutDirError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())
