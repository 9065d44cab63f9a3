"""Metrics agree with scikit-learn and follow the suite's conventions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from mlwright.automl import default_metric, get_metric
from mlwright.errors import ConfigError

RNG = np.random.default_rng(0)


def _binary():
    y = np.array(["no", "yes"])[RNG.integers(0, 2, 300)]
    p = RNG.random(300)
    return y, np.column_stack([1 - p, p])


def _multiclass():
    y = np.array(["a", "b", "c"])[RNG.integers(0, 3, 300)]
    raw = RNG.random((300, 3))
    return y, raw / raw.sum(axis=1, keepdims=True)


def test_defaults_by_task():
    assert default_metric("binary").name == "roc_auc"
    assert default_metric("multiclass").name == "log_loss"
    assert default_metric("regression").name == "rmse"
    assert not default_metric("multiclass").greater_is_better


def test_binary_metrics_match_sklearn():
    y, proba = _binary()
    classes = ["no", "yes"]
    labels = np.array(classes)[proba.argmax(axis=1)]
    positive = "yes"
    expected = {
        "roc_auc": skm.roc_auc_score(y == positive, proba[:, 1]),
        "log_loss": skm.log_loss(y, proba, labels=classes),
        "accuracy": skm.accuracy_score(y, labels),
        "balanced_accuracy": skm.balanced_accuracy_score(y, labels),
        "f1": skm.f1_score(y, labels, pos_label=positive),
        "precision": skm.precision_score(y, labels, pos_label=positive),
        "recall": skm.recall_score(y, labels, pos_label=positive),
        "mcc": skm.matthews_corrcoef(y, labels),
    }
    for name, value in expected.items():
        assert get_metric(name, "binary").score(y, proba, classes) == pytest.approx(value), name


def test_multiclass_metrics_match_sklearn():
    y, proba = _multiclass()
    classes = ["a", "b", "c"]
    labels = np.array(classes)[proba.argmax(axis=1)]
    expected = {
        "roc_auc": skm.roc_auc_score(y, proba, multi_class="ovr", labels=classes),
        "log_loss": skm.log_loss(y, proba, labels=classes),
        "accuracy": skm.accuracy_score(y, labels),
        "balanced_accuracy": skm.balanced_accuracy_score(y, labels),
        "f1": skm.f1_score(y, labels, average="macro"),
        "precision": skm.precision_score(y, labels, average="macro"),
        "recall": skm.recall_score(y, labels, average="macro"),
        "mcc": skm.matthews_corrcoef(y, labels),
    }
    for name, value in expected.items():
        assert get_metric(name, "multiclass").score(y, proba, classes) == pytest.approx(value), name


def test_regression_metrics_match_sklearn():
    y = RNG.normal(10, 3, 200)
    pred = y + RNG.normal(0, 1, 200)
    expected = {
        "rmse": np.sqrt(skm.mean_squared_error(y, pred)),
        "mae": skm.mean_absolute_error(y, pred),
        "r2": skm.r2_score(y, pred),
        "mape": skm.mean_absolute_percentage_error(y, pred),
    }
    for name, value in expected.items():
        assert get_metric(name, "regression").score(y, pred) == pytest.approx(value), name


def test_binary_positive_class_is_second_label_as_strings():
    # Sorted as strings, "10" < "9": the positive class is 9.
    y = np.array([9, 10, 9, 10])
    proba = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])  # columns: 10, 9
    auc = get_metric("roc_auc", "binary").score(y, proba, classes=[10, 9])
    assert auc == 1.0
    assert get_metric("roc_auc", "binary").score(y, proba) == 1.0


def test_log_loss_clips_and_renormalises():
    y = np.array(["a", "b"])
    proba = np.array([[1.0, 0.0], [1.0, 0.0]])
    value = get_metric("log_loss", "binary").score(y, proba, ["a", "b"])
    assert value == pytest.approx(-np.log(1e-15) / 2, rel=1e-6)


def test_unknown_metric_names_the_valid_ones():
    with pytest.raises(ConfigError, match="rmse"):
        get_metric("accuracy", "regression")
    with pytest.raises(ConfigError, match="roc_auc"):
        get_metric("nope", "binary")
