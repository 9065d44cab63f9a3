"""Matplotlib plots rendered to PNG data URIs, so pages embed them and need no other files."""

from __future__ import annotations

import base64
import io
from typing import Any

import matplotlib

#: Small figures: a profile page holds one per column.
_SIZE = (3.6, 2.2)
_COLOR = "#3b6ea8"


def _figure():
    matplotlib.use("Agg", force=False)
    # deferred: pyplot comes after matplotlib.use("Agg"), so that only drawing picks a backend
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=_SIZE, dpi=100)
    axes.spines[["top", "right"]].set_visible(False)
    axes.tick_params(labelsize=7)
    return plt, figure, axes


def _to_data_uri(plt, figure) -> str:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _label(value: Any, width: int = 18) -> str:
    text = "(missing)" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def histogram_plot(histogram: dict[str, Any] | None) -> str | None:
    """A bar chart of a column histogram (as computed by the profile) as a PNG data URI.

    ``histogram["type"]`` is ``"bins"`` (``edges`` and ``counts``), ``"values"`` (numeric
    ``values`` and ``counts``) or ``"categories"`` (``values``, ``counts`` and ``other``).
    Returns None when there is nothing to draw.
    """
    if not histogram or not histogram.get("counts"):
        return None
    plt, figure, axes = _figure()
    kind = histogram.get("type")
    counts = histogram["counts"]
    if kind == "bins":
        edges = histogram["edges"]
        widths = [b - a for a, b in zip(edges[:-1], edges[1:], strict=True)]
        axes.bar(edges[:-1], counts, width=widths, align="edge", color=_COLOR, linewidth=0)
    elif kind == "values":
        values = histogram["values"]
        if len(values) <= 12:
            axes.bar([_label(v, 10) for v in values], counts, color=_COLOR)
            axes.tick_params(axis="x", labelrotation=45)
        else:
            spacing = min(b - a for a, b in zip(values[:-1], values[1:], strict=True)) or 1
            axes.bar(values, counts, width=spacing * 0.9, color=_COLOR)
    else:
        values = [_label(v) for v in histogram.get("values", [])][:15]
        shown = list(counts[: len(values)])
        other = histogram.get("other", 0) + sum(counts[len(values) :])
        if other:
            values.append("(other)")
            shown.append(other)
        positions = list(range(len(values)))[::-1]
        axes.barh(positions, shown, color=_COLOR)
        axes.set_yticks(positions, values)
    axes.set_ylabel("rows" if kind != "categories" else "", fontsize=7)
    return _to_data_uri(plt, figure)


def association_plot(associations: dict[str, dict[str, Any]], limit: int = 25) -> str | None:
    """Horizontal bars of feature-target association (strongest first), as a data URI."""
    items = [
        (name, item["value"])
        for name, item in associations.items()
        if item.get("value") is not None
    ][:limit]
    if not items:
        return None
    plt, figure, axes = _figure()
    figure.set_size_inches(6, 0.22 * len(items) + 0.8)
    positions = list(range(len(items)))[::-1]
    axes.barh(positions, [value for _, value in items], color=_COLOR)
    axes.set_yticks(positions, [_label(name, 28) for name, _ in items])
    axes.set_xlim(0, 1)
    axes.set_xlabel("association with the target (0 = none, 1 = perfect)", fontsize=7)
    return _to_data_uri(plt, figure)
