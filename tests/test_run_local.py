"""The README's run command, for real: endpoint + dashboard come up, answer, and stop on Ctrl-C."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import requests

from model import schema
from tests.launcher import assert_nothing_listens, launch, listener_pid, stop_launcher, wait_for, wait_refused


def test_run_local_serves_endpoint_and_dashboard_then_stops_cleanly(model_dir: Path):
    proc, endpoint_port, dashboard_port = launch(model_dir)
    try:
        wait_for(f"http://127.0.0.1:{dashboard_port}/_stcore/health")
        body = {"data": [schema.default_record()]}
        scored = requests.post(f"http://127.0.0.1:{endpoint_port}/score", json=body, timeout=10)
        assert scored.status_code == 200
        assert 0.0 < scored.json()["results"][0]["probability"] < 1.0
        page = requests.get(f"http://127.0.0.1:{dashboard_port}/", timeout=10)
        assert page.status_code == 200 and "<html" in page.text.lower()
    finally:
        output = stop_launcher(proc, endpoint_port, sig=signal.SIGINT)  # Ctrl-C
    assert proc.returncode == 0, output
    assert f"http://127.0.0.1:{dashboard_port}" in output
    assert "Scoring endpoint (azmlinfsrv) ready" in output
    assert_nothing_listens(endpoint_port, dashboard_port)  # both children are gone


def test_endpoint_death_keeps_the_dashboard_up_and_the_endpoint_comes_back(model_dir: Path):
    proc, endpoint_port, dashboard_port = launch(model_dir)
    try:
        wait_for(f"http://127.0.0.1:{dashboard_port}/_stcore/health")
        wait_for(f"http://127.0.0.1:{endpoint_port}/")
        os.killpg(os.getpgid(listener_pid(endpoint_port)), signal.SIGKILL)  # the endpoint dies
        wait_refused(endpoint_port)
        # The dashboard stays up while the launcher restarts the endpoint on the same port.
        assert requests.get(f"http://127.0.0.1:{dashboard_port}/_stcore/health", timeout=5).status_code == 200
        wait_for(f"http://127.0.0.1:{endpoint_port}/", timeout_s=120)
        assert requests.get(f"http://127.0.0.1:{dashboard_port}/_stcore/health", timeout=5).status_code == 200
    finally:
        output = stop_launcher(proc, endpoint_port)
    assert proc.returncode == 0, output
    assert "restarting it" in output and "Scoring endpoint restarted" in output
    assert_nothing_listens(endpoint_port, dashboard_port)
