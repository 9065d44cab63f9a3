"""Train/test distribution shift: per column, a two-sample test with an effect-size floor."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from mlwright.data._finding import Finding

__all__ = ["SHIFT_ALPHA", "SHIFT_EFFECT", "shift_findings"]

#: Distribution shift needs both a significant test and at least this effect size.
SHIFT_EFFECT = 0.1
SHIFT_ALPHA = 0.001


def _holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (controls the family-wise error rate)."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    m = len(p_values)
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def shift_findings(train, test, schema: Any, target: str, test_source: str) -> list[Finding]:
    """Compare every feature's distribution in ``train`` and ``test`` samples.

    Numeric features: two-sample Kolmogorov-Smirnov test, effect size = the KS statistic D.
    Categorical features: chi-square test of the level counts (top 50 levels, missing as its
    own level), effect size = Cramér's V. p-values are Holm-adjusted across features; a
    feature is flagged when the adjusted p < 0.001 *and* the effect size >= 0.1, so that large
    samples do not flag trivial differences.
    """
    # deferred: scipy.stats adds ~1 s to `import mlwright.data`, unused by reading
    from scipy import stats as scipy_stats

    findings: list[Finding] = []
    missing = [c.name for c in schema.columns if c.name != target and c.name not in test.columns]
    if missing:
        findings.append(
            Finding(
                kind="distribution_shift",
                severity="error",
                columns=missing,
                evidence={"missing_in_test": len(missing)},
                fix="Make the test data carry the same feature columns as the training data "
                "(same names); a model trained on these columns cannot score it.",
                message=f"{len(missing)} training column(s) are absent from {test_source}, "
                f"e.g. {missing[0]!r}.",
            )
        )
    tests: list[tuple[str, str, float, float, dict]] = []
    for column_schema in schema.columns:
        name = column_schema.name
        kind = column_schema.semantic_type
        if name == target or name not in test.columns or kind in ("identifier", "constant"):
            continue
        if kind == "numeric":
            a = pd.to_numeric(train[name], errors="coerce").dropna().to_numpy(dtype=float)
            b = pd.to_numeric(test[name], errors="coerce").dropna().to_numpy(dtype=float)
            if len(a) < 20 or len(b) < 20:
                continue
            result = scipy_stats.ks_2samp(a, b)
            extra = {
                "train_median": float(np.median(a)),
                "test_median": float(np.median(b)),
            }
            tests.append((name, "ks", float(result.statistic), float(result.pvalue), extra))
        elif kind in ("categorical", "boolean", "text"):
            a = train[name].astype("string").fillna("<missing>")
            b = test[name].astype("string").fillna("<missing>")
            if len(a) < 20 or len(b) < 20:
                continue
            levels = a.value_counts().index[:50]
            a = a.where(a.isin(levels), "<other>")
            b = b.where(b.isin(levels), "<other>")
            table = pd.crosstab(
                pd.concat([a, b], ignore_index=True),
                np.repeat([0, 1], [len(a), len(b)]),
            ).to_numpy(dtype=float)
            if table.shape[0] < 2:
                continue
            chi2, p_value, _, _ = scipy_stats.chi2_contingency(table, correction=False)
            effect = math.sqrt(chi2 / table.sum())  # Cramér's V of a 2-column table
            unseen = int((~b.isin(set(a))).sum())
            tests.append((name, "chi2", effect, float(p_value), {"unseen_in_train": unseen}))
    adjusted = _holm([p for _, _, _, p, _ in tests])
    for (name, method, effect, p_value, extra), p_adjusted in zip(tests, adjusted, strict=True):
        if p_adjusted >= SHIFT_ALPHA or effect < SHIFT_EFFECT:
            continue
        label = "KS statistic D" if method == "ks" else "Cramér's V"
        findings.append(
            Finding(
                kind="distribution_shift",
                severity="warning",
                columns=[name],
                evidence={
                    "test": method,
                    "effect_size": effect,
                    "p_value": p_value,
                    "p_value_holm": p_adjusted,
                    "train_rows": len(train),
                    "test_rows": len(test),
                    **extra,
                },
                fix="Check how the two sets were split or collected (time, source, filters); "
                "a model validated on the training distribution may do worse on this one. "
                "Split at random, or validate on data like the test set.",
                message=f"Column {name!r} is distributed differently in {test_source} "
                f"({label} = {effect:.3f}, Holm-adjusted p = {p_adjusted:.2g}).",
            )
        )
    return findings
