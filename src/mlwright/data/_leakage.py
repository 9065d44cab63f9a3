"""Target leakage: a feature that alone (almost) reproduces the target.

Each feature is scored out of fold on a sample in both directions (the feature predicts the
target; the target determines the feature), plus a rank test for numbers; a score of 0.99 is an
error, 0.95 a warning. Training drops the columns with a finding.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlwright.data._finding import Finding

__all__ = ["LEAKAGE_ERROR", "LEAKAGE_WARNING", "leakage_findings", "leakage_scores"]

#: A single feature whose out-of-fold score reaches this predicts the target "almost perfectly".
LEAKAGE_ERROR = 0.99
LEAKAGE_WARNING = 0.95


def _discretise(values, numeric: bool, bins: int):
    """Integer codes: quantile bins for many-valued numbers, levels otherwise; missing = own."""
    if numeric:
        numbers = pd.to_numeric(values, errors="coerce")
        present = numbers.notna().to_numpy()
        if numbers.nunique() > bins:
            ranks = np.nan_to_num(numbers.rank(method="average", pct=True).to_numpy())
            codes = np.where(present, np.minimum((ranks * bins).astype(int), bins - 1), -1)
        else:
            codes = pd.factorize(numbers, use_na_sentinel=True)[0]
    else:
        codes = pd.factorize(values.astype("string"), use_na_sentinel=True)[0]
    codes = np.asarray(codes, dtype=np.int64)
    codes[codes < 0] = codes.max() + 1 if len(codes) else 0  # missing as its own level
    return codes


def _oof_accuracy(x, y, folds) -> float:
    """Out-of-fold accuracy of the map 'value of x -> most frequent y' (2 folds)."""
    n_x, n_y = x.max() + 1, y.max() + 1
    correct = 0
    for fold in (0, 1):
        train, hold = folds != fold, folds == fold
        table = np.zeros((n_x, n_y), dtype=np.int64)
        np.add.at(table, (x[train], y[train]), 1)
        fallback = np.bincount(y[train], minlength=n_y).argmax()
        prediction = np.where(table.sum(axis=1) > 0, table.argmax(axis=1), fallback)
        correct += int((prediction[x[hold]] == y[hold]).sum())
    return correct / len(x)


def _oof_r2(x, y, folds) -> float:
    """Out-of-fold R^2 of the map 'value of x -> mean y' (2 folds)."""
    n_x = x.max() + 1
    predictions = np.empty(len(y))
    for fold in (0, 1):
        train, hold = folds != fold, folds == fold
        sums = np.bincount(x[train], weights=y[train], minlength=n_x)
        counts = np.bincount(x[train], minlength=n_x)
        means = np.where(counts > 0, sums / np.maximum(counts, 1), y[train].mean())
        predictions[hold] = means[x[hold]]
    total = ((y - y.mean()) ** 2).sum()
    return 0.0 if total == 0 else float(1 - ((y - predictions) ** 2).sum() / total)


def _step_function_score(target, codes) -> float:
    """How close a categorical feature is to a step function of a numeric target.

    Sorted by the target, a feature derived from it (price bands from the price) changes
    value only at its k - 1 band edges; an unrelated feature changes about
    (n - 1) * (1 - sum p_i^2) times. The score maps the observed number of changes onto
    [0, 1] between these two: 1 means a perfect step function of the target.
    """
    # Ties in the target are broken at random: a feature that is a function of the target
    # is constant within ties anyway, while ordering ties by the feature would hide
    # unrelated features behind a few-valued target (abalone's rings vs sex).
    shuffle = np.random.default_rng(0).permutation(len(codes))
    order = shuffle[np.argsort(target[shuffle], kind="stable")]
    ordered = codes[order]
    changes = int((ordered[1:] != ordered[:-1]).sum())
    shares = np.bincount(codes) / len(codes)
    levels = int((shares > 0).sum())
    expected = (len(codes) - 1) * (1 - float((shares**2).sum()))
    minimum = levels - 1
    if expected <= minimum:
        return 0.0
    return float(min(1.0, max(0.0, 1 - (changes - minimum) / (expected - minimum))))


#: Least share of the target's entropy a feature must carry for the reverse test to count.
_REVERSE_INFORMATION = 1 / 3


def _entropy(codes) -> float:
    shares = np.bincount(codes) / len(codes)
    shares = shares[shares > 0]
    return float(-(shares * np.log(shares)).sum())


def _normalised(accuracy: float, base: float) -> float:
    return 0.0 if base >= 1 else max(0.0, (accuracy - base) / (1 - base))


def _gini(values, labels) -> tuple[float | None, float]:
    """|2*AUC-1| of a numeric feature for a binary label, on rows where it is present."""
    # deferred: scipy.stats adds ~1 s to `import mlwright.data`, unused by reading
    from scipy.stats import rankdata

    present = ~np.isnan(values)
    coverage = float(present.mean()) if len(values) else 0.0
    x, y = values[present], labels[present]
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return None, coverage
    ranks = rankdata(x)
    auc = (ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives)
    return float(abs(2 * auc - 1)), coverage


def leakage_scores(sample, schema: Any, target: str, semantic: dict[str, str]) -> dict:
    """Single-feature predictive power for every feature, out of fold on ``sample``.

    Each feature is discretised (numbers into up to 100 quantile bins, missing as its own
    level) and scored in both directions with 2-fold cross-fitting:

    * forward: how well 'value -> majority label' (classification, normalised accuracy
      (acc - base) / (1 - base)) or 'value -> mean target' (regression, R^2) predicts the target;
    * reverse: how well the target determines the feature (the feature is a function of the
      label: each class has its own value; or, for regression, target bins predict the feature);
    * for a numeric feature and a binary target, also |2*AUC - 1| where it is present.

    The score is the largest of these; 1.0 means the feature alone reproduces the target.
    """
    # deferred: scipy.stats adds ~1 s to `import mlwright.data`, unused by reading
    from scipy.stats import spearmanr

    labelled = sample[sample[target].notna()].reset_index(drop=True)
    n = len(labelled)
    scores: dict[str, dict[str, Any]] = {}
    if n < 30:
        return scores
    bins = int(min(100, max(10, n // 50)))
    folds = np.random.default_rng(0).permutation(n) % 2
    classification = schema.task in ("binary", "multiclass")
    if classification:
        y_codes = pd.factorize(labelled[target].astype("string"))[0].astype(np.int64)
        base = np.bincount(y_codes).max() / n
        y_values = None
        y_bins = y_codes
    else:
        y_values = pd.to_numeric(labelled[target], errors="coerce").to_numpy(dtype=float)
        keep = ~np.isnan(y_values)
        y_bins = _discretise(pd.Series(y_values), True, bins)
    for column_schema in schema.columns:
        name = column_schema.name
        kind = semantic.get(name)
        if name == target or kind in ("identifier", "constant", "text"):
            continue
        numeric = kind == "numeric"
        x_codes = _discretise(labelled[name], numeric, bins)
        if x_codes.max() < 1:
            continue
        x_base = np.bincount(x_codes).max() / n
        evidence: dict[str, Any] = {}
        if classification:
            evidence["forward"] = _normalised(_oof_accuracy(x_codes, y_codes, folds), base)
            # Reverse: within each class, how concentrated the feature is on one value. It
            # counts only for a feature that carries a real share of the target's information
            # (entropy at least a third of the target's): a rare symptom that appears in one
            # class of nineteen (soybean's sclerotia) is pure within classes without leaking.
            if x_base < 0.95 and _entropy(x_codes) >= _REVERSE_INFORMATION * _entropy(y_codes):
                table = np.zeros((x_codes.max() + 1, y_codes.max() + 1), dtype=np.int64)
                np.add.at(table, (x_codes, y_codes), 1)
                purity = table.max(axis=0).sum() / n
                evidence["reverse"] = _normalised(purity, x_base)
            if schema.task == "binary" and numeric:
                numbers = pd.to_numeric(labelled[name], errors="coerce").to_numpy(dtype=float)
                gini, coverage = _gini(numbers, y_codes == y_codes.max())
                if gini is not None and coverage >= 0.9:
                    evidence["gini"] = gini
        else:
            xs, ys, fs = x_codes[keep], y_values[keep], folds[keep]
            evidence["forward"] = max(0.0, _oof_r2(xs, ys, fs))
            if numeric:
                numbers = pd.to_numeric(labelled[name], errors="coerce").to_numpy(dtype=float)
                present = keep & ~np.isnan(numbers)
                if present.mean() >= 0.9 and np.ptp(numbers[present]) > 0:
                    evidence["reverse"] = max(
                        0.0, _oof_r2(y_bins[present], numbers[present], folds[present])
                    )
                    rho = spearmanr(numbers[present], y_values[present]).statistic
                    if np.isfinite(rho):
                        evidence["spearman"] = abs(rho)
            elif x_base < 0.95:
                evidence["reverse"] = _step_function_score(y_values[keep], x_codes[keep])
        evidence = {key: float(value) for key, value in evidence.items()}
        # Rank correlation only counts when (almost) perfect: strong real predictors of a
        # quantity (a diamond's carat for its price) reach 0.95 without leaking anything.
        counted = {
            key: value
            for key, value in evidence.items()
            if key != "spearman" or value >= LEAKAGE_ERROR
        }
        best = max(counted, key=counted.get)
        scores[name] = {"score": evidence[best], "method": best, **evidence, "sample_rows": n}
    return scores


_LEAKAGE_METHODS = {
    "forward": "the value -> label map alone predicts the target out of fold",
    "reverse": "the feature is (almost) a deterministic function of the target",
    "gini": "its ranking separates the two classes (|2*AUC-1|)",
    "spearman": "it is a monotone function of the target (|Spearman|)",
}


def leakage_findings(sample, schema: Any, target: str, semantic: dict[str, str]) -> list:
    findings = []
    for name, result in leakage_scores(sample, schema, target, semantic).items():
        score = result["score"]
        if score < LEAKAGE_WARNING:
            continue
        severity = "error" if score >= LEAKAGE_ERROR else "warning"
        evidence = {key: value for key, value in result.items() if key != "method"}
        how = _LEAKAGE_METHODS[result["method"]]
        findings.append(
            Finding(
                kind="target_leakage",
                severity=severity,
                columns=[name],
                evidence=evidence,
                fix="Check whether this value is known at prediction time; if it is recorded "
                "after (or from) the outcome, drop the column (mlwright's training drops "
                "columns with a target_leakage finding). If it is a genuinely decisive "
                "feature, the finding can be ignored.",
                message=f"Feature {name!r} alone scores {score:.3f} against target {target!r}: "
                f"{how} (on {result['sample_rows']} sampled rows).",
            )
        )
    return findings
