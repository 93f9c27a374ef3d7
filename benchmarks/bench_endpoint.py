"""Benchmark the local scoring endpoint (azmlinfsrv + model/serving/score.py) against an echo script.

    python -m benchmarks.bench_endpoint [--model-dir DIR] [--workers N] [--seconds S]

For each server setup (model with data collection on, off, and the echo script):
single-record latency p50/p99 (sequential), records/s with concurrent single-record
clients, and a 10,000-record batch. Targets: p50 <= 3 ms, p99 <= 15 ms, >= 1,000
records/s, 10k batch <= 100 ms, and each <= 1.5x the echo script. Prints figures and
writes benchmarks/output/bench_endpoint.json. Client: http.client (lowest overhead),
a new connection per request (azmlinfsrv's gunicorn sync workers close connections).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from deploy.local_endpoint import LocalEndpoint, ensure_model, serve
from model.core import artifact
from model.serving.lookup import all_combinations

REPO_ROOT = Path(__file__).resolve().parent.parent
OUTPUT = REPO_ROOT / "benchmarks" / "output" / "bench_endpoint.json"
ECHO_SCRIPT = REPO_ROOT / "benchmarks" / "echo_score.py"
TARGETS = {"p50_ms": 3.0, "p99_ms": 15.0, "records_per_s": 1000.0, "batch_10k_ms": 100.0, "vs_echo": 1.5}


def _post(endpoint: LocalEndpoint, body: bytes) -> float:
    start = time.perf_counter()
    conn = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=30)
    conn.request("POST", "/score", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    conn.close()
    elapsed = (time.perf_counter() - start) * 1000
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}")
    return elapsed


def _client(args: tuple[str, int, list[bytes], float]) -> int:
    host, port, bodies, seconds = args
    endpoint = LocalEndpoint(host=host, port=port, process=None, log_path=Path())  # type: ignore[arg-type]
    stop_at = time.perf_counter() + seconds
    done = 0
    while time.perf_counter() < stop_at:
        _post(endpoint, bodies[done % len(bodies)])
        done += 1
    return done


def measure(endpoint: LocalEndpoint, seconds: float, clients: int) -> dict[str, Any]:
    grid = all_combinations().sample(frac=1.0, random_state=0).to_dict("records")
    singles = [json.dumps({"data": [r]}).encode() for r in grid[:500]]
    batch = json.dumps({"data": (grid * 2)[:10_000]}).encode()
    for body in singles[:50]:
        _post(endpoint, body)  # warm-up

    latencies = [_post(endpoint, singles[i % len(singles)]) for i in range(1000)]

    # Client processes, not threads: one Python client's GIL would cap the figure.
    with ProcessPoolExecutor(clients) as pool:
        start = time.perf_counter()
        jobs = [(endpoint.host, endpoint.port, singles[k::clients], seconds) for k in range(clients)]
        done = list(pool.map(_client, jobs))
        throughput = sum(done) / (time.perf_counter() - start)

    _post(endpoint, batch)
    batch_ms = [_post(endpoint, batch) for _ in range(15)]
    return {
        "single_p50_ms": float(np.percentile(latencies, 50)),
        "single_p99_ms": float(np.percentile(latencies, 99)),
        "concurrent_clients": clients,
        "records_per_s": throughput,
        "batch_10k_ms_median": statistics.median(batch_ms),
        "batch_10k_ms_max": max(batch_ms),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=artifact.DEFAULT_MODEL_DIR)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default: one per core)")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    model_dir = ensure_model(args.model_dir.resolve())

    setups = {
        "model_collect_on": {"entry_script": None, "env": {}},
        "model_collect_off": {"entry_script": None, "env": {"RISK_DATA_COLLECTION": "off"}},
        "echo": {"entry_script": ECHO_SCRIPT, "env": {"RISK_DATA_COLLECTION": "off"}},
    }
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-collect-") as collect_dir:
        for name, setup in setups.items():
            env = {"RISK_DATA_COLLECTION_DIR": collect_dir, **setup["env"]}
            kwargs: dict[str, Any] = {"workers": args.workers}
            if setup["entry_script"]:
                kwargs["entry_script"] = setup["entry_script"]
            with serve(model_dir, env=env, **kwargs) as endpoint:
                results[name] = measure(endpoint, args.seconds, args.clients)
            print(f"{name:18s} " + "  ".join(f"{k}={v:.2f}" for k, v in results[name].items()), flush=True)

    echo = results["echo"]
    checks: dict[str, bool] = {}
    for name in ("model_collect_on", "model_collect_off"):
        r = results[name]
        checks[f"{name}.p50"] = r["single_p50_ms"] <= TARGETS["p50_ms"]
        checks[f"{name}.p99"] = r["single_p99_ms"] <= TARGETS["p99_ms"]
        checks[f"{name}.throughput"] = r["records_per_s"] >= TARGETS["records_per_s"]
        checks[f"{name}.batch_10k"] = r["batch_10k_ms_median"] <= TARGETS["batch_10k_ms"]
        r["vs_echo"] = {
            "p50": r["single_p50_ms"] / echo["single_p50_ms"],
            "p99": r["single_p99_ms"] / echo["single_p99_ms"],
            "throughput": echo["records_per_s"] / r["records_per_s"],
            "batch_10k": r["batch_10k_ms_median"] / echo["batch_10k_ms_median"],
        }
        for k, ratio in r["vs_echo"].items():
            checks[f"{name}.{k}_vs_echo"] = ratio <= TARGETS["vs_echo"]
    report = {
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "workers": args.workers,
        "model_version": artifact.load_card(model_dir)["model_version"],
        "targets": TARGETS,
        "results": results,
        "checks": checks,
        "all_targets_met": all(checks.values()),
    }
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(report, indent=2))
    for name in ("model_collect_on", "model_collect_off"):
        print(f"{name} vs echo: " + "  ".join(f"{k}={v:.2f}x" for k, v in results[name]["vs_echo"].items()))
    failed = [k for k, ok in checks.items() if not ok]
    print("all targets met" if not failed else f"targets missed: {', '.join(failed)}")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
