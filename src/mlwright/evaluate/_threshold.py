"""Choosing the decision threshold of a binary classifier.

A model's probabilities are turned into decisions with a threshold on the positive class.
0.5 is rarely what a business wants: it may need 90% precision, 80% recall, or the cheapest
mix of false positives and false negatives. The threshold is chosen on held-out rows by
scanning every distinct score once (sorted cumulative counts), and placed half-way between
the chosen score and the next lower one so that it does not sit exactly on a training score.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mlwright.errors import ConfigError, DataError
from mlwright.evaluate._metrics import prepare

OBJECTIVES = ("f1", "precision", "recall", "cost")


@dataclass(frozen=True)
class ThresholdChoice:
    """A chosen decision threshold and what it achieves on the rows it was chosen on.

    Attributes
    ----------
    threshold
        Predict the positive class when its probability is at least this.
    objective
        ``"f1"``, ``"precision"``, ``"recall"`` or ``"cost"``.
    target
        The precision or recall asked for (``None`` otherwise).
    cost_false_positive, cost_false_negative
        The costs used by the ``"cost"`` objective.
    positive_label
        The class the threshold applies to.
    precision, recall, f1
        Achieved on the rows used.
    cost
        Mean cost per row (false positives x their cost + false negatives x theirs).
    achieved
        ``False`` when no threshold reaches the target; the threshold then maximises the
        targeted quantity instead.
    n_rows
        Rows the threshold was chosen on.
    """

    threshold: float
    objective: str
    target: float | None
    cost_false_positive: float
    cost_false_negative: float
    positive_label: Any
    precision: float
    recall: float
    f1: float
    cost: float
    achieved: bool
    n_rows: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (the positive label as it is, for the model's metadata)."""
        out = asdict(self)
        label = out["positive_label"]
        if isinstance(label, np.generic):
            out["positive_label"] = label.item()
        return out

    def describe(self) -> str:
        """One line saying what was chosen and why."""
        if self.objective == "f1":
            goal = "the best F1"
        elif self.objective == "precision":
            goal = f"precision >= {self.target:g} with the most recall"
        elif self.objective == "recall":
            goal = f"recall >= {self.target:g} with the most precision"
        else:
            goal = (
                f"the lowest cost (false positive {self.cost_false_positive:g}, false negative "
                f"{self.cost_false_negative:g})"
            )
        note = "" if self.achieved else " (target not reachable: closest threshold used)"
        return (
            f"Threshold {self.threshold:.4g} on P({self.positive_label}) for {goal}{note}: "
            f"precision {self.precision:.3f}, recall {self.recall:.3f}, F1 {self.f1:.3f} on "
            f"{self.n_rows} rows."
        )


def parse_objective(text: str) -> dict[str, Any]:
    """Parse ``f1``, ``precision=0.9``, ``recall=0.8`` or ``cost=FP:FN`` into arguments.

    Returns
    -------
    dict
        Keyword arguments for :func:`choose_threshold`.
    """
    spec = str(text).strip().lower()
    if spec == "f1":
        return {"objective": "f1"}
    match = re.fullmatch(r"(precision|recall)\s*=\s*([0-9]*\.?[0-9]+)", spec)
    if match:
        return {"objective": match.group(1), "target": float(match.group(2))}
    match = re.fullmatch(r"cost\s*=\s*([0-9]*\.?[0-9]+)\s*:\s*([0-9]*\.?[0-9]+)", spec)
    if match:
        return {
            "objective": "cost",
            "cost_false_positive": float(match.group(1)),
            "cost_false_negative": float(match.group(2)),
        }
    raise ConfigError(
        f"Cannot read the threshold objective {text!r}. Use one of: f1, precision=0.9, "
        "recall=0.8, cost=FP:FN (e.g. cost=1:5 when a missed positive costs five times a "
        "false alarm)."
    )


def threshold_curve(y_true, proba, *, classes=None, positive_label=None) -> dict[str, np.ndarray]:
    """Precision, recall and counts at every distinct threshold, highest threshold first.

    Returns
    -------
    dict
        ``thresholds`` (midpoints), ``scores`` (distinct scores), ``true_positive``,
        ``false_positive``, ``precision``, ``recall``, ``f1``, and ``positives``/``n``.
    """
    data = prepare(y_true, proba, task="binary", classes=classes, positive_label=positive_label)
    score = data.proba[:, data.positive_index]
    positive = data.y_true == data.positive_index
    order = np.argsort(-score, kind="mergesort")
    ordered = score[order]
    hits = positive[order].astype(np.float64)
    # the last row of each run of equal scores: thresholds sit between distinct scores
    ends = np.flatnonzero(np.r_[ordered[1:] != ordered[:-1], True])
    true_positive = np.cumsum(hits)[ends]
    false_positive = (ends + 1) - true_positive
    distinct = ordered[ends]
    lower_neighbour = np.r_[distinct[1:], max(distinct[-1] - 1e-6, 0.0)]
    thresholds = (distinct + lower_neighbour) / 2.0
    # a threshold above every score predicts nothing positive
    thresholds = np.r_[min(distinct[0] + 1e-6, 1.0 + 1e-6), thresholds]
    true_positive = np.r_[0.0, true_positive]
    false_positive = np.r_[0.0, false_positive]
    total_positive = float(positive.sum())
    predicted = true_positive + false_positive
    precision = np.divide(
        true_positive, predicted, out=np.ones_like(true_positive), where=predicted > 0
    )
    recall = true_positive / total_positive if total_positive > 0 else np.zeros_like(true_positive)
    denominator = total_positive + predicted
    f1 = np.divide(
        2 * true_positive, denominator, out=np.zeros_like(true_positive), where=denominator > 0
    )
    return {
        "thresholds": thresholds,
        "true_positive": true_positive,
        "false_positive": false_positive,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "positives": total_positive,
        "n": float(data.n_rows),
        "positive_label": data.positive_label,
    }


def choose_threshold(
    y_true,
    proba,
    *,
    objective: str = "f1",
    target: float | None = None,
    cost_false_positive: float = 1.0,
    cost_false_negative: float = 1.0,
    classes=None,
    positive_label=None,
) -> ThresholdChoice:
    """Choose a binary decision threshold on held-out rows.

    Parameters
    ----------
    y_true
        True labels.
    proba
        Probabilities ``(n, 2)`` in the order of ``classes`` or the positive-class
        probability ``(n,)``.
    objective
        ``"f1"`` (maximise F1), ``"precision"`` (reach ``target`` precision with the most
        recall), ``"recall"`` (reach ``target`` recall with the most precision) or ``"cost"``
        (minimise ``cost_false_positive * FP + cost_false_negative * FN``).
    target
        The precision or recall to reach, in (0, 1].
    cost_false_positive, cost_false_negative
        Costs of each kind of error for ``"cost"``.
    classes, positive_label
        Class order of ``proba`` and which class is positive (default: the second).

    Returns
    -------
    ThresholdChoice

    Examples
    --------
    >>> y = [0, 0, 1, 1, 1]
    >>> choice = choose_threshold(y, [0.1, 0.6, 0.4, 0.8, 0.9], objective="precision", target=1)
    >>> round(choice.threshold, 2), choice.recall
    (0.7, 0.6666666666666666)
    """
    objective = str(objective).lower()
    if objective not in OBJECTIVES:
        raise ConfigError(
            f"Unknown threshold objective {objective!r}; use one of {', '.join(OBJECTIVES)}."
        )
    if objective in ("precision", "recall"):
        if target is None or not 0.0 < float(target) <= 1.0:
            raise ConfigError(
                f"The {objective} target must be a number in (0, 1]; got {target}. For "
                f"example --threshold-for {objective}=0.9."
            )
    if objective == "cost" and (
        cost_false_positive < 0
        or cost_false_negative < 0
        or (cost_false_positive == 0 and cost_false_negative == 0)
    ):
        raise ConfigError(
            f"Costs must be non-negative and not both zero; got false positive "
            f"{cost_false_positive}, false negative {cost_false_negative}."
        )
    curve = threshold_curve(y_true, proba, classes=classes, positive_label=positive_label)
    if curve["positives"] == 0 or curve["positives"] == curve["n"]:
        raise DataError(
            "Choosing a threshold needs rows of both classes, but the data holds only one "
            "class. Use held-out data with positive and negative examples."
        )
    precision, recall, f1 = curve["precision"], curve["recall"], curve["f1"]
    false_negative = curve["positives"] - curve["true_positive"]
    cost = (
        cost_false_positive * curve["false_positive"] + cost_false_negative * false_negative
    ) / curve["n"]
    achieved = True
    if objective == "f1":
        best = int(np.argmax(f1))
    elif objective == "cost":
        best = int(np.argmin(cost))
    elif objective == "precision":
        reached = np.flatnonzero((precision >= target) & (curve["true_positive"] > 0))
        if reached.size:
            best = int(reached[-1])  # lowest threshold still precise enough: most recall
        else:
            achieved = False
            best = int(np.argmax(np.where(curve["true_positive"] > 0, precision, -1.0)))
    else:
        reached = np.flatnonzero(recall >= target)
        best = int(reached[0])  # highest threshold that recalls enough: most precision
    return ThresholdChoice(
        threshold=float(max(curve["thresholds"][best], 0.0)),
        objective=objective,
        target=None if target is None else float(target),
        cost_false_positive=float(cost_false_positive),
        cost_false_negative=float(cost_false_negative),
        positive_label=curve["positive_label"],
        precision=float(precision[best]),
        recall=float(recall[best]),
        f1=float(f1[best]),
        cost=float(cost[best]),
        achieved=achieved,
        n_rows=int(curve["n"]),
    )
