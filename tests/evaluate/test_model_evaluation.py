"""Evaluation, comparison, thresholds, calibration and explanations of real trained models."""

from __future__ import annotations

import numpy as np
import pytest

import mlwright
from mlwright.automl import get_metric
from mlwright.automl.families import family
from mlwright.errors import ConfigError, DataError
from mlwright.evaluate import (
    calibrate,
    compare,
    contributions,
    evaluate,
    native_importance,
    partial_dependence,
    permutation_importance,
    tune_threshold,
)

pytestmark = pytest.mark.slow  # trains small models once per session


def test_evaluation_agrees_with_the_training_engine(credit_model_path, credit_test):
    model = mlwright.load(credit_model_path)
    evaluation = evaluate(model, credit_test, sensitive=["personal_status"], n_resamples=300)
    proba = model.predict_proba(credit_test).to_numpy()
    for name in ("roc_auc", "accuracy", "log_loss", "balanced_accuracy", "mcc", "f1"):
        expected = get_metric(name, "binary").score(credit_test["class"], proba, model.classes)
        assert evaluation.metrics[name].value == pytest.approx(expected, abs=1e-6), name
    primary = evaluation.metrics[evaluation.metric]
    assert evaluation.metric == "roc_auc"
    assert primary.lower < primary.value < primary.upper
    assert [row["class"] for row in evaluation.per_class] == ["bad", "good"]
    assert sum(map(sum, evaluation.confusion["matrix"])) == len(credit_test)
    assert 0 <= evaluation.calibration["ece"] < 0.3
    assert evaluation.fairness[0]["column"] == "personal_status"
    assert {row["column"] for row in evaluation.slices} == {"personal_status"}
    assert set(evaluation.curves) == {"roc", "pr"}
    document = evaluation.to_dict()
    assert document["metrics"]["roc_auc"]["value"] == primary.value
    assert "roc_auc_lower" in evaluation.flat_metrics()


def test_regression_evaluation(regression_model_path, credit_test):
    model = mlwright.load(regression_model_path)
    evaluation = evaluate(model, credit_test, n_resamples=200)
    predicted = model.predict(credit_test)
    truth = credit_test["credit_amount"].to_numpy(dtype=float)
    assert evaluation.metrics["rmse"].value == pytest.approx(
        np.sqrt(np.mean((predicted - truth) ** 2))
    )
    assert evaluation.metrics["r2"].lower < evaluation.metrics["r2"].upper
    assert evaluation.residuals["mean"] == pytest.approx(np.mean(predicted - truth))
    assert evaluation.confusion is None
    assert evaluation.calibration is None


def test_compare_a_model_with_itself_and_with_another(
    credit_model_path, mixed_model_path, credit_test
):
    model = mlwright.load(credit_model_path)
    same = compare(model, mlwright.load(credit_model_path), credit_test, n_resamples=300)
    assert same.verdict == "not distinguishable"
    assert same.p_value == 1.0
    other = compare(model, mlwright.load(mixed_model_path), credit_test, n_resamples=300)
    assert other.metric == "roc_auc"
    assert other.verdict in ("better", "worse", "not distinguishable")
    assert other.mcnemar is not None


def test_threshold_is_saved_and_used_by_predict(credit_model_path, credit_test, tmp_path):
    model = mlwright.load(credit_model_path)
    tuned, choice = tune_threshold(model, credit_test, objective="recall", target=0.97)
    assert choice.achieved
    assert choice.recall >= 0.97
    saved = tuned.save(tmp_path / "tuned")
    reloaded = mlwright.load(saved)
    assert reloaded.info["decision_threshold"]["threshold"] == pytest.approx(choice.threshold)
    proba = reloaded.predict_proba(credit_test)["good"].to_numpy()
    expected = np.where(proba >= choice.threshold, "good", "bad")
    assert list(reloaded.predict(credit_test)) == list(expected)
    # the evaluation uses the stored threshold for its label metrics
    evaluation = evaluate(reloaded, credit_test, n_resamples=50)
    assert evaluation.threshold == pytest.approx(choice.threshold)
    assert evaluation.metrics["recall"].value == pytest.approx(choice.recall)


def test_calibration_is_saved_and_keeps_the_threshold(credit_model_path, credit_test, tmp_path):
    model = mlwright.load(credit_model_path)
    tuned, choice = tune_threshold(model, credit_test, objective="f1")
    calibrated, summary = calibrate(tuned, credit_test, method="sigmoid")
    assert summary["ece_after"] <= summary["ece_before"] + 1e-9
    reloaded = mlwright.load(calibrated.save(tmp_path / "calibrated"))
    assert reloaded.predictor.threshold == pytest.approx(choice.threshold)
    assert reloaded.info["calibration"]["method"] == "sigmoid"
    assert np.allclose(reloaded.predict_proba(credit_test).sum(axis=1), 1.0)


def test_bad_requests(credit_model_path, regression_model_path, credit_test):
    model = mlwright.load(credit_model_path)
    with pytest.raises(DataError, match="no column 'class'"):
        evaluate(model, credit_test.drop(columns=["class"]))
    with pytest.raises(DataError, match="sensitive column"):
        evaluate(model, credit_test, sensitive=["nationality"], n_resamples=10)
    with pytest.raises(ConfigError, match="binary"):
        tune_threshold(mlwright.load(regression_model_path), credit_test)


def test_native_treeshap_adds_up_to_the_log_odds(credit_model_path, credit_test):
    model = mlwright.load(credit_model_path)
    row = credit_test.drop(columns=["class"]).iloc[[3]].reset_index(drop=True)
    explanation = contributions(model, row)
    assert explanation["method"] == "treeshap"
    # The log-odds of each booster, from its own prediction, weighted as the ensemble weighs it.
    predictor = model.predictor
    matrix = predictor.preprocessor.transform(row)
    logits, boosters = 0.0, 0
    for member in predictor.members:
        for booster in member.models:
            p = float(family(member.family).predict(booster, matrix, task="binary")[0, 1])
            logits += member.weight / len(member.models) * np.log(p / (1 - p))
            boosters += 1
    if boosters == 1:
        assert explanation["space"] == "log-odds"
        p = float(model.predict_proba(row)["good"].iloc[0])
        assert logits == pytest.approx(np.log(p / (1 - p)), abs=1e-6)
    else:
        assert explanation["space"] == f"weighted mean log-odds of {boosters} models"
    assert explanation["prediction"] == pytest.approx(logits, abs=1e-6)
    magnitudes = [abs(item["contribution"]) for item in explanation["contributions"]]
    assert magnitudes == sorted(magnitudes, reverse=True)


def test_shap_fallback_for_models_without_native_contributions(mixed_model_path, credit_test):
    model = mlwright.load(mixed_model_path)
    features = credit_test.drop(columns=["class"])
    row = features.iloc[[0]].reset_index(drop=True)
    explanation = contributions(model, row, background=features)
    assert explanation["method"] == "shap"
    p = float(model.predict_proba(row)["good"].iloc[0])
    assert explanation["prediction"] == pytest.approx(p, abs=1e-6)
    with pytest.raises(ConfigError, match="LightGBM or XGBoost"):
        contributions(model, row, method="native")


def test_importance_and_partial_dependence(credit_model_path, credit_test):
    model = mlwright.load(credit_model_path)
    features = credit_test.drop(columns=["class"])
    importance = permutation_importance(model, features, credit_test["class"], n_repeats=2)
    assert {row["column"] for row in importance} == set(model.feature_names)
    assert importance[0]["importance"] > 0
    native = native_importance(model)
    assert sum(row["importance"] for row in native) == pytest.approx(1.0)
    dependence = partial_dependence(model, features, ["duration", "purpose"], grid_size=5)
    assert [item["kind"] for item in dependence] == ["numeric", "categorical"]
    assert len(dependence[0]["grid"]) == len(dependence[0]["average"]) <= 5
    assert all(0 <= value <= 1 for value in dependence[1]["average"])
