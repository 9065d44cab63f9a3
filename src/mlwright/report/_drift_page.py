"""The drift report: one self-contained HTML page (plots embedded as PNG data URIs).

Per feature, the reference and current distributions side by side with the statistics that
decided; then the prediction distribution, live metric windows against the validation interval,
and traffic over time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from mlwright._files import write_text_atomically
from mlwright.report._plots import _figure, _label, _to_data_uri

_TEMPLATES = Path(__file__).parent / "templates"
_REFERENCE_COLOR = "#8a94a6"
_CURRENT_COLOR = "#d9622b"


def distribution_plot(plot: dict[str, Any]) -> str | None:
    """Reference vs current distribution of one feature, as a PNG data URI."""
    if not plot:
        return None
    plt, figure, axes = _figure()
    figure.set_size_inches(4.2, 2.4)
    if plot.get("type") == "bins":
        edges = plot["edges"]
        centres = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:], strict=True)]
        width = edges[1] - edges[0]
        axes.bar(
            centres,
            plot["reference"],
            width=width,
            color=_REFERENCE_COLOR,
            alpha=0.6,
            label="reference",
        )
        axes.step(
            centres,
            plot["current"],
            where="mid",
            color=_CURRENT_COLOR,
            linewidth=1.6,
            label="current",
        )
    else:
        names = [_label(name, 16) for name in plot["categories"]]
        positions = list(range(len(names)))[::-1]
        axes.barh(
            [p + 0.2 for p in positions],
            plot["reference"],
            height=0.4,
            color=_REFERENCE_COLOR,
            label="reference",
        )
        axes.barh(
            [p - 0.2 for p in positions],
            plot["current"],
            height=0.4,
            color=_CURRENT_COLOR,
            label="current",
        )
        axes.set_yticks(positions, names)
    axes.set_ylabel("share" if plot.get("type") == "bins" else "", fontsize=7)
    axes.legend(fontsize=6, frameon=False)
    return _to_data_uri(plt, figure)


def performance_plot(performance: dict[str, Any]) -> str | None:
    """Live metric per window with its interval, and the validation interval."""
    windows = performance.get("windows") or []
    if not windows:
        return None
    plt, figure, axes = _figure()
    figure.set_size_inches(6.5, 2.6)
    ends = [datetime.fromtimestamp(w["end"], UTC) for w in windows]
    values = [w["value"] for w in windows]
    lower = [w["lower"] if w["lower"] is not None else w["value"] for w in windows]
    upper = [w["upper"] if w["upper"] is not None else w["value"] for w in windows]
    axes.fill_between(ends, lower, upper, color=_CURRENT_COLOR, alpha=0.2, linewidth=0)
    axes.plot(ends, values, marker="o", markersize=3, color=_CURRENT_COLOR, label="live")
    validation = performance.get("validation") or {}
    if validation.get("value") is not None:
        axes.axhline(
            validation["value"], color=_REFERENCE_COLOR, linestyle="--", label="validation"
        )
        axes.axhspan(validation["lower"], validation["upper"], color=_REFERENCE_COLOR, alpha=0.15)
    axes.set_ylabel(performance.get("metric", ""), fontsize=7)
    axes.legend(fontsize=6, frameon=False)
    figure.autofmt_xdate()
    return _to_data_uri(plt, figure)


def traffic_plot(traffic: list[dict[str, Any]]) -> str | None:
    """Predictions per window."""
    if not traffic:
        return None
    plt, figure, axes = _figure()
    figure.set_size_inches(6.5, 2.2)
    starts = [datetime.fromtimestamp(item["start"], UTC) for item in traffic]
    axes.plot(
        starts, [item["count"] for item in traffic], marker="o", markersize=3, color="#3b6ea8"
    )
    axes.set_ylabel("predictions", fontsize=7)
    figure.autofmt_xdate()
    return _to_data_uri(plt, figure)


def drift_page(
    report: Any,
    *,
    title: str = "Drift report",
    performance: Any = None,
    traffic: list[dict[str, Any]] | None = None,
) -> str:
    """The drift report as one HTML string.

    Parameters
    ----------
    report
        A :class:`mlwright.monitor.DriftReport`.
    title
        The page title.
    performance
        A :class:`mlwright.monitor.LivePerformance` (optional).
    traffic
        Predictions per window (optional).
    """
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    items = list(report.features)
    features = [
        {"item": item.to_dict(with_plot=False), "plot": distribution_plot(item.plot)}
        for item in items
    ]
    prediction = None
    if report.prediction is not None:
        prediction = {
            "item": report.prediction.to_dict(with_plot=False),
            "plot": distribution_plot(report.prediction.plot),
        }
    performance_document = None if performance is None else performance.to_dict()
    return environment.get_template("drift.html.j2").render(
        title=title,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        report=report.to_dict(),
        features=features,
        prediction=prediction,
        performance=performance_document,
        performance_plot=None
        if performance_document is None
        else performance_plot(performance_document),
        traffic_plot=traffic_plot(traffic or []),
    )


def save_drift_page(report: Any, path: str | Path, **options: Any) -> Path:
    """Write :func:`drift_page` to ``path`` (folders created); returns the path."""
    return write_text_atomically(path, drift_page(report, **options), "the drift page")
