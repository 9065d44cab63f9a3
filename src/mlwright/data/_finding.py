"""A data-quality :class:`Finding`, shared by every family of checks."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["SEVERITIES", "Finding", "json_safe", "pct", "sort_findings"]

SEVERITIES = ("error", "warning", "info")
_ORDER = {severity: index for index, severity in enumerate(SEVERITIES)}


@dataclass
class Finding:
    """One data-quality finding.

    Attributes
    ----------
    kind
        What was found (``missing_values``, ``target_leakage``, ...).
    severity
        ``"error"``, ``"warning"`` or ``"info"``.
    columns
        The columns involved (empty for whole-table findings such as duplicate rows).
    evidence
        The numbers behind the finding (counts, shares, test statistics).
    fix
        What to do about it.
    message
        One sentence stating the finding.
    """

    kind: str
    severity: str
    columns: list[str]
    evidence: dict[str, Any]
    fix: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dictionary."""
        return json_safe(asdict(self))


def json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return json_safe(value.item())
    return value


def pct(share: float) -> str:
    if share == 0:
        return "0%"
    if share < 0.001:
        return "<0.1%"
    if 0.99 < share < 1:  # "100.0%" would hide the few rows that differ
        return f"{share:.2%}"
    return f"{share:.1%}"


def sort_findings(findings: list[Finding]) -> list[Finding]:
    return sorted(
        findings,
        key=lambda f: (_ORDER.get(f.severity, 9), f.kind, ",".join(f.columns)),
    )
