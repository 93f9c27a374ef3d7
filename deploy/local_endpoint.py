"""Run the real scoring endpoint locally: `azmlinfsrv` + `model/serving/score.py` + a model directory.

CLI:  covid-risk endpoint (or python -m deploy.local_endpoint) [--model-dir DIR] [--port P] [--host 127.0.0.1]
      [--workers N]
Library:  with serve(model_dir) as ep: requests.post(ep.scoring_url, json={"data": [...]})

azmlinfsrv 1.5.1 always binds 0.0.0.0 (its DEFAULT_HOST constant, no option). On a shared
machine we must listen on loopback only, so the child runs azmlinfsrv's own entry point
(`azureml_inference_server_http.amlserver.run`, same arguments, same gunicorn app)
with that one constant set to the requested host.

The server runs with `deploy.server_settings.SCORING_SERVER_ENV` (the Azure deployment's
settings) and sees the model directory laid out the way Azure ML mounts a registered model.
It runs in its own process group; `stop()` (also on SIGTERM of the CLI) ends the whole group.
A port someone else holds is refused rather than shared.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import requests

from deploy import server_settings
from model.core import artifact, exit_codes

REPO_ROOT = Path(__file__).resolve().parent.parent
ENTRY_SCRIPT = REPO_ROOT / "model" / "serving" / "score.py"
DEFAULT_PORT = 5001
STARTUP_TIMEOUT_S = 120.0

# argv after "-c CODE" is passed to azmlinfsrv's argument parser unchanged.
_CHILD_CODE = (
    "import sys; import azureml_inference_server_http.constants as c; c.DEFAULT_HOST = sys.argv.pop(1); "
    "from azureml_inference_server_http.amlserver import run; run()"
)


class EndpointStartError(RuntimeError):
    """The local endpoint did not become healthy; the message includes the end of its log."""


class PortInUseError(EndpointStartError):
    """Another process listens on the requested port."""


@dataclass
class LocalEndpoint:
    host: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    models_root: Path | None = None  # temporary Azure-style layout, removed by stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def scoring_url(self) -> str:
        return f"{self.base_url}/score"

    @property
    def health_url(self) -> str:
        return f"{self.base_url}/"

    @property
    def swagger_url(self) -> str:
        return f"{self.base_url}/swagger.json"

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True if something listens on host:port (the way gunicorn binds: SO_REUSEADDR, so TIME_WAIT is free)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def azure_model_layout(model_dir: Path) -> tuple[Path, Path]:
    """(temporary root, AZUREML_MODEL_DIR): `<root>/azureml-models/<name>/<version>/<model dir>`.

    The model directory is linked, not copied. Azure ML mounts a registered folder model one
    level below AZUREML_MODEL_DIR, which `model.core.artifact.find_model_dir` resolves.
    """
    root = Path(tempfile.mkdtemp(prefix="local-endpoint-models-"))
    version_dir = root / "azureml-models" / server_settings.LOCAL_MODEL_NAME / server_settings.LOCAL_MODEL_VERSION
    version_dir.mkdir(parents=True)
    (version_dir / (model_dir.name or "model")).symlink_to(model_dir.resolve(), target_is_directory=True)
    return root, version_dir


def ensure_model(model_dir: Path) -> Path:
    """Train a model into `model_dir` (on the bundled real CDC extract) if it holds none."""
    if artifact.has_model(model_dir):
        return model_dir
    print(f"No model in {model_dir}; training one: python -m model.train --out {model_dir}", flush=True)
    subprocess.run([sys.executable, "-m", "model.train", "--out", str(model_dir)], cwd=REPO_ROOT, check=True)
    return model_dir


def start(
    model_dir: Path,
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    env: Mapping[str, str] | None = None,
    entry_script: Path = ENTRY_SCRIPT,
    workers: int | None = None,
    log_path: Path | None = None,
) -> LocalEndpoint:
    """Start the server and wait until it answers its liveness probe.

    `env` overrides `server_settings.SCORING_SERVER_ENV` and the inherited environment;
    `workers` (if given) overrides its WORKER_COUNT. Raises EndpointStartError if the port
    is taken or the server does not become healthy.
    """
    port = port or free_port(host)
    if port_in_use(port, host):
        raise PortInUseError(
            f"port {port} on {host} is already in use by another process (perhaps an endpoint left running: "
            f"`ss -ltnp | grep :{port}` shows it). Stop it or choose another port with --port."
        )
    if log_path is None:
        log_path = Path(tempfile.mkdtemp(prefix="local-endpoint-")) / "azmlinfsrv.log"
    models_root, azure_model_dir = azure_model_layout(Path(model_dir))
    child_env = {
        **os.environ,
        **server_settings.SCORING_SERVER_ENV,
        **(env or {}),
        "AZUREML_MODEL_DIR": str(azure_model_dir),
    }
    # Any app-insights key in our environment would be shipped to the child; not wanted locally.
    child_env.pop("AML_APP_INSIGHTS_KEY", None)
    cmd = [sys.executable, "-c", _CHILD_CODE, host, "--entry_script", str(entry_script), "--port", str(port)]
    if workers is not None:
        cmd += ["--worker_count", str(workers)]
    log = log_path.open("wb")
    process = subprocess.Popen(
        cmd, cwd=REPO_ROOT, env=child_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    log.close()
    endpoint = LocalEndpoint(host=host, port=port, process=process, log_path=log_path, models_root=models_root)
    try:
        _wait_healthy(endpoint)
    except BaseException:
        stop(endpoint)
        raise
    return endpoint


def _wait_healthy(endpoint: LocalEndpoint, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if endpoint.process.poll() is not None:
            raise EndpointStartError(
                f"azmlinfsrv exited with code {endpoint.process.returncode} before becoming healthy. "
                f"Log ({endpoint.log_path}):\n{endpoint.log_text()[-4000:]}"
            )
        try:
            if requests.get(endpoint.health_url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise EndpointStartError(
        f"azmlinfsrv did not become healthy within {timeout_s:.0f}s. Log:\n{endpoint.log_text()[-4000:]}"
    )


def stop(endpoint: LocalEndpoint, timeout_s: float = 15.0) -> None:
    """SIGTERM the server's whole process group (master and workers), SIGKILL what is left after timeout_s."""
    proc = endpoint.process
    try:
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)  # start_new_session: the group id is the master's pid
            with suppress(subprocess.TimeoutExpired):
                proc.wait(timeout_s)
        # Workers can outlive a master that died; nothing of the group may stay behind.
        deadline = time.monotonic() + 5
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            _signal_group(proc.pid, signal.SIGKILL)
            time.sleep(0.05)
        if proc.poll() is None:
            proc.wait(5)
    finally:
        if endpoint.models_root is not None:
            shutil.rmtree(endpoint.models_root, ignore_errors=True)


def _signal_group(pgid: int, sig: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def serve(
    model_dir: Path,
    port: int | None = None,
    host: str = "127.0.0.1",
    env: Mapping[str, str] | None = None,
    *,
    entry_script: Path = ENTRY_SCRIPT,
    workers: int | None = None,
    log_path: Path | None = None,
) -> Iterator[LocalEndpoint]:
    """Context manager: a running local endpoint on a free loopback port, stopped on exit (arguments: `start`)."""
    endpoint = start(
        Path(model_dir), port=port, host=host, env=env, entry_script=entry_script, workers=workers, log_path=log_path
    )
    try:
        yield endpoint
    finally:
        stop(endpoint)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def stop_requested_by_signals() -> threading.Event:
    """An event that SIGTERM / SIGHUP set from now on (handlers installed here).

    A CLI polls it in the loop whose `finally` stops its children. Setting a flag instead of
    raising means a signal that arrives while children are being started is never lost
    between two statements: the loop sees it and everything is stopped.
    """
    requested = threading.Event()
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda signum, frame: requested.set())
    return requested


def training_failed(exc: subprocess.CalledProcessError, model_dir: Path) -> int:
    """The exit code when `ensure_model`'s training run failed: its own 2 (e.g. a folder holding other files), else 70.

    Training printed its reason above; this line says what the launcher was doing.
    """
    print(
        f"error: training a model into {model_dir} failed (exit {exc.returncode}; its reason is above)", file=sys.stderr
    )
    return exit_codes.BAD_INPUT if exc.returncode == exit_codes.BAD_INPUT else exit_codes.INTERNAL_ERROR


@exit_codes.guarded
def main(argv: list[str] | None = None) -> int:
    """Serve until Ctrl-C / SIGTERM (0); 2 for a taken port or bad input, 70 if the server fails or dies on its own."""
    parser = argparse.ArgumentParser(
        prog="python -m deploy.local_endpoint",
        description=__doc__.splitlines()[0],
        epilog="Exit codes: 0 stopped by Ctrl-C or SIGTERM, 2 port taken or bad input, 70 the server did not become "
        "healthy or died on its own (docs/cli.md).",
    )
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=artifact.model_dir_from_env(),
        help="model directory (trained on the bundled real CDC file first if it holds none)",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback only)")
    parser.add_argument(
        "--workers", type=int, default=None, help=f"gunicorn worker processes (default {server_settings.WORKER_COUNT})"
    )
    args = parser.parse_args(argv)
    stop_requested = stop_requested_by_signals()
    try:
        model_dir = ensure_model(args.model_dir.resolve())
    except subprocess.CalledProcessError as exc:
        return training_failed(exc, args.model_dir)
    try:
        endpoint = start(model_dir, port=args.port, host=args.host, workers=args.workers)
    except PortInUseError as exc:
        return exit_codes.bad_input(exc)
    except EndpointStartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.INTERNAL_ERROR
    except KeyboardInterrupt:
        return exit_codes.INTERRUPTED
    print(f"Scoring endpoint ready: POST {endpoint.scoring_url}  (liveness GET {endpoint.health_url})")
    print(f"Model: {model_dir}   Log: {endpoint.log_path}   Ctrl-C to stop.", flush=True)
    try:
        while endpoint.process.poll() is None:
            if stop_requested.wait(0.5):
                print("Stopping…", flush=True)
                return 0
        print(f"azmlinfsrv exited with code {endpoint.process.returncode}; see {endpoint.log_path}", file=sys.stderr)
        return exit_codes.INTERNAL_ERROR
    except KeyboardInterrupt:
        print("Stopping…", flush=True)
        return 0
    finally:
        stop(endpoint)


if __name__ == "__main__":
    sys.exit(main())
