"""Plots of the model report, drawn with matplotlib and embedded as PNG data URIs.

Figures reuse the profile page's rendering (:func:`mlwright.report._plots._to_data_uri`) and
colour, at a larger size: a model report has a few plots, each worth reading.
"""

from __future__ import annotations

from typing import Any

import matplotlib
import numpy as np

from mlwright.report._plots import _COLOR, _label, _to_data_uri

_SIZE = (4.6, 3.4)
_SECOND = "#c8553d"
_GREY = "#9aa4b2"


def _figure(size: tuple[float, float] = _SIZE):
    matplotlib.use("Agg", force=False)
    # deferred: pyplot comes after matplotlib.use("Agg"), so that only drawing picks a backend
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=size, dpi=100)
    axes.spines[["top", "right"]].set_visible(False)
    axes.tick_params(labelsize=8)
    return plt, figure, axes


def roc_plot(roc: dict[str, list[float]], auc: float | None) -> str:
    """ROC curve with the chance diagonal."""
    plt, figure, axes = _figure()
    label = f"ROC AUC {auc:.3f}" if auc is not None else "ROC"
    axes.plot(roc["fpr"], roc["tpr"], color=_COLOR, linewidth=1.8, label=label)
    axes.plot([0, 1], [0, 1], color=_GREY, linestyle="--", linewidth=1, label="chance")
    axes.set_xlabel("false positive rate", fontsize=9)
    axes.set_ylabel("true positive rate", fontsize=9)
    axes.set_title("ROC curve", fontsize=10)
    axes.legend(fontsize=8, loc="lower right", frameon=False)
    return _to_data_uri(plt, figure)


def pr_plot(pr: dict[str, Any], average_precision: float | None) -> str:
    """Precision-recall curve with the base rate."""
    plt, figure, axes = _figure()
    label = f"PR AUC {average_precision:.3f}" if average_precision is not None else "PR"
    axes.step(pr["recall"], pr["precision"], where="post", color=_COLOR, linewidth=1.8, label=label)
    axes.axhline(pr["base_rate"], color=_GREY, linestyle="--", linewidth=1, label="base rate")
    axes.set_xlabel("recall", fontsize=9)
    axes.set_ylabel("precision", fontsize=9)
    axes.set_ylim(0, 1.02)
    axes.set_title("Precision-recall curve", fontsize=10)
    axes.legend(fontsize=8, loc="lower left", frameon=False)
    return _to_data_uri(plt, figure)


def confusion_plot(confusion: dict[str, Any]) -> str:
    """Confusion matrix as a heat map with counts and row shares."""
    labels = [_label(v, 12) for v in confusion["labels"]]
    matrix = np.asarray(confusion["matrix"], dtype=float)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    side = min(2.6 + 0.45 * len(labels), 8)
    plt, figure, axes = _figure((side + 0.8, side))
    axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(
        range(len(labels)),
        labels,
        rotation=45 if len(labels) > 3 else 0,
        ha="right" if len(labels) > 3 else "center",
    )
    axes.set_yticks(range(len(labels)), labels)
    if len(labels) <= 12:
        for i in range(len(labels)):
            for j in range(len(labels)):
                colour = "white" if shares[i, j] > 0.6 else "#1d2330"
                axes.text(
                    j,
                    i,
                    f"{int(matrix[i, j]):,}\n{shares[i, j]:.0%}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color=colour,
                )
    axes.set_xlabel("predicted", fontsize=9)
    axes.set_ylabel("true", fontsize=9)
    axes.set_title("Confusion matrix (share of each true class)", fontsize=10)
    return _to_data_uri(plt, figure)


def calibration_plot(curve: dict[str, Any], ece: float) -> str:
    """Reliability diagram: predicted probability against observed frequency."""
    plt, figure, axes = _figure()
    axes.plot([0, 1], [0, 1], color=_GREY, linestyle="--", linewidth=1, label="perfect")
    axes.plot(
        curve["mean_predicted"],
        curve["observed"],
        marker="o",
        markersize=4,
        color=_COLOR,
        linewidth=1.6,
        label=f"model (ECE {ece:.3f})",
    )
    what = "positive class" if curve["kind"] == "positive" else "top label"
    axes.set_xlabel(f"predicted probability ({what})", fontsize=9)
    axes.set_ylabel("observed frequency", fontsize=9)
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_title("Calibration", fontsize=10)
    axes.legend(fontsize=8, loc="upper left", frameon=False)
    return _to_data_uri(plt, figure)


def residual_plots(sample: dict[str, list[float]]) -> list[str]:
    """Predicted against actual, and the distribution of residuals."""
    predicted = np.asarray(sample["predicted"])
    actual = np.asarray(sample["actual"])
    plt, figure, axes = _figure()
    axes.scatter(actual, predicted, s=6, alpha=0.4, color=_COLOR, linewidths=0)
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    axes.plot([low, high], [low, high], color=_GREY, linestyle="--", linewidth=1)
    axes.set_xlabel("actual", fontsize=9)
    axes.set_ylabel("predicted", fontsize=9)
    axes.set_title("Predicted vs actual", fontsize=10)
    first = _to_data_uri(plt, figure)
    plt, figure, axes = _figure()
    axes.hist(predicted - actual, bins=40, color=_COLOR)
    axes.axvline(0, color=_GREY, linestyle="--", linewidth=1)
    axes.set_xlabel("residual (predicted - actual)", fontsize=9)
    axes.set_ylabel("rows", fontsize=9)
    axes.set_title("Residuals", fontsize=10)
    return [first, _to_data_uri(plt, figure)]


def importance_plot(
    rows: list[dict[str, Any]], title: str, xlabel: str, limit: int = 15
) -> str | None:
    """Horizontal bars of feature importance (with error bars when a ``std`` is given)."""
    rows = rows[:limit]
    if not rows:
        return None
    names = [_label(row["column"], 24) for row in rows][::-1]
    values = [row["importance"] for row in rows][::-1]
    errors = [row.get("std", 0.0) for row in rows][::-1]
    plt, figure, axes = _figure((4.8, 0.8 + 0.24 * len(rows)))
    axes.barh(
        names,
        values,
        xerr=errors if any(errors) else None,
        color=_COLOR,
        error_kw={"elinewidth": 0.8, "ecolor": _GREY},
    )
    axes.axvline(0, color=_GREY, linewidth=0.8)
    axes.set_xlabel(xlabel, fontsize=9)
    axes.set_title(title, fontsize=10)
    return _to_data_uri(plt, figure)


def dependence_plot(dependence: dict[str, Any], classes: list[Any] | None) -> str:
    """Partial dependence of one column: a line for numbers, bars for categories."""
    plt, figure, axes = _figure((3.8, 2.8))
    averages = np.asarray(dependence["average"], dtype=float)
    grid = dependence["grid"]
    multi = averages.ndim == 2
    if dependence["kind"] == "numeric":
        if multi:
            for k in range(averages.shape[1]):
                axes.plot(
                    grid,
                    averages[:, k],
                    linewidth=1.4,
                    label=_label(classes[k], 10) if classes else str(k),
                )
            axes.legend(fontsize=7, frameon=False)
        else:
            axes.plot(grid, averages, color=_COLOR, linewidth=1.8, marker="o", markersize=3)
    else:
        labels = [_label(v, 12) for v in grid]
        values = averages.max(axis=1) if multi else averages
        axes.bar(labels, values, color=_COLOR)
        axes.tick_params(axis="x", labelrotation=45)
    axes.set_xlabel(_label(dependence["column"], 30), fontsize=9)
    axes.set_ylabel(dependence["output"] if not multi else "P(class)", fontsize=9)
    axes.set_title(f"Partial dependence: {_label(dependence['column'], 24)}", fontsize=10)
    return _to_data_uri(plt, figure)
