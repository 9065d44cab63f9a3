"""Helpers several command modules share: options parsed alike, lines printed alike."""

from __future__ import annotations

from typing import Any

__all__ = ["NA_VALUES_HELP", "dropped_rows_line", "na_values_option", "number", "summary_line"]


NA_VALUES_HELP = (
    "Cells read as missing, in every column: a comma-separated list such as '?,-' or "
    "'-999' ('' for only empty cells), or a JSON object per column such as "
    '\'{"income": ["-999"]}\'. Default: empty cells, and a marker (NA, ?, -, ...) only where '
    "it is anomalous for its column (among numbers, or in a column of nothing but markers)."
)


def na_values_option(text: str | None) -> object:
    """The ``--na-values`` text as ``na_values`` (checked: a ConfigError names the fix)."""
    # deferred: mlwright.data loads pandas and DuckDB (~0.5 s), not paid by `mlwright --help`
    from mlwright.data._markers import normalise_na_values, parse_cli_na_values

    value = parse_cli_na_values(text)
    normalise_na_values(value)
    return value


def dropped_rows_line(lineage: dict[str, Any]) -> str | None:
    """``3 rows without a value of 'price' were left out (read as missing: 2 '?', 1 empty).``"""
    data = (lineage or {}).get("data") or {}
    dropped = data.get("dropped_rows") or {}
    count = int(dropped.get("missing_target") or 0)
    if not count:
        return None
    markers = dropped.get("missing_target_markers") or {}
    shown = ", ".join(
        f"{number:,} empty" if marker == "" else f"{number:,} {marker!r}"
        for marker, number in markers.items()
    )
    return (
        f"{count:,} row{'s' if count != 1 else ''} without a value of {data.get('target')!r} "
        "were left out of training" + (f" (read as missing: {shown})" if shown else "") + "."
    )


def summary_line(metrics: dict[str, Any]) -> str:
    """``Validation roc_auc: 0.7812 ± 0.0213 (5 folds)``."""
    score = metrics.get("validation_score")
    spread = metrics.get("validation_std")
    folds = metrics.get("n_folds")
    text = f"Validation {metrics.get('metric')}: {number(score)}"
    if spread is not None:
        text += f" ± {number(spread)}"
    if folds:
        text += f" ({folds} folds)"
    return text


def number(value: Any) -> str:
    """A score as printed: four decimals, or the value as it is."""
    return f"{value:.4f}" if isinstance(value, (int, float)) else str(value)
