"""The profile page: one self-contained HTML file (inline CSS, plots as data URIs)."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import jinja2

from mlwright._files import write_text_atomically
from mlwright.report._plots import association_plot, histogram_plot

__all__ = ["profile_page", "save_profile_page"]

_TEMPLATES = Path(__file__).parent / "templates"


def _number(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:,.4g}"
    return str(value)


def _percent(value: Any) -> str:
    if value is None:
        return "–"
    if value == 0:
        return "0%"
    if value < 0.001:
        return "<0.1%"
    return f"{value:.1%}"


def _environment():
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["number"] = _number
    environment.filters["percent"] = _percent
    return environment


def profile_page(profile: Any, findings: list[Any] | None = None) -> str:
    """Render a :class:`~mlwright.data.Profile` (and optional check findings) as HTML.

    Parameters
    ----------
    profile
        The profile to show.
    findings
        :class:`~mlwright.data.Finding` objects to list above the columns (``mlwright run``).

    Returns
    -------
    str
        A complete HTML document with no external references: styles are inline and every
        plot is a ``data:image/png;base64`` URI.
    """

    data = profile.to_dict()
    columns = []
    for column in data["columns"]:
        columns.append({**column, "plot": histogram_plot(column.get("histogram"))})
    template = _environment().get_template("profile.html.j2")
    return template.render(
        profile=data,
        columns=columns,
        association_plot=association_plot(data["associations"]),
        findings=[f.to_dict() for f in findings] if findings is not None else None,
        title=html.escape(str(data["source"])),
    )


def save_profile_page(profile: Any, path: str | Path, findings: list[Any] | None = None) -> Path:
    """Write :func:`profile_page` to ``path`` (parents created) and return the path."""
    return write_text_atomically(path, profile_page(profile, findings), "the profile page")
