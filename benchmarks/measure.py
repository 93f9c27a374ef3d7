"""Run one command and report its wall time and peak RSS (used by the benchmark scripts).

Each measured command runs under its own instance of this helper, so
RUSAGE_CHILDREN's peak RSS is that command's alone.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
OUTPUT_DIR = REPO_ROOT / "benchmarks" / "output"


@dataclass
class Measurement:
    label: str
    seconds: float
    peak_rss_mib: float
    returncode: int


def measure(label: str, command: list[str]) -> Measurement:
    """Run `command` (in a fresh helper process) and return wall time and peak RSS."""
    return measure_logged(label, command)[0]


def measure_logged(label: str, command: list[str]) -> tuple[Measurement, str]:
    """`measure`, plus what the command wrote to stderr (e.g. training's timed progress lines)."""
    probe = subprocess.run(
        [sys.executable, __file__, *command], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        raise RuntimeError(f"{label} failed:\n{probe.stdout}\n{probe.stderr[-4000:]}")
    figures = json.loads(probe.stdout.strip().splitlines()[-1])
    return Measurement(label=label, **figures), probe.stderr


def elapsed_ms(start: float) -> float:
    """Milliseconds since `start` (a `time.perf_counter()` reading)."""
    return (time.perf_counter() - start) * 1000


def timing_summary(values: list[float]) -> dict[str, float]:
    """Median, 90th percentile and minimum of timings in milliseconds, and how many there were."""
    ordered = sorted(values)
    return {
        "median_ms": round(statistics.median(ordered), 1),
        "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 1),
        "min_ms": round(ordered[0], 1),
        "n": len(ordered),
    }


def point_dashboard_at(scoring_url: str, model_dir: Path) -> None:
    """Settings for an in-process Streamlit AppTest: this model, this endpoint, no key or auth from the shell."""
    os.environ["RISK_MODEL_DIR"] = str(model_dir)
    os.environ["RISK_ENDPOINT_URL"] = scoring_url
    for name in ("RISK_ENDPOINT_KEY", "RISK_ENDPOINT_AUTH", "RISK_ENDPOINT_DEPLOYMENT"):
        os.environ.pop(name, None)


def write_json(name: str, payload: dict) -> Path:
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUTPUT_DIR / name
    path.write_text(json.dumps(payload, indent=2))
    return path


def _run_child(command: list[str]) -> None:
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=sys.stderr, check=False)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": seconds, "peak_rss_mib": peak_kib / 1024, "returncode": proc.returncode}))
    sys.exit(proc.returncode)


if __name__ == "__main__":
    _run_child(sys.argv[1:])
