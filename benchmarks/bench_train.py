"""Training on the full-size CDC file: wall time and peak RSS next to the floor, a DuckDB group-by.

    python -m benchmarks.bench_train [--rows 13400000] [--data FILE]

Generates (once, reused afterwards) a file of --rows rows in the current CDC
schema with model.synth, then measures, in one run:
  1. a bare `pyarrow.csv.read_csv` of the whole file,
  2. DuckDB grouping the same file by every column training aggregates over (the
     floor: any trainer must at least read and count every row),
  3. the full training command `python -m model.train --data FILE` (both models,
     intervals, evaluation, temporal validation, ICU need, card).
Targets on 2 cores: training <= 60 s, <= 1 GiB peak RSS, <= 2x the DuckDB group-by.
Writes benchmarks/output/bench_train.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from benchmarks.measure import OUTPUT_DIR, measure, write_json

TARGET_SECONDS = 60.0
TARGET_PEAK_MIB = 1024.0
TARGET_FLOOR_RATIO = 2.0

BARE_READ = "import pyarrow.csv as c, sys; t = c.read_csv(sys.argv[1]); print(t.num_rows)"
# The same aggregation the loader does (categories, case date, outcome), in DuckDB with its 2 threads.
DUCKDB_GROUP_BY = (
    'import duckdb, sys; print(duckdb.sql("SELECT count(*) FROM (SELECT age_group, sex, current_status, '
    "medcond_yn, hosp_yn, icu_yn, race_ethnicity_combined, death_yn, "
    "least(cdc_case_earliest_dt, cdc_report_dt, pos_spec_dt, onset_dt) AS case_date, count(*) AS n "
    'FROM read_csv(?, all_varchar=true) GROUP BY ALL)", params=[sys.argv[1]]).fetchall())'
)


def ensure_file(rows: int, path: Path) -> Path:
    if not path.exists():
        print(f"generating {rows:,} rows into {path} (once) ...", flush=True)
        from model import synth

        path.parent.mkdir(parents=True, exist_ok=True)
        synth.write(path, rows=rows, seed=2024)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=13_400_000)
    parser.add_argument("--data", type=Path, help="use this file instead of generating one")
    args = parser.parse_args()
    data = args.data or ensure_file(args.rows, OUTPUT_DIR / f"cdc-synthetic-{args.rows}.csv")
    size_mib = os.path.getsize(data) / 2**20

    read = measure("bare pyarrow read", [sys.executable, "-c", BARE_READ, str(data)])
    floor = measure("duckdb group-by (floor)", [sys.executable, "-c", DUCKDB_GROUP_BY, str(data)])
    with tempfile.TemporaryDirectory() as tmp:
        train = measure(
            "python -m model.train",
            [sys.executable, "-m", "model.train", "--data", str(data), "--out", str(Path(tmp) / "model")],
        )
    ratio = train.seconds / floor.seconds
    verdict = {
        "train_seconds_ok": train.seconds <= TARGET_SECONDS,
        "train_peak_ok": train.peak_rss_mib <= TARGET_PEAK_MIB,
        "ratio_to_floor_ok": ratio <= TARGET_FLOOR_RATIO,
    }
    print(f"file: {data} ({size_mib:,.0f} MiB)")
    print(f"{'':28}{'seconds':>10}{'peak RSS MiB':>15}")
    for m in (read, floor, train):
        print(f"{m.label:28}{m.seconds:10.1f}{m.peak_rss_mib:15.0f}")
    print(f"training / duckdb group-by: {ratio:.2f}x (target <= {TARGET_FLOOR_RATIO}x)")
    print(f"targets met: {verdict}")
    path = write_json(
        "bench_train.json",
        {
            "file": str(data),
            "file_mib": size_mib,
            "cores": os.cpu_count(),
            "bare_read": read.__dict__,
            "duckdb_group_by": floor.__dict__,
            "train": train.__dict__,
            "train_to_floor_ratio": ratio,
            "targets": {"seconds": TARGET_SECONDS, "peak_mib": TARGET_PEAK_MIB, "floor_ratio": TARGET_FLOOR_RATIO},
            "met": verdict,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
