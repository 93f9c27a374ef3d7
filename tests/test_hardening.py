"""Regression tests for what an adversarial pass broke (issue 15): the real endpoint, its files and CLIs.

Everything runs for real on loopback: azmlinfsrv with model/score.py, the project's CLIs as
subprocesses, raw sockets as hostile clients. Nothing of the project is mocked.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.client
import json
import logging
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import psutil
import pytest
import requests

from deploy.local_endpoint import EndpointStartError, LocalEndpoint, free_port, serve, start, stop
from model import datacollect, schema, score
from model.lookup import example_record
from tests.conftest import REPO_ROOT

BODY_TIMEOUT_S = 2.0  # the hardened endpoint's body-read timeout in these tests (production: 10 s)
VALID = json.dumps({"data": [example_record()]}).encode()


@pytest.fixture(scope="module")
def hardened(model_dir: Path) -> Iterator[LocalEndpoint]:
    """The endpoint with the project's server settings, a short body timeout and no data collection."""
    env = {"RISK_DATA_COLLECTION": "off", "RISK_BODY_READ_TIMEOUT_S": str(BODY_TIMEOUT_S)}
    with serve(model_dir, env=env) as endpoint:
        yield endpoint


def raw_request(endpoint: LocalEndpoint, head: str, body: bytes = b"") -> socket.socket:
    """Open a connection and send a request head plus (part of) a body, leaving it open."""
    sock = socket.create_connection((endpoint.host, endpoint.port), timeout=10)
    sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
    return sock


def read_response(sock: socket.socket, timeout_s: float) -> tuple[int, dict]:
    """Status and JSON body of the one response on `sock` (closes it)."""
    sock.settimeout(timeout_s)
    data = b""
    try:
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body[: _length(data)] or b"{}")


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


def timed_valid_request(endpoint: LocalEndpoint) -> float:
    start_s = time.perf_counter()
    response = requests.post(endpoint.scoring_url, data=VALID, timeout=5)
    assert response.status_code == 200, response.text
    return time.perf_counter() - start_s


# --- item 2: slow clients ------------------------------------------------------------------------


def test_a_slow_client_does_not_delay_a_valid_request_and_gets_a_408(hardened: LocalEndpoint) -> None:
    head = f"POST /score HTTP/1.1\nHost: x\nContent-Type: application/json\nContent-Length: {len(VALID)}\n"
    slow = [raw_request(hardened, head, VALID[:10]) for _ in range(3)]  # headers and a partial body, then silence
    time.sleep(0.3)
    delays = [timed_valid_request(hardened) for _ in range(5)]
    assert max(delays) < 1.0, delays
    started = time.perf_counter()
    status, body = read_response(slow[0], timeout_s=BODY_TIMEOUT_S + 5)
    assert status == 408 and "did not arrive within" in body["error"]
    assert time.perf_counter() - started < BODY_TIMEOUT_S + 2
    for sock in slow[1:]:
        sock.close()


def test_an_absurd_content_length_is_a_413_at_once(hardened: LocalEndpoint) -> None:
    sock = raw_request(hardened, "POST /score HTTP/1.1\nHost: x\nContent-Length: 99999999999999999999\n", b"{")
    started = time.perf_counter()
    status, body = read_response(sock, timeout_s=5)
    assert status == 413 and time.perf_counter() - started < 1.0
    assert f"{score.MAX_BODY_BYTES:,} bytes" in body["error"] and "model.batch_score" in body["error"]
    assert timed_valid_request(hardened) < 1.0


def test_a_chunked_body_over_the_limit_is_a_413(hardened: LocalEndpoint) -> None:
    piece = b" " * (1 << 20)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while reading
        for _ in range((score.MAX_BODY_BYTES >> 20) + 2):
            yield piece

    try:
        response = requests.post(hardened.scoring_url, data=chunks(), timeout=30)
    except requests.ConnectionError:
        pytest.fail("the server dropped the connection instead of answering 413")
    assert response.status_code == 413, response.text[:300]
    assert "too large" in response.json()["error"]


# --- item 1: memory --------------------------------------------------------------------------------


def _workers_rss_mb(endpoint: LocalEndpoint) -> float:
    children = psutil.Process(endpoint.process.pid).children(recursive=True)
    return sum(child.memory_info().rss for child in children) / 2**20


def test_ten_thousand_distinct_invalid_values_do_not_grow_the_workers(hardened: LocalEndpoint) -> None:
    n, size, clients = 10_000, 10_000, 4
    with requests.Session() as session:
        for _ in range(40):  # warm every worker thread before measuring
            session.post(hardened.scoring_url, data=VALID, timeout=10)
    before = _workers_rss_mb(hardened)

    def send(first: int) -> None:  # http.client on a kept-alive connection: light enough to send 10k quickly
        conn = http.client.HTTPConnection(hardened.host, hardened.port, timeout=30)
        try:
            for i in range(first, n, clients):
                record = {**example_record(), "age_group": f"{i:06d}" + "x" * size}
                conn.request("POST", "/score", body=json.dumps({"data": [record]}))
                response = conn.getresponse()
                text = response.read()
                assert response.status == 400, text[:200]
        finally:
            conn.close()

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, range(clients)))
    growth = _workers_rss_mb(hardened) - before
    assert growth < 50, f"workers grew by {growth:.0f} MB after {n:,} distinct invalid values of {size:,} chars"


# --- item 12: no traceback at start ----------------------------------------------------------------


def test_server_start_logs_no_traceback(hardened: LocalEndpoint) -> None:
    assert timed_valid_request(hardened) < 5
    log = hardened.log_text()
    assert "Traceback" not in log and "Error while fetching model IDs" not in log, log[-3000:]
    assert "covid19-death-risk:1" in log or "Model Directory" in log


# --- item 7: stopping and ports --------------------------------------------------------------------


def test_sigterm_on_the_cli_stops_the_whole_server(model_dir: Path) -> None:
    port = free_port()
    cli = subprocess.Popen(
        [sys.executable, "-m", "deploy.local_endpoint", "--model-dir", str(model_dir), "--port", str(port)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    server: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 120
        assert cli.stdout is not None
        for line in cli.stdout:
            if "Scoring endpoint ready" in line or time.monotonic() > deadline:
                break
        server = psutil.Process(cli.pid).children(recursive=True)
        assert server, "the CLI started no server"
        cli.send_signal(signal.SIGTERM)
        cli.wait(30)
        _gone, alive = psutil.wait_procs(server, timeout=5)
        assert not alive, f"left running after SIGTERM: {[p.pid for p in alive]}"
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/", timeout=2)
    finally:
        for proc in [*server, psutil.Process(cli.pid)] if cli.poll() is None else server:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        cli.wait(10)


class _Squatter(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # answers the liveness probe like a stale endpoint would
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"Healthy")

    def log_message(self, *args: object) -> None:
        pass


def test_a_port_someone_else_holds_is_refused(model_dir: Path) -> None:
    squatter = ThreadingHTTPServer(("127.0.0.1", 0), _Squatter)
    thread = threading.Thread(target=squatter.serve_forever, daemon=True)
    thread.start()
    try:
        port = squatter.server_address[1]
        with pytest.raises(EndpointStartError, match=f"port {port} .* already in use"):
            stop(start(model_dir, port=port, env={"RISK_DATA_COLLECTION": "off"}))  # stop: never left running
    finally:
        squatter.shutdown()
        squatter.server_close()


# --- item 5 and issue 13 item 9: collected data ----------------------------------------------------


def _collector(tmp_path: Path, **env: str) -> datacollect.ScoringCollector:
    table = np.linspace(0.001, 0.9, schema.combination_count())  # any probabilities: only formatting matters
    return datacollect.from_environment("v-test", table, environ={datacollect.ENV_DIR: str(tmp_path), **env})


def test_collected_files_are_capped_within_a_write_and_deletions_are_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    collector = _collector(tmp_path, RISK_DATA_COLLECTION_FILE_MB="1", RISK_DATA_COLLECTION_KEEP_FILES="2")
    n = 4_000  # records per request; one request's lines are ~1.1 MB, more than a file may hold
    with caplog.at_level(logging.WARNING, logger="risk.datacollect"):
        for r in range(4):
            collector.record(f"req-{r}", [i % schema.combination_count() for i in range(n)])
        collector.close()
    files = sorted(tmp_path.glob("scored-*.jsonl*"))
    sizes = {p.name: p.stat().st_size for p in files}
    assert len(files) == 3 and max(sizes.values()) <= 1 << 20, sizes  # the live file + 2 rotated ones
    kept = sum(len(p.read_text().splitlines()) for p in files)
    deletions = [r.getMessage() for r in caplog.records if "deleted" in r.getMessage()]
    assert deletions, "records were deleted without a log line"
    deleted = sum(int(m.split(" bytes, ")[1].split(" records")[0].replace(",", "")) for m in deletions)
    assert kept + deleted == 4 * n  # every record is either on disk or counted in a logged deletion
    assert all("RISK_DATA_COLLECTION_KEEP_FILES" in m for m in deletions)
    for path in files:
        assert all(json.loads(line)["model_version"] == "v-test" for line in path.read_text().splitlines())


@pytest.mark.parametrize("name", ["RISK_DATA_COLLECTION_FILE_MB", "RISK_DATA_COLLECTION_KEEP_FILES"])
def test_a_bad_retention_setting_is_a_clear_error(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match=f"{name}='lots' is not a whole number"):
        _collector(tmp_path, **{name: "lots"})


@pytest.mark.parametrize(
    "azure_env",
    [
        pytest.param({"AZUREML_MODEL_DIR": "/var/azureml-app/azureml-models/covid19-death-risk/3"}, id="mount"),
        pytest.param({"AZUREML_MDC_ENABLED": "true"}, id="collection-enabled"),
    ],
)
def test_in_azure_records_never_go_to_the_pods_disk(tmp_path: Path, azure_env: dict[str, str]) -> None:
    collector = _collector(tmp_path, **azure_env)
    collector.record("req", [0, 1, 2])
    collector.close()
    assert list(tmp_path.iterdir()) == []
