"""Azure ML scoring script (also served locally by `azmlinfsrv --entry_script model/serving/score.py`).

Contract (docs/scoring_contract.md): POST `{"data": [record, ...]}` (only `age_group` required; a field
that is not known is left out) → `{"model_version", "data_period", "results": [{"probability", "risk_band",
"interval", "probability_if_unrecorded_survived", "interval_if_unrecorded_survived", "model", "extrapolated",
"inputs_used"}, ...]}`; anything the client gets wrong → HTTP 400 `{"error": "<what and how to fix it>"}`.

Why `@rawhttp`: an undecorated or `@input_schema`-decorated run() lets the server
parse the body, and its own errors come back as `{"message": ...}`, 415 for a
missing Content-Type, or 500 when inference-schema's conversion raises. With the
raw request we decide every status and body. The OpenAPI document is still
produced by inference-schema: init() applies `input_schema`/`output_schema` to
run() purely to register the schema. azmlinfsrv 1.5.1 picks the input parser when it
imports this file (before init) and builds `/swagger.json` after init, so the
registration documents the contract without changing how requests are parsed
(tests/test_scoring_endpoint.py checks both).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import uuid
from pathlib import Path
from typing import Any

from azureml_inference_server_http.api.aml_request import rawhttp
from azureml_inference_server_http.api.aml_response import AMLResponse
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

try:
    from model.core import schema
    from model.core.settings import read
    from model.serving import datacollect, lookup, request_body
except ModuleNotFoundError:
    # In Azure the uploaded code folder is not necessarily on sys.path: the package
    # root is the parent of the folder holding this file.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from model.core import schema
    from model.core.settings import read
    from model.serving import datacollect, lookup, request_body

logger = logging.getLogger("risk.score")

MAX_RECORDS = lookup.MAX_RECORDS
# Largest request body accepted (413 above it). A maximal request, 50,000 records with the
# longest values and race_ethnicity_combined, is about 15 MB of compact JSON.
MAX_BODY_BYTES = 32 * 1024 * 1024
BODY_TIMEOUT_ENV = "RISK_BODY_READ_TIMEOUT_S"
HEADER_TIMEOUT_ENV = "RISK_HEADER_READ_TIMEOUT_S"


class ScoringSettings(BaseSettings):
    """What the environment sets for the scoring script; blank values count as unset."""

    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore", frozen=True)

    # A body must arrive within this time after the headers (408 otherwise), so a slow or
    # stalled client cannot hold a server thread (docs/scoring_contract.md).
    body_read_timeout_s: float = Field(10.0, gt=0, validation_alias=BODY_TIMEOUT_ENV, description="seconds")
    # The request line and headers must arrive within this time (the connection is closed otherwise):
    # gunicorn itself has no such limit (model.serving.request_body.install_header_deadline).
    header_read_timeout_s: float = Field(5.0, gt=0, validation_alias=HEADER_TIMEOUT_ENV, description="seconds")
    # The model folder Azure ML (or deploy.local_endpoint) mounts.
    model_dir: str = Field("", validation_alias="AZUREML_MODEL_DIR")


_SETTINGS = read(ScoringSettings, environ=os.environ)
BODY_READ_TIMEOUT_S = _SETTINGS.body_read_timeout_s
HEADER_READ_TIMEOUT_S = _SETTINGS.header_read_timeout_s
_LOOKUP: lookup.RiskLookup | None = None
_COLLECTOR: datacollect.ScoringCollector | None = None
_JSON_HEADERS = {"Content-Type": "application/json"}


def init() -> None:
    """Load the model once per worker and precompute every answer."""
    global _LOOKUP, _COLLECTOR
    root = read(ScoringSettings, environ=os.environ).model_dir
    if not root:
        raise RuntimeError("AZUREML_MODEL_DIR is not set: point it at a model directory (python -m model.train).")
    _LOOKUP = lookup.RiskLookup.from_model_dir(Path(root))
    _LOOKUP.score_records([lookup.example_record()])  # warm the code path before the first request
    _COLLECTOR = datacollect.from_environment(_LOOKUP.model_version, _LOOKUP.request_probability)
    _register_openapi_schema()
    if not request_body.install_header_deadline(HEADER_READ_TIMEOUT_S):
        logger.warning("no header-read deadline: not gunicorn's gthread worker (see deploy/server_settings.py)")
    logger.info("model %s ready (%d request combinations)", _LOOKUP.model_version, len(_LOOKUP.request_probability))


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> AMLResponse:
    return AMLResponse({"error": message}, status, headers or {}, json_str=True)


def _request_id() -> str:
    # The server's id for this request (echoed in the x-request-id response header).
    try:
        import flask

        return str(flask.g.get("request_id") or uuid.uuid4())
    except Exception:
        return str(uuid.uuid4())


@rawhttp
def run(data: Any) -> AMLResponse:
    """Score one request; every client error is a 400 with a helpful message.

    `data` is the raw flask request (because of @rawhttp). It is named after the
    body's only field so the registered OpenAPI input schema has just that property.
    """
    try:
        return _handle(data)
    except Exception:  # a bug of ours: log it, answer 500, keep the worker alive
        logger.exception("unexpected error while scoring")
        return _error(500, "Internal error while scoring; the request was not scored. Check the endpoint logs.")


def _handle(request: Any) -> AMLResponse:
    """Answer one request: checks in the order a client fixes them (method, model, body, JSON, fields, records)."""
    if request.method != "POST":
        return _error(405, 'Use POST with a JSON body {"data": [...]}.', {"Allow": "POST"})
    if _LOOKUP is None:
        return _error(503, "The model is not loaded yet; retry shortly.")
    try:
        payload = _payload(request)
        explained = _explain_flag(payload)
        indices = lookup.validate_indices(payload["data"], MAX_RECORDS)
        traffic = _traffic_kind(request)
    except request_body.BodyError as exc:  # gunicorn drains (for at most 5 s) or closes the connection
        return _error(exc.status, str(exc))
    except (_Refused, lookup.PayloadError) as exc:
        return _error(400, str(exc))
    if _COLLECTOR is not None and traffic != schema.PROBE:
        _COLLECTOR.record(_request_id(), indices, traffic)
    return AMLResponse(_LOOKUP.response_json(indices, explain=explained), 200, _JSON_HEADERS)


class _Refused(Exception):
    """A body that arrived but cannot be scored as it is: answered 400 with this message (how to fix it)."""


def _payload(request: Any) -> dict[str, Any]:
    """The request's JSON object; BodyError (with its status) when the body cannot be read, _Refused when it is
    empty, not JSON, or not an object."""
    body = request_body.read_body(request.environ, request.stream, MAX_BODY_BYTES, BODY_READ_TIMEOUT_S)
    request_body.check_json_items(body, MAX_RECORDS, len(lookup.ACCEPTED_FIELDS) + 1)  # before json.loads
    if not body:
        raise _Refused('The request body is empty. Send JSON: {"data": [{...}, ...]}.')
    try:
        payload = json.loads(request_body.take_text(body), object_pairs_hook=_no_duplicate_keys)  # frees body
    except DuplicateKeyError as exc:
        raise _Refused(str(exc)) from exc
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise _Refused(f'The request body is not valid JSON ({exc}). Send {{"data": [{{...}}, ...]}}.') from exc
    if not isinstance(payload, dict):
        raise _Refused('The request body must be a JSON object {"data": [...]}, not a bare array or value.')
    return payload


def _explain_flag(payload: dict[str, Any]) -> bool:
    """Whether the answers carry explanations; _Refused for a missing "data", another field or a bad flag."""
    if "data" not in payload:
        example = json.dumps({"data": [lookup.example_record()]})
        raise _Refused(f'The request body has no "data" field. Send e.g. {example}.')
    extra = [k for k in payload if k not in ("data", "explain")]
    if extra:
        raise _Refused(
            f'Unknown top-level field(s) {", ".join(map(repr, extra))}; only "data" and "explain" are accepted.'
        )
    explained = payload.get("explain", False)
    if not isinstance(explained, bool):
        raise _Refused(f'"explain" must be true or false, not {json.dumps(explained)[:40]}.')
    return explained


def _traffic_kind(request: Any) -> str:
    """The traffic header's kind (a patient when absent); _Refused for a kind the endpoint does not know."""
    traffic = (request.headers.get(schema.TRAFFIC_HEADER) or schema.LIVE).strip().lower()
    if traffic not in schema.TRAFFIC_KINDS:
        raise _Refused(
            f"The {schema.TRAFFIC_HEADER} header is {traffic[:20]!r}; send one of {', '.join(schema.TRAFFIC_KINDS)} "
            "(or leave it out for a patient)."
        )
    return traffic


class DuplicateKeyError(ValueError):
    """A JSON object names the same key twice: which value was meant cannot be known."""


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads would silently keep the last value, even when the first was the valid one.
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise DuplicateKeyError(
                f"The JSON object {{{', '.join(repr(k) for k, _ in pairs)[:200]}}} has the key {key!r} twice; "
                "send each field once."
            )
        seen[key] = value
    return seen


def openapi_examples() -> tuple[dict[str, Any], dict[str, Any]]:
    """Example request and response bodies (schema defaults), used for the OpenAPI document."""
    example = lookup.example_record()
    return {"data": [example]}, {
        "model_version": "20240101.000000-abcdef12",
        "data_period": "real CDC cases, case dates Mar 2020 to Apr 2020 (90% of patients with a known outcome)",
        "results": [
            {
                "probability": 0.0123,
                "risk_band": "moderate",
                "interval": [0.0101, 0.0149],
                "probability_if_unrecorded_survived": 0.0088,
                "interval_if_unrecorded_survived": [0.0072, 0.0106],
                "model": "intake",
                "extrapolated": False,
                "inputs_used": list(example),
            }
        ],
    }


def _register_openapi_schema() -> None:
    # Registration only: the wrapped function is discarded, run() stays as it is.
    from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
    from inference_schema.schema_decorators import input_schema, output_schema
    from inference_schema.schema_util import get_input_schema

    request, response = openapi_examples()
    output_schema(StandardPythonParameterType(response))(
        input_schema("data", StandardPythonParameterType(request["data"]))(run)
    )
    # inference-schema infers types from the example only; add the allowed values
    # from model.core.schema to the registered document (get_input_schema returns it by reference).
    data = get_input_schema(run)["properties"]["data"]
    data["minItems"], data["maxItems"] = 1, MAX_RECORDS
    get_input_schema(run)["required"] = ["data"]
    record = data["items"]
    properties = record.setdefault("properties", {})
    for name in lookup.ACCEPTED_FIELDS:  # every field but age is optional (left out = not known)
        feature = schema.FEATURES_BY_NAME[name]
        properties.setdefault(name, {"type": "string"})
        properties[name]["enum"] = list(feature.values)
        properties[name]["description"] = feature.help
    record["required"] = list(lookup.REQUIRED_FIELDS)
    record["additionalProperties"] = False
