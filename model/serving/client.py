"""The one client of the scoring endpoint (dashboard pages and deployment smoke tests).

Configuration comes from the Streamlit secrets section `[endpoint]` (url, key, auth,
deployment, timeout_s) and the environment (RISK_ENDPOINT_URL, RISK_ENDPOINT_KEY,
RISK_ENDPOINT_AUTH, RISK_ENDPOINT_DEPLOYMENT, RISK_ENDPOINT_TIMEOUT); the environment
wins per setting, so an operator can override a secrets file. Default: the local
endpoint at http://127.0.0.1:5001/score without auth.

Connection errors, 429 and 502/503/504 are retried with exponential backoff (honouring
Retry-After up to a cap), within one deadline: `timeout_s` bounds a whole `score()` call,
retries and waits included, and a watchdog shuts the connection when it passes, so a server
that trickles bytes cannot hold a clerk longer. Errors say how many requests were sent.

Every failure is a typed `EndpointError` whose text never contains the key or token:
messages are built here from status codes and the endpoint's own `{"error": ...}` text, and
that text is scrubbed of the key, the token (also partial echoes) and any `Bearer ...` value,
in case the endpoint or a proxy echoes request headers. A 200 answer is checked against the
scoring contract before anyone uses it.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import math
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from model.core import schema

DEFAULT_URL = "http://127.0.0.1:5001/score"
DEFAULT_TIMEOUT_S = 10.0
AAD_SCOPE = "https://ml.azure.com/.default"
AUTH_MODES = ("none", "key", "aad")
RETRY_STATUSES = (429, 502, 503, 504)
RETRY_AFTER_MAX_S = 10.0
REDACTED = "[redacted]"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
# The most of an answer that is read: 64 KiB plus 2 KiB per record scored (a result with its explanation
# is under 1 KiB), never more than 64 MiB; beyond it the call fails without reading on. Why: a hostile or
# broken endpoint's 3 GiB reply drove the dashboard to 6.7 GB, and the sidebar's health check (one record,
# so 66 KiB here) reaches the endpoint on every page view.
RESPONSE_BASE_BYTES = 64 << 10
RESPONSE_PER_RECORD_BYTES = 2 << 10
MAX_RESPONSE_BYTES = 64 << 20
_READ_CHUNK_BYTES = 64 << 10
# What a model version may look like (ours: "20240101.000000-abcdef12-recal"): it is shown on every page.
_MODEL_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}")
MAX_DATA_PERIOD_CHARS = 1000
RISK_BAND_NAMES = frozenset(name for _, name in schema.RISK_BANDS)


def response_cap(records: int) -> int:
    """The most bytes read from the answer to a request of `records` records (see RESPONSE_BASE_BYTES)."""
    return min(MAX_RESPONSE_BYTES, RESPONSE_BASE_BYTES + max(records, 0) * RESPONSE_PER_RECORD_BYTES)


class EndpointError(Exception):
    """Scoring failed; the message says why and what to do. Never contains the key or token."""


class EndpointConfigError(EndpointError):
    """The endpoint settings are incomplete or invalid."""


class EndpointUnavailable(EndpointError):
    """Down, refused, throttled or timed out (after retries)."""


class EndpointAuthError(EndpointError):
    """401 / 403, or no Azure AD token could be obtained."""


class EndpointRejected(EndpointError):
    """400: the endpoint refused the payload; `.message` is its explanation."""

    def __init__(self, message: str) -> None:
        super().__init__(f"The endpoint rejected the request: {message}")
        self.message = message


class EndpointServerError(EndpointError):
    """5xx (502/503/504 after retries), or a response that does not follow the scoring contract."""


class EndpointContractError(EndpointServerError):
    """The endpoint answered 200 with a body that breaks the scoring contract (docs/scoring_contract.md)."""


@dataclass(frozen=True)
class EndpointConfig:
    scoring_url: str = DEFAULT_URL
    name: str = "local"  # "local" | "azure"
    auth: str = "none"  # "none" | "key" | "aad"
    key: str | None = field(default=None, repr=False)
    deployment: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    retries: int = 3
    backoff_s: float = 0.5

    def __post_init__(self) -> None:
        parts = urlsplit(self.scoring_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise EndpointConfigError(
                f"endpoint url {self.scoring_url!r} is not an http(s) URL; "
                "set e.g. https://<endpoint>.<region>.inference.ml.azure.com/score"
            )
        if self.auth not in AUTH_MODES:
            raise EndpointConfigError(f"endpoint auth {self.auth!r} is not one of {', '.join(AUTH_MODES)}")
        if self.auth == "key" and not self.key:
            raise EndpointConfigError(
                "endpoint auth is 'key' but no key is set: set RISK_ENDPOINT_KEY or [endpoint] key in secrets"
            )
        if not self.timeout_s > 0:
            raise EndpointConfigError(f"endpoint timeout must be > 0 seconds, got {self.timeout_s}")

    @classmethod
    def from_sources(
        cls, secrets: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> EndpointConfig:
        """Settings from Streamlit secrets (`secrets["endpoint"]` or the section itself) and environment."""
        section: Mapping[str, Any] = {}
        if secrets is not None:
            section = secrets.get("endpoint", secrets) if hasattr(secrets, "get") else {}
        env = environ or {}

        def pick(env_name: str, key: str) -> str | None:
            value = env.get(env_name)
            if value in (None, ""):
                value = section.get(key)
            return None if value in (None, "") else str(value)

        url = pick("RISK_ENDPOINT_URL", "url") or DEFAULT_URL
        key = pick("RISK_ENDPOINT_KEY", "key")
        auth = (pick("RISK_ENDPOINT_AUTH", "auth") or ("key" if key else "none")).strip().lower()
        timeout_raw = pick("RISK_ENDPOINT_TIMEOUT", "timeout_s")
        try:
            timeout_s = float(timeout_raw) if timeout_raw else DEFAULT_TIMEOUT_S
        except ValueError:
            raise EndpointConfigError(f"endpoint timeout {timeout_raw!r} is not a number of seconds") from None
        host = urlsplit(url).hostname or ""
        return cls(
            scoring_url=url,
            name="local" if host in _LOOPBACK else "azure",
            auth=auth,
            key=key,
            deployment=pick("RISK_ENDPOINT_DEPLOYMENT", "deployment"),
            timeout_s=timeout_s,
        )


@dataclass(frozen=True)
class ScoreResult:
    model_version: str
    results: list[dict[str, Any]]
    latency_ms: float
    data_period: str = ""  # which patients and period the model describes (from the endpoint)


@dataclass(frozen=True)
class HealthResult:
    ok: bool
    detail: str
    latency_ms: float
    model_version: str | None = None


class _CallWatch:
    """The connections one call uses; `fire()` (the deadline) shuts them, waking any blocked read."""

    def __init__(self) -> None:
        self.fired = False
        self.connections: list[HTTPConnection] = []
        self._lock = threading.Lock()

    def add(self, connection: HTTPConnection) -> None:
        with self._lock:
            self.connections.append(connection)
            if self.fired:
                self._shut(connection)

    def fire(self) -> None:
        with self._lock:
            self.fired = True
            for connection in self.connections:
                self._shut(connection)

    @staticmethod
    def _shut(connection: HTTPConnection) -> None:
        sock = getattr(connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


_CURRENT = threading.local()  # .watch: the _CallWatch of the call running on this thread


class _WatchedMixin:
    def request(self, *args: Any, **kwargs: Any) -> None:
        watch = getattr(_CURRENT, "watch", None)
        if watch is not None:
            watch.add(self)  # type: ignore[arg-type]
        super().request(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_WatchedMixin, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_WatchedMixin, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    """requests adapter whose connections a call's watchdog can shut; retries are done by the client."""

    def __init__(self) -> None:
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # an HTTP(S) proxy (SOCKS managers bring their own pools)
            manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager


_WATCHED_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


@dataclass
class _Attempts:
    """How a call went: requests tried and how many never connected, and when it must be over."""

    deadline: float
    tries: int = 0
    unconnected: int = 0

    @property
    def sent(self) -> int:
        return self.tries - self.unconnected

    def left(self) -> float:
        return self.deadline - time.monotonic()


class EndpointClient:
    """Scores records against one endpoint; thread-safe enough for a Streamlit session."""

    def __init__(self, config: EndpointConfig, credential: Any | None = None) -> None:
        # `credential`: any object with get_token(scope) (azure.identity style); by default
        # DefaultAzureCredential is created lazily on first use when auth == "aad".
        self.config = config
        self._credential = credential
        self._token: tuple[str, float] | None = None
        self._secrets: set[str] = {config.key} if config.key else set()
        self._session = requests.Session()
        adapter = _WatchedAdapter()
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def __repr__(self) -> str:
        return f"EndpointClient({self.config!r})"

    # --- auth -------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.config.auth == "key":
            headers["Authorization"] = f"Bearer {self.config.key}"
        elif self.config.auth == "aad":
            headers["Authorization"] = f"Bearer {self._aad_token()}"
        if self.config.deployment:
            headers["azureml-model-deployment"] = self.config.deployment
        return headers

    def _aad_token(self) -> str:
        if self._token and self._token[1] - 300 > time.time():
            return self._token[0]
        try:
            if self._credential is None:
                from azure.identity import DefaultAzureCredential

                self._credential = DefaultAzureCredential()
            token = self._credential.get_token(AAD_SCOPE)
        except Exception as exc:
            # Only the class name: credential errors can quote environment details.
            raise EndpointAuthError(
                f"Could not get an Azure AD token for {AAD_SCOPE} ({type(exc).__name__}). "
                "Sign in (az login) or configure a managed identity / service principal with access "
                "to the endpoint, or use key auth."
            ) from None
        self._token = (token.token, float(token.expires_on))
        self._secrets.add(token.token)
        return token.token

    def redact(self, text: str) -> str:
        """`text` without the key, any token this client used (whole or 8+ characters of it) or Bearer values."""
        text = _AUTH_VALUE.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
        for secret in self._secrets:
            text = _scrub(text, secret)
        return text

    # --- calls ------------------------------------------------------------------
    def _send(
        self,
        method: str,
        url: str,
        body: bytes | None,
        attempts: _Attempts,
        extra: Mapping[str, str] | None = None,
        max_bytes: int = RESPONSE_BASE_BYTES,
    ) -> requests.Response:
        """One request with its body read (at most `max_bytes`), shut down by a watchdog when the deadline passes."""
        left = attempts.left()
        if left <= 0:
            raise self._too_slow(url, attempts)
        watch = _CallWatch()
        timer = threading.Timer(left, watch.fire)
        timer.daemon = True
        _CURRENT.watch = watch
        timer.start()
        attempts.tries += 1
        try:
            response = self._session.request(
                method,
                url,
                data=body,
                headers={**self._headers(), **(extra or {})},
                timeout=(min(3.05, left), left),
                stream=True,
            )
            _read_capped(response, max_bytes, url)  # the body, read inside the deadline
            return response
        except requests.ConnectionError as exc:
            if watch.fired:
                raise self._too_slow(url, attempts) from None
            attempts.unconnected += _never_connected(exc)
            if isinstance(exc, requests.ConnectTimeout):
                raise self._too_slow(url, attempts) from None
            raise _Unreachable(_reason(exc)) from None
        except requests.RequestException as exc:
            if watch.fired or isinstance(exc, requests.Timeout):
                raise self._too_slow(url, attempts) from None
            raise EndpointUnavailable(f"Request to {url} failed ({type(exc).__name__}).") from None
        finally:
            timer.cancel()
            _CURRENT.watch = None

    def _request(
        self,
        method: str,
        url: str,
        body: bytes | None,
        attempts: _Attempts,
        extra: Mapping[str, str] | None = None,
        max_bytes: int = RESPONSE_BASE_BYTES,
    ) -> requests.Response:
        """Send with retries (connection errors, RETRY_STATUSES) and backoff, all within the deadline."""
        while True:
            try:
                response = self._send(method, url, body, attempts, extra, max_bytes)
            except _Unreachable as exc:
                if attempts.tries <= self.config.retries and self._pause(self._backoff(attempts), attempts):
                    continue
                raise EndpointUnavailable(
                    f"Cannot reach the {self.config.name} endpoint at {url} after {attempts.tries} attempts "
                    f"({exc}). Is it running? Locally: python -m deploy.local_endpoint"
                ) from None
            if response.status_code not in RETRY_STATUSES or attempts.tries > self.config.retries:
                return response
            wait = _retry_after(response)
            if not self._pause(self._backoff(attempts) if wait is None else wait, attempts):
                return response  # waiting would overrun the deadline: report this answer

    def _backoff(self, attempts: _Attempts) -> float:
        return min(self.config.backoff_s * 2 ** (attempts.tries - 1), RETRY_AFTER_MAX_S)

    @staticmethod
    def _pause(seconds: float, attempts: _Attempts) -> bool:
        """Sleep before a retry if that leaves time for it; False (no sleep) otherwise."""
        if seconds >= attempts.left():
            return False
        time.sleep(seconds)
        return True

    def _too_slow(self, url: str, attempts: _Attempts) -> EndpointUnavailable:
        sent = f"{attempts.sent} request{'s' if attempts.sent != 1 else ''} sent"
        return EndpointUnavailable(
            f"{self.config.name} endpoint {url} did not answer within {self.config.timeout_s:g}s ({sent}). "
            "It may be overloaded or starting; try again, or raise the timeout (RISK_ENDPOINT_TIMEOUT)."
        )

    def _new_attempts(self) -> _Attempts:
        return _Attempts(deadline=time.monotonic() + self.config.timeout_s)

    def score(self, records: list[dict[str, Any]], *, explain: bool = False, traffic: str = schema.LIVE) -> ScoreResult:
        """Score records (schema values); results come back in request order, within `timeout_s` in all.

        With `explain`, each result also has `baseline` and `contributions` (docs/scoring_contract.md).
        `traffic` tells the endpoint's data collection what the records are: `schema.LIVE` patients,
        `schema.BATCH` (a file scored through the endpoint) or `schema.PROBE` (what-if variants, smoke
        tests: scored, never collected).
        """
        return self._score(records, self._new_attempts(), explain=explain, traffic=traffic)

    def _score(
        self, records: list[dict[str, Any]], attempts: _Attempts, *, traffic: str = schema.LIVE, explain: bool = False
    ) -> ScoreResult:
        if traffic not in schema.TRAFFIC_KINDS:
            raise ValueError(f"traffic must be one of {schema.TRAFFIC_KINDS}, not {traffic!r}")
        body = json.dumps({"data": records, **({"explain": True} if explain else {})}).encode("utf-8")
        started = time.perf_counter()
        # model/serving/score.py collects live and batch records (marked) for the monitor, and never probes.
        extra = {schema.TRAFFIC_HEADER: traffic}
        response = self._request("POST", self.config.scoring_url, body, attempts, extra, response_cap(len(records)))
        latency_ms = (time.perf_counter() - started) * 1000
        self._raise_for_status(response, attempts)
        try:
            payload = response.json()
        except ValueError:
            payload = _NOT_JSON
        problem = contract_problem(payload, len(records))
        if problem:
            raise EndpointContractError(
                f"The endpoint answered 200 but broke the scoring contract: {problem}. "
                f"Is {self.config.scoring_url} running model/serving/score.py (docs/scoring_contract.md)?"
            )
        period = str(payload.get("data_period") or "")
        return ScoreResult(
            model_version=payload["model_version"],
            results=payload["results"],
            latency_ms=latency_ms,
            data_period=period,
        )

    def health(self, probe: Callable[[], dict[str, str]] | None = None) -> HealthResult:
        """Liveness (GET the server root) and readiness (score one canonical record, read model version).

        Azure endpoints may answer the root with 404/401; any HTTP answer counts as alive,
        readiness is decided by the scoring call. Both share one `timeout_s` deadline.
        """
        start = time.perf_counter()
        parts = urlsplit(self.config.scoring_url)
        root = urlunsplit((parts.scheme, parts.netloc, "/", "", ""))
        attempts = self._new_attempts()
        try:
            self._request("GET", root, None, attempts)
            record = probe() if probe else _canonical_record()
            result = self._score([record], attempts, traffic=schema.PROBE)
        except EndpointError as exc:
            return HealthResult(False, str(exc), (time.perf_counter() - start) * 1000)
        return HealthResult(
            True,
            f"{self.config.name} endpoint is scoring with model {result.model_version}",
            (time.perf_counter() - start) * 1000,
            result.model_version,
        )

    def _raise_for_status(self, response: requests.Response, attempts: _Attempts) -> None:
        status = response.status_code
        if status < 400:
            return
        message = self.redact(_endpoint_message(response))
        where = f"{self.config.name} endpoint {self.config.scoring_url}"
        sent = f"{attempts.sent} request{'s' if attempts.sent != 1 else ''}"
        if status == 400:
            raise EndpointRejected(message or "bad request (no explanation given)")
        if status in (401, 403):
            hint = {
                "none": "it requires authentication: set auth to 'key' or 'aad'",
                "key": "check the key (RISK_ENDPOINT_KEY); it may have been regenerated",
                "aad": "the signed-in identity lacks access to the endpoint (needs the AzureML Data Scientist "
                "or a scoring role)",
            }[self.config.auth]
            raise EndpointAuthError(f"{where} refused the credentials (HTTP {status}): {hint}.")
        if status == 404:
            raise EndpointError(f"{where} has no such route (HTTP 404); the URL should end with /score.")
        if status == 429:
            raise EndpointUnavailable(
                f"{where} is throttling requests (HTTP 429); gave up after {sent} within {self.config.timeout_s:g}s"
                + (f" (it asked to wait {_retry_after_text(response)})" if _retry_after_text(response) else "")
                + "; try later."
            )
        if status in RETRY_STATUSES:
            raise EndpointServerError(
                f"{where} failed (HTTP {status}) after {sent}" + (f": {message}" if message else ".")
            )
        if status >= 500:
            raise EndpointServerError(f"{where} failed (HTTP {status})" + (f": {message}" if message else "."))
        raise EndpointError(f"{where} answered HTTP {status}" + (f": {message}" if message else "."))


class _Unreachable(Exception):
    """A connection could not be made (retried by the client)."""


_NOT_JSON = object()
_AUTH_VALUE = re.compile(r"(?i)\b(bearer|basic)\s+[^\s\"',;]+")
_PARTIAL_MIN = 8  # an echoed run of this many characters of a secret is redacted


def _scrub(text: str, secret: str) -> str:
    """Replace the secret and every run of >= _PARTIAL_MIN of its characters (a truncated echo) in text."""
    if not secret:
        return text
    if len(secret) < _PARTIAL_MIN:
        return text.replace(secret, REDACTED)
    hit = bytearray(len(text))
    for i in range(len(secret) - _PARTIAL_MIN + 1):
        window = secret[i : i + _PARTIAL_MIN]
        at = text.find(window)
        while at >= 0:
            hit[at : at + _PARTIAL_MIN] = b"\x01" * _PARTIAL_MIN
            at = text.find(window, at + 1)
    if not any(hit):
        return text
    out, i = [], 0
    while i < len(text):
        if hit[i]:
            while i < len(text) and hit[i]:
                i += 1
            out.append(REDACTED)
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _never_connected(exc: requests.ConnectionError) -> bool:
    """True if the request never left (no connection could be made), so it was not sent."""
    reason = getattr(exc.args[0] if exc.args else None, "reason", None)
    return isinstance(exc, requests.ConnectTimeout) or isinstance(reason, NewConnectionError)


def _retry_after_text(response: requests.Response) -> str:
    value = response.headers.get("Retry-After", "").strip()
    return f"{value} s" if value.isdigit() else value[:40]


def _retry_after(response: requests.Response) -> float | None:
    """Seconds the server asked to wait (Retry-After: seconds or an HTTP date), capped; None if absent."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return min(float(value), RETRY_AFTER_MAX_S)
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, min(when.timestamp() - time.time(), RETRY_AFTER_MAX_S))
    return None


def contract_problem(payload: object, expected: int) -> str | None:
    """What breaks the scoring contract in a decoded 200 body, or None if it follows it.

    Checked: an object with a string `model_version` and `results`, a list of `expected`
    objects, each with a `probability` number in [0, 1] and a string `risk_band`. Fields a
    newer endpoint adds are checked when present: `model` (string), `interval` and
    `interval_if_unrecorded_survived` ([low, high] within [0, 1]), `extrapolated` (boolean),
    `probability_if_unrecorded_survived` (a probability, never above `probability`) and
    `inputs_used` (list of field names); other extra fields are allowed.
    """
    if payload is _NOT_JSON:
        return "the body is not JSON"
    if not isinstance(payload, dict):
        return f"the body is {_kind(payload)}, not an object"
    if not isinstance(payload.get("model_version"), str) or not payload["model_version"]:
        return '"model_version" is missing or not a string'
    if not _MODEL_VERSION.fullmatch(payload["model_version"]):
        return f'"model_version" {_kind(payload["model_version"])} is not a version (letters, digits, . _ : + -)'
    period = payload.get("data_period")
    if period is not None and not (isinstance(period, str) and len(period) <= MAX_DATA_PERIOD_CHARS):
        return f'"data_period" is {_kind(period)}, not a text of at most {MAX_DATA_PERIOD_CHARS} characters'
    results = payload.get("results")
    if not isinstance(results, list):
        return f'"results" is {_kind(results)}, not a list'
    if len(results) != expected:
        return f'"results" has {len(results)} entries for {expected} records'
    for i, result in enumerate(results):
        problem = _result_problem(result)
        if problem:
            return f"results[{i}] {problem}"
    return None


def _result_problem(result: object) -> str | None:
    if not isinstance(result, dict):
        return f"is {_kind(result)}, not an object with probability and risk_band"
    if not _is_probability(result.get("probability")):
        return f"has probability {_kind(result.get('probability'))}, not a number between 0 and 1"
    if not isinstance(result.get("risk_band"), str) or not result["risk_band"]:
        return "has no risk_band string"
    if result["risk_band"] not in RISK_BAND_NAMES:
        return f"has risk_band {_kind(result['risk_band'])}, not one of {', '.join(sorted(RISK_BAND_NAMES))}"
    if "model" in result and not isinstance(result["model"], str):
        return "has a model that is not a string"
    if "extrapolated" in result and not isinstance(result["extrapolated"], bool):
        return "has extrapolated that is not true/false"
    for name in ("interval", "interval_if_unrecorded_survived"):
        if name in result and not _is_interval(result[name]):
            return f"has an {name} that is not [low, high] within 0..1"
    return _range_problem(result)


def _range_problem(result: dict) -> str | None:
    """The outcome-recording range and the inputs used (issue 19), checked when present."""
    if "probability_if_unrecorded_survived" in result:
        low = result["probability_if_unrecorded_survived"]
        if not _is_probability(low) or low > result["probability"]:
            return "has a probability_if_unrecorded_survived that is not a probability at most the probability"
    used = result.get("inputs_used")
    if "inputs_used" in result and not (isinstance(used, list) and all(isinstance(u, str) for u in used)):
        return "has inputs_used that is not a list of field names"
    return None


def _is_interval(interval: object) -> bool:
    return (
        isinstance(interval, list)
        and len(interval) == 2
        and all(_is_probability(v) for v in interval)
        and interval[0] <= interval[1]
    )


def _is_probability(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and 0 <= value <= 1


def _kind(value: object) -> str:
    if value is None:
        return "missing/null"
    text = json.dumps(value) if isinstance(value, int | float | str | bool) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def _read_capped(response: requests.Response, max_bytes: int, url: str) -> None:
    """Read the (decoded) body into the response, or EndpointContractError once it passes `max_bytes`.

    The declared Content-Length is checked first; a body without one (chunked, or compressed) is
    counted as it arrives, so nothing beyond the cap is ever held.
    """
    declared = response.headers.get("Content-Length", "").strip()
    if declared.isdigit() and int(declared) > max_bytes:
        response.close()
        raise _too_large(url, max_bytes, f"it announced {int(declared):,} bytes")
    body = bytearray()
    for chunk in response.iter_content(_READ_CHUNK_BYTES):
        body += chunk
        if len(body) > max_bytes:
            response.close()
            raise _too_large(url, max_bytes, f"more than {max_bytes:,} bytes arrived")
    response._content = bytes(body)  # where requests keeps a body it has read (Response.content)


def _too_large(url: str, max_bytes: int, what: str) -> EndpointContractError:
    return EndpointContractError(
        f"The endpoint at {url} answered with more than this request can need ({what}; at most {max_bytes:,} "
        "bytes are read). Is it running model/serving/score.py (docs/scoring_contract.md)?"
    )


def _endpoint_message(response: requests.Response) -> str:
    """The endpoint's own explanation: `{"error"}` (ours) or `{"message"}` (azmlinfsrv), else text."""
    try:
        payload = response.json()
        if isinstance(payload, dict):
            for key in ("error", "message"):
                if isinstance(payload.get(key), str):
                    return payload[key][:2000]
    except ValueError:
        pass
    return response.text[:500].strip()


def _reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "timed out", "No route to host"):
        if marker in text:
            return marker.lower()
    return type(exc).__name__


def _canonical_record() -> dict[str, str]:
    """The health check's record: the schema defaults of the intake fields."""
    return schema.default_record()
