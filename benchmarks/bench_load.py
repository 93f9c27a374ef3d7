"""Load benchmark: many concurrent clients against the local endpoint with the project's server settings.

    python -m benchmarks.bench_load [--model-dir DIR] [--clients 50] [--seconds 60]

Starts the endpoint on loopback exactly as `deploy.local_endpoint` does (deploy/server_settings.py:
gthread workers, body limits), with data collection on into a temporary folder. The clients are
split evenly over four kinds: single-record or 100-record requests, each on a kept-alive
connection or a new connection per request. Each request carries its own `x-request-id`.

Reports requests/s, records/s, latency p50/p99 per kind and overall, errors (any answer but
200, or a failed connection), and whether the collected records equal the scored records: every
(request id, record index) of every 200 answer collected exactly once, nothing else, nothing
deleted. Prints the figures and writes benchmarks/output/bench_load.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import tempfile
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.measure import write_json
from deploy import server_settings
from deploy.local_endpoint import ensure_model, serve
from model.core import artifact
from model.serving import datacollect
from model.serving.lookup import all_combinations

KINDS = (("single", 1, True), ("single", 1, False), ("batch100", 100, True), ("batch100", 100, False))
CLIENT_PROCESSES = 4  # client threads are spread over this many processes (the GIL would cap one)


@dataclass
class ClientResult:
    kind: str
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    scored: list[tuple[str, int]] = field(default_factory=list)  # (request id, records) of each 200


def _bodies(records_per_request: int, seed: int) -> list[bytes]:
    grid = all_combinations().to_dict("records")
    rng = np.random.default_rng(seed)
    return [
        json.dumps({"data": [grid[i] for i in rng.integers(0, len(grid), records_per_request)]}).encode()
        for _ in range(20)
    ]


def _client(host: str, port: int, kind_index: int, seconds: float, seed: int) -> ClientResult:
    name, size, keep_alive = KINDS[kind_index]
    result = ClientResult(kind=f"{name}/{'keep-alive' if keep_alive else 'new connection'}")
    bodies = _bodies(size, seed)
    conn: http.client.HTTPConnection | None = None
    stop_at = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < stop_at:
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=30)
            conn.request(
                "POST",
                "/score",
                bodies[n % len(bodies)],
                {"Content-Type": "application/json", "x-request-id": request_id},
            )
            response = conn.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            result.errors[type(exc).__name__] = result.errors.get(type(exc).__name__, 0) + 1
            conn = None
            continue
        finally:
            n += 1
        result.latencies_ms.append((time.perf_counter() - started) * 1000)
        if status == 200:
            result.scored.append((request_id, size))
        else:
            result.errors[f"HTTP {status}"] = result.errors.get(f"HTTP {status}", 0) + 1
        if not keep_alive or response.will_close:
            conn.close()
            conn = None
    if conn is not None:
        conn.close()
    return result


def _client_process(args: tuple[str, int, list[int], float]) -> list[ClientResult]:
    host, port, kinds, seconds = args
    results: list[ClientResult | None] = [None] * len(kinds)

    def run(i: int) -> None:
        results[i] = _client(host, port, kinds[i], seconds, seed=i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(kinds))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [r for r in results if r is not None]


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50_ms": float("nan"), "p99_ms": float("nan")}
    array = np.asarray(values)
    return {"p50_ms": round(float(np.percentile(array, 50)), 2), "p99_ms": round(float(np.percentile(array, 99)), 2)}


def _collected(directory: Path) -> tuple[dict[tuple[str, int], int], int]:
    """(request id, record index) -> times collected, and lines that are not collected records."""
    seen: dict[tuple[str, int], int] = {}
    foreign = 0
    for path in directory.glob("scored-*.jsonl*"):
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                try:
                    row = json.loads(line)
                    key = (row["request_id"], int(row["record_index"]))
                except (ValueError, KeyError, TypeError):
                    foreign += 1
                    continue
                seen[key] = seen.get(key, 0) + 1
    return seen, foreign


def run(model_dir: Path, clients: int, seconds: float) -> dict[str, Any]:
    collect_dir = Path(tempfile.mkdtemp(prefix="bench-load-collected-"))
    kinds = [i % len(KINDS) for i in range(clients)]
    groups = [kinds[p::CLIENT_PROCESSES] for p in range(CLIENT_PROCESSES)]
    with serve(model_dir, env={datacollect.ENV_DIR: str(collect_dir)}) as endpoint:
        started = time.perf_counter()
        with ProcessPoolExecutor(CLIENT_PROCESSES) as pool:
            results = [
                r
                for group in pool.map(
                    _client_process, [(endpoint.host, endpoint.port, g, seconds) for g in groups if g]
                )
                for r in group
            ]
        elapsed = time.perf_counter() - started
        log = endpoint.log_text()
    # The server is stopped: each worker flushed its collector at exit.
    collected, foreign = _collected(collect_dir)
    collected_bytes = sum(p.stat().st_size for p in collect_dir.glob("scored-*.jsonl*"))
    shutil.rmtree(collect_dir, ignore_errors=True)
    expected = {(rid, i) for r in results for rid, size in r.scored for i in range(size)}
    by_kind: dict[str, dict[str, Any]] = {}
    for r in results:
        slot = by_kind.setdefault(r.kind, {"clients": 0, "requests": 0, "latencies": [], "errors": 0})
        slot["clients"] += 1
        slot["requests"] += len(r.latencies_ms)
        slot["latencies"] += r.latencies_ms
        slot["errors"] += sum(r.errors.values())
    errors: dict[str, int] = {}
    for r in results:
        for k, v in r.errors.items():
            errors[k] = errors.get(k, 0) + v
    requests_total = sum(len(r.latencies_ms) for r in results)
    scored_records = len(expected)
    report = {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "server_settings": server_settings.SCORING_SERVER_ENV,
        "requests": requests_total,
        "requests_per_s": round(requests_total / elapsed, 1),
        "records_per_s": round(scored_records / elapsed, 1),
        "latency_all": _percentiles([x for r in results for x in r.latencies_ms]),
        "by_kind": {
            kind: {
                "clients": s["clients"],
                "requests": s["requests"],
                "requests_per_s": round(s["requests"] / elapsed, 1),
                "errors": s["errors"],
                **_percentiles(s["latencies"]),
            }
            for kind, s in sorted(by_kind.items())
        },
        "errors": errors,
        "scored_records": scored_records,
        "collected_records": sum(collected.values()),
        "collected_mb": round(collected_bytes / 2**20, 1),
        "collected_equals_scored": set(collected) == expected
        and all(v == 1 for v in collected.values())
        and foreign == 0,
        "collected_duplicates": sum(v - 1 for v in collected.values() if v > 1),
        "collected_missing": len(expected - set(collected)),
        "collected_unexpected": len(set(collected) - expected) + foreign,
        "retention_deletions": log.count("data collection retention: deleted"),
        "worker_restarts": log.count("Booting worker") - server_settings.WORKER_COUNT,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=artifact.DEFAULT_MODEL_DIR)
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--seconds", type=float, default=60.0, help="duration of the load (default 60)")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.seconds <= 0:
        parser.error("--clients must be >= 1 and --seconds > 0")
    report = run(ensure_model(args.model_dir.resolve()), args.clients, args.seconds)
    print(f"{report['clients']} clients for {report['seconds']} s against {report['server_settings']}")
    print(
        f"requests/s {report['requests_per_s']:,}   records/s {report['records_per_s']:,}   "
        f"p50 {report['latency_all']['p50_ms']} ms   p99 {report['latency_all']['p99_ms']} ms   "
        f"errors {sum(report['errors'].values())} {report['errors'] or ''}"
    )
    for kind, figures in report["by_kind"].items():
        print(
            f"  {kind:<28} {figures['clients']:>3} clients {figures['requests_per_s']:>9,.1f} req/s  "
            f"p50 {figures['p50_ms']:>7} ms  p99 {figures['p99_ms']:>8} ms  errors {figures['errors']}"
        )
    print(
        f"scored records {report['scored_records']:,}, collected {report['collected_records']:,}: "
        f"{'each exactly once' if report['collected_equals_scored'] else 'MISMATCH'} "
        f"(missing {report['collected_missing']}, duplicates {report['collected_duplicates']}, "
        f"unexpected {report['collected_unexpected']}); retention deletions {report['retention_deletions']}; "
        f"worker restarts {report['worker_restarts']}"
    )
    print(f"wrote {write_json('bench_load.json', report)}")
    return 0 if report["collected_equals_scored"] and not report["errors"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
