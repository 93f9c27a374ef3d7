"""The one client of the scoring endpoint (dashboard pages and deployment smoke tests).

Configuration comes from the Streamlit secrets section `[endpoint]` (url, key, auth,
deployment, timeout_s) and the environment (RISK_ENDPOINT_URL, RISK_ENDPOINT_KEY,
RISK_ENDPOINT_AUTH, RISK_ENDPOINT_DEPLOYMENT, RISK_ENDPOINT_TIMEOUT); the environment
wins per setting, so an operator can override a secrets file. Default: the local
endpoint at http://127.0.0.1:5001/score without auth.

Connection errors, 429 and 502/503/504 are retried with exponential backoff
(urllib3 Retry, honouring Retry-After up to a cap); timeouts are not retried so a
clerk waits at most about `timeout_s`. Every failure is a typed `EndpointError` whose
text never contains the key or token: messages are built here from status codes and
the endpoint's own `{"error": ...}` text, never from request headers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

DEFAULT_URL = "http://127.0.0.1:5001/score"
DEFAULT_TIMEOUT_S = 10.0
AAD_SCOPE = "https://ml.azure.com/.default"
AUTH_MODES = ("none", "key", "aad")
RETRY_STATUSES = (429, 502, 503, 504)
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


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
    """5xx after retries, or a response that does not follow the scoring contract."""


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


class EndpointClient:
    """Scores records against one endpoint; thread-safe enough for a Streamlit session."""

    def __init__(self, config: EndpointConfig, credential: Any | None = None) -> None:
        # `credential`: any object with get_token(scope) (azure.identity style); by default
        # DefaultAzureCredential is created lazily on first use when auth == "aad".
        self.config = config
        self._credential = credential
        self._token: tuple[str, float] | None = None
        self._session = requests.Session()
        retry = Retry(
            total=config.retries,
            connect=config.retries,
            read=False,  # a timed-out call is not retried (the clerk would wait n x timeout) and stays a Timeout
            status=config.retries,
            other=0,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "POST"}),  # scoring is idempotent
            backoff_factor=config.backoff_s,
            backoff_max=10,
            respect_retry_after_header=True,
            retry_after_max=10,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry)
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
        return token.token

    # --- calls ------------------------------------------------------------------
    def _request(self, method: str, url: str, body: bytes | None) -> tuple[requests.Response, float]:
        connect_timeout = min(3.05, self.config.timeout_s)
        start = time.perf_counter()
        try:
            response = self._session.request(
                method, url, data=body, headers=self._headers(), timeout=(connect_timeout, self.config.timeout_s)
            )
        except requests.Timeout:
            raise EndpointUnavailable(
                f"{self.config.name} endpoint {url} did not answer within {self.config.timeout_s:g}s. "
                "It may be overloaded or starting; try again, or raise the timeout (RISK_ENDPOINT_TIMEOUT)."
            ) from None
        except requests.ConnectionError as exc:
            raise EndpointUnavailable(
                f"Cannot reach the {self.config.name} endpoint at {url} after {self.config.retries + 1} attempts "
                f"({_reason(exc)}). Is it running? Locally: python -m deploy.local_endpoint"
            ) from None
        except requests.RequestException as exc:
            raise EndpointUnavailable(f"Request to {url} failed ({type(exc).__name__}).") from None
        return response, (time.perf_counter() - start) * 1000

    def score(self, records: list[dict[str, Any]]) -> ScoreResult:
        """Score records (schema values); results come back in request order."""
        body = json.dumps({"data": records}).encode("utf-8")
        response, latency_ms = self._request("POST", self.config.scoring_url, body)
        self._raise_for_status(response)
        try:
            payload = response.json()
            results = payload["results"]
            version = str(payload["model_version"])
            ok = isinstance(results, list) and len(results) == len(records)
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            raise EndpointServerError(
                f"The endpoint answered 200 but not with the scoring contract "
                f'({{"model_version", "results"}} with {len(records)} results). Is {self.config.scoring_url} '
                "running model/score.py?"
            )
        period = str(payload.get("data_period") or "")
        return ScoreResult(model_version=version, results=results, latency_ms=latency_ms, data_period=period)

    def health(self, probe: Callable[[], dict[str, str]] | None = None) -> HealthResult:
        """Liveness (GET the server root) and readiness (score one canonical record, read model version).

        Azure endpoints may answer the root with 404/401; any HTTP answer counts as alive,
        readiness is decided by the scoring call.
        """
        start = time.perf_counter()
        parts = urlsplit(self.config.scoring_url)
        root = urlunsplit((parts.scheme, parts.netloc, "/", "", ""))
        try:
            self._request("GET", root, None)
            record = probe() if probe else _canonical_record()
            result = self.score([record])
        except EndpointError as exc:
            return HealthResult(False, str(exc), (time.perf_counter() - start) * 1000)
        return HealthResult(
            True,
            f"{self.config.name} endpoint is scoring with model {result.model_version}",
            (time.perf_counter() - start) * 1000,
            result.model_version,
        )

    def _raise_for_status(self, response: requests.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        message = _endpoint_message(response)
        where = f"{self.config.name} endpoint {self.config.scoring_url}"
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
            raise EndpointUnavailable(f"{where} is throttling requests (HTTP 429) even after retries; try later.")
        if status >= 500:
            raise EndpointServerError(
                f"{where} failed (HTTP {status}) after retries" + (f": {message}" if message else ".")
            )
        raise EndpointError(f"{where} answered HTTP {status}" + (f": {message}" if message else "."))


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
    from model import schema

    return {c: schema.FEATURES_BY_NAME[c].default for c in schema.MODEL_INPUTS}
