"""Evaluation with statistics that hold up: intervals, paired tests, thresholds, calibration,
slices, fairness and explanations.

Every metric comes with a bootstrap 95% confidence interval; two models are compared on the
same rows with a paired bootstrap (and McNemar's test), which is the test promotion uses.
"""

from __future__ import annotations

from mlwright.evaluate._calibration import (
    AdjustedPredictor,
    ProbabilityCalibrator,
    expected_calibration_error,
    fit_calibrator,
    reliability_curve,
)
from mlwright.evaluate._compare import Comparison, compare_predictions, mcnemar_test
from mlwright.evaluate._evaluation import (
    Evaluation,
    calibrate,
    compare,
    evaluate,
    tune_threshold,
)
from mlwright.evaluate._explain import (
    contributions,
    native_importance,
    partial_dependence,
    permutation_importance,
)
from mlwright.evaluate._fairness import FairnessResult, fairness_report
from mlwright.evaluate._intervals import Interval, bootstrap_interval
from mlwright.evaluate._metrics import metric_names
from mlwright.evaluate._slices import slice_metrics
from mlwright.evaluate._threshold import ThresholdChoice, choose_threshold

__all__ = [
    "AdjustedPredictor",
    "Comparison",
    "Evaluation",
    "FairnessResult",
    "Interval",
    "ProbabilityCalibrator",
    "ThresholdChoice",
    "bootstrap_interval",
    "calibrate",
    "choose_threshold",
    "compare",
    "compare_predictions",
    "contributions",
    "evaluate",
    "expected_calibration_error",
    "fairness_report",
    "fit_calibrator",
    "mcnemar_test",
    "metric_names",
    "native_importance",
    "partial_dependence",
    "permutation_importance",
    "reliability_curve",
    "slice_metrics",
    "tune_threshold",
]
