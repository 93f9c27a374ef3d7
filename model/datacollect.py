"""Record what the endpoint scores, off the request thread.

Each scored record becomes one row: the model's input fields, the returned
probability and band, the model version, a request id and the UTC time. Nothing
else is ever recorded: no keys, tokens, headers, client addresses, and no fields
the model does not use (race_ethnicity_combined is accepted by the endpoint but
dropped here). The monitoring job (`model.monitor`) reads these rows.

Where rows go:
- In Azure ML, when the deployment enables data collection (`AZUREML_MDC_CONFIG_PATH`
  or `AZUREML_MDC_ENABLED=true`): `azureml.ai.monitoring.Collector`, collections
  `model_inputs` and `model_outputs`, correlated by the request id.
- Locally (and in Azure too if `RISK_DATA_COLLECTION_DIR` is set): rotating JSON
  Lines files `<dir>/scored-<host>-<pid>.jsonl` (one file per server process, so
  gunicorn workers never share a file). Default dir `artifacts/collected/`.
- `RISK_DATA_COLLECTION=off` turns everything off.

The request thread only enqueues numpy arrays; a daemon thread formats and writes.
If the queue is full (writer far behind) the batch is dropped and counted, and a
warning is logged, rather than slowing scoring.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import logging
import logging.handlers
import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model import lookup, schema

logger = logging.getLogger("risk.datacollect")

ENV_SWITCH = "RISK_DATA_COLLECTION"
ENV_DIR = "RISK_DATA_COLLECTION_DIR"
DEFAULT_DIR = Path("artifacts/collected")
# The exact keys of a collected row, in order (docs/scoring_contract.md documents them).
ROW_FIELDS: tuple[str, ...] = (
    "request_id",
    "scored_utc",
    "model_version",
    "record_index",
    *schema.MODEL_INPUTS,
    "probability",
    "risk_band",
)
MAX_FILE_BYTES = 50 * 1024 * 1024
BACKUP_FILES = 20
QUEUE_BATCHES = 10_000
MAX_BATCHES_PER_WRITE = 5_000
FLUSH_INTERVAL_S = 0.5

_Batch = tuple[str, str, list[int]]  # request id, UTC time, lookup indices


def rows_frame(request_id: str, scored_utc: str, model_version: str, table: np.ndarray,
               indices: list[int]) -> pd.DataFrame:
    """The collected rows of one request as a frame, columns ROW_FIELDS."""
    index = np.asarray(indices, dtype=np.int64)
    frame = lookup.index_to_frame(index)
    probs = table[index]
    frame.insert(0, "record_index", np.arange(len(index)))
    frame.insert(0, "model_version", model_version)
    frame.insert(0, "scored_utc", scored_utc)
    frame.insert(0, "request_id", request_id)
    frame["probability"] = probs
    frame["risk_band"] = lookup.risk_bands(probs)
    return frame[list(ROW_FIELDS)]


class Batch:
    """One scored request, formatted lazily by whichever sink needs which shape."""

    def __init__(self, collector: ScoringCollector, request_id: str, scored_utc: str, indices: list[int]) -> None:
        self.collector, self.request_id, self.scored_utc, self.indices = collector, request_id, scored_utc, indices

    def frame(self) -> pd.DataFrame:
        c = self.collector
        return rows_frame(self.request_id, self.scored_utc, c.model_version, c.table, self.indices)

    def jsonl(self) -> str:
        """JSON Lines text (keys in ROW_FIELDS order); per-combination fragments keep this cheap."""
        head = (
            f'{{"request_id": {json.dumps(self.request_id)}, "scored_utc": "{self.scored_utc}", '
            f'"model_version": {json.dumps(self.collector.model_version)}, "record_index": '
        )
        fragments = self.collector.row_fragments
        return "\n".join([f"{head}{k}, {fragments[i]}" for k, i in enumerate(self.indices)])


class _Sink:
    def write(self, batch: Batch) -> None: ...

    def write_many(self, batches: list[Batch]) -> None:
        for batch in batches:
            self.write(batch)
    def close(self) -> None: ...


class JsonlSink(_Sink):
    """Rotating JSON Lines files, one per process."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"scored-{socket.gethostname()}-{os.getpid()}.jsonl"
        # RotatingFileHandler does the size-based rotation; each request is one write.
        self._handler = logging.handlers.RotatingFileHandler(
            self.path, maxBytes=MAX_FILE_BYTES, backupCount=BACKUP_FILES, encoding="utf-8"
        )
        self._handler.setFormatter(logging.Formatter("%(message)s"))

    def write(self, batch: Batch) -> None:
        self.write_many([batch])

    def write_many(self, batches: list[Batch]) -> None:
        # One handler call for everything queued: one write + flush, rotation checked once.
        text = "\n".join(b.jsonl() for b in batches)
        self._handler.handle(logging.makeLogRecord({"msg": text, "levelno": logging.INFO}))

    def close(self) -> None:
        self._handler.close()


class AzureMonitoringSink(_Sink):
    """Azure ML model data collection (only works inside an Azure ML deployment)."""

    def __init__(self) -> None:
        from azureml.ai.monitoring import Collector  # imported only where it can work

        def on_error(exc: Exception) -> None:
            logger.warning("Azure ML data collector: %s", exc)

        self._inputs = Collector(name="model_inputs", on_error=on_error)
        self._outputs = Collector(name="model_outputs", on_error=on_error)

    def write(self, batch: Batch) -> None:
        from azureml.ai.monitoring.context import BasicCorrelationContext

        frame = batch.frame()
        context = BasicCorrelationContext(id=batch.request_id)
        self._inputs.collect(frame[list(schema.MODEL_INPUTS)], context)
        self._outputs.collect(frame[["probability", "risk_band", "model_version"]], context)


class ScoringCollector:
    """Queue + writer thread in front of the sinks; `record()` is the only hot-path call."""

    def __init__(self, model_version: str, table: np.ndarray, sinks: list[_Sink]) -> None:
        self.model_version = model_version
        self.table = table
        self._sinks = sinks
        # Per combination: the JSON text of its input fields, probability and band (a row's tail).
        self.row_fragments: list[str] = []
        if sinks:
            grid = lookup.all_combinations()
            grid["probability"] = table
            grid["risk_band"] = lookup.risk_bands(table)
            self.row_fragments = [json.dumps(row)[1:] for row in grid.to_dict("records")]
        self.dropped = 0
        self._queue: queue.Queue[_Batch | None] = queue.Queue(maxsize=QUEUE_BATCHES)
        self._thread: threading.Thread | None = None
        if sinks:
            self._thread = threading.Thread(target=self._drain, name="risk-datacollect", daemon=True)
            self._thread.start()
            atexit.register(self.close)

    @property
    def enabled(self) -> bool:
        return bool(self._sinks)

    def record(self, request_id: str, index: list[int]) -> None:
        """Enqueue one scored request (lookup indices); never blocks, never raises."""
        if not self._sinks:
            return
        scored_utc = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        try:
            self._queue.put_nowait((request_id, scored_utc, index))
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                logger.warning("data collection queue full: %d scored requests not recorded", self.dropped)

    def _drain(self) -> None:
        while True:
            items = [self._queue.get()]
            if items[0] is not None:
                # Wait a moment, then take everything queued meanwhile: one write (and one flush)
                # serves many requests, and the writer seldom competes with a request for the GIL.
                time.sleep(FLUSH_INTERVAL_S)
            while items[-1] is not None and len(items) < MAX_BATCHES_PER_WRITE:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = items[-1] is None
            batches = [Batch(self, *item) for item in items if item is not None]
            try:
                for sink in self._sinks if batches else ():
                    sink.write_many(batches)
            except Exception:  # a broken sink must never take scoring down
                logger.exception("data collection failed for %d scored requests", len(batches))
            if stop:
                return

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush what is queued and stop the writer (called at exit)."""
        if self._thread is None:
            return
        thread, self._thread = self._thread, None
        self._queue.put(None)
        thread.join(timeout_s)
        for sink in self._sinks:
            sink.close()


def from_environment(
    model_version: str,
    table: np.ndarray,
    environ: dict[str, str] | None = None,
    azure_factory: Callable[[], _Sink] = AzureMonitoringSink,
) -> ScoringCollector:
    """Build the collector the environment asks for (see module docstring)."""
    env: dict[str, Any] = dict(os.environ if environ is None else environ)
    if env.get(ENV_SWITCH, "on").strip().lower() in ("off", "false", "0", "no"):
        logger.info("data collection is off (%s)", ENV_SWITCH)
        return ScoringCollector(model_version, table, [])
    sinks: list[_Sink] = []
    in_azure = bool(env.get("AZUREML_MDC_CONFIG_PATH")) or env.get("AZUREML_MDC_ENABLED", "").lower() == "true"
    if in_azure:
        try:
            sinks.append(azure_factory())
        except Exception as exc:  # missing package or broken config: keep scoring, say so
            logger.warning("Azure ML data collection unavailable (%s); continuing without it", exc)
    if env.get(ENV_DIR) or not in_azure:
        directory = Path(env.get(ENV_DIR) or DEFAULT_DIR)
        try:
            sinks.append(JsonlSink(directory))
            logger.info("recording scored requests to %s", sinks[-1].path)  # type: ignore[attr-defined]
        except OSError as exc:
            logger.warning("cannot write collected data to %s (%s); continuing without it", directory, exc)
    return ScoringCollector(model_version, table, sinks)
