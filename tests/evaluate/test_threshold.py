"""Decision thresholds reach their targets and agree with a brute-force search."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score

from mlwright.errors import ConfigError, DataError
from mlwright.evaluate import choose_threshold
from mlwright.evaluate._threshold import parse_objective


@pytest.fixture
def scored():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 2000)
    p = 1 / (1 + np.exp(-rng.normal(1.2 * (2 * y - 1), 1.0)))
    return y, np.round(p, 3)


def _at(y, p, threshold):
    decided = (p >= threshold).astype(int)
    return (
        precision_score(y, decided, zero_division=1.0),
        recall_score(y, decided),
        f1_score(y, decided),
    )


def test_f1_threshold_is_the_best_f1(scored):
    y, p = scored
    choice = choose_threshold(y, p, objective="f1")
    precision, recall, f1 = _at(y, p, choice.threshold)
    assert choice.f1 == pytest.approx(f1)
    assert choice.precision == pytest.approx(precision)
    best = max(f1_score(y, (p >= t).astype(int)) for t in np.unique(p))
    assert choice.f1 == pytest.approx(best)


def test_precision_and_recall_targets(scored):
    y, p = scored
    precise = choose_threshold(y, p, objective="precision", target=0.95)
    precision, recall, _ = _at(y, p, precise.threshold)
    assert precise.achieved
    assert precision >= 0.95
    assert recall == pytest.approx(precise.recall)
    # no lower distinct score keeps precision >= 0.95 with more recall
    lower = np.unique(p[p < precise.threshold])
    assert all(_at(y, p, t)[0] < 0.95 for t in lower[-5:])
    recalled = choose_threshold(y, p, objective="recall", target=0.9)
    precision, recall, _ = _at(y, p, recalled.threshold)
    assert recall >= 0.9
    assert recalled.achieved
    higher = np.unique(p[p > recalled.threshold])
    # higher[0] is the lowest score still predicted positive: the same decisions
    assert all(_at(y, p, t)[1] < 0.9 for t in higher[1:6])
    assert "recall >= 0.9" in recalled.describe()


def test_cost_threshold_minimises_cost(scored):
    y, p = scored
    choice = choose_threshold(y, p, objective="cost", cost_false_positive=1, cost_false_negative=5)

    def cost(t):
        decided = p >= t
        return (np.sum(decided & (y == 0)) + 5 * np.sum(~decided & (y == 1))) / len(y)

    assert choice.cost == pytest.approx(cost(choice.threshold))
    assert choice.cost <= min(cost(t) for t in np.unique(p)) + 1e-12
    # expensive misses push the threshold below the F1 one
    assert choice.threshold < choose_threshold(y, p).threshold


def test_unreachable_target_is_flagged():
    y = np.array([0, 1, 0, 1, 0, 1])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    choice = choose_threshold(y, p, objective="precision", target=0.99)
    assert not choice.achieved
    assert "not reachable" in choice.describe()


def test_labels_and_positive_class():
    y = np.array(["no", "yes", "no", "yes"], dtype=object)
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9]])
    choice = choose_threshold(y, proba, classes=["no", "yes"])
    assert choice.positive_label == "yes"
    assert 0.4 < choice.threshold <= 0.7
    assert choice.to_dict()["positive_label"] == "yes"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("f1", {"objective": "f1"}),
        ("precision=0.9", {"objective": "precision", "target": 0.9}),
        ("recall=.8", {"objective": "recall", "target": 0.8}),
        ("cost=1:5", {"objective": "cost", "cost_false_positive": 1.0, "cost_false_negative": 5.0}),
    ],
)
def test_parse_objective(text, expected):
    assert parse_objective(text) == expected


def test_bad_objectives():
    with pytest.raises(ConfigError, match="precision=0.9"):
        parse_objective("accuracy")
    with pytest.raises(ConfigError, match=r"\(0, 1\]"):
        choose_threshold([0, 1], [0.2, 0.8], objective="precision", target=1.5)
    with pytest.raises(DataError, match="both classes"):
        choose_threshold([1, 1], [0.2, 0.8], classes=[0, 1])
