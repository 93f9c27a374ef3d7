"""The product on one machine: local scoring endpoint + dashboard (what `make run` starts).

    python -m deploy.run_local [--model-dir DIR] [--endpoint-port 5001] [--dashboard-port 8501]

Trains a model on the bundled real CDC extract first if the model directory holds
none, starts `azmlinfsrv` with model/serving/score.py on loopback, then Streamlit pointed
at it. If the endpoint dies, the dashboard stays up (its pages say the endpoint is
down and re-check it) while the launcher restarts the endpoint on the same port, as
often as it takes: the pause doubles from 1 s up to `--max-restart-pause` (30 s) and
starts again from 1 s once a restarted endpoint has stayed up for `STABLE_S`. The
launcher never stops the dashboard because of the endpoint; it tells the dashboard
how the restarts go through a small status file (env `RISK_LAUNCHER_STATUS`).
Ctrl-C, SIGTERM or SIGHUP stops both.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
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
    training_failed,
)
from model.core import artifact, exit_codes

FIRST_PAUSE_S = 1.0  # pause before the first restart; doubled for each further one, up to --max-restart-pause
MAX_PAUSE_S = 30.0
STABLE_S = 60.0  # a restarted endpoint that stays up this long resets the pause to FIRST_PAUSE_S
STATUS_ENV = "RISK_LAUNCHER_STATUS"  # dashboard.ui.settings.LAUNCHER_STATUS_ENV reads the same name


def restart_pause(restarts: int, max_pause_s: float = MAX_PAUSE_S) -> float:
    """Seconds to wait before restart number `restarts + 1`: 1, 2, 4, 8, ... capped at `max_pause_s`."""
    return min(max_pause_s, FIRST_PAUSE_S * 2.0 ** min(restarts, 30))


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
    parser = argparse.ArgumentParser(
        prog="python -m deploy.run_local",
        description=__doc__.split("\n\n")[0],
        epilog="Exit codes: 0 stopped by Ctrl-C or SIGTERM, 2 bad input, 70 a server did not start or the dashboard "
        "stopped on its own (docs/cli.md).",
    )
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=artifact.model_dir_from_env(),
        help="model directory (trained on the bundled real CDC file first if it holds none)",
    )
    parser.add_argument("--endpoint-port", type=int, default=5001, help="scoring endpoint port (default 5001)")
    parser.add_argument("--dashboard-port", type=int, default=8501, help="dashboard port (default 8501)")
    parser.add_argument(
        "--max-restart-pause",
        type=float,
        default=MAX_PAUSE_S,
        metavar="SECONDS",
        help=f"longest pause between two restarts of a dead endpoint (default {MAX_PAUSE_S:.0f})",
    )
    args = parser.parse_args(argv)
    if not args.max_restart_pause > 0:
        parser.error(f"--max-restart-pause must be more than 0 seconds, got {args.max_restart_pause}")
    return args


@dataclass
class _Serving:
    """The endpoint running now: a restart replaces it, so main's `finally` stops the one alive at the end."""

    endpoint: LocalEndpoint | None
    status_path: Path
    max_pause_s: float = MAX_PAUSE_S
    restarts: int = 0  # restarts since the endpoint last stayed up STABLE_S (sets the pause)
    total_restarts: int = 0
    up_since: float = 0.0

    def write_status(self, state: str, next_attempt_unix: float | None = None) -> None:
        """What the dashboard's pages show while the endpoint is down (written whole, then renamed into place)."""
        status = {"state": state, "restarts": self.total_restarts, "next_attempt_unix": next_attempt_unix}
        partial = self.status_path.with_suffix(".partial")
        partial.write_text(json.dumps(status), encoding="utf-8")
        os.replace(partial, self.status_path)


@exit_codes.guarded
def main(argv: list[str] | None = None) -> int:
    """Run endpoint and dashboard until Ctrl-C / SIGTERM (0); 2 for bad input, 70 if a server fails to start or the
    dashboard stops on its own (the endpoint's deaths are restarts, never an exit)."""
    args = _parse_args(argv)
    stop_requested = stop_requested_by_signals()  # SIGTERM/SIGHUP: stop both children like Ctrl-C

    try:
        model_dir = ensure_model(args.model_dir.resolve())
    except subprocess.CalledProcessError as exc:
        return training_failed(exc, args.model_dir)
    try:
        endpoint = start(model_dir, port=pick_port(args.endpoint_port, "scoring endpoint"))
    except EndpointStartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.INTERNAL_ERROR
    print(f"Scoring endpoint (azmlinfsrv) ready: POST {endpoint.scoring_url}", flush=True)
    status_dir = Path(tempfile.mkdtemp(prefix="risk-launcher-"))
    # Restarts replace serving.endpoint (same port, so the same URL).
    serving = _Serving(endpoint, status_dir / "status.json", args.max_restart_pause, up_since=time.monotonic())
    serving.write_status("running")
    dashboard: subprocess.Popen[bytes] | None = None
    try:
        dashboard_port = pick_port(args.dashboard_port, "dashboard")
        env = {
            **os.environ,
            "RISK_ENDPOINT_URL": endpoint.scoring_url,
            "RISK_MODEL_DIR": str(model_dir),
            STATUS_ENV: str(serving.status_path),
        }
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
        shutil.rmtree(status_dir, ignore_errors=True)


def _supervise(
    dashboard: subprocess.Popen[bytes], serving: _Serving, model_dir: Path, stop_requested: threading.Event
) -> int:
    """Restart the endpoint whenever it dies, for as long as the dashboard runs; the exit code at the end.

    0 when a stop is requested, 70 (INTERNAL_ERROR) when the dashboard itself stops. The endpoint's deaths never
    end the loop.
    """
    while dashboard.poll() is None:
        if stop_requested.wait(0.5):
            print("Stopping…", flush=True)
            return 0
        endpoint = serving.endpoint
        if endpoint is None:  # only a stop sets it to None, and a stop returns below before the loop comes back
            raise RuntimeError("local endpoint supervisor: no endpoint to watch (it was stopped); this is a bug")
        if endpoint.process.poll() is None:
            if serving.restarts and time.monotonic() - serving.up_since >= STABLE_S:
                serving.restarts = 0  # up long enough: the next death starts the pauses from 1 s again
            continue
        pause = restart_pause(serving.restarts, serving.max_pause_s)
        serving.write_status("restarting", time.time() + pause)
        serving.endpoint = restart(endpoint, model_dir, pause, stop_requested)
        serving.restarts += 1
        serving.total_restarts += 1
        if serving.endpoint is None:
            return 0  # stop requested while waiting
        if serving.endpoint is not endpoint:  # started (a failed start keeps the dead one: tried again next loop)
            serving.up_since = time.monotonic()
            serving.write_status("running")
    print("error: the dashboard stopped on its own; stopping the endpoint.", file=sys.stderr)
    return exit_codes.INTERNAL_ERROR


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
        f"The scoring endpoint stopped (exit {endpoint.process.returncode}); restarting it in {pause_s:g} s "
        "(the dashboard stays up). "
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
