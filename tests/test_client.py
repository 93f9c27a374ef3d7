"""model.serving.client against real HTTP on loopback: the real endpoint, and small recording servers.

The recording servers (http.server in a thread) stand in for Azure's managed endpoint front
door only to observe headers, status codes and delays; the AAD credential is a stand-in
object because Azure AD cannot exist on this machine.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from deploy.local_endpoint import LocalEndpoint, free_port
from model.core.artifact import load_card
from model.serving.client import (
    EndpointAuthError,
    EndpointClient,
    EndpointConfig,
    EndpointConfigError,
    EndpointContractError,
    EndpointError,
    EndpointRejected,
    EndpointServerError,
    EndpointUnavailable,
)
from model.serving.lookup import example_record
from tests.loopback import serving

SECRET = "k3y-" + uuid.uuid4().hex
OK_BODY = {"model_version": "v-test", "results": [{"probability": 0.5, "risk_band": "very high"}]}


@dataclass
class Recorder:
    """What a fake front door saw, and the scripted (status, body, delay_s) answers it gives."""

    script: list[tuple[int, dict, float]] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)
    default: tuple[int, dict, float] = (200, OK_BODY, 0.0)


@contextmanager
def recording_server(recorder: Recorder) -> Iterator[str]:
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            recorder.requests.append(
                {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
            )
            status, payload, delay = recorder.script.pop(0) if recorder.script else recorder.default
            if stop.wait(delay):  # the test is over: its client gave up long ago
                return
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status in (429, 503):
                self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

    with serving(Handler) as url:
        try:
            yield url
        finally:
            stop.set()  # a scripted delay ends now, so closing the server need not wait it out


def client_for(url: str, **overrides: object) -> EndpointClient:
    settings = {"scoring_url": url, "timeout_s": 5.0, "backoff_s": 0.01, **overrides}
    credential = settings.pop("credential", None)
    return EndpointClient(EndpointConfig(**settings), credential=credential)  # type: ignore[arg-type]


def assert_no_secret(exc: BaseException, secret: str = SECRET) -> None:
    text = "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)
    assert secret not in text


# --- against the real endpoint --------------------------------------------------------------


def test_scores_through_the_real_endpoint(local_endpoint: LocalEndpoint, model_dir: Path) -> None:
    client = client_for(local_endpoint.scoring_url)
    result = client.score([example_record(), {**example_record(), "age_group": "80+ Years"}])
    assert result.model_version == load_card(model_dir)["model_version"]
    assert len(result.results) == 2 and result.latency_ms > 0
    health = client.health()
    assert health.ok and health.model_version == result.model_version, health.detail


def test_rejection_carries_the_endpoint_message(local_endpoint: LocalEndpoint) -> None:
    client = client_for(local_endpoint.scoring_url, auth="key", key=SECRET)
    with pytest.raises(EndpointRejected) as err:
        client.score([{**example_record(), "sex": "F"}])
    assert "'sex'" in err.value.message and "'Female'" in err.value.message
    assert_no_secret(err.value)
    assert SECRET not in local_endpoint.log_text()


# --- headers ---------------------------------------------------------------------------------


def test_key_and_deployment_headers() -> None:
    recorder = Recorder()
    with recording_server(recorder) as url:
        result = client_for(url, auth="key", key=SECRET, deployment="blue").score([example_record()])
    assert result.model_version == "v-test"
    headers = recorder.requests[0]["headers"]
    assert headers["Authorization"] == f"Bearer {SECRET}"
    assert headers["azureml-model-deployment"] == "blue"
    assert json.loads(recorder.requests[0]["body"]) == {"data": [example_record()]}


def test_no_auth_sends_no_authorization_header() -> None:
    recorder = Recorder()
    with recording_server(recorder) as url:
        client_for(url).score([example_record()])
    assert "Authorization" not in recorder.requests[0]["headers"]
    assert "azureml-model-deployment" not in recorder.requests[0]["headers"]


@dataclass
class StandInCredential:
    """Stands in for azure.identity's DefaultAzureCredential (no Azure AD here): get_token(scope)."""

    token: str
    calls: list[str] = field(default_factory=list)
    fail: bool = False

    def get_token(self, scope: str):
        self.calls.append(scope)
        if self.fail:
            raise RuntimeError(f"no identity found; tried secret {self.token}")

        @dataclass
        class AccessToken:
            token: str
            expires_on: int

        return AccessToken(self.token, int(time.time()) + 3600)


def test_aad_token_header_and_caching() -> None:
    credential = StandInCredential(token="aad-" + uuid.uuid4().hex)
    recorder = Recorder()
    with recording_server(recorder) as url:
        client = client_for(url, auth="aad", credential=credential)
        client.score([example_record()])
        client.score([example_record()])
    assert [r["headers"]["Authorization"] for r in recorder.requests] == [f"Bearer {credential.token}"] * 2
    assert credential.calls == ["https://ml.azure.com/.default"]  # cached until near expiry


def test_aad_failure_is_an_auth_error_without_secrets() -> None:
    credential = StandInCredential(token="aad-" + uuid.uuid4().hex, fail=True)
    with recording_server(Recorder()) as url, pytest.raises(EndpointAuthError) as err:
        client_for(url, auth="aad", credential=credential).score([example_record()])
    assert "az login" in str(err.value)
    assert_no_secret(err.value, credential.token)


# --- failures --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(401, EndpointAuthError), (403, EndpointAuthError), (500, EndpointServerError), (404, EndpointError)],
)
def test_status_errors_are_typed_and_never_leak_the_key(status: int, error_type: type) -> None:
    recorder = Recorder(default=(status, {"message": "nope"}, 0.0))
    with recording_server(recorder) as url, pytest.raises(error_type) as err:
        client_for(url, auth="key", key=SECRET).score([example_record()])
    assert f"HTTP {status}" in str(err.value)
    assert_no_secret(err.value)
    assert len(recorder.requests) == 1  # not retried


def test_refused_port_is_unavailable_after_retries() -> None:
    url = f"http://127.0.0.1:{free_port()}/score"
    with pytest.raises(EndpointUnavailable) as err:
        client_for(url, auth="key", key=SECRET, retries=2).score([example_record()])
    assert "after 3 attempts" in str(err.value) and "connection refused" in str(err.value)
    assert_no_secret(err.value)


def test_slow_endpoint_times_out() -> None:
    recorder = Recorder(default=(200, OK_BODY, 2.0))
    with recording_server(recorder) as url, pytest.raises(EndpointUnavailable) as err:
        client_for(url, auth="key", key=SECRET, timeout_s=0.3).score([example_record()])
    assert "did not answer within 0.3s" in str(err.value)
    assert_no_secret(err.value)


def test_a_read_timeout_that_requests_calls_a_connection_error_is_still_too_slow() -> None:
    """Under load the retry can give up on a timed-out read before the deadline's watchdog fires; requests then
    raises ConnectionError(MaxRetryError(ReadTimeoutError)), and the user was told the endpoint was unreachable."""
    import requests
    from urllib3.exceptions import MaxRetryError, NewConnectionError, ReadTimeoutError

    url = "http://127.0.0.1:9/score"
    client = client_for(url, auth="key", key=SECRET, timeout_s=0.3)
    attempts = client._new_attempts()
    read = requests.ConnectionError(MaxRetryError(None, url, ReadTimeoutError(None, url, "Read timed out.")))
    assert "did not answer within 0.3s" in str(client._failure(url, attempts, read, fired=False))
    refused = requests.ConnectionError(MaxRetryError(None, url, NewConnectionError(None, "Connection refused")))
    assert "Cannot reach" in str(client._failure(url, attempts, refused, fired=False))


@pytest.mark.parametrize("status", [429, 503])
def test_throttling_and_unavailable_are_retried(status: int) -> None:
    recorder = Recorder(script=[(status, {"message": "busy"}, 0.0)] * 2)
    with recording_server(recorder) as url:
        result = client_for(url, retries=3).score([example_record()])
    assert result.model_version == "v-test"
    assert len(recorder.requests) == 3


@pytest.mark.parametrize(("status", "error_type"), [(429, EndpointUnavailable), (503, EndpointServerError)])
def test_persistent_overload_gives_up_after_retries(status: int, error_type: type) -> None:
    recorder = Recorder(default=(status, {"message": "busy"}, 0.0))
    with recording_server(recorder) as url, pytest.raises(error_type):
        client_for(url, retries=2).score([example_record()])
    assert len(recorder.requests) == 3


def test_malformed_success_is_a_server_error() -> None:
    recorder = Recorder(default=(200, {"results": []}, 0.0))
    with recording_server(recorder) as url, pytest.raises(EndpointServerError, match="scoring contract"):
        client_for(url).score([example_record()])


def test_health_reports_down_endpoint() -> None:
    health = client_for(f"http://127.0.0.1:{free_port()}/score", retries=0).health()
    assert not health.ok and "Cannot reach" in health.detail and health.model_version is None


# --- configuration ---------------------------------------------------------------------------


def test_config_defaults_to_the_local_endpoint() -> None:
    config = EndpointConfig.from_sources(None, {})
    assert (config.scoring_url, config.name, config.auth) == ("http://127.0.0.1:5001/score", "local", "none")


def test_config_from_secrets_with_environment_override() -> None:
    secrets = {
        "endpoint": {
            "url": "https://risk.westeurope.inference.ml.azure.com/score",
            "key": SECRET,
            "deployment": "blue",
            "timeout_s": 4,
        }
    }
    config = EndpointConfig.from_sources(secrets, {"RISK_ENDPOINT_DEPLOYMENT": "green"})
    assert (config.name, config.auth, config.deployment, config.timeout_s) == ("azure", "key", "green", 4.0)
    assert SECRET not in repr(config)
    assert SECRET not in repr(EndpointClient(config))


@pytest.mark.parametrize(
    ("environ", "fragment"),
    [
        ({"RISK_ENDPOINT_URL": "ftp://x/score"}, "not an http(s) URL"),
        ({"RISK_ENDPOINT_AUTH": "token"}, "not one of none, key, aad"),
        ({"RISK_ENDPOINT_AUTH": "key"}, "no key is set"),
        ({"RISK_ENDPOINT_TIMEOUT": "soon"}, "not a number"),
    ],
)
def test_config_errors_say_how_to_fix(environ: dict[str, str], fragment: str) -> None:
    with pytest.raises(EndpointConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        EndpointConfig.from_sources(None, environ)


def test_config_precedence_blanks_and_wording() -> None:
    """Environment over secrets per setting, blanks unset, auth case-insensitive; errors name the setting, the value
    (never the key's) and what is allowed."""
    secrets = {"endpoint": {"url": "https://a.example/score", "timeout_s": "7", "auth": " KEY ", "key": SECRET}}
    config = EndpointConfig.from_sources(secrets, {"RISK_ENDPOINT_URL": "", "RISK_ENDPOINT_TIMEOUT": "2.5"})
    assert (config.scoring_url, config.timeout_s, config.auth) == ("https://a.example/score", 2.5, "key")
    assert config.key is not None and config.key.get_secret_value() == SECRET
    with pytest.raises(EndpointConfigError) as err:
        EndpointConfig.from_sources(None, {"RISK_ENDPOINT_TIMEOUT": "soon"})
    assert "RISK_ENDPOINT_TIMEOUT (or [endpoint] timeout_s)='soon' is not a number; allowed: seconds" in str(err.value)
    with pytest.raises(EndpointConfigError) as err:
        EndpointConfig.from_sources({"endpoint": {"key": 12345678901}}, {})
    assert "RISK_ENDPOINT_KEY (or [endpoint] key)=(hidden) is not text" in str(err.value)
    assert "12345678901" not in str(err.value)
    with pytest.raises(EndpointConfigError, match="endpoint timeout=0 must be greater than 0"):
        EndpointConfig(timeout_s=0)


# --- hardening (issue 15): echoed secrets, deadlines, contract, wording -----------------------


@contextmanager
def scripted_server(answer) -> Iterator[str]:
    """A loopback HTTP server whose every request is answered by `answer(handler, body)`."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            answer(self, self.rfile.read(length) if length else b"")

        do_GET = do_POST = _serve

        def log_message(self, *args: object) -> None:
            pass

    with serving(Handler, daemon_threads=True) as url:
        yield url


def send_json(handler: BaseHTTPRequestHandler, status: int, payload: object, headers: dict | None = None) -> None:
    data = json.dumps(payload).encode()
    handler.send_response(status)
    for name, value in {
        "Content-Type": "application/json",
        "Content-Length": str(len(data)),
        **(headers or {}),
    }.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(data)


def assert_no_fragment(text: str, secret: str) -> None:
    """Neither the secret nor any 8 consecutive characters of it appear in text."""
    assert not any(secret[i : i + 8] in text for i in range(len(secret) - 7)), text


@pytest.mark.parametrize("status", [400, 401, 404, 418, 500, 503])
@pytest.mark.parametrize("echo", ["full", "truncated", "json-headers"])
def test_secrets_echoed_by_a_server_or_proxy_never_reach_an_error(status: int, echo: str) -> None:
    def answer(handler: BaseHTTPRequestHandler, body: bytes) -> None:
        auth = handler.headers["Authorization"]
        text = {
            "full": f"you sent {auth}",
            "truncated": f"you sent {auth[:26]}…",
            "json-headers": json.dumps(dict(handler.headers)),
        }[echo]
        send_json(handler, status, {"error": text})

    with scripted_server(answer) as url:
        client = client_for(url, auth="key", key=SECRET, retries=0)
        with pytest.raises(EndpointError) as err:
            client.score([example_record()])
        health = client.health()
    for text in (str(err.value), repr(err.value), getattr(err.value, "message", ""), health.detail):
        assert_no_fragment(text, SECRET)
    if status == 400:
        assert "you sent" in err.value.message or "Authorization" in err.value.message  # the rest is kept


def test_an_echoed_aad_token_is_redacted_too() -> None:
    credential = StandInCredential(token="eyJ0eXAiOiJKV1Q" + uuid.uuid4().hex)

    def answer(handler: BaseHTTPRequestHandler, body: bytes) -> None:
        send_json(handler, 400, {"error": f"token {handler.headers['Authorization'].split()[1]} is not allowed"})

    with scripted_server(answer) as url, pytest.raises(EndpointRejected) as err:
        client_for(url, auth="aad", credential=credential).score([example_record()])
    assert_no_fragment(str(err.value), credential.token)
    assert "[redacted]" in err.value.message


def trickle(phase: str):
    """An answer that sends 1 byte per half second: the status line and headers, or the body."""
    payload = json.dumps(OK_BODY).encode()

    def answer(handler: BaseHTTPRequestHandler, body: bytes) -> None:
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        whole = head.encode() + payload
        start = 0 if phase == "headers" else len(head)  # where the trickle starts
        try:
            handler.wfile.write(whole[:start])
            for i in range(start, start + 8):  # bounded: at most 4 s whatever the client does
                handler.wfile.write(whole[i : i + 1])
                handler.wfile.flush()
                time.sleep(0.5)
            handler.wfile.write(whole[start + 8 :])
        except OSError:
            pass  # the client hung up: what we want

    return answer


@pytest.mark.parametrize("phase", ["headers", "body"])
def test_timeout_is_a_deadline_for_a_trickling_server(phase: str) -> None:
    with scripted_server(trickle(phase)) as url:
        started = time.monotonic()
        with pytest.raises(EndpointUnavailable) as err:
            client_for(url, timeout_s=1.0, retries=3).score([example_record()])
        elapsed = time.monotonic() - started
    assert elapsed < 1.8, f"held the caller {elapsed:.1f}s with timeout_s=1"
    assert "within 1s" in str(err.value) and "1 request sent" in str(err.value)


def test_retry_after_longer_than_the_deadline_is_not_waited_for() -> None:
    requests_seen: list[float] = []

    def answer(handler: BaseHTTPRequestHandler, body: bytes) -> None:
        requests_seen.append(time.monotonic())
        send_json(handler, 429, {"message": "slow down"}, {"Retry-After": "10"})

    with scripted_server(answer) as url:
        started = time.monotonic()
        with pytest.raises(EndpointUnavailable) as err:
            client_for(url, timeout_s=2.0, retries=3).score([example_record()])
        elapsed = time.monotonic() - started
    assert elapsed < 2.5, f"took {elapsed:.1f}s with timeout_s=2"
    assert len(requests_seen) == 1 and "HTTP 429" in str(err.value) and "after 1 request " in str(err.value)
    assert "10 s" in str(err.value)


def test_a_500_is_not_retried_and_does_not_say_so() -> None:
    recorder = Recorder(default=(500, {"error": "boom"}, 0.0))
    with recording_server(recorder) as url, pytest.raises(EndpointServerError) as err:
        client_for(url).score([example_record()])
    assert len(recorder.requests) == 1
    assert "retr" not in str(err.value) and "HTTP 500" in str(err.value) and "boom" in str(err.value)


def test_retried_503_says_how_many_requests_were_sent() -> None:
    recorder = Recorder(default=(503, {"message": "busy"}, 0.0))
    with recording_server(recorder) as url, pytest.raises(EndpointServerError) as err:
        client_for(url, retries=2).score([example_record()])
    assert len(recorder.requests) == 3 and "after 3 requests" in str(err.value)


BROKEN_200 = [
    pytest.param({"results": [1]}, "model_version", id="no-version"),
    pytest.param({"model_version": "v", "results": [1]}, "results[0] is 1", id="result-not-object"),
    pytest.param({"model_version": "v", "results": None}, '"results" is missing', id="results-null"),
    pytest.param(
        {"model_version": "v", "results": [{"probability": "0.5", "risk_band": "high"}]},
        'probability "0.5"',
        id="probability-string",
    ),
    pytest.param(
        {"model_version": "v", "results": [{"probability": 1.5, "risk_band": "high"}]},
        "probability 1.5",
        id="probability-above-1",
    ),
    pytest.param(
        {"model_version": "v", "results": [{"probability": True, "risk_band": "high"}]},
        "probability true",
        id="probability-bool",
    ),
    pytest.param({"model_version": "v", "results": [{"probability": 0.5}]}, "risk_band", id="no-band"),
    pytest.param(
        {"model_version": "v", "results": [{"probability": 0.5, "risk_band": "high", "interval": [0.6]}]},
        "interval",
        id="bad-interval",
    ),
    pytest.param(
        {
            "model_version": "v",
            "results": [{"probability": 0.2, "risk_band": "high", "probability_if_unrecorded_survived": 0.3}],
        },
        "probability_if_unrecorded_survived",
        id="low-end-above-risk",
    ),
    pytest.param(
        {"model_version": "v", "results": [{"probability": 0.2, "risk_band": "high", "inputs_used": "age_group"}]},
        "inputs_used",
        id="inputs-used-not-a-list",
    ),
    pytest.param([1, 2], "not an object", id="array"),
    pytest.param(
        {"model_version": "v", "results": [{"probability": 0.2, "risk_band": "high", "interval": [0.3, 0.1]}]},
        "has interval list, not [low, high] within 0..1",
        id="interval-reversed",
    ),
    pytest.param(
        {"model_version": "v", "results": [{"probability": 0.2, "risk_band": "extreme"}]},
        'has risk_band "extreme", not one of',
        id="unknown-band",
    ),
    pytest.param(
        {"model_version": "v", "results": [{"probability": 0.2, "risk_band": "high", "extrapolated": None}]},
        "has extrapolated missing/null, not true/false",
        id="present-but-null",
    ),
    pytest.param({"model_version": "v 1", "results": []}, '"model_version" is "v 1", not a version', id="bad-version"),
    pytest.param(
        {"model_version": "v", "results": [{"probability": 0.2, "risk_band": "high"}] * 2},
        '"results" has 2 entries for 1 records',
        id="too-many-results",
    ),
]


@pytest.mark.parametrize(("payload", "fragment"), BROKEN_200)
def test_a_200_that_breaks_the_contract_is_a_typed_error(payload: object, fragment: str) -> None:
    recorder = Recorder(default=(200, payload, 0.0))
    with recording_server(recorder) as url, pytest.raises(EndpointContractError) as err:
        client_for(url).score([example_record()])
    assert "broke the scoring contract" in str(err.value) and fragment in str(err.value)
    assert isinstance(err.value, EndpointServerError)  # pages that catch server errors still catch it


def test_a_200_that_is_not_json_is_a_typed_error() -> None:
    def answer(handler: BaseHTTPRequestHandler, body: bytes) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "9")
        handler.end_headers()
        handler.wfile.write(b"<html/>  ")

    with scripted_server(answer) as url, pytest.raises(EndpointContractError, match="not JSON"):
        client_for(url).score([example_record()])


def test_extra_and_newer_result_fields_are_accepted() -> None:
    result = {"probability": 0.2, "risk_band": "high", "model": "intake", "interval": [0.1, 0.3], "extrapolated": False}
    recorder = Recorder(default=(200, {"model_version": "v", "data_period": "2020", "results": [result]}, 0.0))
    with recording_server(recorder) as url:
        assert client_for(url).score([example_record()]).results == [result]


def test_backoff_doubles_between_retries_and_stops_before_the_deadline() -> None:
    """urllib3's backoff (factor 0.25: waits 0, 0.5, 1.0, 2.0 s) inside a 2 s deadline: the fourth wait would
    pass it, so the client reports the fourth 502 at about 1.5 s instead of sleeping on."""
    seen: list[float] = []

    def answer(handler: BaseHTTPRequestHandler, body: bytes) -> None:
        seen.append(time.monotonic())
        send_json(handler, 502, {"message": "bad gateway"})

    with scripted_server(answer) as url:
        started = time.monotonic()
        with pytest.raises(EndpointServerError) as err:
            client_for(url, timeout_s=2.0, retries=10, backoff_s=0.25).score([example_record()])
        elapsed = time.monotonic() - started
    gaps = [b - a for a, b in itertools.pairwise(seen)]
    assert len(seen) == 4 and "after 4 requests" in str(err.value), (gaps, str(err.value))
    assert gaps[0] < 0.2 and 0.45 < gaps[1] < 0.8 and 0.95 < gaps[2] < 1.4, gaps
    assert elapsed < 2.0


def test_retry_after_is_waited_for_when_it_fits() -> None:
    seen: list[float] = []

    def answer(handler: BaseHTTPRequestHandler, body: bytes) -> None:
        seen.append(time.monotonic())
        if len(seen) == 1:
            send_json(handler, 503, {"message": "warming up"}, {"Retry-After": "1"})
        else:
            send_json(handler, 200, OK_BODY)

    with scripted_server(answer) as url:
        result = client_for(url, timeout_s=5.0, backoff_s=0.0).score([example_record()])
    assert result.model_version == "v-test" and len(seen) == 2 and seen[1] - seen[0] >= 1.0
