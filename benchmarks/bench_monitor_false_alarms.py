"""How often does the monitor cry wolf? Verdicts on many same-distribution files, and on drifted ones.

    python -m benchmarks.bench_monitor_false_alarms [--seeds 200] [--rows 2000 5000 20000] [--model-dir DIR]

Trains (once per run, unless --model-dir) a model on a generated file, then for each
file size generates --seeds files from the *same* generator with other seeds and runs
the monitor on each (through `model.monitoring.monitor.aggregate` and `build_report`, the CLI's
path). Any verdict other than "ok" or "insufficient data" on these files is a false
alarm. As a check of power, it also runs a few files whose 80+ share is tripled and
whose fatality is halved (a drift that must be seen).
Target: false alarms <= 1% (the monitor's family-wise alpha) at every size.

    python -m benchmarks.bench_monitor_false_alarms --power --model-dir DIR [--replicates 200]

The power table instead: known-outcome patients drawn from the case mix of the bundled real file
(intake population), outcomes from the model's own risks changed by a known truth (none, O/E 1.19,
O/E 1.5, calibration slope 0.7, half the patients' outcomes shuffled), at several numbers of deaths;
each run through `model.monitoring.monitor.performance_report`, the CLI's statistics.
Writes benchmarks/output/bench_monitor_false_alarms-<label>.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.measure import OUTPUT_DIR, write_json

MODEL_ROWS = 400_000
MODEL_SEED = 7
QUIET = ("ok", "insufficient data")
TARGET_RATE = 0.01


def _model(tmp: Path) -> Path:
    from model.synthetic import synth
    from model.training import train

    data = tmp / "train.csv"
    synth.write(data, rows=MODEL_ROWS, seed=MODEL_SEED)
    out = tmp / "model"
    train.train(data, out, synthetic=True)
    return out


def verdicts(model_dir: Path, tmp: Path, rows: int, seeds: range, **shift: object) -> Counter[str]:
    """Verdict counts over one generated file per seed."""
    from model.monitoring import monitor
    from model.synthetic import synth

    load = getattr(monitor, "load_model", None)
    risk = load(model_dir) if load else monitor.lookup.RiskLookup.from_model_dir(model_dir)
    out: Counter[str] = Counter()
    for seed in seeds:
        path = tmp / f"current-{rows}-{seed}.parquet"
        synth.write(path, rows=rows, seed=seed, **shift)
        out[monitor.build_report(model_dir, monitor.aggregate(path, risk), risk)["verdict"]] += 1
        path.unlink()
    return out


POWER_DEATHS = (100, 300, 1_000)


def _scenarios() -> dict[str, Any]:
    """Truth as a function of the model's logit: name -> (lp, rng) -> true logit (or None: shuffled outcomes)."""
    return {
        "no change": lambda lp: lp,
        "O/E 1.19": lambda lp: lp + 0.215,  # ~ +0.215 on the logit gives O/E 1.19 at this case mix
        "O/E 1.5": lambda lp: lp + 0.53,
        "slope 0.7": lambda lp: -0.45 + 0.7 * lp,
        "half shuffled": None,
    }


def power_table(model_dir: Path, replicates: int, seed: int = 0) -> dict[str, dict[str, dict[str, float]]]:
    """Share of verdicts per scenario and number of deaths (see the module docstring)."""
    import numpy as np
    from scipy.special import expit, logit

    from model.core import artifact
    from model.monitoring import monitor

    risk = monitor.load_model(model_dir)
    views = monitor.model_views(model_dir, risk, artifact.load_card(model_dir))
    mix = monitor.aggregate_file(monitor.DEFAULT_CASE_MIX, risk)
    case_mix = (mix.deaths + mix.survivors) / (mix.deaths + mix.survivors).sum()
    base = np.clip(monitor.combination_probabilities(risk), 1e-6, 1 - 1e-6)
    rng = np.random.default_rng(seed)
    table: dict[str, dict[str, dict[str, float]]] = {}
    for name, truth in _scenarios().items():
        table[name] = {}
        for deaths in POWER_DEATHS:
            patients = int(deaths / float(np.sum(case_mix * base)))
            verdicts: Counter[str] = Counter()
            for _ in range(replicates):
                n = rng.multinomial(patients, case_mix).astype(float)
                true_p = base if truth is None else expit(truth(logit(base)))
                d = rng.binomial(n.astype(np.int64), true_p).astype(float)
                if truth is None:  # half the patients' outcomes drawn at the average rate: ranking halved
                    half = rng.binomial(n.astype(np.int64), 0.5).astype(float)
                    d_half = rng.binomial(half.astype(np.int64), float(np.sum(n * base) / n.sum())).astype(float)
                    d = np.minimum(rng.binomial(d.astype(np.int64), 0.5) + d_half, n)
                agg = monitor.Aggregate("power", "file", n, deaths=d, survivors=n - d)
                verdicts[monitor.performance_report(agg, views)["verdict"] or "not assessed"] += 1
            table[name][str(deaths)] = {v: c / replicates for v, c in verdicts.items()}
            print(f"{name:<14} {deaths:>6,} deaths: {dict(verdicts)}", flush=True)
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=200, help="same-distribution files per size")
    parser.add_argument("--rows", type=int, nargs="+", default=[2_000, 5_000, 20_000])
    parser.add_argument("--drifted", type=int, default=10, help="drifted files (80+ x3, fatality x0.5) per size")
    parser.add_argument("--model-dir", type=Path, help="model artifact (default: train one on generated data)")
    parser.add_argument("--label", default="current", help="name of this run in the JSON (e.g. before/after)")
    parser.add_argument("--power", action="store_true", help="the power table (needs --model-dir of the real model)")
    parser.add_argument("--replicates", type=int, default=200, help="simulations per power-table cell")
    args = parser.parse_args()
    if args.power:
        began = time.perf_counter()
        table = power_table(args.model_dir, args.replicates)
        path = write_json(
            f"bench_monitor_power-{args.label}.json",
            {"replicates": args.replicates, "deaths": POWER_DEATHS, "verdict_shares": table},
        )
        print(f"wrote {path} ({time.perf_counter() - began:.0f} s)")
        return 0
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
