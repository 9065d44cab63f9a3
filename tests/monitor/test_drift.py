"""Drift on real data: adult's test rows against its training rows, plain and shifted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from monitor_helpers import shifted

from mlwright.errors import ConfigError, DataError
from mlwright.monitor import DriftSettings, drift, frame_reference

SHIFTED = {"age", "race", "occupation"}


def test_unshifted_rows_in_random_order_raise_no_alarm(adult, adult_reference):
    _, test, target = adult
    current = test.drop(columns=[target]).sample(frac=1.0, random_state=3)
    report = drift(adult_reference, current)
    assert report.method == "distance"  # 16,000 rows: distances, not tests
    assert report.drifted_features == []
    assert not report.dataset_drift
    assert all(item.value < item.threshold for item in report.features)


def test_shifted_rows_flag_exactly_the_shifted_features(adult, adult_reference):
    _, test, target = adult
    current = shifted(test.drop(columns=[target]).sample(frac=1.0, random_state=4))
    report = drift(adult_reference, current)
    assert set(report.drifted_features) == SHIFTED
    assert report.drifted_features[0] == "age"  # largest distance first
    reasons = {item.name: " ".join(item.reasons) for item in report.features if item.drifted}
    assert "missing share" in reasons["occupation"]
    assert "jensenshannon" in reasons["race"]
    assert report.share == pytest.approx(3 / 14)
    assert not report.dataset_drift  # 21% < the default 50%
    assert drift(adult_reference, current, settings={"drift_share": 0.2}).dataset_drift


@pytest.mark.slow
def test_false_alarm_rate_stays_at_the_level(adult, adult_reference, record_property):
    """Repeated samples of 400 unshifted rows: tests with Holm's correction, so the chance of
    any feature being flagged (a false alarm) is at most alpha."""
    _, test, target = adult
    features = test.drop(columns=[target])
    alpha, repeats = 0.05, 200
    alarms, uncorrected = 0, []
    for seed in range(repeats):
        sample = features.sample(400, random_state=seed)
        report = drift(adult_reference, sample, settings={"alpha": alpha})
        assert report.method == "test"
        alarms += report.any_drift
        # The same features' raw p-values, before the correction.
        uncorrected.append(
            np.mean(
                [
                    item.stats["ks_p_value" if item.kind == "numeric" else "chi2_p_value"] < alpha
                    for item in report.features
                ]
            )
        )
    rate = alarms / repeats
    standard_error = np.sqrt(alpha * (1 - alpha) / repeats)
    record_property("false_alarm_rate", rate)
    record_property("per_feature_uncorrected_rate", float(np.mean(uncorrected)))
    assert rate <= alpha + 2.5 * standard_error
    # Per feature and without correction, tests reject at about their level (KS is
    # conservative on integer-valued features, so the mean sits at or below alpha).
    assert 0.005 <= float(np.mean(uncorrected)) <= alpha + 3 * standard_error


def test_small_shifted_sample_flags_exactly_the_shifted_features(adult, adult_reference):
    _, test, target = adult
    current = shifted(test.drop(columns=[target]).sample(800, random_state=5), seed=1)
    report = drift(adult_reference, current)
    assert report.method == "test"
    assert set(report.drifted_features) == SHIFTED


def test_psi_and_new_categories(adult, adult_reference):
    _, test, target = adult
    current = test.drop(columns=[target]).copy()
    current.loc[current.index[:400], "workclass"] = "Robot"
    report = drift(adult_reference, current, settings={"categorical_distance": "psi"})
    item = report.feature("workclass")
    assert item.drifted
    assert item.stats["new_categories"] == ["Robot"]
    assert item.statistic == "psi"
    assert "new categories" in " ".join(item.reasons)


def test_a_missing_feature_counts_as_all_missing(adult, adult_reference):
    _, test, target = adult
    current = test.drop(columns=[target, "hours_per_week"])
    item = drift(adult_reference, current).feature("hours_per_week")
    assert item.drifted
    assert item.stats["missing_current"] == 1.0


def test_two_frames_without_a_model(adult):
    train, test, target = adult
    reference = train.drop(columns=[target]).head(5000)
    report = drift(reference, shifted(test.drop(columns=[target])))
    assert set(report.drifted_features) == SHIFTED
    assert frame_reference(reference)["n_rows"] == 5000


def test_prediction_drift_of_a_score():
    rng = np.random.default_rng(0)
    reference = frame_reference(pd.DataFrame({"x": rng.normal(size=2000)}))
    reference["predictions"] = {
        "task": "binary",
        "label": {
            "kind": "categorical",
            "n": 2000,
            "missing_share": 0.0,
            "categories": {"a": 1000, "b": 1000},
            "other": 0,
        },
        "score": {
            "kind": "numeric",
            "n": 2000,
            "missing_share": 0.0,
            "std": 0.29,
            "edges": [0.5],
            "shares": [0.5, 0.5],
            "values": rng.uniform(size=2000).tolist(),
        },
    }
    current = pd.DataFrame({"x": rng.normal(size=3000)})
    same = drift(reference, current, predictions={"scores": rng.uniform(size=3000)})
    moved = drift(reference, current, predictions={"scores": rng.uniform(size=3000) ** 3})
    assert not same.prediction.drifted
    assert moved.prediction.drifted


@pytest.mark.parametrize(
    ("settings", "word"),
    [
        ({"method": "magic"}, "method"),
        ({"alpha": 2}, "alpha"),
        ({"correction": "sidak"}, "correction"),
        ({"threshold": 0.1}, "Unknown drift setting"),
        ({"max_rows": 0}, "max_rows"),
    ],
)
def test_bad_settings_name_the_setting(settings, word):
    with pytest.raises(ConfigError, match=word):
        DriftSettings.from_dict(settings)


def test_no_common_feature_is_a_data_error(adult_reference):
    with pytest.raises(DataError, match="no feature in common"):
        drift(adult_reference, pd.DataFrame({"x": [1, 2]}), features=["x"])
