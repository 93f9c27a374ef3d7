"""dashboard.client against real HTTP on loopback: the real endpoint, and small recording servers.

The recording servers (http.server in a thread) stand in for Azure's managed endpoint front
door only to observe headers, status codes and delays; the AAD credential is a stand-in
object because Azure AD cannot exist on this machine.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dashboard.client import (
    EndpointAuthError,
    EndpointClient,
    EndpointConfig,
    EndpointConfigError,
    EndpointError,
    EndpointRejected,
    EndpointServerError,
    EndpointUnavailable,
)
from deploy.local_endpoint import LocalEndpoint, free_port
from model.artifact import load_card
from model.lookup import example_record

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
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            recorder.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                      "body": body})  # fmt: skip
            status, payload, delay = recorder.script.pop(0) if recorder.script else recorder.default
            time.sleep(delay)
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

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/score"
    finally:
        server.shutdown()
        server.server_close()


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
    secrets = {"endpoint": {"url": "https://risk.westeurope.inference.ml.azure.com/score", "key": SECRET,
                            "deployment": "blue", "timeout_s": 4}}  # fmt: skip
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

