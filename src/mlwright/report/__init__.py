"""Pages and plots: the data profile page (model card and drift pages join later)."""

from __future__ import annotations

from mlwright.report._drift_page import drift_page, save_drift_page
from mlwright.report._model_report import (
    attach_model_report,
    model_report_html,
    model_report_markdown,
    write_model_report,
)
from mlwright.report._profile_page import profile_page, save_profile_page

__all__ = [
    "attach_model_report",
    "drift_page",
    "model_report_html",
    "model_report_markdown",
    "profile_page",
    "save_drift_page",
    "save_profile_page",
    "write_model_report",
]
