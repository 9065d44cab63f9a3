"""Slices find the worst group; fairness numbers agree with Fairlearn and warn past bounds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score

from mlwright.errors import DataError
from mlwright.evaluate import fairness_report, slice_metrics
from mlwright.evaluate._metrics import prepare


@pytest.fixture
def grouped():
    rng = np.random.default_rng(5)
    n = 3000
    group = rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.4, 0.1])
    y = rng.integers(0, 2, n)
    # the model is right 90% of the time on a, 80% on b, 60% on c
    right = rng.random(n) < np.select([group == "a", group == "b"], [0.9, 0.8], 0.6)
    p = np.where(right == (y == 1), 0.8, 0.3)
    age = rng.integers(18, 80, n)
    frame = pd.DataFrame({"group": group, "age": age})
    frame.loc[:9, "group"] = None
    return frame, y, p


def test_slices_worst_first_and_match_direct_computation(grouped):
    frame, y, p = grouped
    data = prepare(y, p, task="binary")
    rows = slice_metrics(frame, data, ["group", "age"], metric="accuracy", n_resamples=100)
    group_rows = [row for row in rows if row["column"] == "group"]
    assert [row["value"] for row in group_rows][:3] == ["c", "b", "a"]
    by_value = {row["value"]: row for row in group_rows}
    mask = (frame["group"] == "c").to_numpy()
    assert by_value["c"]["value_interval"]["value"] == pytest.approx(
        accuracy_score(y[mask], (p[mask] > 0.5).astype(int))
    )
    assert by_value["(missing)"]["n_rows"] == 10
    assert by_value["(missing)"]["small"]
    assert by_value["c"]["gap"] < 0
    assert len([row for row in rows if row["column"] == "age"]) == 4  # quartiles
    values = [row["value_interval"]["value"] for row in rows if not row["small"]]
    assert values == sorted(values)
    assert rows[-1]["small"]


def test_fairness_matches_fairlearn_and_warns(grouped):
    from fairlearn.metrics import (
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
    )

    frame, y, _ = grouped
    rng = np.random.default_rng(6)
    group = frame["group"].fillna("(missing)").to_numpy()
    # group a is selected far more often than the others
    p = np.where(group == "a", rng.uniform(0.3, 1.0, len(y)), rng.uniform(0.0, 0.7, len(y)))
    data = prepare(y, p, task="binary", threshold=0.5)
    (result,) = fairness_report(frame, data, ["group"], metric="accuracy")
    decision = (p >= 0.5).astype(int)
    assert result.demographic_parity_difference == pytest.approx(
        demographic_parity_difference(y, decision, sensitive_features=group)
    )
    assert result.demographic_parity_ratio == pytest.approx(
        demographic_parity_ratio(y, decision, sensitive_features=group)
    )
    assert result.equalized_odds_difference == pytest.approx(
        equalized_odds_difference(y, decision, sensitive_features=group)
    )
    by_group = {row["group"]: row for row in result.groups}
    mask = group == "a"
    assert by_group["a"]["selection_rate"] == pytest.approx(decision[mask].mean())
    assert by_group["a"]["tpr"] == pytest.approx(decision[mask & (y == 1)].mean())
    assert by_group["a"]["metric"] == pytest.approx(accuracy_score(y[mask], decision[mask]))
    assert len(result.warnings) == 3
    assert "Demographic parity ratio for 'group'" in " ".join(result.warnings)
    assert result.to_dict()["ratio_bound"] == 0.8


def test_fair_model_raises_no_warning_and_bounds_are_configurable(grouped):
    frame, y, p = grouped
    data = prepare(y, np.full(len(y), 0.7), task="binary", threshold=0.5)
    (result,) = fairness_report(frame, data, ["group"], metric="accuracy")
    assert result.demographic_parity_difference == 0
    assert result.warnings == []
    data = prepare(y, p, task="binary")
    (loose,) = fairness_report(
        frame, data, ["group"], metric="accuracy", difference_bound=1.0, ratio_bound=0.0
    )
    assert loose.warnings == []


def test_regression_fairness_reports_the_metric_per_group():
    frame = pd.DataFrame({"sex": ["f", "m"] * 50})
    y = np.arange(100, dtype=float)
    data = prepare(y, y + np.where(frame["sex"] == "f", 1.0, 3.0), task="regression")
    (result,) = fairness_report(frame, data, ["sex"], metric="mae")
    assert {row["group"]: row["metric"] for row in result.groups} == {"f": 1.0, "m": 3.0}
    assert result.demographic_parity_difference is None


def test_unknown_columns_are_named():
    frame = pd.DataFrame({"sex": ["f", "m"]})
    data = prepare(np.array([0, 1]), np.array([0.2, 0.7]), task="binary")
    with pytest.raises(DataError, match=r"\['race'\]"):
        fairness_report(frame, data, ["race"], metric="accuracy")
    with pytest.raises(DataError, match="no such column"):
        slice_metrics(frame, data, ["race"], metric="accuracy")
