"""Regression tests for what an adversarial pass broke (issue 15): the real endpoint, its files and CLIs.

Everything runs for real on loopback: azmlinfsrv with model/serving/score.py, the project's CLIs (their
main in-process; the endpoint's as a process, for its signals), raw sockets as hostile clients.
Nothing of the project is mocked.
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
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
import requests
from streamlit.testing.v1 import AppTest

from deploy.local_endpoint import LocalEndpoint, PortInUseError, free_port, serve, start, stop
from model.core import exit_codes, schema
from model.data import loader
from model.monitoring import monitor
from model.serving import datacollect, score
from model.serving.lookup import RiskLookup, example_record
from tests.app_pages import open_page
from tests.conftest import REPO_ROOT
from tests.inprocess import Ran, run_main
from tests.launcher import launch

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


def test_thousands_of_large_distinct_invalid_values_do_not_grow_the_workers(hardened: LocalEndpoint) -> None:
    # Kept whole, 2,000 distinct values of 50,000 characters would hold 100 MB.
    n, size, clients = 2_000, 50_000, 4
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
    command = [sys.executable, "-m", "deploy.local_endpoint", "--model-dir", str(model_dir), "--port", str(port)]
    options = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True, "start_new_session": True}
    cli = subprocess.Popen(command, cwd=REPO_ROOT, **options)
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
    thread = threading.Thread(target=squatter.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        port = squatter.server_address[1]
        with pytest.raises(PortInUseError, match=f"port {port} .* already in use"):
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
    ("value", "collects"),
    [("off", False), ("no", False), ("0", False), ("FALSE", False), ("on", True), ("yes", True), ("", True)],
)
def test_the_collection_switch(tmp_path: Path, value: str, collects: bool) -> None:
    collector = _collector(tmp_path, RISK_DATA_COLLECTION=value)
    collector.record("req", [0, 1, 2])
    collector.close()
    assert bool(list(tmp_path.glob("scored-*.jsonl"))) is collects


def test_a_bad_switch_or_read_timeout_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="RISK_DATA_COLLECTION='maybe' is not true or false; allowed: on or off"):
        _collector(tmp_path, RISK_DATA_COLLECTION="maybe")
    proc = subprocess.run(
        [sys.executable, "-c", "import model.serving.score"],
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT), score.BODY_TIMEOUT_ENV: "ten"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0 and "RISK_BODY_READ_TIMEOUT_S='ten' is not a number; allowed: seconds" in proc.stderr


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


# --- items 8, 9, 13: files and command-line tools ------------------------------------------------


def run_cli(module: str, *args: str) -> Ran:
    """`python -m module args...`, its main in-process (tests/inprocess.py)."""
    return run_main(module, *args)


def assert_one_line_error(proc: Ran, code: int, fragment: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and fragment in proc.stderr, proc.stderr[-2000:]
    assert len([line for line in proc.stderr.splitlines() if "error" in line]) == 1, proc.stderr


@pytest.fixture(scope="module")
def newline_at_block_edge(synthetic_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A valid CSV whose quoted value holds a line break that straddles the reader's second block edge."""
    edge = 2 * loader.CSV_BLOCK_BYTES
    with synthetic_csv.open(encoding="utf-8") as handle:
        header = handle.readline().rstrip("\n") + ",note"
        rows = [handle.readline().rstrip("\n") + ",x" for _ in range(edge // 100)]
    lines, size, i = [header], len(header) + 1, 0
    while size + len(rows[i]) + 1 < edge - 50:
        lines.append(rows[i])
        size += len(rows[i]) + 1
        i += 1
    lines.append(rows[i][:-2] + ',"first line\nsecond line ' + "z" * 100 + '"')
    text = "\n".join(lines + rows[i + 1 :]) + "\n"
    path = tmp_path_factory.mktemp("newline") / "quoted_newline.csv"
    path.write_text(text, encoding="utf-8")
    return path, len(rows)


def test_a_quoted_newline_at_a_block_edge_reads_in_train_monitor_and_batch(
    newline_at_block_edge: tuple[Path, int], model_dir: Path, tmp_path: Path
) -> None:
    path, n = newline_at_block_edge
    _, report = loader.load_counts(path)  # what model.training.train reads
    assert report.rows_read == n
    assert monitor.aggregate_file(path, RiskLookup.from_model_dir(model_dir)).rows_read == n
    out = tmp_path / "scored.csv"
    proc = run_cli(
        "model.batch_score", "--data", str(path), "--out", str(out), "--model-dir", str(model_dir), "--quiet"
    )
    assert proc.returncode == 0, proc.stderr
    scored = pa_csv.read_csv(out, parse_options=pa_csv.ParseOptions(newlines_in_values=True))
    assert scored.num_rows == n
    assert any(v.startswith("first line\nsecond line") for v in scored.column("note").to_pylist())  # intact


def test_a_symlink_to_a_device_and_a_folder_are_named_as_such(tmp_path: Path) -> None:
    link = tmp_path / "cdc.csv"
    link.symlink_to("/dev/zero")
    with pytest.raises(loader.DataError, match=r"not a regular file .*/dev/zero"):
        loader.load_counts(link)
    with pytest.raises(loader.DataError, match="is a folder"):
        loader.load_counts(tmp_path)


def test_an_overlong_line_says_so(synthetic_csv: Path, tmp_path: Path) -> None:
    path = tmp_path / "one_long_line.csv"
    with synthetic_csv.open(encoding="utf-8") as handle:
        header = handle.readline()
    path.write_text(header + "x" * (2 * loader.CSV_BLOCK_BYTES + 1000), encoding="utf-8")  # no final line break
    with pytest.raises(loader.DataError, match="longer than 4 MiB") as err:
        loader.load_counts(path)
    assert "block size" not in str(err.value)


@pytest.fixture(scope="module")
def list_column_parquet(synthetic_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    table = pa_csv.read_csv(synthetic_csv, read_options=pa_csv.ReadOptions(block_size=1 << 16)).slice(0, 200)
    sex = pa.array([[v] for v in table.column("sex").to_pylist()])
    path = tmp_path_factory.mktemp("parquet") / "list_column.parquet"
    pq.write_table(table.set_column(table.schema.get_field_index("sex"), "sex", sex), path)
    return path


def test_a_parquet_list_column_is_a_one_line_error_in_every_cli(
    list_column_parquet: Path, model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "scored.parquet"
    data = ("--data", str(list_column_parquet))
    batch = run_cli("model.batch_score", *data, "--out", str(out), "--model-dir", str(model_dir), "--quiet")
    assert_one_line_error(batch, exit_codes.BAD_INPUT, "column 'sex' holds list<")
    train = run_cli("model.train", *data, "--out", str(tmp_path / "m"), "--quiet")
    assert_one_line_error(train, exit_codes.BAD_INPUT, "column 'sex' holds list<")


def test_a_csv_output_cannot_hold_a_list_column_and_says_so(
    list_column_parquet: Path, model_dir: Path, tmp_path: Path
) -> None:
    extra = pq.read_table(list_column_parquet)
    extra = extra.set_column(extra.schema.get_field_index("sex"), "sex", pa.array(["Male"] * extra.num_rows))
    path = tmp_path / "tags.parquet"
    pq.write_table(extra.append_column("tags", pa.array([[1, 2]] * extra.num_rows)), path)
    out = tmp_path / "s.csv"
    proc = run_cli("model.batch_score", "--data", str(path), "--out", str(out), "--model-dir", str(model_dir))
    assert_one_line_error(proc, exit_codes.BAD_INPUT, "'tags' (list<")
    assert ".parquet" in proc.stderr


def test_an_internal_error_is_one_line_and_its_own_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    @exit_codes.guarded
    def main() -> int:
        return {}["missing"]  # a bug

    assert main() == exit_codes.INTERNAL_ERROR not in (0, 1, 2, 3)  # 1 is Python's crash code, 3 a monitor verdict
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: KeyError" in err and "Traceback" not in err


# --- item 4: the Monitoring page reads only the collected-data folder ------------------------------


def _check_folder(folder: Path | str) -> AppTest:
    at = open_page("monitoring.py", timeout=120)
    at.text_input(key="monitor.folder").set_value(str(folder)).run()
    at.button(key="monitor.run_log").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _page_text(at: AppTest) -> str:
    kinds = ("error", "warning", "info", "success", "markdown", "caption")
    return " ".join(str(getattr(element, "value", "")) for kind in kinds for element in at.get(kind))


@pytest.fixture
def collected_root(dashboard_env: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The configured collected-data folder, holding one real collected file in a subfolder."""
    root = tmp_path / "collected"
    (root / "blue").mkdir(parents=True)
    monkeypatch.setenv(datacollect.ENV_DIR, str(root))
    monkeypatch.delenv("RISK_MONITOR_ROOTS", raising=False)
    collector = _collector(root / "blue")
    collector.record("req", list(range(0, schema.combination_count(), 7)))
    collector.close()
    return root


@pytest.mark.parametrize("folder", ["/etc", "/", "../../.."])
def test_the_monitoring_page_refuses_folders_outside_the_collected_data(collected_root: Path, folder: str) -> None:
    at = _check_folder(folder)
    errors = [e.value for e in at.error]
    assert any("cannot be read here" in e and str(collected_root) in e for e in errors), errors
    assert "root:" not in _page_text(at)


def test_the_monitoring_page_refuses_collected_files_that_link_outside(collected_root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secrets"
    outside.mkdir()
    (outside / "token.txt").write_text('{"api_key": "sk-live-123"}\n')
    (collected_root / "blue" / "scored-evil-1.jsonl").symlink_to(outside / "token.txt")
    at = _check_folder(collected_root / "blue")
    assert any("links to files outside" in e.value for e in at.error), [e.value for e in at.error]
    assert "sk-live" not in _page_text(at)


def test_the_monitoring_page_refuses_real_records_outside_the_root(collected_root: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    collector = _collector(elsewhere)
    collector.record("req", [0, 1, 2])
    collector.close()
    at = _check_folder(elsewhere)
    assert any("cannot be read here" in e.value for e in at.error), [e.value for e in at.error]


def test_the_monitoring_page_reads_folders_inside_the_root(collected_root: Path) -> None:
    at = _check_folder(collected_root / "blue")
    assert not any("cannot be read" in e.value for e in at.error), [e.value for e in at.error]
    assert "Verdict" in _page_text(at)


def test_sigterm_on_run_local_stops_endpoint_and_dashboard(model_dir: Path) -> None:
    proc, _, _ = launch(model_dir)
    children: list[psutil.Process] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "Dashboard: http" in line:
                break
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 3, children  # endpoint master + workers, streamlit
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        _, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, f"left running after SIGTERM: {[p.cmdline()[:3] for p in alive]}"
    finally:
        for child in [*children, psutil.Process(proc.pid)] if proc.poll() is None else children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        proc.wait(10)
