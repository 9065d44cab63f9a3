"""Every metric mlwright computes agrees with scikit-learn on the full data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from mlwright.errors import ConfigError, DataError
from mlwright.evaluate._metrics import (
    DEFAULT_METRICS,
    confusion_matrix,
    metric_names,
    prepare,
    residual_summary,
    weighted_metric,
)


def _point(name, data):
    return float(weighted_metric(name, data, np.ones((1, data.n_rows)))[0])


@pytest.fixture
def binary_case():
    rng = np.random.default_rng(1)
    n = 600
    y = rng.integers(0, 2, n)
    score = np.clip(0.3 * y + rng.normal(0.35, 0.25, n), 0, 1)
    # ties on purpose: rounded scores exercise the tie handling of ROC AUC and PR AUC
    score = np.round(score, 2)
    labels = np.where(y == 1, "good", "bad")
    return labels, score


def test_binary_metrics_match_scikit_learn(binary_case):
    labels, score = binary_case
    data = prepare(labels, score, task="binary", classes=["bad", "good"])
    y = (labels == "good").astype(int)
    predicted = (score > 0.5).astype(int)  # arg-max: a tie goes to the first class
    expected = {
        "accuracy": sk.accuracy_score(y, predicted),
        "balanced_accuracy": sk.balanced_accuracy_score(y, predicted),
        "precision": sk.precision_score(y, predicted),
        "recall": sk.recall_score(y, predicted),
        "f1": sk.f1_score(y, predicted),
        "f1_macro": sk.f1_score(y, predicted, average="macro"),
        "f1_weighted": sk.f1_score(y, predicted, average="weighted"),
        "precision_weighted": sk.precision_score(y, predicted, average="weighted"),
        "recall_macro": sk.recall_score(y, predicted, average="macro"),
        "mcc": sk.matthews_corrcoef(y, predicted),
        "roc_auc": sk.roc_auc_score(y, score),
        "pr_auc": sk.average_precision_score(y, score),
        "log_loss": sk.log_loss(y, np.clip(score, 1e-15, 1 - 1e-15)),
        "brier": sk.brier_score_loss(y, score),
    }
    for name, value in expected.items():
        # log loss renormalises clipped rows as the training engine does: 1e-5 apart at most
        assert _point(name, data) == pytest.approx(value, abs=1e-5), name
    assert set(DEFAULT_METRICS["binary"]) <= set(metric_names("binary"))


def test_threshold_changes_the_label_metrics(binary_case):
    labels, score = binary_case
    data = prepare(labels, score, task="binary", classes=["bad", "good"], threshold=0.3)
    y = (labels == "good").astype(int)
    assert _point("f1", data) == pytest.approx(sk.f1_score(y, (score >= 0.3).astype(int)))


def test_multiclass_metrics_match_scikit_learn():
    rng = np.random.default_rng(2)
    n, k = 500, 4
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    classes = ["a", "b", "c", "d"]
    labels = np.asarray(classes, dtype=object)[y]
    data = prepare(labels, proba, task="multiclass", classes=classes)
    predicted = proba.argmax(axis=1)
    onehot = np.eye(k)[y]
    expected = {
        "accuracy": sk.accuracy_score(y, predicted),
        "balanced_accuracy": sk.balanced_accuracy_score(y, predicted),
        "f1_macro": sk.f1_score(y, predicted, average="macro"),
        "f1_weighted": sk.f1_score(y, predicted, average="weighted"),
        "precision_macro": sk.precision_score(y, predicted, average="macro"),
        "recall_weighted": sk.recall_score(y, predicted, average="weighted"),
        "mcc": sk.matthews_corrcoef(y, predicted),
        "roc_auc": sk.roc_auc_score(y, proba, multi_class="ovr"),
        "pr_auc": sk.average_precision_score(onehot, proba, average="macro"),
        "log_loss": sk.log_loss(y, proba),
        "brier": sk.brier_score_loss(y, proba),
    }
    for name, value in expected.items():
        assert _point(name, data) == pytest.approx(value, abs=1e-6), name
    matrix = confusion_matrix(data)
    assert matrix["labels"] == classes
    assert matrix["matrix"] == sk.confusion_matrix(y, predicted).tolist()


def test_regression_metrics_match_scikit_learn():
    rng = np.random.default_rng(3)
    y = rng.gamma(2.0, 10.0, 400) + 1
    pred = y + rng.normal(0, 3, 400)
    data = prepare(y, pred, task="regression")
    expected = {
        "rmse": np.sqrt(sk.mean_squared_error(y, pred)),
        "mse": sk.mean_squared_error(y, pred),
        "mae": sk.mean_absolute_error(y, pred),
        "r2": sk.r2_score(y, pred),
        "mape": sk.mean_absolute_percentage_error(y, pred),
    }
    for name, value in expected.items():
        assert _point(name, data) == pytest.approx(value, rel=1e-9), name
    summary = residual_summary(data)
    assert summary["mean"] == pytest.approx(np.mean(pred - y))
    assert summary["max_abs"] == pytest.approx(np.abs(pred - y).max())


def test_weights_are_resampled_rows(binary_case):
    labels, score = binary_case
    data = prepare(labels, score, task="binary", classes=["bad", "good"])
    rng = np.random.default_rng(0)
    rows = rng.integers(0, len(labels), len(labels))
    weights = np.bincount(rows, minlength=len(labels)).astype(float)[None, :]
    y = (labels == "good").astype(int)[rows]
    assert weighted_metric("roc_auc", data, weights)[0] == pytest.approx(
        sk.roc_auc_score(y, score[rows])
    )
    assert weighted_metric("pr_auc", data, weights)[0] == pytest.approx(
        sk.average_precision_score(y, score[rows])
    )
    assert weighted_metric("mcc", data, weights)[0] == pytest.approx(
        sk.matthews_corrcoef(y, (score[rows] > 0.5).astype(int))
    )


def test_hard_labels_and_text_numbers():
    # labels read back from a CSV as text still match a model trained on integers
    data = prepare(
        np.array(["1", "0", "1"], dtype=object), np.array([1, 1, 1]), task="binary", classes=[0, 1]
    )
    assert _point("accuracy", data) == pytest.approx(2 / 3)
    with pytest.raises(ConfigError, match="needs predicted probabilities"):
        _point("roc_auc", data)


def test_bad_inputs_name_the_problem():
    with pytest.raises(DataError, match=r"not among the model's classes"):
        prepare(np.array(["x", "y"]), np.array([0.2, 0.8]), task="binary", classes=["a", "b"])
    with pytest.raises(DataError, match="rows"):
        prepare(np.array([1, 0, 1]), np.array([0.2, 0.8]), task="binary")
    with pytest.raises(ConfigError, match="does not apply"):
        _point("rmse", prepare(np.array([0, 1]), np.array([0.2, 0.8]), task="binary"))
    with pytest.raises(ConfigError, match="Unknown metric"):
        _point("nonsense", prepare(np.array([0, 1]), np.array([0.2, 0.8]), task="binary"))
