"""Calibration error, reliability curves and recalibration on held-out rows."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.calibration import calibration_curve

from mlwright.errors import ConfigError, DataError
from mlwright.evaluate import (
    AdjustedPredictor,
    expected_calibration_error,
    fit_calibrator,
    reliability_curve,
)


def _calibrated(rng, n):
    p = rng.uniform(0, 1, n)
    return (rng.random(n) < p).astype(int), p


def test_reliability_curve_matches_scikit_learn():
    rng = np.random.default_rng(0)
    y, p = _calibrated(rng, 3000)
    curve = reliability_curve(y, p, n_bins=10)
    observed, predicted = calibration_curve(y, p, n_bins=10)
    assert np.allclose(curve["observed"], observed)
    assert np.allclose(curve["mean_predicted"], predicted)
    assert sum(curve["count"]) == 3000
    assert curve["kind"] == "positive"


def test_ece_small_when_calibrated_large_when_not_and_recalibration_fixes_it():
    rng = np.random.default_rng(1)
    y, p = _calibrated(rng, 6000)
    assert expected_calibration_error(y, p) < 0.03
    overconfident = p**3  # systematically too low
    assert expected_calibration_error(y, overconfident) > 0.15
    for method in ("isotonic", "sigmoid"):
        calibrator = fit_calibrator(y[:3000], overconfident[:3000], method=method)
        held_out = calibrator.transform(
            np.column_stack([1 - overconfident[3000:], overconfident[3000:]])
        )
        assert np.allclose(held_out.sum(axis=1), 1.0)
        assert expected_calibration_error(y[3000:], held_out) < 0.04, method


def test_multiclass_top_label_calibration():
    rng = np.random.default_rng(2)
    n, k = 3000, 3
    logits = rng.normal(size=(n, k)) * 2
    true_proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in true_proba])
    sharpened = true_proba**3 / (true_proba**3).sum(axis=1, keepdims=True)
    before = expected_calibration_error(y, sharpened, task="multiclass")
    calibrator = fit_calibrator(y[:1500], sharpened[:1500], method="isotonic")
    after = expected_calibration_error(y[1500:], calibrator.transform(sharpened[1500:]))
    assert reliability_curve(y, sharpened)["kind"] == "top_label"
    assert after < before / 2


class _Constant:
    classes_ = np.array(["no", "yes"])

    def predict_proba(self, features):
        return np.tile([0.7, 0.3], (len(features), 1))


def test_adjusted_predictor_applies_threshold_and_pickles():
    adjusted = AdjustedPredictor(_Constant(), threshold=0.25)
    assert list(adjusted.predict([1, 2])) == ["yes", "yes"]
    assert list(AdjustedPredictor(_Constant()).predict([1])) == ["no"]
    restored = pickle.loads(pickle.dumps(adjusted))
    assert restored.threshold == 0.25
    assert list(restored.classes_) == ["no", "yes"]
    rewrapped = AdjustedPredictor(restored, threshold=0.5)
    assert isinstance(rewrapped.predictor, _Constant)


def test_bad_inputs():
    with pytest.raises(DataError, match="at least 100"):
        fit_calibrator([0, 1] * 10, [0.3, 0.6] * 10, method="isotonic")
    with pytest.raises(ConfigError, match="isotonic"):
        fit_calibrator([0, 1] * 100, [0.3, 0.6] * 100, method="platt")
    with pytest.raises(DataError, match="two classes"):
        fit_calibrator([1] * 200, [0.3] * 200, method="sigmoid", classes=[0, 1])
