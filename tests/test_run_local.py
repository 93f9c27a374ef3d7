"""The README's run command, for real: endpoint + dashboard come up, answer, and stop on Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from deploy.local_endpoint import free_port
from model import schema
from tests.conftest import REPO_ROOT


def wait_for(url: str, timeout_s: float = 120) -> requests.Response:
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            response = requests.get(url, timeout=2)
            if response.status_code == 200:
                return response
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer 200 within {timeout_s}s ({last})")


def launch(model_dir: Path) -> tuple[subprocess.Popen[str], int, int]:
    """`python -m deploy.run_local` on two free ports: (process, endpoint port, dashboard port)."""
    endpoint_port, dashboard_port = free_port(), free_port()
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
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc, endpoint_port, dashboard_port


def assert_nothing_listens(*ports: int) -> None:
    for port in ports:
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=1)
        except requests.ConnectionError:
            continue
        raise AssertionError(f"port {port} still answers after the launcher stopped")


def test_run_local_serves_endpoint_and_dashboard_then_stops_cleanly(model_dir: Path):
    proc, endpoint_port, dashboard_port = launch(model_dir)
    try:
        wait_for(f"http://127.0.0.1:{dashboard_port}/_stcore/health")
        record = {name: schema.FEATURES_BY_NAME[name].default for name in schema.MODEL_INPUTS}
        scored = requests.post(f"http://127.0.0.1:{endpoint_port}/score", json={"data": [record]}, timeout=10)
        assert scored.status_code == 200
        assert 0.0 < scored.json()["results"][0]["probability"] < 1.0
        page = requests.get(f"http://127.0.0.1:{dashboard_port}/", timeout=10)
        assert page.status_code == 200 and "<html" in page.text.lower()
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert f"http://127.0.0.1:{dashboard_port}" in output
    assert "Scoring endpoint (azmlinfsrv) ready" in output
    assert_nothing_listens(endpoint_port, dashboard_port)  # both children are gone


def _listener_pid(port: int) -> int:
    import psutil

    for conn in psutil.net_connections(kind="tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
            return conn.pid
    raise AssertionError(f"nothing listens on port {port}")


def test_endpoint_death_keeps_the_dashboard_up_and_the_endpoint_comes_back(model_dir: Path):
    import os

    proc, endpoint_port, dashboard_port = launch(model_dir)
    try:
        wait_for(f"http://127.0.0.1:{dashboard_port}/_stcore/health")
        wait_for(f"http://127.0.0.1:{endpoint_port}/")
        os.killpg(os.getpgid(_listener_pid(endpoint_port)), signal.SIGKILL)  # the endpoint dies
        deadline = time.monotonic() + 10
        down_seen = False
        while time.monotonic() < deadline and not down_seen:
            try:
                requests.get(f"http://127.0.0.1:{endpoint_port}/", timeout=1)
            except requests.ConnectionError:
                down_seen = True
            time.sleep(0.1)
        assert down_seen, "the endpoint did not go down"
        # The dashboard stays up while the launcher restarts the endpoint on the same port.
        assert requests.get(f"http://127.0.0.1:{dashboard_port}/_stcore/health", timeout=5).status_code == 200
        wait_for(f"http://127.0.0.1:{endpoint_port}/", timeout_s=120)
        assert requests.get(f"http://127.0.0.1:{dashboard_port}/_stcore/health", timeout=5).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    assert "restarting it" in output and "Scoring endpoint restarted" in output
    assert_nothing_listens(endpoint_port, dashboard_port)
