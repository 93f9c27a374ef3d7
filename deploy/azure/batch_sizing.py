"""Size the batch deployment from measured throughput, so a full CDC file never hits a timeout.

Figures from `python -m benchmarks.bench_batch_driver` (2,000,000 generated rows, this project's
2-core machine, 2026-11-25), one Azure ML batch worker process per mode:

* files mode (driver writes Parquet itself, returns one summary row): 345,339 rows/s including
  init, peak RSS 471 MiB, flat in file size (the reader streams 4 MiB blocks; `model.serving.batch_score`
  on 13.4M rows peaked at 485 MiB).
* rows mode (driver returns every row to Azure's append_row): 86,519 rows/s, and 365 bytes of RSS
  per row on top of 120 MiB, growing with the file: a full CDC release (~106M rows, docs/azure.md)
  would need ~37 GiB and ~20 minutes per mini batch, far past Azure's default 300 s timeout.

So files mode is the default and rows mode is refused when a mini batch would not fit in memory;
the per-mini-batch timeout is the measured time for the largest expected mini batch, times a
safety factor for slower cloud vCPUs and blob-mounted reads, plus start-up time.
"""

from __future__ import annotations

import math

MODES = ("files", "rows")
ROWS_PER_S = {"files": 345_339.0, "rows": 86_519.0}
BYTES_PER_ROW = {"files": 0.0, "rows": 365.0}
BASE_MIB = {"files": 480.0, "rows": 120.0}
SAFETY = 3.0  # cloud vCPU and mounted-blob reads vs this machine's local disk
STARTUP_S = 60  # image start, model download/mount, init()
MIN_TIMEOUT_S = 300  # Azure ML's own default
MEMORY_HEADROOM = 0.8  # share of the node's memory the workers may use together


def rows_per_mini_batch(max_rows_per_file: int, mini_batch_size: int) -> int:
    return max_rows_per_file * mini_batch_size


def worker_memory_gib(mode: str, rows: int) -> float:
    """Peak memory of one worker scoring a mini batch of `rows` rows, with the safety factor."""
    return (BASE_MIB[mode] * 2**20 + SAFETY / 2 * BYTES_PER_ROW[mode] * rows) / 2**30


def mini_batch_timeout_s(mode: str, max_rows_per_file: int, mini_batch_size: int) -> int:
    """Seconds to allow one mini batch: measured time for its rows x SAFETY + start-up, at least 300.

    Example: files mode, one 110M-row file per mini batch -> 110e6 / 345,339 x 3 + 60 = 1,016 s.
    """
    rows = rows_per_mini_batch(max_rows_per_file, mini_batch_size)
    return max(MIN_TIMEOUT_S, math.ceil(rows / ROWS_PER_S[mode] * SAFETY) + STARTUP_S)


def batch_problems(
    mode: str, max_rows_per_file: int, mini_batch_size: int, concurrency: int, node_memory_gib: float
) -> list[str]:
    """What is wrong with a batch sizing, each saying what to change."""
    if mode not in MODES:
        return [f"batch_output_mode {mode!r} is not one of {', '.join(MODES)}"]
    if max_rows_per_file < 1 or mini_batch_size < 1 or concurrency < 1 or node_memory_gib <= 0:
        return [
            "batch_max_rows_per_file, batch_mini_batch_size, batch_max_concurrency_per_instance and "
            "batch_node_memory_gib must be positive"
        ]
    rows = rows_per_mini_batch(max_rows_per_file, mini_batch_size)
    need = worker_memory_gib(mode, rows) * concurrency
    if need > node_memory_gib * MEMORY_HEADROOM:
        hint = (
            'use batch_output_mode = "files" (memory does not grow with the file)'
            if mode == "rows"
            else "lower batch_max_concurrency_per_instance or use a larger node"
        )
        return [
            f"batch {mode} mode needs about {need:.1f} GiB for {concurrency} worker(s) x {rows:,} rows per mini "
            f"batch, more than {MEMORY_HEADROOM:.0%} of the node's {node_memory_gib:g} GiB: {hint}"
        ]
    return []
