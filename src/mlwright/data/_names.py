"""Column names in messages: the closest names to a mistyped one, and a short preview."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from mlwright.errors import DataError

__all__ = ["check_columns_exist", "preview_names", "suggest_names"]


def suggest_names(name: str, names: Iterable[str], n: int = 3) -> list[str]:
    """The closest names to ``name`` (case-insensitive), best first."""
    names = [str(candidate) for candidate in names]
    lowered = {candidate.lower(): candidate for candidate in names}
    matches = difflib.get_close_matches(str(name).lower(), list(lowered), n=n, cutoff=0.5)
    return [lowered[match] for match in matches]


def check_columns_exist(wanted: Iterable[str], available: Sequence[str], source: str) -> None:
    """Raise DataError naming the first wanted column that is not available, with suggestions."""
    present = set(available)
    for column in wanted:
        if column not in present:
            raise DataError(_unknown_column_message(column, available, source))


def _unknown_column_message(column: str, available: Sequence[str], source: str) -> str:
    close = suggest_names(column, available)
    hint = (
        f"Did you mean {', '.join(repr(name) for name in close)}?"
        if close
        else f"The columns are: {preview_names(available)}."
    )
    return (
        f"Column {column!r} is not in {source}. {hint} Column names are case-sensitive; pass "
        "one of the file's column names."
    )


def preview_names(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(repr(name) for name in list(names)[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")
