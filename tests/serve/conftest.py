"""Fixtures for the serving tests (defined in serve_helpers, shared with tests/e2e)."""

from __future__ import annotations

from serve_helpers import (  # noqa: F401  (pytest finds fixtures by name)
    credit_copy,
    credit_model_dir,
    credit_model_dir_b,
    credit_records,
    serve_env,
)
