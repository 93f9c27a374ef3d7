"""Record what the endpoint scores, off the request thread.

Each scored record becomes one row: the model's input fields, the returned
probability and band, the model version, a request id, the UTC time and the
traffic kind ("live" or "batch", from the request's `x-risk-traffic` header;
"probe" requests are never collected). Nothing
else is ever recorded: no keys, tokens, headers, client addresses, and no fields
the model does not use (race_ethnicity_combined is accepted by the endpoint but
dropped here). The monitoring job (`model.monitoring.monitor`) reads these rows.

Where rows go:
- In Azure ML (`AZUREML_MODEL_DIR` under Azure's mount `/var/azureml-app/`, or the
  deployment enables data collection: `AZUREML_MDC_CONFIG_PATH` / `AZUREML_MDC_ENABLED=true`):
  `azureml.ai.monitoring.Collector`, collections `model_inputs` and `model_outputs`,
  correlated by the request id, when collection is enabled; otherwise nowhere. Patient
  records are never written to the pod's disk (`RISK_DATA_COLLECTION_DIR` is ignored there).
- Locally: JSON Lines files `<dir>/scored-<host>-<pid>.jsonl` (one per server process, so
  gunicorn workers never share a file), default dir `artifacts/collected/`. Files are 0600 and
  the folder 0700 (they hold patient attributes; other local users must not read them). Each file is
  capped at `RISK_DATA_COLLECTION_FILE_MB` (default 50) *within* a write, then rotated to
  `.jsonl.1` ... `.jsonl.<N>` with N = `RISK_DATA_COLLECTION_KEEP_FILES` (default 20); the
  oldest is deleted beyond that, and every deletion is logged with its size and records.
- `RISK_DATA_COLLECTION=off` (or no, false, 0) turns everything off.

The settings are a pydantic-settings model (`CollectionSettings`): a value that is not valid (a
switch that is not on/off, a size that is not a whole number) stops the server with a message naming
the variable, its value and what is allowed.

The request thread only enqueues lookup indices; a daemon thread formats and writes.
If the queue is full (writer far behind) the batch is dropped and counted, and a
warning is logged, rather than slowing scoring.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from model.core import schema
from model.core.settings import read
from model.serving import lookup

logger = logging.getLogger("risk.datacollect")

ENV_SWITCH = "RISK_DATA_COLLECTION"
ENV_DIR = "RISK_DATA_COLLECTION_DIR"
ENV_FILE_MB = "RISK_DATA_COLLECTION_FILE_MB"
ENV_KEEP_FILES = "RISK_DATA_COLLECTION_KEEP_FILES"
AZURE_APP_ROOT = "/var/azureml-app/"  # where Azure ML online deployments mount code and models
DEFAULT_DIR = Path("artifacts/collected")
# The exact keys of a collected row, in order (docs/scoring_contract.md documents them).
ROW_FIELDS: tuple[str, ...] = (
    "request_id",
    "scored_utc",
    "model_version",
    "traffic",
    "record_index",
    *schema.MODEL_INPUTS,
    "probability",
    "risk_band",
)
# What Azure ML's `model_outputs` collection holds (the monitor's prediction-drift reference has the same columns).
AZURE_OUTPUT_COLUMNS: tuple[str, ...] = ("probability", "risk_band")
MAX_FILE_BYTES = 50 * 1024 * 1024  # default cap of one file (RISK_DATA_COLLECTION_FILE_MB)
BACKUP_FILES = 20  # default rotated files kept per server process (RISK_DATA_COLLECTION_KEEP_FILES)
QUEUE_BATCHES = 10_000
MAX_BATCHES_PER_WRITE = 5_000
FLUSH_INTERVAL_S = 0.5

_Batch = tuple[str, str, list[int], str]  # request id, UTC time, lookup indices, traffic kind


def rows_frame(
    request_id: str, scored_utc: str, model_version: str, table: np.ndarray, indices: list[int], traffic: str
) -> pd.DataFrame:
    """The collected rows of one request as a frame, columns ROW_FIELDS."""
    index = np.asarray(indices, dtype=np.int64)
    frame = lookup.request_frame(index)
    probs = table[index]
    frame.insert(0, "record_index", np.arange(len(index)))
    frame.insert(0, "traffic", traffic)
    frame.insert(0, "model_version", model_version)
    frame.insert(0, "scored_utc", scored_utc)
    frame.insert(0, "request_id", request_id)
    frame["probability"] = probs
    frame["risk_band"] = lookup.risk_bands(probs)
    return frame[list(ROW_FIELDS)]


class Batch:
    """One scored request, formatted lazily by whichever sink needs which shape."""

    def __init__(
        self, collector: ScoringCollector, request_id: str, scored_utc: str, indices: list[int], traffic: str
    ) -> None:
        self.collector, self.request_id, self.scored_utc = collector, request_id, scored_utc
        self.indices, self.traffic = indices, traffic

    def frame(self) -> pd.DataFrame:
        c = self.collector
        return rows_frame(self.request_id, self.scored_utc, c.model_version, c.table, self.indices, self.traffic)

    def jsonl(self) -> str:
        """JSON Lines text (keys in ROW_FIELDS order); per-combination fragments keep this cheap."""
        head = (
            f'{{"request_id": {json.dumps(self.request_id)}, "scored_utc": "{self.scored_utc}", '
            f'"model_version": {json.dumps(self.collector.model_version)}, "traffic": "{self.traffic}", '
            '"record_index": '
        )
        fragment = self.collector.row_fragment
        return "\n".join([f"{head}{k}, {fragment(i)}" for k, i in enumerate(self.indices)])


class _Sink:
    def write(self, batch: Batch) -> None: ...

    def write_many(self, batches: list[Batch]) -> None:
        for batch in batches:
            self.write(batch)

    def close(self) -> None: ...


class RotatingJsonl:
    """Append-only JSON Lines file with a hard byte cap per file and a fixed number of rotated files.

    A write larger than the room left is split at line boundaries over as many files as it
    needs, so no file exceeds `max_bytes` (a single line longer than the cap gets a file of
    its own). Rotation renames `path` -> `path.1` -> ... -> `path.<backups>`; the file pushed
    beyond that is deleted and the deletion logged (name, bytes, records).
    """

    def __init__(self, path: Path, max_bytes: int = MAX_FILE_BYTES, backups: int = BACKUP_FILES) -> None:
        if max_bytes < 1 or backups < 0:
            raise ValueError(f"max_bytes must be >= 1 and backups >= 0, got {max_bytes} and {backups}")
        self.path, self.max_bytes, self.backups = path, max_bytes, backups
        self.deleted_records = 0  # records this writer deleted by retention (known counts only)
        # Records per file [path, path.1, ...] as far as this writer knows (None: written before it started).
        self._records: list[int | None] = [None] * (backups + 1)
        self._handle = _open_private(path)
        self._size = self._handle.tell()
        self._records[0] = None if self._size else 0

    def write(self, text: str) -> None:
        """Append `text` (complete lines joined by newlines, without a trailing one) and flush."""
        data = text.encode("utf-8") + b"\n"
        view = memoryview(data)
        pos = 0
        while pos < len(data):
            room = self.max_bytes - self._size
            if len(data) - pos <= room:
                self._append(view[pos:], data.count(b"\n", pos))
                break
            cut = data.rfind(b"\n", pos, pos + room)
            if cut < 0 and self._size == 0:
                cut = data.find(b"\n", pos)  # one line longer than the cap: a file of its own
            if cut >= 0:
                self._append(view[pos : cut + 1], data.count(b"\n", pos, cut + 1))
                pos = cut + 1
            self._rotate()
        self._handle.flush()

    def _append(self, chunk: memoryview, lines: int) -> None:
        self._handle.write(chunk)
        self._size += len(chunk)
        if self._records[0] is not None:
            self._records[0] += lines

    def _rotate(self) -> None:
        self._handle.close()
        names = [self.path] + [self.path.with_name(f"{self.path.name}.{i}") for i in range(1, self.backups + 1)]
        oldest = names[-1]
        if oldest.exists():
            self._delete(oldest, self._records[-1])
        for i in range(len(names) - 1, 0, -1):
            if names[i - 1].exists():
                os.replace(names[i - 1], names[i])
        self._records = [0, *self._records[:-1]]
        self._handle = _open_private(self.path)
        self._size = 0

    def _delete(self, path: Path, records: int | None) -> None:
        size = path.stat().st_size
        path.unlink()
        if records is not None:
            self.deleted_records += records
        logger.warning(
            "data collection retention: deleted %s (%s bytes, %s records) to keep %d rotated files of at most "
            "%s bytes (%s, %s)",
            path,
            f"{size:,}",
            "unknown" if records is None else f"{records:,}",
            self.backups,
            f"{self.max_bytes:,}",
            ENV_KEEP_FILES,
            ENV_FILE_MB,
        )

    def close(self) -> None:
        self._handle.close()


PRIVATE_FILE = 0o600  # collected files hold patient attributes: readable by the server's user only
PRIVATE_DIR = 0o700


def _open_private(path: Path) -> BinaryIO:
    """Open `path` for appending, created 0600 (and tightened to 0600 if an older run left it wider)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
    except OSError:
        os.close(fd)
        raise
    return os.fdopen(fd, "ab")


def _private_dir(directory: Path) -> None:
    """Create the collection folder 0700, or tighten an existing one: other local users must not list it."""
    directory.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    directory.chmod(PRIVATE_DIR)


class JsonlSink(_Sink):
    """Capped, rotating JSON Lines files, one per process; files 0600 in a 0700 folder."""

    def __init__(self, directory: Path, max_bytes: int = MAX_FILE_BYTES, backups: int = BACKUP_FILES) -> None:
        _private_dir(directory)
        self.path = directory / f"scored-{socket.gethostname()}-{os.getpid()}.jsonl"
        self._file = RotatingJsonl(self.path, max_bytes, backups)

    def write(self, batch: Batch) -> None:
        self.write_many([batch])

    def write_many(self, batches: list[Batch]) -> None:
        # Everything queued in one write + flush; the cap is enforced inside it.
        self._file.write("\n".join(b.jsonl() for b in batches))

    def close(self) -> None:
        self._file.close()


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
        # Only the outputs: model_version and traffic change at every rollout and would show up as
        # prediction drift themselves (Azure's prediction-drift signal reads every output column).
        self._outputs.collect(frame[list(AZURE_OUTPUT_COLUMNS)], context)


class ScoringCollector:
    """Queue + writer thread in front of the sinks; `record()` is the only hot-path call."""

    def __init__(self, model_version: str, table: np.ndarray, sinks: list[_Sink]) -> None:
        self.model_version = model_version
        self.table = table
        self._sinks = sinks
        # Per request index seen: the JSON text of its input fields, probability and band (a row's tail),
        # made on first use (the request space has ~350k indices; a server meets a few thousand).
        self.row_fragments: dict[int, str] = {}
        self.dropped = 0
        self._queue: queue.Queue[_Batch | None] = queue.Queue(maxsize=QUEUE_BATCHES)
        self._thread: threading.Thread | None = None
        if sinks:
            self._thread = threading.Thread(target=self._drain, name="risk-datacollect", daemon=True)
            self._thread.start()
            atexit.register(self.close)

    def row_fragment(self, index: int) -> str:
        """The JSON tail of a collected row for one request index (inputs left out are null)."""
        text = self.row_fragments.get(index)
        if text is None:
            row = lookup.request_frame(np.array([index])).iloc[0].to_dict()
            probability = float(self.table[index])
            row.update(probability=probability, risk_band=str(lookup.risk_bands(np.array([probability]))[0]))
            text = self.row_fragments[index] = json.dumps(row)[1:]
        return text

    def record(self, request_id: str, index: list[int], traffic: str = schema.LIVE) -> None:
        """Enqueue one scored request (lookup indices, schema.LIVE or BATCH); never blocks, never raises."""
        if not self._sinks:
            return
        scored_utc = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        try:
            self._queue.put_nowait((request_id, scored_utc, index, traffic))
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


class CollectionSettings(BaseSettings):
    """What the environment says about collection (see the module docstring). Blank values count as unset.

    The AZUREML_* variables are Azure's: read as text, never refused.
    """

    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore", frozen=True)

    switch: bool = Field(True, validation_alias=ENV_SWITCH, description="on or off")
    directory: Path = Field(DEFAULT_DIR, validation_alias=ENV_DIR)
    file_mb: int = Field(
        MAX_FILE_BYTES >> 20,
        ge=1,
        validation_alias=ENV_FILE_MB,
        description=f"MB per file, a whole number >= 1 (unset: {MAX_FILE_BYTES >> 20})",
    )
    keep_files: int = Field(
        BACKUP_FILES,
        ge=0,
        validation_alias=ENV_KEEP_FILES,
        description=f"rotated files kept, a whole number >= 0 (unset: {BACKUP_FILES})",
    )
    azureml_model_dir: str = Field("", validation_alias="AZUREML_MODEL_DIR")
    azureml_mdc_config_path: str = Field("", validation_alias="AZUREML_MDC_CONFIG_PATH")
    azureml_mdc_enabled: str = Field("", validation_alias="AZUREML_MDC_ENABLED")

    @property
    def in_azure(self) -> bool:
        """Inside an Azure ML deployment: its model mount, or data collection enabled by the deployment."""
        return self.azureml_model_dir.startswith(AZURE_APP_ROOT) or self.azure_collection_enabled

    @property
    def azure_collection_enabled(self) -> bool:
        return bool(self.azureml_mdc_config_path) or self.azureml_mdc_enabled.strip().lower() == "true"


def from_environment(
    model_version: str,
    table: np.ndarray,
    environ: Mapping[str, str] | None = None,
    azure_factory: Callable[[], _Sink] = AzureMonitoringSink,
) -> ScoringCollector:
    """Build the collector the environment (`os.environ` unless `environ` is given) asks for (module docstring).

    Raises ValueError (`model.core.settings.SettingsError`) naming the variable, its value and what is
    allowed when a setting is not valid.
    """
    settings = read(CollectionSettings, environ=os.environ if environ is None else environ)
    if not settings.switch:
        logger.info("data collection is off (%s)", ENV_SWITCH)
        return ScoringCollector(model_version, table, [])
    if settings.in_azure:
        return ScoringCollector(model_version, table, _azure_sinks(settings, azure_factory))
    return ScoringCollector(model_version, table, _local_sinks(settings))


def _azure_sinks(settings: CollectionSettings, azure_factory: Callable[[], _Sink]) -> list[_Sink]:
    """Azure's Collector when the deployment enables collection; never the pod's disk."""
    if "directory" in settings.model_fields_set:
        logger.warning("%s is ignored in Azure ML: scored records never go to the pod's disk", ENV_DIR)
    if not settings.azure_collection_enabled:
        logger.info("data collection is off: the Azure ML deployment does not enable data collection")
        return []
    try:
        return [azure_factory()]
    except Exception as exc:  # missing package or broken config: keep scoring, say so
        logger.warning("Azure ML data collection unavailable (%s); scored records are not collected", exc)
        return []


def _local_sinks(settings: CollectionSettings) -> list[_Sink]:
    """Rotating JSON Lines files in the collection folder, or nothing (logged) if it cannot be written."""
    try:
        sink = JsonlSink(settings.directory, settings.file_mb << 20, settings.keep_files)
    except OSError as exc:
        logger.warning("cannot write collected data to %s (%s); continuing without it", settings.directory, exc)
        return []
    logger.info(
        "recording scored requests to %s (files of at most %d MB, %d rotated files kept)",
        sink.path,
        settings.file_mb,
        settings.keep_files,
    )
    return [sink]
