"""Run one command and report its wall time and peak RSS (used by the benchmark scripts).

Each measured command runs under its own instance of this helper, so
RUSAGE_CHILDREN's peak RSS is that command's alone.
"""

from __future__ import annotations

import json
import resource
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
    probe = subprocess.run(
        [sys.executable, __file__, *command], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        raise RuntimeError(f"{label} failed:\n{probe.stdout}\n{probe.stderr[-4000:]}")
    figures = json.loads(probe.stdout.strip().splitlines()[-1])
    return Measurement(label=label, **figures)


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
