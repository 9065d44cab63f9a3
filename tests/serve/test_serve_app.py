"""The FastAPI app in-process: predictions, field-level errors, OIP, auth, metrics, OpenAPI."""

from __future__ import annotations

import asyncio
import json
import math

import httpx
import numpy as np
import pandas as pd
import pytest

from mlwright.serve import (
    ModelRegistry,
    PredictionLog,
    ServeSettings,
    create_app,
    load_served_model,
    open_log_store,
    read_predictions,
)


def _settings(tmp_path, **values) -> ServeSettings:
    return ServeSettings(home=tmp_path / ".mlwright", grpc_port=0, **values)


def _request(app, method: str, path: str, **kwargs) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


def _many(app, requests: list[tuple[str, str, dict]]) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await asyncio.gather(
                *(client.request(method, path, **kwargs) for method, path, kwargs in requests)
            )

    return asyncio.run(go())


@pytest.fixture(scope="module")
def served(credit_model_dir):
    return load_served_model(str(credit_model_dir))


@pytest.fixture
def app(served, tmp_path):
    return create_app(ModelRegistry([served]), _settings(tmp_path))


def test_predict_matches_the_model(app, served, credit_records):
    import mlwright

    records = credit_records[:40]
    response = _request(app, "POST", "/predict", json={"records": records})
    assert response.status_code == 200, response.text
    body = response.json()
    model = mlwright.load(served.model.path)
    frame = pd.DataFrame(records)
    assert body["predictions"] == list(model.predict(frame))
    expected = model.predict_proba(frame)
    got = pd.DataFrame(body["probabilities"])[list(expected.columns)]
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-9)
    assert body["model"] == "credit"
    assert body["version"] == served.version
    assert response.headers["x-request-id"] == body["request_id"]
    # The named route answers the same.
    named = _request(app, "POST", "/models/credit/predict", json={"records": records})
    assert named.json()["predictions"] == body["predictions"]


def _bad(records: list[dict], change) -> dict:
    record = dict(records[0])
    change(record)
    return {"records": [record]}


BAD_INPUTS = [
    ("wrong type", lambda r: r.update(age="forty"), 422, "age", "wrong_type"),
    ("missing field", lambda r: r.pop("duration"), 422, "duration", "missing_field"),
    ("unknown field", lambda r: r.update(colour="red"), 422, "colour", "unknown_field"),
    (
        "null not allowed",
        lambda r: r.update(credit_amount=None),
        422,
        "credit_amount",
        "missing_value",
    ),
    ("boolean for number", lambda r: r.update(age=True), 422, "age", "wrong_type"),
    ("number for text", lambda r: r.update(purpose=3), 422, "purpose", "wrong_type"),
    ("list for number", lambda r: r.update(age=[1, 2]), 422, "age", "wrong_type"),
]


@pytest.mark.parametrize(
    ("change", "status", "field", "kind"),
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_records_get_field_level_4xx(app, credit_records, change, status, field, kind):
    response = _request(app, "POST", "/predict", json=_bad(credit_records, change))
    assert response.status_code == status, response.text
    body = response.json()
    assert any(item["field"] == field and item["kind"] == kind for item in body["detail"]), body
    assert field in body["error"]


@pytest.mark.parametrize(
    ("content", "status", "kind"),
    [
        (b"{not json", 400, "malformed_json"),
        (b"", 400, "malformed_json"),
        (b"[1, 2]", 422, "wrong_type"),
        (b'{"records": []}', 422, "empty_batch"),
        (b'{"records": {"age": 3}}', 422, "wrong_type"),
        (b'{"rows": []}', 422, "unknown_field"),
        (b"{}", 422, "missing_field"),
        (b'{"records": [7]}', 422, "wrong_type"),
    ],
)
def test_malformed_bodies(app, content, status, kind):
    response = _request(
        app, "POST", "/predict", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == status, response.text
    assert response.json()["detail"][0]["kind"] == kind


def test_nan_is_refused_with_the_field(app, credit_records):
    record = dict(credit_records[0])
    text = json.dumps({"records": [record]}).replace(
        f'"age": {json.dumps(record["age"])}', '"age": NaN'
    )
    response = _request(
        app, "POST", "/predict", content=text, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == "age"
    assert response.json()["detail"][0]["kind"] == "nan_not_allowed"


def test_unseen_category_follows_the_schema_rule(app, credit_records):
    # The schema treats an unseen category as a warning (the model handles it): accepted.
    record = dict(credit_records[0], purpose="space travel")
    response = _request(app, "POST", "/predict", json={"records": [record]})
    assert response.status_code == 200, response.text


def test_oversized_body_gets_413(served, tmp_path, credit_records):
    app = create_app(ModelRegistry([served]), _settings(tmp_path, max_body_bytes=2048))
    response = _request(app, "POST", "/predict", json={"records": credit_records[:50]})
    assert response.status_code == 413
    assert "--max-body-bytes" in response.json()["error"]


def test_unknown_model_is_404_and_names_the_loaded_ones(app, credit_records):
    response = _request(app, "POST", "/models/other/predict", json={"records": credit_records[:1]})
    assert response.status_code == 404
    assert "'credit'" in response.json()["error"]
    # Path-like names are only looked up, never used as paths.
    response = _request(app, "GET", "/v2/models/..%2F..%2Fetc")
    assert response.status_code == 404


def test_open_inference_protocol(app, served, credit_records):
    assert _request(app, "GET", "/v2/health/live").json() == {"live": True}
    assert _request(app, "GET", "/v2/health/ready").json() == {"ready": True}
    assert _request(app, "GET", "/v2").json()["name"] == "mlwright"
    metadata = _request(app, "GET", "/v2/models/credit").json()
    types = {item["name"]: item["datatype"] for item in metadata["inputs"]}
    assert types["age"] == "FP64"
    assert types["purpose"] == "BYTES"
    assert [item["name"] for item in metadata["outputs"]] == ["predict", "predict_proba"]
    version = served.version
    assert _request(app, "GET", f"/v2/models/credit/versions/{version}").status_code == 200
    assert _request(app, "GET", "/v2/models/credit/versions/nope").status_code == 404
    assert _request(app, "GET", "/v2/models/credit/ready").json()["ready"] is True

    records = credit_records[:5]
    frame = pd.DataFrame(records)
    inputs = []
    for column in frame.columns:
        values = frame[column].tolist()
        text = isinstance(values[0], str)
        inputs.append(
            {
                "name": column,
                "datatype": "BYTES" if text else "FP64",
                "shape": [len(values), 1] if column == "age" else [len(values)],
                "data": values,
            }
        )
    response = _request(
        app,
        "POST",
        f"/v2/models/credit/versions/{version}/infer",
        json={"id": "abc", "inputs": inputs},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == "abc"
    outputs = {item["name"]: item for item in body["outputs"]}
    plain = _request(app, "POST", "/predict", json={"records": records}).json()
    assert outputs["predict"]["data"] == plain["predictions"]
    assert outputs["predict_proba"]["shape"] == [5, 2]
    # Only the requested output.
    response = _request(
        app,
        "POST",
        "/v2/models/credit/infer",
        json={"inputs": inputs, "outputs": [{"name": "predict"}]},
    )
    assert [item["name"] for item in response.json()["outputs"]] == ["predict"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda inputs: inputs[0].update(shape=[9]), "checking_status"),
        (lambda inputs: inputs[1].update(datatype="BYTES", data=["x"]), "duration"),
        (lambda inputs: inputs.pop(1), "duration"),
        (
            lambda inputs: inputs.append(
                {"name": "zzz", "datatype": "FP64", "shape": [1], "data": [1.0]}
            ),
            "zzz",
        ),
        (lambda inputs: inputs[0].update(datatype="FP64", data=[1.0]), "checking_status"),
    ],
)
def test_bad_tensors_get_400_with_the_field(app, credit_records, change, field):
    record = credit_records[0]
    inputs = [
        {
            "name": key,
            "datatype": "BYTES" if isinstance(value, str) else "FP64",
            "shape": [1],
            "data": [value],
        }
        for key, value in record.items()
    ]
    change(inputs)
    response = _request(app, "POST", "/v2/models/credit/infer", json={"inputs": inputs})
    assert response.status_code == 400, response.text
    assert any(item["field"] == field for item in response.json()["detail"]), response.text


def test_bearer_token(served, tmp_path, credit_records):
    app = create_app(ModelRegistry([served]), _settings(tmp_path, token="s3cret"))
    body = {"records": credit_records[:1]}
    assert _request(app, "POST", "/predict", json=body).status_code == 401
    wrong = {"authorization": "Bearer nope"}
    assert _request(app, "POST", "/predict", json=body, headers=wrong).status_code == 401
    right = {"authorization": "Bearer s3cret"}
    assert _request(app, "POST", "/predict", json=body, headers=right).status_code == 200
    for path in ("/metrics", "/v2", "/v2/models/credit", "/openapi.json", "/models"):
        assert _request(app, "GET", path).status_code == 401, path
    for path in ("/v2/health/live", "/v2/health/ready"):
        assert _request(app, "GET", path).status_code == 200, path


def test_metrics(app, credit_records):
    _request(app, "POST", "/predict", json={"records": credit_records[:3]})
    _request(app, "POST", "/predict", json={"records": [{"age": "x"}]})
    text = _request(app, "GET", "/metrics").text
    assert 'mlwright_requests_total{endpoint="predict",status="200"} 1.0' in text
    assert 'mlwright_requests_total{endpoint="predict",status="422"} 1.0' in text
    assert "mlwright_request_latency_seconds_bucket" in text
    assert 'mlwright_rows_predicted_total{model="credit"' in text
    assert 'mlwright_predictions_total{class="' in text
    assert 'mlwright_validation_failures_total{kind="wrong_type",model="credit"}' in text
    assert "mlwright_log_dropped_records_total 0.0" in text


def test_openapi_carries_the_feature_schema(app):
    document = _request(app, "GET", "/openapi.json").json()
    record = document["components"]["schemas"]["CreditRecord"]
    assert record["additionalProperties"] is False
    assert "age" in record["required"]
    assert record["properties"]["age"]["type"] == "number"
    assert "good" not in json.dumps(record)  # the target is not an input
    purpose = record["properties"]["purpose"]
    assert "radio/tv" in purpose["examples"]
    request_body = document["paths"]["/predict"]["post"]["requestBody"]
    assert request_body["content"]["application/json"]["schema"]["$ref"].endswith(
        "CreditPredictRequest"
    )
    example = document["components"]["schemas"]["CreditPredictRequest"]["example"]
    response = _request(app, "POST", "/predict", json=example)
    assert response.status_code == 200, response.text
    assert _request(app, "GET", "/docs").status_code == 200


def test_batching_groups_concurrent_requests(served, tmp_path, credit_records):
    app = create_app(
        ModelRegistry([served]),
        _settings(tmp_path, max_batch_size=64, max_batch_delay_ms=5),
    )
    requests = [
        ("POST", "/predict", {"json": {"records": [record]}}) for record in credit_records[:30]
    ]
    responses = _many(app, requests)
    assert all(response.status_code == 200 for response in responses)
    reference = _request(app, "POST", "/predict", json={"records": credit_records[:30]}).json()
    assert [r.json()["predictions"][0] for r in responses] == reference["predictions"]
    for response, expected in zip(responses, reference["probabilities"], strict=True):
        got = response.json()["probabilities"][0]
        assert all(math.isclose(got[key], expected[key], rel_tol=1e-9) for key in expected)
    batcher = app.state.server.batchers["credit"]
    assert batcher.batches < 30


def test_swap_under_concurrent_load_drops_nothing(
    served, credit_model_dir_b, tmp_path, credit_records
):
    registry = ModelRegistry([served])
    app = create_app(registry, _settings(tmp_path))
    second = load_served_model(str(credit_model_dir_b), name="credit")
    assert second.version != served.version

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

            async def one(record: dict) -> httpx.Response:
                return await client.post("/predict", json={"records": [record]})

            first = [asyncio.create_task(one(record)) for record in credit_records[:40]]
            await asyncio.sleep(0)
            registry.swap(second)
            rest = [asyncio.create_task(one(record)) for record in credit_records[40:80]]
            return await asyncio.gather(*first, *rest)

    responses = asyncio.run(go())
    assert all(response.status_code == 200 for response in responses)
    versions = {response.json()["version"] for response in responses}
    assert second.version in versions


def test_every_prediction_is_logged(served, tmp_path, credit_records):
    uri = f"sqlite:///{tmp_path / 'log.db'}"
    log = PredictionLog(open_log_store(uri))
    app = create_app(ModelRegistry([served]), _settings(tmp_path), log=log)
    ids = []
    for index in range(3):
        response = _request(
            app,
            "POST",
            "/predict",
            json={"records": credit_records[:2]},
            headers={"x-request-id": f"req-{index}"},
        )
        ids.append(response.json()["request_id"])
    app.state.server.close()
    frame = read_predictions(uri)
    assert len(frame) == 6
    assert sorted(set(frame["request_id"])) == ids
    assert set(frame["arm"]) == {"main"}
    assert set(frame["version"]) == {served.version}
    assert frame["features"][0]["age"] == credit_records[0]["age"]
    assert frame["prediction"].isin(["good", "bad"]).all()
    assert (frame["latency_ms"] > 0).all()
