"""Start and stop `python -m deploy.run_local` (what `make run` starts) from tests, and find its endpoint.

Shared by tests/test_run_local.py and tests/test_browser_launcher.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path

import requests

from deploy.local_endpoint import free_port
from tests.conftest import REPO_ROOT


def wait_for(url: str, timeout_s: float = 120) -> requests.Response:
    """Poll `url` every 0.1 s until it answers 200 (a server coming up is seen within 0.1 s of it answering)."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            response = requests.get(url, timeout=2)
            if response.status_code == 200:
                return response
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer 200 within {timeout_s}s ({last})")


def launch(
    model_dir: Path, env: Mapping[str, str] | None = None, args: tuple[str, ...] = ()
) -> tuple[subprocess.Popen[str], int, int]:
    """`python -m deploy.run_local` on two free ports (and `args`): (process, endpoint port, dashboard port).

    No RISK_ENDPOINT_* setting of the developer's shell leaks in; `env` adds settings (e.g. where the
    endpoint collects data). It runs in its own session, so its process group (launcher + dashboard) can
    be killed as a whole without touching the test runner; the endpoint has a group of its own.
    """
    endpoint_port, dashboard_port = free_port(), free_port()
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("RISK_ENDPOINT_")} | dict(env or {})
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "deploy.run_local",
            "--model-dir",
            str(model_dir),
            "--endpoint-port",
            str(endpoint_port),
            "--dashboard-port",
            str(dashboard_port),
            *args,
        ],
        cwd=REPO_ROOT,
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    return proc, endpoint_port, dashboard_port


def assert_nothing_listens(*ports: int) -> None:
    for port in ports:
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=1)
        except requests.ConnectionError:
            continue
        raise AssertionError(f"port {port} still answers after the launcher stopped")


def listener_pid(port: int) -> int:
    """The pid of a process listening on the loopback `port` (for the endpoint: a member of its process group)."""
    import psutil

    for conn in psutil.net_connections(kind="tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
            return conn.pid
    raise AssertionError(f"nothing listens on port {port}")


def stop_launcher(
    proc: subprocess.Popen[str], endpoint_port: int, timeout_s: float = 60, sig: int = signal.SIGTERM
) -> str:
    """Signal the launcher (SIGTERM, or SIGINT as Ctrl-C; it stops what it started) and return its output.

    If it does not exit in time, SIGKILL its process group and the endpoint's, so nothing outlives the test.
    A stopped (SIGSTOP) launcher is continued first, or it could not handle the SIGTERM.
    """
    with suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGCONT)
        proc.send_signal(sig)
    try:
        output, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with suppress(AssertionError, ProcessLookupError):
            os.killpg(os.getpgid(listener_pid(endpoint_port)), signal.SIGKILL)
        output, _ = proc.communicate(timeout=10)
        output += f"\n[test] the launcher did not stop within {timeout_s:.0f}s of {signal.Signals(sig).name}; killed"
    return output


def wait_refused(port: int, timeout_s: float = 10) -> None:
    """Wait until nothing answers on `port` (a killed server's socket is gone)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=1)
        except requests.ConnectionError:
            return
        time.sleep(0.1)
    raise AssertionError(f"port {port} still answers {timeout_s:.0f}s after its server was killed")
