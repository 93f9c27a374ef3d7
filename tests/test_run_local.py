"""The README's run command, for real: endpoint + dashboard come up, answer, and stop on Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest
import requests

from deploy import run_local
from model.core import schema
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


def test_restart_pauses_double_up_to_the_cap() -> None:
    assert [run_local.restart_pause(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert run_local.restart_pause(10_000, max_pause_s=0.5) == 0.5  # no overflow, however many restarts


def test_max_restart_pause_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_local.main(["--max-restart-pause", "0"])
    assert exit_info.value.code == 2
    assert "--max-restart-pause must be more than 0 seconds, got 0.0" in capsys.readouterr().err


def test_many_endpoint_deaths_never_take_the_dashboard_down(model_dir: Path):
    """Issue 21: after the sixth endpoint death the launcher used to stop the dashboard too.

    The endpoint is killed, then its port is held by another listener, so every restart fails at once (as a
    crash loop would): far more failures than the old limit of 5 go by, the dashboard answers throughout,
    and once the port is free again the launcher brings the endpoint back.
    """
    proc, endpoint_port, dashboard_port = launch(model_dir, args=("--max-restart-pause", "0.3"))
    blocker = socket.socket()
    try:
        wait_for(f"http://127.0.0.1:{dashboard_port}/_stcore/health")
        wait_for(f"http://127.0.0.1:{endpoint_port}/")
        os.killpg(os.getpgid(listener_pid(endpoint_port)), signal.SIGKILL)
        wait_refused(endpoint_port)
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", endpoint_port))
        blocker.listen()
        deadline = time.monotonic() + 9  # about 1 s per failed restart (0.3 s pause, 0.5 s poll, clean-up)
        while time.monotonic() < deadline:
            assert proc.poll() is None, "the launcher gave up"
            assert requests.get(f"http://127.0.0.1:{dashboard_port}/_stcore/health", timeout=5).status_code == 200
            time.sleep(0.5)
        blocker.close()
        wait_for(f"http://127.0.0.1:{endpoint_port}/", timeout_s=120)
        assert requests.get(f"http://127.0.0.1:{dashboard_port}/_stcore/health", timeout=5).status_code == 200
    finally:
        blocker.close()
        output = stop_launcher(proc, endpoint_port)
    assert proc.returncode == 0, output
    assert output.count("Restart failed") >= 6, output  # the old launcher gave up at the sixth death
    assert "Scoring endpoint restarted" in output, output
    assert_nothing_listens(endpoint_port, dashboard_port)


def test_readme_states_the_restart_policy_the_launcher_has() -> None:
    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8").split())
    assert f"(pauses of 1, 2, 4 … up to {run_local.MAX_PAUSE_S:.0f} s, `--max-restart-pause`)" in readme
    assert run_local._parse_args([]).max_restart_pause == run_local.MAX_PAUSE_S
