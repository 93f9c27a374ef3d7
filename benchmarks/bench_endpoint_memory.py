"""Memory of the scoring endpoint per azmlinfsrv worker: sizes the AKS pod limit (deploy/azure/resources.py).

    python -m benchmarks.bench_endpoint_memory [--workers 4] [--model-dir DIR]

Starts the real local endpoint (deploy.local_endpoint) with N workers on loopback, sends 50
requests of 1,000 records so every worker has loaded and scored, then sums the RSS of the
gunicorn master and its workers. Writes benchmarks/output/bench_endpoint_memory.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import psutil
import requests

from benchmarks.measure import OUTPUT_DIR, write_json
from deploy.local_endpoint import serve
from model.core import schema


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--model-dir", type=Path, help="model artifact (default: train a small one)")
    args = parser.parse_args()
    from benchmarks.bench_batch_score import _model

    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=OUTPUT_DIR) as tmp:
        model_dir = args.model_dir or _model(Path(tmp))
        record = {f.name: f.default for f in schema.FEATURES if f.model_input}
        with serve(model_dir, workers=args.workers) as endpoint:
            for _ in range(50):
                requests.post(endpoint.scoring_url, json={"data": [record] * 1000}, timeout=30).raise_for_status()
            master = psutil.Process(endpoint.process.pid)
            processes = [master, *master.children(recursive=True)]
            rss = sorted(p.memory_info().rss / 2**20 for p in processes)
    total = sum(rss)
    per_worker = (total - rss[0]) / max(1, len(rss) - 1)  # the smallest is the master
    print(
        f"{args.workers} workers: processes {[round(r) for r in rss]} MiB, total {total:.0f} MiB, "
        f"about {per_worker:.0f} MiB per worker"
    )
    path = write_json(
        "bench_endpoint_memory.json",
        {
            "workers": args.workers,
            "cores": os.cpu_count(),
            "rss_mib": rss,
            "total_mib": total,
            "per_worker_mib": per_worker,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
