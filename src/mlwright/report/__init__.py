"""Pages and plots: the data profile page (model card and drift pages join later)."""

from __future__ import annotations

from mlwright.report._profile_page import profile_page, save_profile_page

__all__ = ["profile_page", "save_profile_page"]
