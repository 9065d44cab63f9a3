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
    assert [e.status_code for e in errors] == [422, 404, 422, 422]
    assert "no metric name" in errors[0].json()["error"]
    app.state.server.log.flush()
    time.sleep(0.1)
    result = analyze("ab", log=log, record=False)
    assert sum(result.arms[a]["requests"] for a in result.arms) == 350
    assert result.tests["clicks"]["challenger"]["fixed"]["method"] == "welch_t"
    assert result.srm["mismatch"] is False
