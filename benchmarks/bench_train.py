"""Training on the full-size CDC file: wall time and peak RSS next to a bare pyarrow read.

    python -m benchmarks.bench_train [--rows 13400000] [--data FILE]

Generates (once, reused afterwards) a file of --rows rows in the current CDC
schema with model.synth, then measures, in one run:
  1. a bare `pyarrow.csv.read_csv` of the whole file (the floor any reader pays),
  2. the full training command `python -m model.train --data FILE`.
Targets on 2 cores: training <= 60 s, <= 2 GiB peak RSS, <= 3x the bare read.
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
TARGET_PEAK_MIB = 2048.0
TARGET_READ_RATIO = 3.0

BARE_READ = "import pyarrow.csv as c, sys; t = c.read_csv(sys.argv[1]); print(t.num_rows)"


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
    with tempfile.TemporaryDirectory() as tmp:
        train = measure(
            "python -m model.train",
            [sys.executable, "-m", "model.train", "--data", str(data), "--out", str(Path(tmp) / "model")],
        )
    ratio = train.seconds / read.seconds
    verdict = {
        "train_seconds_ok": train.seconds <= TARGET_SECONDS,
        "train_peak_ok": train.peak_rss_mib <= TARGET_PEAK_MIB,
        "ratio_to_read_ok": ratio <= TARGET_READ_RATIO,
    }
    print(f"file: {data} ({size_mib:,.0f} MiB)")
    print(f"{'':28}{'seconds':>10}{'peak RSS MiB':>15}")
    for m in (read, train):
        print(f"{m.label:28}{m.seconds:10.1f}{m.peak_rss_mib:15.0f}")
    print(f"training / bare read: {ratio:.2f}x (target <= {TARGET_READ_RATIO}x)")
    print(f"targets met: {verdict}")
    path = write_json(
        "bench_train.json",
        {
            "file": str(data),
            "file_mib": size_mib,
            "cores": os.cpu_count(),
            "bare_read": read.__dict__,
            "train": train.__dict__,
            "train_to_read_ratio": ratio,
            "targets": {"seconds": TARGET_SECONDS, "peak_mib": TARGET_PEAK_MIB, "read_ratio": TARGET_READ_RATIO},
            "met": verdict,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
