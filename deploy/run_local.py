"""The product on one machine: local scoring endpoint + dashboard (what `make run` starts).

    python -m deploy.run_local [--model-dir DIR] [--endpoint-port 5001] [--dashboard-port 8501]

Trains a model on the bundled real CDC extract first if the model directory holds
none, starts `azmlinfsrv` with model/score.py on loopback, then Streamlit pointed
at it. If the endpoint dies, the dashboard stays up (its pages say the endpoint is
down) while the launcher restarts the endpoint on the same port, at most
`MAX_RESTARTS` times with a growing pause. Ctrl-C, SIGTERM or SIGHUP stops both.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from deploy.local_endpoint import (
    REPO_ROOT,
    EndpointStartError,
    LocalEndpoint,
    ensure_model,
    free_port,
    start,
    stop,
    stop_requested_by_signals,
)
from model import artifact

MAX_RESTARTS = 5  # endpoint restarts before the launcher gives up (the dashboard is then stopped too)
RESTART_PAUSE_S = (1.0, 2.0, 5.0, 10.0, 20.0)  # pause before restart 1, 2, ...


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) != 0


def pick_port(wanted: int, what: str) -> int:
    if port_is_free(wanted):
        return wanted
    other = free_port()
    print(f"Port {wanted} is in use; the {what} will listen on {other} instead.", flush=True)
    return other


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m deploy.run_local", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=artifact.model_dir_from_env())
    parser.add_argument("--endpoint-port", type=int, default=5001)
    parser.add_argument("--dashboard-port", type=int, default=8501)
    return parser.parse_args(argv)


@dataclass
class _Serving:
    """The endpoint running now: a restart replaces it, so main's `finally` stops the one alive at the end."""

    endpoint: LocalEndpoint | None


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    stop_requested = stop_requested_by_signals()  # SIGTERM/SIGHUP: stop both children like Ctrl-C

    model_dir = ensure_model(args.model_dir.resolve())
    endpoint = start(model_dir, port=pick_port(args.endpoint_port, "scoring endpoint"))
    print(f"Scoring endpoint (azmlinfsrv) ready: POST {endpoint.scoring_url}", flush=True)
    serving = _Serving(endpoint)  # restarts replace serving.endpoint (same port, so the same URL)
    dashboard: subprocess.Popen[bytes] | None = None
    try:
        dashboard_port = pick_port(args.dashboard_port, "dashboard")
        env = {**os.environ, "RISK_ENDPOINT_URL": endpoint.scoring_url, "RISK_MODEL_DIR": str(model_dir)}
        dashboard = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "dashboard/app.py",
                "--server.address",
                "127.0.0.1",
                "--server.port",
                str(dashboard_port),
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
            ],
            cwd=REPO_ROOT,
            env=env,
        )
        print(f"Dashboard: http://127.0.0.1:{dashboard_port}   (Ctrl-C stops both)", flush=True)
        return _supervise(dashboard, serving, model_dir, stop_requested)
    except KeyboardInterrupt:
        print("Stopping…", flush=True)
        return 0
    finally:
        if dashboard is not None:
            _stop_dashboard(dashboard)
        if serving.endpoint is not None:
            stop(serving.endpoint)


def _supervise(
    dashboard: subprocess.Popen[bytes], serving: _Serving, model_dir: Path, stop_requested: threading.Event
) -> int:
    """Restart the endpoint whenever it dies while the dashboard runs; the exit code once either side gives up.

    0 when a stop is requested, 1 when the dashboard stops or the endpoint died more than MAX_RESTARTS times.
    """
    restarts = 0
    while dashboard.poll() is None:
        if stop_requested.wait(0.5):
            print("Stopping…", flush=True)
            return 0
        endpoint = serving.endpoint  # never None here: it is only set to None on a stop, which returns
        if endpoint.process.poll() is None:
            continue
        if restarts >= MAX_RESTARTS:
            print(
                f"The scoring endpoint stopped {restarts + 1} times; giving up. Its log: {endpoint.log_path}",
                file=sys.stderr,
            )
            return 1
        serving.endpoint = restart(endpoint, model_dir, RESTART_PAUSE_S[restarts], stop_requested)
        restarts += 1
        if serving.endpoint is None:
            return 0  # stop requested while waiting
    print("The dashboard stopped; stopping the endpoint.", file=sys.stderr)
    return 1


def _stop_dashboard(dashboard: subprocess.Popen[bytes]) -> None:
    """Ask Streamlit to exit, and kill it if it has not within 10 s."""
    dashboard.terminate()
    try:
        dashboard.wait(10)
    except subprocess.TimeoutExpired:
        dashboard.kill()


def restart(
    endpoint: LocalEndpoint, model_dir: Path, pause_s: float, stop_requested: threading.Event
) -> LocalEndpoint | None:
    """Start the endpoint again on its port after `pause_s` (None when a stop was requested meanwhile).

    A failed start keeps the old (dead) endpoint, so the next check of the loop tries again.
    """
    print(
        f"The scoring endpoint stopped (exit {endpoint.process.returncode}); restarting it in {pause_s:.0f} s. "
        f"Its log: {endpoint.log_path}",
        file=sys.stderr,
        flush=True,
    )
    stop(endpoint)  # whatever is left of its process group
    if stop_requested.wait(pause_s):
        return None
    try:
        fresh = start(model_dir, port=endpoint.port)
    except EndpointStartError as exc:
        print(f"Restart failed: {exc}", file=sys.stderr, flush=True)
        return endpoint
    print(f"Scoring endpoint restarted: POST {fresh.scoring_url}", flush=True)
    return fresh


if __name__ == "__main__":
    sys.exit(main())
