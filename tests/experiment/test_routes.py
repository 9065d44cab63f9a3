"""Experiment routing inside the server app (in-process, two credit-g model versions)."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serve"))

from serve_helpers import (  # noqa: E402
    credit_model_dir,  # noqa: F401  (fixtures)
    credit_model_dir_b,  # noqa: F401
    credit_records,  # noqa: F401
)

from mlwright.experiment import analyze, start_experiment  # noqa: E402
from mlwright.serve import ModelRegistry, ServeSettings, create_app, load_served_model  # noqa: E402

pytestmark = pytest.mark.slow  # trains two small models once per session


def _requests(app, calls):
    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [await client.request(m, p, **kw) for m, p, kw in calls]

    return asyncio.run(go())


@pytest.fixture
def setup(tmp_path, credit_model_dir, credit_model_dir_b):  # noqa: F811
    settings = ServeSettings(home=tmp_path / ".mlwright", grpc_port=0)
    log = settings.resolved_log_uri()
    start_experiment(
        "ab",
        model="credit",
        unit_key="customer",
        log=log,
        references={"champion": str(credit_model_dir), "challenger": str(credit_model_dir_b)},
    )
    served = load_served_model(str(credit_model_dir))
    app = create_app(ModelRegistry([served]), settings)
    return app, log


def test_requests_split_by_unit_and_outcomes_recorded(setup, credit_records) -> None:  # noqa: F811
    app, log = setup
    record = credit_records[0]
    calls = [
        ("POST", "/predict", {"json": {"records": [record]}, "headers": {"x-unit-key": f"u{i}"}})
        for i in range(300)
    ]
    answers = _requests(app, calls)
    assert all(a.status_code == 200 for a in answers)
    versions = {a.json()["version"] for a in answers}
    assert len(versions) == 2  # both arms answered
    again = _requests(app, calls[:50])
    assert [a.json()["version"] for a in again] == [a.json()["version"] for a in answers[:50]]
    outcomes = [
        {"request_id": a.json()["request_id"], "metric": "clicks", "value": i % 3}
        for i, a in enumerate(answers)
    ]
    bad = [
        ("POST", "/outcome", {"json": {"request_id": "x", "value": 1}}),
        (
            "POST",
            "/outcome",
            {"json": {"experiment": "zz", "unit": "u", "metric": "m", "value": 1}},
        ),
        ("POST", "/outcome", {"json": []}),
        (
            "POST",
            "/outcome",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
        ),
    ]
    ok, *errors = _requests(app, [("POST", "/outcome", {"json": outcomes}), *bad])
    assert ok.json() == {"recorded": {"ab": 300}}
    # Malformed JSON is a 400, as on every endpoint; a body outside the schema a 422.
    assert [e.status_code for e in errors] == [422, 404, 422, 400]
    assert [p["field"] for p in errors[0].json()["detail"]] == ["metric"]
    app.state.server.log.flush()
    time.sleep(0.1)
    result = analyze("ab", log=log, record=False)
    assert sum(result.arms[a]["requests"] for a in result.arms) == 350
    assert result.tests["clicks"]["challenger"]["fixed"]["method"] == "welch_t"
    assert result.srm["mismatch"] is False


def _oip_body(record: dict, **extra) -> dict:
    inputs = [
        {
            "name": key,
            "shape": [1],
            "datatype": "BYTES" if isinstance(value, str) else "FP64",
            "data": [value],
        }
        for key, value in record.items()
    ]
    return {"inputs": inputs, **extra}


def test_open_inference_protocol_routes_by_the_same_arms(setup, credit_records) -> None:  # noqa: F811
    app, log = setup
    record = credit_records[0]
    units = [f"u{i}" for i in range(120)]
    by_parameter = _requests(
        app,
        [
            (
                "POST",
                "/v2/models/credit/infer",
                {"json": _oip_body(record, parameters={"customer": u})},
            )
            for u in units
        ],
    )
    by_header = _requests(
        app,
        [
            ("POST", "/predict", {"json": {"records": [record]}, "headers": {"x-unit-key": u}})
            for u in units
        ],
    )
    assert all(a.status_code == 200 for a in by_parameter), by_parameter[0].text
    answers = [a.json() for a in by_parameter]
    # The same unit lands on the same arm whichever endpoint it comes through.
    assert [a["model_version"] for a in answers] == [a.json()["version"] for a in by_header]
    arms = {a["parameters"]["arm"]: a["model_version"] for a in answers}
    assert set(arms) == {"champion", "challenger"}
    assert len(set(arms.values())) == 2
    assert {a["parameters"]["experiment"] for a in answers} == {"ab"}
    # The generic parameter name and the header give the same arm as the named parameter.
    generic = _requests(
        app,
        [
            (
                "POST",
                "/v2/models/credit/infer",
                {"json": _oip_body(record, parameters={"unit_key": u})},
            )
            for u in units[:20]
        ]
        + [
            (
                "POST",
                "/v2/models/credit/infer",
                {"json": _oip_body(record), "headers": {"x-unit-key": u}},
            )
            for u in units[:20]
        ],
    )
    expected = [a["model_version"] for a in answers[:20]]
    assert [a.json()["model_version"] for a in generic] == expected + expected
    # An explicit version bypasses the experiment, also for the arm the server does not serve.
    challenger = arms["challenger"]
    pinned = _requests(
        app,
        [
            (
                "POST",
                f"/v2/models/credit/versions/{challenger}/infer",
                {"json": _oip_body(record, parameters={"customer": u})},
            )
            for u in units[:10]
        ],
    )
    assert {a.json()["model_version"] for a in pinned} == {challenger}
    assert all("arm" not in a.json()["parameters"] for a in pinned)
    bad = _requests(
        app,
        [
            (
                "POST",
                "/v2/models/credit/infer",
                {"json": _oip_body(record, parameters={"customer": v})},
            )
            for v in ({"id": 1}, "", True, 1.5, "x" * 300, None)
        ]
        + [
            (
                "POST",
                "/v2/models/credit/infer",
                {"json": _oip_body(record), "headers": {"x-unit-key": "y" * 300}},
            ),
            ("POST", "/predict", {"json": {"records": [record]}, "headers": {"x-unit-key": " "}}),
        ],
    )
    assert [a.status_code for a in bad] == [400] * 7 + [422]
    assert all("unit key" in a.json()["error"] for a in bad)
    app.state.server.log.flush()
    time.sleep(0.2)
    from mlwright.serve import read_predictions

    logged = read_predictions(log, model="credit")
    ids = {a["id"]: a for a in answers}
    routed = logged[logged["request_id"].isin(ids)]
    assert len(routed) == len(ids)
    for request_id, arm, version in routed[["request_id", "arm", "version"]].itertuples(
        index=False
    ):
        assert arm == ids[request_id]["parameters"]["arm"]
        assert version == ids[request_id]["model_version"]
    bypassed = logged[logged["request_id"].isin([a.json()["id"] for a in pinned])]
    assert set(bypassed["arm"]) == {"main"}
