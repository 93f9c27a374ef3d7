"""The one client of the scoring endpoint (dashboard pages and deployment smoke tests).

Configuration comes from the Streamlit secrets section `[endpoint]` (url, key, auth,
deployment, timeout_s) and the environment (RISK_ENDPOINT_URL, RISK_ENDPOINT_KEY,
RISK_ENDPOINT_AUTH, RISK_ENDPOINT_DEPLOYMENT, RISK_ENDPOINT_TIMEOUT); the environment
wins per setting, so an operator can override a secrets file. Default: the local
endpoint at http://127.0.0.1:5001/score without auth.

The settings are pydantic models (`EndpointSettings` reads them, `EndpointConfig` is what the
client uses); a bad one is an `EndpointConfigError` naming the setting, the value (never the
key's) and what is allowed.

Connection errors, 429 and 502/503/504 are retried by urllib3's `Retry` on the requests adapter
(exponential backoff, Retry-After honoured up to a cap; scoring is idempotent, so POST is
retried too), within one deadline: `timeout_s` bounds a whole `score()` call, retries and waits
included. The `Retry` subclass gives up rather than wait past the deadline, and a watchdog shuts
the connection when it passes, so a server that trickles bytes cannot hold a clerk longer.
Errors say how many requests were sent.

Every failure is a typed `EndpointError` whose text never contains the key or token:
messages are built here from status codes and the endpoint's own `{"error": ...}` text, and
that text is scrubbed of the key, the token (also partial echoes) and any `Bearer ...` value,
in case the endpoint or a proxy echoes request headers. A 200 answer is checked against the
scoring contract (a pydantic model of docs/scoring_contract.md) before anyone uses it.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

import requests
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    Strict,
    StrictBool,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError, ResponseError
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from model.core import schema
from model.core.settings import SettingsError, problems, read

DEFAULT_URL = "http://127.0.0.1:5001/score"
DEFAULT_TIMEOUT_S = 10.0
AAD_SCOPE = "https://ml.azure.com/.default"
AUTH_MODES = ("none", "key", "aad")
RETRY_STATUSES = (429, 502, 503, 504)
RETRY_AFTER_MAX_S = 10.0  # the longest wait before a retry, Retry-After included
BACKOFF_S = 0.5  # urllib3 backoff factor: retries wait 0, 1, 2, ... s (before Retry-After)
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
_MODEL_VERSION = r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}$"
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


class EndpointConfig(BaseModel):
    """What the client uses: validated on construction (EndpointConfigError), immutable, the key a SecretStr."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scoring_url: str = DEFAULT_URL
    name: Literal["local", "azure"] = "local"
    auth: Literal["none", "key", "aad"] = "none"
    key: SecretStr | None = None
    deployment: str | None = None
    timeout_s: float = Field(DEFAULT_TIMEOUT_S, gt=0, description="seconds for a whole call, retries included")
    retries: int = Field(3, ge=0, description="retries after the first request")
    backoff_s: float = Field(BACKOFF_S, ge=0, description="seconds; urllib3's backoff factor")

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise EndpointConfigError("; ".join(problems(exc, EndpointConfig, _CONFIG_NAMES))) from None

    @field_validator("scoring_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("is not an http(s) URL; set e.g. https://<endpoint>.<region>.inference.ml.azure.com/score")
        return url

    @model_validator(mode="after")
    def _key_for_key_auth(self) -> EndpointConfig:
        if self.auth == "key" and not self.key:
            raise ValueError(
                "endpoint auth is 'key' but no key is set: set RISK_ENDPOINT_KEY or [endpoint] key in secrets"
            )
        return self

    def replace(self, **changes: Any) -> EndpointConfig:
        """A copy with `changes`, validated like a new config."""
        return EndpointConfig(**{**self.model_dump(), **changes})

    @classmethod
    def from_sources(
        cls, secrets: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> EndpointConfig:
        """Settings from the environment (`environ`, none if None) over Streamlit secrets (`secrets["endpoint"]`
        or the section itself), per setting; see `EndpointSettings`."""
        section: Mapping[str, Any] = {}
        if secrets is not None:
            section = secrets.get("endpoint", secrets) if hasattr(secrets, "get") else {}
        table = {field: section.get(key) for key, field in _SECRETS_KEYS.items()}
        try:
            settings = read(EndpointSettings, table, environ=environ or {}, names=_SETTINGS_NAMES)
        except SettingsError as exc:
            raise EndpointConfigError(f"endpoint settings: {exc}") from None
        return settings.config()


# Names a user knows the settings by, for error messages.
_CONFIG_NAMES = {"scoring_url": "endpoint url", "auth": "endpoint auth", "timeout_s": "endpoint timeout"}
_SECRETS_KEYS = {"url": "url", "key": "key", "auth": "auth", "deployment": "deployment", "timeout_s": "timeout"}
_SETTINGS_NAMES = {
    field: f"RISK_ENDPOINT_{field.upper()} (or [endpoint] {key})" for key, field in _SECRETS_KEYS.items()
}


class EndpointSettings(BaseSettings):
    """The endpoint settings as the dashboard reads them: RISK_ENDPOINT_URL, _KEY, _AUTH, _DEPLOYMENT and
    _TIMEOUT in the environment, else url, key, auth, deployment and timeout_s in the secrets' [endpoint]
    section, else the local endpoint without auth. Blank values count as unset."""

    model_config = SettingsConfigDict(env_prefix="RISK_ENDPOINT_", env_ignore_empty=True, extra="ignore", frozen=True)

    url: str = DEFAULT_URL
    key: SecretStr | None = None
    auth: str | None = Field(None, description="none, key or aad (default: key when a key is set)")
    deployment: str | None = None
    timeout: float = Field(DEFAULT_TIMEOUT_S, description="seconds for a whole call, > 0")

    @field_validator("auth", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    def config(self) -> EndpointConfig:
        """The client's config: `name` "local" for a loopback URL, else "azure"."""
        host = urlsplit(self.url).hostname or ""
        return EndpointConfig(
            scoring_url=self.url,
            name="local" if host in _LOOPBACK else "azure",
            auth=self.auth or ("key" if self.key else "none"),
            key=self.key,
            deployment=self.deployment,
            timeout_s=self.timeout,
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


_CURRENT = threading.local()  # .watch / .attempts: the _CallWatch and _Attempts of the call on this thread


class _WatchedMixin:
    def request(self, *args: Any, **kwargs: Any) -> None:
        watch = getattr(_CURRENT, "watch", None)
        if watch is not None:
            watch.add(self)
        super().request(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_WatchedMixin, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_WatchedMixin, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _DeadlineRetry(Retry):
    """urllib3's Retry, within the deadline of the call on this thread (`_CURRENT.attempts`).

    `increment` gives up (MaxRetryError, as when retries run out) when the wait before the next try
    would pass the deadline: urllib3 then returns a retryable status's answer unread, so the caller
    reports it, or raises a connection error. It also counts the failed tries for error messages.
    `sleep` caps Retry-After at RETRY_AFTER_MAX_S and never sleeps past the deadline.
    """

    def increment(  # type: ignore[override]
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> Retry:
        following = super().increment(method, url, response, error, _pool, _stacktrace)
        attempts: _Attempts | None = getattr(_CURRENT, "attempts", None)
        if attempts is not None:
            if following.wait_s(response) >= attempts.left():
                raise MaxRetryError(_pool, url or "", error or ResponseError("no time left to retry"))
            attempts.failed(never_connected=isinstance(error, ConnectTimeoutError))
        return following

    def wait_s(self, response: BaseHTTPResponse | None = None) -> float:
        """Seconds `sleep` waits before the next try: the server's Retry-After (capped), else the backoff."""
        after = self.get_retry_after(response) if response is not None and self.respect_retry_after_header else None
        return min(after, RETRY_AFTER_MAX_S) if after is not None else self.get_backoff_time()

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        attempts: _Attempts | None = getattr(_CURRENT, "attempts", None)
        wait = self.wait_s(response)
        if attempts is not None:
            wait = min(wait, max(attempts.left(), 0.0))
        if wait > 0:
            time.sleep(wait)


def _retry_policy(config: EndpointConfig) -> _DeadlineRetry:
    """Retries of connection errors and RETRY_STATUSES, POST included: scoring the same records twice is harmless."""
    return _DeadlineRetry(
        total=config.retries,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET", "POST"}),
        backoff_factor=config.backoff_s,
        backoff_max=RETRY_AFTER_MAX_S,
        respect_retry_after_header=True,
        raise_on_status=False,  # the last answer comes back, and its status is reported
        redirect=False,
    )


class _WatchedAdapter(HTTPAdapter):
    """requests adapter whose connections a call's watchdog can shut, retrying by `retry`."""

    def __init__(self, retry: Retry) -> None:
        super().__init__(max_retries=retry)

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

    def failed(self, *, never_connected: bool) -> None:
        """One more request tried that did not give the answer."""
        self.tries += 1
        self.unconnected += never_connected

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
        self._secrets: set[str] = {config.key.get_secret_value()} if config.key else set()
        self._session = requests.Session()
        adapter = _WatchedAdapter(_retry_policy(config))
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def __repr__(self) -> str:
        return f"EndpointClient({self.config!r})"

    # --- auth -------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.config.auth == "key":
            headers["Authorization"] = f"Bearer {self.config.key.get_secret_value() if self.config.key else ''}"
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
        """One request, retried by the adapter's `_DeadlineRetry`, with the body read (at most `max_bytes`);
        a watchdog shuts its connections when the deadline passes."""
        left = attempts.left()
        if left <= 0:
            raise self._too_slow(url, attempts)
        watch = _CallWatch()
        timer = threading.Timer(left, watch.fire)
        timer.daemon = True
        _CURRENT.watch, _CURRENT.attempts = watch, attempts
        timer.start()
        try:
            try:
                response = self._session.request(
                    method,
                    url,
                    data=body,
                    headers={**self._headers(), **(extra or {})},
                    timeout=(min(3.05, left), left),
                    stream=True,
                )
            except requests.RequestException as exc:
                attempts.failed(never_connected=_never_connected(exc))
                raise self._failure(url, attempts, exc, watch.fired) from None
            attempts.tries += 1  # the answered request (the failed ones before it were counted by the retry)
            try:
                _read_capped(response, max_bytes, url)  # the body, read inside the deadline
            except requests.RequestException as exc:
                raise self._failure(url, attempts, exc, watch.fired) from None
            return response
        finally:
            timer.cancel()
            _CURRENT.watch = _CURRENT.attempts = None

    def _failure(self, url: str, attempts: _Attempts, exc: requests.RequestException, fired: bool) -> EndpointError:
        """The error for a request that got no answer (retries included)."""
        if fired or isinstance(exc, requests.Timeout) or _timed_out(exc):
            return self._too_slow(url, attempts)
        if isinstance(exc, requests.ConnectionError):
            return EndpointUnavailable(
                f"Cannot reach the {self.config.name} endpoint at {url} after {attempts.tries} attempts "
                f"({_reason(exc)}). Is it running? Locally: python -m deploy.local_endpoint"
            )
        return EndpointUnavailable(f"Request to {url} failed ({type(exc).__name__}).")

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
        response = self._send("POST", self.config.scoring_url, body, attempts, extra, response_cap(len(records)))
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
            self._send("GET", root, None, attempts)
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


def _urllib3_reason(exc: requests.RequestException) -> object:
    """What urllib3 gave up on, when requests wraps its MaxRetryError (else None)."""
    return getattr(exc.args[0] if exc.args else None, "reason", None)


def _never_connected(exc: requests.RequestException) -> bool:
    """True if the request never left (no connection could be made), so it was not sent."""
    return isinstance(exc, requests.ConnectTimeout) or isinstance(_urllib3_reason(exc), NewConnectionError)


def _retry_after_text(response: requests.Response) -> str:
    value = response.headers.get("Retry-After", "").strip()
    return f"{value} s" if value.isdigit() else value[:40]


Probability = Annotated[float, Strict(), Field(ge=0, le=1, allow_inf_nan=False)]
Interval = tuple[Probability, Probability]


class _Result(BaseModel):
    """One result of a 200 answer (docs/scoring_contract.md). Fields a newer endpoint adds are checked when
    present; their defaults stand for "absent" and are never read (the caller keeps the endpoint's dicts)."""

    model_config = ConfigDict(extra="allow")

    probability: Probability = Field(description="a number between 0 and 1")
    risk_band: StrictStr = Field(description=f"one of {', '.join(sorted(RISK_BAND_NAMES))}")
    model: StrictStr = Field("", description="a model name")
    extrapolated: StrictBool = Field(False, description="true/false")
    interval: Interval = Field((0.0, 1.0), description="[low, high] within 0..1")
    interval_if_unrecorded_survived: Interval = Field((0.0, 1.0), description="[low, high] within 0..1")
    probability_if_unrecorded_survived: Probability = Field(0.0, description="a number between 0 and 1")
    inputs_used: list[StrictStr] = Field(default_factory=list, description="a list of field names")

    @field_validator("risk_band")
    @classmethod
    def _known_band(cls, band: str) -> str:
        if band not in RISK_BAND_NAMES:
            raise ValueError("not a risk band")
        return band

    @field_validator("interval", "interval_if_unrecorded_survived")
    @classmethod
    def _ordered(cls, interval: tuple[float, float]) -> tuple[float, float]:
        if interval[0] > interval[1]:
            raise ValueError("low above high")
        return interval

    @model_validator(mode="after")
    def _range(self) -> _Result:
        """The outcome-recording range (issue 19): the low end is never above the risk."""
        if self.probability_if_unrecorded_survived > self.probability:
            raise ValueError(
                "has a probability_if_unrecorded_survived that is not a probability at most the probability"
            )
        return self


class _Answer(BaseModel):
    """A 200 answer: `model_version`, `results` and optionally `data_period`; other fields are allowed."""

    model_config = ConfigDict(extra="allow")

    model_version: StrictStr = Field(pattern=_MODEL_VERSION, description="a version (letters, digits, . _ : + -)")
    data_period: StrictStr | None = Field(
        None, max_length=MAX_DATA_PERIOD_CHARS, description=f"a text of at most {MAX_DATA_PERIOD_CHARS} characters"
    )
    results: list[_Result] = Field(description="a list")


def contract_problem(payload: object, expected: int) -> str | None:
    """What breaks the scoring contract in a decoded 200 body, or None if it follows it.

    The body must validate as `_Answer` (an object with a `model_version`, and `results`: a list of
    objects, each with a `probability` in [0, 1] and a known `risk_band`; `model`, `interval`,
    `interval_if_unrecorded_survived`, `extrapolated`, `probability_if_unrecorded_survived` and
    `inputs_used` checked when present) and hold `expected` results. The first problem is returned,
    in words: where, what was there, what is allowed, e.g. 'results[0] has probability 1.5, not a
    number between 0 and 1'.
    """
    if payload is _NOT_JSON:
        return "the body is not JSON"
    if not isinstance(payload, dict):
        return f"the body is {_kind(payload)}, not an object"
    try:
        answer = _Answer.model_validate(payload)
    except ValidationError as exc:
        return _contract_sentence(exc.errors()[0])
    if len(answer.results) != expected:
        return f'"results" has {len(answer.results)} entries for {expected} records'
    return None


def _contract_sentence(detail: ErrorDetails) -> str:
    """One validation error of `_Answer` in the words of the contract."""
    loc, error = detail["loc"], str(detail.get("ctx", {}).get("error", ""))
    kind = "missing/null" if detail["type"] == "missing" else _kind(detail["input"])
    if loc[0] != "results" or len(loc) == 1:
        return f'"{loc[0]}" is {kind}, not {_Answer.model_fields[str(loc[0])].description}'
    where = f"results[{loc[1]}]"
    if len(loc) == 2 and error.startswith("has "):  # a rule between the result's fields
        return f"{where} {error}"
    if len(loc) == 2:
        return f"{where} is {kind}, not an object with probability and risk_band"
    field = str(loc[2])
    path = field + "".join(f"[{part}]" for part in loc[3:])
    return f"{where} has {path} {kind}, not {_Result.model_fields[field].description}"


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


def _timed_out(exc: requests.RequestException) -> bool:
    """A timeout that requests reports as a ConnectionError: urllib3's retry gave up on a read that timed out
    (requests raises `Timeout` only for a connect timeout inside `MaxRetryError`). Seen under load, where the
    deadline's watchdog had not fired yet: the user was told the endpoint could not be reached."""
    reason = _urllib3_reason(exc)
    # urllib3's NewConnectionError (refused, unresolvable) is a subclass of its timeout errors.
    return isinstance(reason, Urllib3Timeout) and not isinstance(reason, NewConnectionError)


def _reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "timed out", "No route to host"):
        if marker in text:
            return marker.lower()
    return type(exc).__name__


def _canonical_record() -> dict[str, str]:
    """The health check's record: the schema defaults of the intake fields."""
    return schema.default_record()
