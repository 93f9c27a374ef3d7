"""Training on the full-size CDC file: wall time, time per stage and peak RSS next to the floor, in one run.

    python -m benchmarks.bench_train [--rows 13400000] [--data FILE]

Generates (once, reused afterwards) a file of --rows rows in the current CDC
schema with model.synthetic.synth, then measures, each in its own process:
  1. the floor: polars `scan_csv(FILE).group_by(the 8 category columns + case month).len()`
     on its streaming engine (any trainer must at least read and count every row),
  2. the same group-by with the category columns read as Categorical (what the loader does),
     and DuckDB's same group-by,
  3. the loader's read + aggregate stage alone (`model.data.loader.load_counts`, its own peak RSS),
     then the full training command `python -m model.train --data FILE` (every model,
     intervals, evaluation, temporal validation, ICU need, card, artifact),
  4. the floor again (the machine is shared: the ratio uses the faster floor run).
The time per stage of training comes from its own progress lines (`[  12.3s] ...`
on stderr): a stage is named by the line that ends it and lasts from the previous
line, so stages that other work adds appear without changing this script.
Targets (issue 25): training <= 2x the floor (goal 1.5x), <= 1 GiB peak RSS.
Writes benchmarks/output/bench_train.json.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

from benchmarks.measure import OUTPUT_DIR, Measurement, measure, measure_logged, write_json

TARGET_PEAK_MIB = 1024.0
TARGET_FLOOR_RATIO = 2.0
GOAL_FLOOR_RATIO = 1.5

CATEGORY_COLUMNS = (
    "age_group",
    "sex",
    "current_status",
    "medcond_yn",
    "hosp_yn",
    "icu_yn",
    "race_ethnicity_combined",
    "death_yn",
)
# The case month of a current-schema file: the YYYY/MM of cdc_case_earliest_dt.
POLARS_FLOOR = (
    "import polars as pl, sys; print(pl.scan_csv(sys.argv[1], infer_schema=False, glob=False)"
    f".group_by(*{CATEGORY_COLUMNS!r}, pl.col('cdc_case_earliest_dt').str.slice(0, 7)).len()"
    ".collect(engine='streaming').height)"
)
# The same group-by as polars runs it best on 2 cores (what model/data/scan.py does): category columns read as
# Categorical (integer keys) and 4 MiB CSV chunks. Shown for reference; the ratio uses the plain floor above.
POLARS_TUNED = (
    "import os; os.environ['POLARS_CSV_CHUNK_SIZE'] = str(4 << 20); import polars as pl, sys; "
    "print(pl.scan_csv(sys.argv[1], infer_schema=False, glob=False, "
    f"schema_overrides=dict.fromkeys({CATEGORY_COLUMNS!r}, pl.Categorical))"
    f".group_by(*{CATEGORY_COLUMNS!r}, pl.col('cdc_case_earliest_dt').str.slice(0, 7)).len()"
    ".collect(engine='streaming').height)"
)
DUCKDB_FLOOR = (
    "import duckdb, sys; print(duckdb.sql('SELECT count(*) FROM (SELECT count(*) FROM read_csv(?, all_varchar=true) "
    f"GROUP BY {', '.join(CATEGORY_COLUMNS)}, left(cdc_case_earliest_dt, 7))', params=[sys.argv[1]]).fetchall())"
)

# The loader's stage alone, in its own process (its own peak RSS).
LOAD_ONLY = "import sys; from model.data.loader import load_counts; print(load_counts(sys.argv[1])[1].rows_read)"
_LINE = re.compile(r"^\[\s*(\d+(?:\.\d+)?)s\] (.*)$")
# Progress line -> stage it ends. Anything else is named by the start of its own text.
_STAGES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^reading "), "start"),
    (re.compile(r"^read [\d,]+ rows"), "read + aggregate (model.data.loader.load_counts)"),
    (re.compile(r"^(\S+) candidate "), r"\1 model: fit the candidates, validation log loss"),
    (re.compile(r"^(\S+) \(.*\): test "), r"\1 model: recalibrate, intervals, test evaluation (bootstrap CIs)"),
    (re.compile(r"^(\S+) model not trained"), r"\1 model: skipped"),
    (re.compile(r"^fitting on (\d+) process"), r"choose the processes (\1; idle cores sampled for 0.1 s)"),
    (
        re.compile(r"^period validation"),
        "ICU need, period; the rest of the leave-one-month-out and temporal validation",
    ),
    (re.compile(r"^temporal validation"), "temporal validation (reported)"),
    (re.compile(r"^wrote model"), "card, writing the artifact"),
)


def ensure_file(rows: int, path: Path) -> Path:
    if not path.exists():
        print(f"generating {rows:,} rows into {path} (once) ...", flush=True)
        from model.synthetic import synth

        path.parent.mkdir(parents=True, exist_ok=True)
        synth.write(path, rows=rows, seed=2024)
    return path


def stage_name(message: str) -> str:
    """The stage a progress line ends (see _STAGES)."""
    text = message.strip()
    for pattern, name in _STAGES:
        match = pattern.match(text)
        if match:
            return match.expand(name)
    return text.split(":")[0][:60]


def stages(log: str, total_seconds: float) -> list[dict[str, object]]:
    """Seconds per training stage from the progress lines in `log`; consecutive lines of one stage are merged.

    The time before the first line and after the last one (interpreter start,
    imports, exit) is the stage "outside the progress clock".
    """
    out: list[dict[str, object]] = []
    previous = 0.0
    for line in log.splitlines():
        match = _LINE.match(line)
        if not match or re.search(r"[\d,]+ rows read$", match.group(2)):
            continue
        at, name = float(match.group(1)), stage_name(match.group(2))
        if out and out[-1]["stage"] == name:
            out[-1]["seconds"] = round(float(out[-1]["seconds"]) + at - previous, 1)
        elif name != "start":
            out.append({"stage": name, "seconds": round(at - previous, 1)})
        previous = at
    outside = round(total_seconds - previous, 1)
    out.append({"stage": "outside the progress clock (interpreter, imports, exit)", "seconds": outside})
    return out


def _print_table(data: Path, rows: list[tuple[str, Measurement]], steps: list[dict[str, object]], floor: float) -> None:
    print(f"file: {data} ({os.path.getsize(data) / 2**20:,.0f} MiB)")
    print(f"{'':50}{'seconds':>10}{'x floor':>9}{'peak RSS MiB':>15}")
    for label, m in rows:
        print(f"{label:50}{m.seconds:10.1f}{m.seconds / floor:9.2f}{m.peak_rss_mib:15.0f}")
    print("training, per stage:")
    for step in steps:
        seconds = float(step["seconds"])
        print(f"  {str(step['stage'])[:70]:70}{seconds:8.1f}{seconds / floor:9.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=13_400_000)
    parser.add_argument("--data", type=Path, help="use this file instead of generating one")
    args = parser.parse_args()
    data = args.data or ensure_file(args.rows, OUTPUT_DIR / f"cdc-synthetic-{args.rows}.csv")

    polars_before = measure("polars group-by (floor)", [sys.executable, "-c", POLARS_FLOOR, str(data)])
    tuned = measure("polars group-by, Categorical keys", [sys.executable, "-c", POLARS_TUNED, str(data)])
    duckdb = measure("duckdb group-by", [sys.executable, "-c", DUCKDB_FLOOR, str(data)])
    load = measure("model.data.loader.load_counts alone", [sys.executable, "-c", LOAD_ONLY, str(data)])
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "model.train", "--data", str(data), "--out", str(Path(tmp) / "model")]
        train, log = measure_logged("python -m model.train", command)
    polars_after = measure("polars group-by (floor), again", [sys.executable, "-c", POLARS_FLOOR, str(data)])
    floor = min(polars_before.seconds, polars_after.seconds)
    steps = stages(log, train.seconds)
    read = next((float(s["seconds"]) for s in steps if str(s["stage"]).startswith("read + aggregate")), float("nan"))
    ratio = train.seconds / floor
    verdict = {"ratio_to_floor_ok": ratio <= TARGET_FLOOR_RATIO, "train_peak_ok": train.peak_rss_mib <= TARGET_PEAK_MIB}
    measured = [
        ("polars group-by (floor)", polars_before),
        ("duckdb group-by", duckdb),
        ("model.data.loader.load_counts alone (read + aggregate)", load),
        ("python -m model.train", train),
        ("polars group-by (floor), after training", polars_after),
        ("polars group-by, Categorical keys, 4 MiB chunks", tuned),
    ]
    _print_table(data, measured, steps, floor)
    print(f"training / floor: {ratio:.2f}x (target <= {TARGET_FLOOR_RATIO}x, goal {GOAL_FLOOR_RATIO}x); ", end="")
    print(f"read + aggregate / floor: {read / floor:.2f}x; targets met: {verdict}")
    path = write_json(
        "bench_train.json",
        {
            "file": str(data),
            "file_mib": os.path.getsize(data) / 2**20,
            "cores": os.cpu_count(),
            "floor_polars": [polars_before.__dict__, polars_after.__dict__],
            "floor_seconds": floor,
            "polars_categorical_group_by": tuned.__dict__,
            "duckdb_group_by": duckdb.__dict__,
            "load_counts_alone": load.__dict__,
            "train": train.__dict__,
            "train_stages": steps,
            "train_to_floor_ratio": ratio,
            "read_aggregate_to_floor_ratio": read / floor,
            "targets": {"peak_mib": TARGET_PEAK_MIB, "floor_ratio": TARGET_FLOOR_RATIO, "goal": GOAL_FLOOR_RATIO},
            "met": verdict,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
