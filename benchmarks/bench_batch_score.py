"""Batch scoring of the full-size CDC file: rows/s and peak RSS next to a bare pyarrow read.

    python -m benchmarks.bench_batch_score [--rows 13400000] [--data FILE] [--model-dir DIR]

Reuses the file of benchmarks.bench_train (generated once by its `ensure_file`) and,
in one run, measures:
  1. a bare `pyarrow.csv.read_csv` of the whole file (the floor any reader pays),
  2. `python -m model.batch_score --data FILE --out OUT.parquet` (read, score every row, write).
Without --model-dir a small model is trained first (scoring speed does not depend on it).
Targets on 2 cores: batch scoring <= 2x the bare read, < 2 GiB peak RSS.
Writes benchmarks/output/bench_batch_score.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from benchmarks.bench_train import BARE_READ, ensure_file
from benchmarks.measure import OUTPUT_DIR, measure, write_json

TARGET_READ_RATIO = 2.0
TARGET_PEAK_MIB = 2048.0
MODEL_ROWS = 400_000


def _model(tmp: Path) -> Path:
    """A small model for the run (scoring speed does not depend on the training size)."""
    from model.synthetic import synth
    from model.training import train

    data = tmp / "train.csv"
    synth.write(data, rows=MODEL_ROWS, seed=7)
    out = tmp / "model"
    train.train(data, out, synthetic=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=13_400_000)
    parser.add_argument("--data", type=Path, help="use this file instead of generating one")
    parser.add_argument("--model-dir", type=Path, help="model artifact (default: train a small one)")
    parser.add_argument("--out-format", choices=("parquet", "csv", "csv.gz"), default="parquet")
    args = parser.parse_args()
    data = args.data or ensure_file(args.rows, OUTPUT_DIR / f"cdc-synthetic-{args.rows}.csv")
    size_mib = os.path.getsize(data) / 2**20

    with tempfile.TemporaryDirectory(dir=OUTPUT_DIR) as tmp_name:
        tmp = Path(tmp_name)
        model_dir = args.model_dir or _model(tmp)
        read = measure("bare pyarrow read", [sys.executable, "-c", BARE_READ, str(data)])
        out = tmp / f"scored.{args.out_format}"
        score = measure(
            "python -m model.batch_score",
            [
                sys.executable,
                "-m",
                "model.batch_score",
                "--data",
                str(data),
                "--out",
                str(out),
                "--model-dir",
                str(model_dir),
                "--quiet",
            ],
        )
        out_mib = out.stat().st_size / 2**20
    rows = args.rows if args.data is None else None
    ratio = score.seconds / read.seconds
    verdict = {"ratio_to_read_ok": ratio <= TARGET_READ_RATIO, "peak_ok": score.peak_rss_mib < TARGET_PEAK_MIB}
    print(f"file: {data} ({size_mib:,.0f} MiB) -> {args.out_format} ({out_mib:,.0f} MiB)")
    print(f"{'':30}{'seconds':>10}{'peak RSS MiB':>15}{'rows/s':>14}")
    for m in (read, score):
        rate = f"{rows / m.seconds:,.0f}" if rows else "n/a"
        print(f"{m.label:30}{m.seconds:10.1f}{m.peak_rss_mib:15.0f}{rate:>14}")
    print(f"batch scoring / bare read: {ratio:.2f}x (target <= {TARGET_READ_RATIO}x)")
    print(f"targets met: {verdict}")
    path = write_json(
        "bench_batch_score.json",
        {
            "file": str(data),
            "file_mib": size_mib,
            "rows": rows,
            "cores": os.cpu_count(),
            "output_format": args.out_format,
            "bare_read": read.__dict__,
            "batch_score": score.__dict__,
            "rows_per_second": rows / score.seconds if rows else None,
            "score_to_read_ratio": ratio,
            "targets": {"read_ratio": TARGET_READ_RATIO, "peak_mib": TARGET_PEAK_MIB},
            "met": verdict,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
