"""The README's run command, for real: endpoint + dashboard come up, answer, and stop on Ctrl-C."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import requests

from model import schema
from tests.launcher import assert_nothing_listens, launch, listener_pid, wait_for


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


def test_endpoint_death_keeps_the_dashboard_up_and_the_endpoint_comes_back(model_dir: Path):
    import os

    proc, endpoint_port, dashboard_port = launch(model_dir)
    try:
        wait_for(f"http://127.0.0.1:{dashboard_port}/_stcore/health")
        wait_for(f"http://127.0.0.1:{endpoint_port}/")
        os.killpg(os.getpgid(listener_pid(endpoint_port)), signal.SIGKILL)  # the endpoint dies
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
