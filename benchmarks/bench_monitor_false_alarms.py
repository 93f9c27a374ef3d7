"""How often does the monitor cry wolf? Verdicts on many same-distribution files, and on drifted ones.

    python -m benchmarks.bench_monitor_false_alarms [--seeds 200] [--rows 2000 5000 20000] [--model-dir DIR]

Trains (once per run, unless --model-dir) a model on a generated file, then for each
file size generates --seeds files from the *same* generator with other seeds and runs
the monitor on each (through `model.monitor.aggregate` and `build_report`, the CLI's
path). Any verdict other than "ok" or "insufficient data" on these files is a false
alarm. As a check of power, it also runs a few files whose 80+ share is tripled and
whose fatality is halved (a drift that must be seen).
Target: false alarms <= 1% (the monitor's family-wise alpha) at every size.
Writes benchmarks/output/bench_monitor_false_alarms.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks.measure import OUTPUT_DIR, write_json

MODEL_ROWS = 400_000
MODEL_SEED = 7
QUIET = ("ok", "insufficient data")
TARGET_RATE = 0.01


def _model(tmp: Path) -> Path:
    from model import synth, train

    data = tmp / "train.csv"
    synth.write(data, rows=MODEL_ROWS, seed=MODEL_SEED)
    out = tmp / "model"
    train.train(data, out, synthetic=True)
    return out


def verdicts(model_dir: Path, tmp: Path, rows: int, seeds: range, **shift: object) -> Counter[str]:
    """Verdict counts over one generated file per seed."""
    from model import monitor, synth

    load = getattr(monitor, "load_model", None)
    risk = load(model_dir) if load else monitor.lookup.RiskLookup.from_model_dir(model_dir)
    out: Counter[str] = Counter()
    for seed in seeds:
        path = tmp / f"current-{rows}-{seed}.parquet"
        synth.write(path, rows=rows, seed=seed, **shift)
        out[monitor.build_report(model_dir, monitor.aggregate(path, risk), risk)["verdict"]] += 1
        path.unlink()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=200, help="same-distribution files per size")
    parser.add_argument("--rows", type=int, nargs="+", default=[2_000, 5_000, 20_000])
    parser.add_argument("--drifted", type=int, default=10, help="drifted files (80+ x3, fatality x0.5) per size")
    parser.add_argument("--model-dir", type=Path, help="model artifact (default: train one on generated data)")
    parser.add_argument("--label", default="current", help="name of this run in the JSON (e.g. before/after)")
    args = parser.parse_args()
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    results = {}
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=OUTPUT_DIR) as tmp_name:
        tmp = Path(tmp_name)
        model_dir = args.model_dir or _model(tmp)
        for rows in args.rows:
            same = verdicts(model_dir, tmp, rows, range(1000, 1000 + args.seeds))
            alarms = sum(n for v, n in same.items() if v not in QUIET)
            drifted = verdicts(
                model_dir,
                tmp,
                rows,
                range(5000, 5000 + args.drifted),
                age_shift={"80+ Years": 3.0},
                death_rate_multiplier=0.5,
            )
            results[rows] = {
                "same_distribution": dict(same),
                "false_alarms": alarms,
                "false_alarm_rate": alarms / args.seeds,
                "drifted": dict(drifted),
                "drift_seen": sum(n for v, n in drifted.items() if v not in QUIET),
            }
            print(
                f"{rows:>7,} rows: false alarms {alarms}/{args.seeds} ({alarms / args.seeds:.1%}), verdicts "
                f"{dict(same)}; drifted files flagged {results[rows]['drift_seen']}/{args.drifted} "
                f"{dict(drifted)}",
                flush=True,
            )
    met = all(r["false_alarm_rate"] <= TARGET_RATE for r in results.values())
    print(
        f"target false-alarm rate <= {TARGET_RATE:.0%} at every size: {'met' if met else 'NOT met'} "
        f"({time.perf_counter() - began:.0f} s)"
    )
    path = write_json(
        f"bench_monitor_false_alarms-{args.label}.json",
        {
            "label": args.label,
            "seeds": args.seeds,
            "model_rows": MODEL_ROWS,
            "results": results,
            "target_rate": TARGET_RATE,
            "met": met,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
