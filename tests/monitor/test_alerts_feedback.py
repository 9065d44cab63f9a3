"""Alert configs, alert rules, feedback joins and live windows on small, exact data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlwright.errors import ConfigError, DataError
from mlwright.monitor import (
    AlertConfig,
    deliver,
    evaluate_rules,
    join_feedback,
    load_alert_config,
    read_log,
    record_feedback,
)
from mlwright.monitor._performance import parse_window


def _log(tmp_path, scheme="sqlite"):
    from mlwright.serve import PredictionLog, open_log_store

    suffix = "db" if scheme == "sqlite" else "jsonl"
    uri = f"{scheme}:///{tmp_path / f'predictions.{suffix}'}"
    log = PredictionLog(open_log_store(uri))
    for index in range(3):
        features = [{"customer": f"c{index}{row}", "x": float(row)} for row in range(2)]
        log.append(
            f"r{index}",
            "m",
            "1",
            features,
            ["yes", "no"],
            [{"no": 0.2, "yes": 0.8}, {"no": 0.7, "yes": 0.3}],
            1.5,
        )
    log.close()
    return uri


@pytest.mark.parametrize("scheme", ["sqlite", "jsonl"])
def test_feedback_on_request_id_and_on_a_key(tmp_path, scheme):
    uri = _log(tmp_path, scheme)
    assert record_feedback(uri, [{"request_id": "r0", "row": 1, "actual": "no"}]) == 1
    labels = pd.DataFrame({"customer": ["c10", "c21", "zz"], "actual": ["yes", "yes", "no"]})
    result = join_feedback(uri, labels, key="customer")
    assert (result.stored, result.unmatched, result.unmatched_examples) == (2, 1, ["zz"])
    log = read_log(uri, with_feedback=True)
    assert len(log) == 6
    assert log.features.columns.tolist() == ["customer", "x"]
    labelled = log.labelled()
    assert sorted(
        zip(labelled.meta["request_id"], labelled.meta["row"], labelled.meta["actual"], strict=True)
    ) == [("r0", 1, "no"), ("r1", 0, "yes"), ("r2", 1, "yes")]
    assert read_log(uri, labelled_only=True, limit=2).meta["request_id"].tolist() == ["r1", "r2"]
    assert labelled.probabilities.columns.tolist() == ["no", "yes"]


def test_feedback_errors_name_the_fix(tmp_path):
    uri = _log(tmp_path)
    with pytest.raises(DataError, match="request_id"):
        record_feedback(uri, [{"actual": 1}])
    with pytest.raises(DataError, match="'actual'"):
        record_feedback(uri, [{"request_id": "r0"}])
    with pytest.raises(DataError, match="outcome column"):
        join_feedback(uri, pd.DataFrame({"request_id": ["r0"]}))
    with pytest.raises(DataError, match="--key"):
        join_feedback(uri, pd.DataFrame({"id": ["r0"], "actual": [1]}))
    with pytest.raises(ConfigError, match="No prediction log"):
        read_log(f"sqlite:///{tmp_path / 'none.db'}")


def test_alert_config_from_yaml_and_its_errors(tmp_path):
    path = tmp_path / "alerts.yaml"
    path.write_text(
        "rules:\n  - type: drift_share\n    threshold: 0.3\n  - type: traffic\n    low: 0.5\n"
        "channels:\n  jsonl: out.jsonl\ndrift:\n  alpha: 0.01\n"
    )
    config = load_alert_config(path)
    assert [rule.type for rule in config.rules] == ["drift_share", "traffic"]
    assert config.rules[1].params == {"low": 0.5, "high": 5.0, "min_windows": 3}
    assert config.drift == {"alpha": 0.01}
    bad = [
        ({"rules": [{"type": "cpu"}]}, "choose one of"),
        ({"rules": [{"type": "traffic", "hi": 2}]}, "unknown field 'hi'"),
        ({"rules": [{"type": "traffic", "high": "lots"}]}, "must be a number"),
        ({"channels": {"webhook": "ftp://x"}}, "http"),
        ({"channels": {"pager": 1}}, "unknown channel"),
        ({"drift": {"alpha": 3}}, "alpha"),
        ({"rule": []}, "unknown section"),
    ]
    for document, message in bad:
        with pytest.raises(ConfigError, match=message):
            AlertConfig.from_dict(document)
    with pytest.raises(ConfigError, match="No alert config"):
        load_alert_config(tmp_path / "missing.yaml")


def test_traffic_and_error_rate_rules_fire_and_deliver_to_jsonl(tmp_path):
    config = AlertConfig.from_dict(
        {
            "rules": [{"type": "traffic"}, {"type": "error_rate", "threshold": 0.1}],
            "channels": {
                "log": False,
                "jsonl": str(tmp_path / "a.jsonl"),
                "webhook": "http://127.0.0.1:9/unreachable",
                "webhook_timeout": 1,
            },
        }
    )
    quiet = evaluate_rules(
        config, model="m", traffic=[100, 110, 90, 105], requests={"total": 100, "errors": 2}
    )
    assert quiet == []
    alerts = evaluate_rules(
        config, model="m", traffic=[100, 110, 90, 5], requests={"total": 100, "errors": 20}
    )
    assert [alert.type for alert in alerts] == ["traffic", "error_rate"]
    deliveries = deliver(alerts, config)
    assert deliveries[0] == {"channel": "jsonl", "ok": True, "path": str(tmp_path / "a.jsonl")}
    assert deliveries[1]["channel"] == "webhook"
    assert not deliveries[1]["ok"]  # reported, not raised
    lines = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert [line["type"] for line in lines] == ["traffic", "error_rate"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1d", ("time", 86400.0)),
        ("30m", ("time", 1800.0)),
        ("500rows", ("rows", 500.0)),
        ("250", ("rows", 250.0)),
    ],
)
def test_windows(text, expected):
    assert parse_window(text) == expected


def test_bad_window_names_the_forms():
    with pytest.raises(ConfigError, match="500rows"):
        parse_window("fortnight")


def test_holm_matches_the_textbook_adjustment():
    from mlwright.monitor._drift import _adjust

    p = [0.01, 0.04, 0.03, 0.005]
    assert np.allclose(_adjust(p, "holm"), [0.03, 0.06, 0.06, 0.02])
    assert np.allclose(_adjust(p, "bonferroni"), [0.04, 0.16, 0.12, 0.02])
    assert _adjust(p, "none") == p
