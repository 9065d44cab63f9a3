"""Fairness across groups of sensitive columns, measured with Fairlearn.

For each sensitive column: per group, the rows, the selection rate (share predicted positive),
the true and false positive rates, and the model's metric; across groups, the demographic
parity difference and ratio and the equalized odds difference. A warning is raised in the
report when a difference exceeds its bound (default 0.1) or the ratio falls below its bound
(default 0.8, the "four-fifths rule"). Group rates need decisions, so they are computed for
binary classifiers; multiclass and regression models get the metric per group only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fairlearn.metrics import (
    MetricFrame,
    count,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)

from mlwright.errors import ConfigError, DataError
from mlwright.evaluate._metrics import EvalData, weighted_metric
from mlwright.evaluate._slices import slice_labels

DEFAULT_DIFFERENCE_BOUND = 0.1
DEFAULT_RATIO_BOUND = 0.8


@dataclass
class FairnessResult:
    """Fairness of one model across the groups of one sensitive column.

    Attributes
    ----------
    column
        The sensitive column.
    groups
        One dict per group: ``group``, ``n_rows``, ``selection_rate``, ``tpr``, ``fpr``,
        ``metric`` (``None`` where undefined).
    demographic_parity_difference, demographic_parity_ratio, equalized_odds_difference
        Fairlearn's between-group measures (``None`` when not defined for the task).
    warnings
        One sentence per measure past its bound.
    metric
        The name of the metric reported per group.
    """

    column: str
    metric: str
    groups: list[dict[str, Any]]
    demographic_parity_difference: float | None = None
    demographic_parity_ratio: float | None = None
    equalized_odds_difference: float | None = None
    warnings: list[str] = field(default_factory=list)
    difference_bound: float = DEFAULT_DIFFERENCE_BOUND
    ratio_bound: float = DEFAULT_RATIO_BOUND

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "column": self.column,
            "metric": self.metric,
            "groups": self.groups,
            "demographic_parity_difference": self.demographic_parity_difference,
            "demographic_parity_ratio": self.demographic_parity_ratio,
            "equalized_odds_difference": self.equalized_odds_difference,
            "difference_bound": self.difference_bound,
            "ratio_bound": self.ratio_bound,
            "warnings": self.warnings,
        }


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def fairness_report(
    frame,
    data: EvalData,
    sensitive: list[str],
    *,
    metric: str,
    difference_bound: float = DEFAULT_DIFFERENCE_BOUND,
    ratio_bound: float = DEFAULT_RATIO_BOUND,
) -> list[FairnessResult]:
    """Group fairness of a model's predictions for each sensitive column.

    Parameters
    ----------
    frame
        The evaluated rows (aligned with ``data``) holding the sensitive columns.
    data
        Encoded true values and predictions.
    sensitive
        Names of the sensitive columns (e.g. ``["sex", "race"]``).
    metric
        The model metric reported per group.
    difference_bound, ratio_bound
        Warn when a difference exceeds ``difference_bound`` or the parity ratio falls below
        ``ratio_bound``.

    Returns
    -------
    list of FairnessResult
        One per sensitive column.
    """
    if not 0 <= difference_bound <= 1 or not 0 <= ratio_bound <= 1:
        raise ConfigError(
            f"Fairness bounds must be between 0 and 1; got difference {difference_bound}, "
            f"ratio {ratio_bound}."
        )
    missing = [name for name in sensitive if name not in frame.columns]
    if missing:
        raise DataError(
            f"The sensitive column(s) {missing} are not in the data. Available columns: "
            f"{', '.join(map(str, list(frame.columns)[:30]))}. Pass --sensitive with a column "
            "of the evaluation data (it need not be a model input)."
        )
    results = []
    for column in sensitive:
        groups = slice_labels(frame[column])
        per_group_metric = {}
        for value in sorted(set(groups.tolist())):
            subset = data.subset(groups == value)
            per_group_metric[value] = _finite(
                weighted_metric(metric, subset, np.ones((1, subset.n_rows)))[0]
            )
        result = FairnessResult(
            column=str(column),
            metric=metric,
            groups=[],
            difference_bound=difference_bound,
            ratio_bound=ratio_bound,
        )
        if data.task == "binary":
            truth = (data.y_true == data.positive_index).astype(int)
            decision = (data.pred == data.positive_index).astype(int)
            frame_by_group = MetricFrame(
                metrics={
                    "n_rows": count,
                    "selection_rate": selection_rate,
                    "tpr": true_positive_rate,
                    "fpr": false_positive_rate,
                },
                y_true=truth,
                y_pred=decision,
                sensitive_features=groups,
            )
            table = frame_by_group.by_group
            for value, row in table.iterrows():
                result.groups.append(
                    {
                        "group": str(value),
                        "n_rows": int(row["n_rows"]),
                        "selection_rate": _finite(row["selection_rate"]),
                        "tpr": _finite(row["tpr"]),
                        "fpr": _finite(row["fpr"]),
                        "metric": per_group_metric.get(value),
                    }
                )
            # Fairlearn's demographic_parity_difference/ratio and equalized_odds_difference
            # are these between-group aggregates of the same MetricFrame; reading them from
            # the frame already computed avoids three more passes over the data.
            difference = frame_by_group.difference(method="between_groups")
            ratio = frame_by_group.ratio(method="between_groups")
            result.demographic_parity_difference = _finite(difference["selection_rate"])
            result.demographic_parity_ratio = _finite(ratio["selection_rate"])
            result.equalized_odds_difference = _finite(max(difference["tpr"], difference["fpr"]))
            _add_warnings(result)
        else:
            for value in sorted(set(groups.tolist())):
                result.groups.append(
                    {
                        "group": str(value),
                        "n_rows": int((groups == value).sum()),
                        "selection_rate": None,
                        "tpr": None,
                        "fpr": None,
                        "metric": per_group_metric[value],
                    }
                )
        results.append(result)
    return results


def _add_warnings(result: FairnessResult) -> None:
    bound, ratio_bound = result.difference_bound, result.ratio_bound
    if (value := result.demographic_parity_difference) is not None and value > bound:
        result.warnings.append(
            f"Demographic parity difference for '{result.column}' is {value:.3f} (> {bound:g}): "
            "the share of positive predictions differs that much between its groups."
        )
    if (value := result.demographic_parity_ratio) is not None and value < ratio_bound:
        result.warnings.append(
            f"Demographic parity ratio for '{result.column}' is {value:.3f} (< {ratio_bound:g}): "
            "the least-selected group is selected at under "
            f"{ratio_bound:.0%} of the rate of the most-selected group."
        )
    if (value := result.equalized_odds_difference) is not None and value > bound:
        result.warnings.append(
            f"Equalized odds difference for '{result.column}' is {value:.3f} (> {bound:g}): the "
            "true or false positive rate differs that much between its groups."
        )
