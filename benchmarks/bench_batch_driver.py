"""Azure ML batch driver (model/serving/batch_driver.py) in both output modes: rows/s and peak RSS.

    python -m benchmarks.bench_batch_driver [--rows 2000000] [--model-dir DIR]

Each mode runs `init()` + `run([file])` in its own process, as an Azure ML batch worker does:
  * rows:  run() returns one DataFrame row per input row, written here to CSV the way Azure's
           append_row collects it into predictions.csv (that write is part of the cost);
  * files: run() writes <name>.scored.parquet itself and returns one summary row per file.
The figures feed deploy/azure/batch_sizing.py (throughput -> mini-batch timeout, memory per row ->
which inputs rows mode can take). Writes benchmarks/output/bench_batch_driver.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from benchmarks.measure import OUTPUT_DIR, measure, write_json

CHILD = """
import os, sys
from pathlib import Path
mode, data, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
os.environ["RISK_BATCH_OUTPUT"] = mode
os.environ["AZUREML_BI_OUTPUT_PATH"] = str(out)
from model.serving import batch_driver
batch_driver.init()
result = batch_driver.run([data])
if mode == "rows":
    result.to_csv(out / "predictions.csv", index=False)
"""
BASELINE = "import os; os.environ['RISK_BATCH_OUTPUT'] = 'files'; from model.serving import batch_driver"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--model-dir", type=Path, help="model artifact (default: train a small one)")
    args = parser.parse_args()
    from benchmarks.bench_batch_score import _model
    from model.synthetic import synth

    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=OUTPUT_DIR) as tmp_name:
        tmp = Path(tmp_name)
        model_dir = args.model_dir or _model(tmp)
        data = tmp / "input.csv"
        synth.write(data, rows=args.rows, seed=11)
        os.environ["AZUREML_MODEL_DIR"] = str(model_dir)
        base = measure("import only", [sys.executable, "-c", BASELINE])
        results = {}
        for mode in ("files", "rows"):
            out = tmp / mode
            out.mkdir()
            m = measure(f"driver {mode}", [sys.executable, "-c", CHILD, mode, str(data), str(out)])
            results[mode] = {
                "seconds": m.seconds,
                "peak_rss_mib": m.peak_rss_mib,
                "rows_per_s": args.rows / m.seconds,
                "extra_bytes_per_row": max(0.0, (m.peak_rss_mib - base.peak_rss_mib) * 2**20 / args.rows),
            }
    print(f"{args.rows:,} rows; import-only peak RSS {base.peak_rss_mib:.0f} MiB")
    print(f"{'mode':8}{'seconds':>10}{'peak RSS MiB':>15}{'rows/s':>14}{'bytes/row':>12}")
    for mode, r in results.items():
        print(
            f"{mode:8}{r['seconds']:10.1f}{r['peak_rss_mib']:15.0f}{r['rows_per_s']:14,.0f}"
            f"{r['extra_bytes_per_row']:12.0f}"
        )
    path = write_json(
        "bench_batch_driver.json",
        {"rows": args.rows, "cores": os.cpu_count(), "import_only_peak_rss_mib": base.peak_rss_mib, **results},
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
