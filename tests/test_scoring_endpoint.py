"""model/serving/score.py served by the real azmlinfsrv on loopback: scoring, 400s, OpenAPI, data collection."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest
import requests

from deploy.local_endpoint import LocalEndpoint
from model.core import schema
from model.serving import datacollect
from model.serving.lookup import MAX_RECORDS, RiskLookup, all_combinations, example_record

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"


@pytest.fixture(scope="module")
def lookup(model_dir: Path) -> RiskLookup:
    return RiskLookup.from_model_dir(model_dir)


def post(endpoint: LocalEndpoint, body: object, **kwargs) -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(endpoint.scoring_url, data=data, timeout=30, **kwargs)


def test_single_record(local_endpoint: LocalEndpoint, lookup: RiskLookup) -> None:
    response = post(local_endpoint, {"data": [example_record()]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == lookup.model_version
    assert body["results"] == lookup.score_records([example_record()])


def test_batch_of_every_combination_in_request_order(local_endpoint: LocalEndpoint, lookup: RiskLookup) -> None:
    grid = all_combinations().sample(frac=1.0, random_state=5)
    expected = lookup.probabilities(grid)
    response = post(local_endpoint, {"data": grid.to_dict("records")})
    assert response.status_code == 200, response.text[:500]
    results = response.json()["results"]
    assert [r["probability"] for r in results] == expected.tolist()
    assert [r["risk_band"] for r in results] == [schema.risk_band(p) for p in expected]


def test_request_examples_in_assets_are_accepted(local_endpoint: LocalEndpoint) -> None:
    for name in ("score_request_single.json", "score_request_batch.json"):
        request = json.loads((EXAMPLES / name).read_text())
        response = post(local_endpoint, request)
        assert response.status_code == 200, (name, response.text)
        assert len(response.json()["results"]) == len(request["data"])
    shape = json.loads((EXAMPLES / "score_response_batch.json").read_text())
    assert set(shape) == set(response.json())
    assert [set(r) for r in shape["results"]] == [set(r) for r in response.json()["results"]]
    assert [r["inputs_used"] for r in shape["results"]] == [r["inputs_used"] for r in response.json()["results"]]
    invalid = post(local_endpoint, json.loads((EXAMPLES / "score_request_invalid.json").read_text()))
    assert invalid.status_code == 400
    assert invalid.json() == json.loads((EXAMPLES / "score_response_invalid.json").read_text())


BAD_PAYLOADS = [
    pytest.param(b"{not json", ["not valid JSON"], id="invalid-json"),
    pytest.param(b"", ["body is empty"], id="empty-body"),
    pytest.param(b"\xff\xfe\x00garbage", ["not valid JSON"], id="not-utf8"),
    pytest.param(b"[" * 100_000, ["not valid JSON"], id="deeply-nested"),
    pytest.param([example_record()], ["must be a JSON object", "not a bare array"], id="bare-array"),
    pytest.param("hello", ["must be a JSON object"], id="non-object-body"),
    pytest.param({"records": [example_record()]}, ['no "data" field', '"age_group"'], id="no-data"),
    pytest.param({"data": [example_record()], "extra": 1}, ["Unknown top-level field", "'extra'"], id="extra-key"),
    pytest.param({"data": {"age_group": "80+ Years"}}, ['"data" must be a JSON array'], id="data-not-list"),
    pytest.param({"data": []}, ["empty array"], id="empty-data"),
    pytest.param({"data": [example_record(), "x"]}, ["record 1", "not an object"], id="item-not-object"),
    pytest.param(
        {"data": [{k: v for k, v in example_record().items() if k != "age_group"}]},
        ["record 0", "missing", "'age_group'", "Leave out any of sex, current_status"],
        id="missing-field",
    ),
    pytest.param(
        {"data": [{**example_record(), "age_group": "85"}]},
        ["record 0", "'age_group'", "'85'", "Allowed values", "'80+ Years'"],
        id="unknown-category",
    ),
    pytest.param(
        {"data": [{**example_record(), "hosp_yn": True}]}, ["'hosp_yn' is a boolean", "'Yes'"], id="wrong-type"
    ),
    pytest.param({"data": [{**example_record(), "agegroup": "x"}]}, ["unknown field", "'agegroup'"], id="typo"),
    # Silent defaults (issue 15 item 11): each is refused rather than scored as something else.
    pytest.param(
        {"data": [{**example_record(), "sex": ""}]}, ["'sex' is empty", "Leave the field out"], id="empty-value"
    ),
    pytest.param(
        b'{"data": [{"age_group": "85", "age_group": "80+ Years", "sex": "Female", '
        b'"current_status": "Laboratory-confirmed case", "medcond_yn": "Yes"}]}',
        ["has the key 'age_group' twice", "send each field once"],
        id="duplicate-key",
    ),
    pytest.param(
        {"data": [{**example_record(), "race_ethnicity_combined": {"x": 1}}]},
        ["'race_ethnicity_combined' is an object", "'Hispanic/Latino'"],
        id="race-wrong-type",
    ),
]


@pytest.mark.parametrize(("body", "fragments"), BAD_PAYLOADS)
def test_bad_payload_is_a_helpful_400_and_the_worker_keeps_serving(
    local_endpoint: LocalEndpoint, body: object, fragments: list[str]
) -> None:
    response = post(local_endpoint, body)
    assert response.status_code == 400, response.text[:500]
    message = response.json()["error"]
    for fragment in fragments:
        assert fragment in message
    assert local_endpoint.process.poll() is None
    assert post(local_endpoint, {"data": [example_record()]}).status_code == 200


def test_too_many_records(local_endpoint: LocalEndpoint) -> None:
    response = post(local_endpoint, {"data": [example_record()] * (MAX_RECORDS + 1)})
    assert response.status_code == 400
    assert f"at most {MAX_RECORDS}" in response.json()["error"]


def test_get_is_405_with_instructions(local_endpoint: LocalEndpoint) -> None:
    response = requests.get(local_endpoint.scoring_url, timeout=10)
    assert response.status_code == 405
    assert "POST" in response.json()["error"]


@pytest.mark.parametrize("version", ["2", "3"])
def test_openapi_document_describes_the_contract(local_endpoint: LocalEndpoint, version: str) -> None:
    doc = requests.get(local_endpoint.swagger_url, params={"version": version}, timeout=10).json()
    schemas = doc["definitions"] if version == "2" else doc["components"]["schemas"]
    record = schemas["ServiceInput"]["properties"]["data"]["items"]
    assert set(record["properties"]) == {*schema.MODEL_INPUTS, "race_ethnicity_combined"}
    assert record["required"] == ["age_group"]
    assert record["properties"]["age_group"]["enum"] == list(schema.FEATURES_BY_NAME["age_group"].values)
    assert set(schemas["ServiceOutput"]["properties"]) == {"model_version", "data_period", "results"}
    result = schemas["ServiceOutput"]["properties"]["results"]["items"]["properties"]
    assert {"probability_if_unrecorded_survived", "interval_if_unrecorded_survived", "inputs_used"} <= set(result)


def _collected_rows(directory: Path, request_id: str, expected: int, timeout_s: float = 20) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        rows = [
            json.loads(line)
            for path in directory.glob("*.jsonl*")
            for line in path.read_text().splitlines()
            if request_id in line
        ]
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def test_collected_data_holds_only_model_fields(
    local_endpoint: LocalEndpoint, collected_dir: Path, lookup: RiskLookup
) -> None:
    request_id = str(uuid.uuid4())
    secret = "sk-test-" + uuid.uuid4().hex
    records = [
        {**example_record(), "race_ethnicity_combined": "Asian, Non-Hispanic"},
        {**example_record(), "age_group": "80+ Years", "sex": " male"},
    ]
    response = post(
        local_endpoint,
        {"data": records},
        headers={"x-request-id": request_id, "Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
    )
    assert response.status_code == 200
    rows = _collected_rows(collected_dir, request_id, expected=2)
    assert len(rows) == 2
    for i, row in enumerate(rows):
        assert tuple(row) == datacollect.ROW_FIELDS
        assert row["request_id"] == request_id and row["record_index"] == i
        assert row["model_version"] == lookup.model_version
        assert row["probability"] == pytest.approx(response.json()["results"][i]["probability"], rel=1e-12)
        assert row["scored_utc"].endswith("Z")
    assert rows[1]["sex"] == "Male"  # canonical spelling, as scored
    everything = "".join(p.read_text() for p in collected_dir.glob("*")) + local_endpoint.log_text()
    assert secret not in everything
    assert "Asian, Non-Hispanic" not in "".join(p.read_text() for p in collected_dir.glob("*"))


def test_data_collection_can_be_switched_off(model_dir: Path, tmp_path: Path) -> None:
    from deploy.local_endpoint import serve

    with serve(
        model_dir, env={"RISK_DATA_COLLECTION": "off", "RISK_DATA_COLLECTION_DIR": str(tmp_path)}, workers=1
    ) as ep:
        assert post(ep, {"data": [example_record()]}).status_code == 200
    assert list(tmp_path.iterdir()) == []


def test_health_probes_are_not_collected(local_endpoint: LocalEndpoint, collected_dir: Path) -> None:
    """Three health checks score a record each (readiness) and add nothing to the monitor's data."""
    from model.serving.client import EndpointClient, EndpointConfig

    def lines() -> int:
        return sum(len(p.read_text().splitlines()) for p in collected_dir.glob("*.jsonl*"))

    client = EndpointClient(
        EndpointConfig.from_sources(secrets=None, environ={"RISK_ENDPOINT_URL": local_endpoint.scoring_url})
    )
    marker = str(uuid.uuid4())
    assert post(local_endpoint, {"data": [example_record()]}, headers={"x-request-id": marker}).status_code == 200
    assert len(_collected_rows(collected_dir, marker, expected=1)) == 1  # the writer has flushed up to here
    before = lines()
    for _ in range(3):
        assert client.health().ok
    time.sleep(1.5)  # the writer flushes every 0.5 s
    assert lines() == before


def test_batch_traffic_is_collected_and_marked(
    local_endpoint: LocalEndpoint, collected_dir: Path, model_dir: Path
) -> None:
    """The Batch scoring page's requests (client traffic=BATCH) are collected as "batch", patients as "live"."""
    from model.core import schema
    from model.monitoring import monitor
    from model.serving.client import EndpointClient, EndpointConfig

    client = EndpointClient(
        EndpointConfig.from_sources(secrets=None, environ={"RISK_ENDPOINT_URL": local_endpoint.scoring_url})
    )
    client.score([example_record()] * 3, traffic=schema.BATCH)
    marker = str(uuid.uuid4())
    assert post(local_endpoint, {"data": [example_record()]}, headers={"x-request-id": marker}).status_code == 200
    assert [row["traffic"] for row in _collected_rows(collected_dir, marker, expected=1)] == ["live"]
    rows = [json.loads(line) for path in collected_dir.glob("*.jsonl*") for line in path.read_text().splitlines()]
    assert sum(row["traffic"] == "batch" for row in rows) >= 3
    assert {row["traffic"] for row in rows} <= {"live", "batch"}  # probes never land here
    risk = monitor.load_model(model_dir)
    summary = monitor.aggregate_collected(collected_dir, risk).summary()
    assert summary["traffic"]["batch"] >= 3 and summary["traffic"]["live"] >= 1
    assert "batch" in monitor.traffic_text(summary) and "; all judged" in monitor.traffic_text(summary)
    kinds = pd.Series([row["traffic"] for row in rows])
    # --traffic picks what the monitor judges; every collected row is still reported by kind.
    batch_only = monitor.aggregate_collected(collected_dir, risk, "batch")
    live_only = monitor.aggregate_collected(collected_dir, risk, "live")
    assert batch_only.rows_used == (kinds == "batch").sum() and live_only.rows_used == (kinds == "live").sum()
    assert batch_only.summary()["traffic"] == summary["traffic"]
    with pytest.raises(ValueError, match="traffic must be one of all, live, batch"):
        monitor.aggregate_collected(collected_dir, risk, "nightly")


def test_unknown_traffic_kind_is_a_clear_400(local_endpoint: LocalEndpoint) -> None:
    response = post(local_endpoint, {"data": [example_record()]}, headers={"x-risk-traffic": "nightly"})
    assert response.status_code == 400
    assert "x-risk-traffic" in response.json()["error"] and "live, batch, probe" in response.json()["error"]
