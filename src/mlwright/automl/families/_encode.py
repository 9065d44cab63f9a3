"""Dense encoding for models without native categoricals or missing values (linear, k-NN).

Numbers: median imputation with a missing-value indicator, then standard scaling (after a
signed log for heavy-tailed columns, so a few huge values do not dominate distances and
coefficients). Categoricals: one-hot of the most frequent codes, plus a missing-value
indicator when the column had missing values in training (on small noisy tables whether a
category was recorded at all is often a signal); unseen codes map to all zeros.
"""

from __future__ import annotations

import numpy as np


class DenseEncoder:
    """Fit on a training matrix (categoricals as integer codes), then transform any matrix."""

    def __init__(self, categorical: list[int], max_categories: int = 32) -> None:
        self.categorical = list(categorical)
        self.max_categories = max_categories

    def fit(self, X: np.ndarray) -> DenseEncoder:
        n_features = X.shape[1]
        cats = set(self.categorical)
        self.numeric_ = [i for i in range(n_features) if i not in cats]
        numeric = X[:, self.numeric_]
        with np.errstate(all="ignore"):
            self.medians_ = np.nan_to_num(np.nanmedian(numeric, axis=0)) if numeric.size else []
            self.missing_ = [j for j, i in enumerate(self.numeric_) if np.isnan(X[:, i]).any()]
            filled = np.where(np.isnan(numeric), self.medians_, numeric)
            # Heavy tails (max far beyond the interquartile spread): compress with a signed log.
            q1, q3 = np.percentile(filled, [25, 75], axis=0) if filled.size else ([], [])
            spread = np.maximum(np.asarray(q3) - np.asarray(q1), 1e-12)
            extreme = np.abs(filled - np.median(filled, axis=0)).max(axis=0) / spread
            self.log_ = np.asarray(extreme > 50) if filled.size else np.zeros(0, bool)
            transformed = self._compress(filled)
            self.mean_ = transformed.mean(axis=0) if filled.size else []
            scale = transformed.std(axis=0) if filled.size else np.ones(0)
            self.scale_ = np.where(scale > 0, scale, 1.0)
        self.levels_: list[np.ndarray] = []
        self.missing_categories_ = [
            j for j, i in enumerate(self.categorical) if np.isnan(X[:, i]).any()
        ]
        for i in self.categorical:
            codes = X[:, i]
            codes = codes[~np.isnan(codes)].astype(np.int64)
            counts = np.bincount(codes) if codes.size else np.zeros(0, int)
            order = np.argsort(-counts, kind="stable")[: self.max_categories]
            self.levels_.append(np.sort(order[counts[order] > 0]))
        return self

    def _compress(self, values: np.ndarray) -> np.ndarray:
        if not self.log_.any():
            return values
        values = values.copy()
        values[:, self.log_] = np.sign(values[:, self.log_]) * np.log1p(
            np.abs(values[:, self.log_])
        )
        return values

    def transform(self, X: np.ndarray) -> np.ndarray:
        n_numeric = len(self.numeric_)
        missing_categories = getattr(self, "missing_categories_", [])  # older pickles: none
        width = (
            n_numeric
            + len(self.missing_)
            + sum(len(levels) for levels in self.levels_)
            + len(missing_categories)
        )
        out = np.zeros((len(X), max(width, 1)))
        if self.numeric_:
            numeric = X[:, self.numeric_]
            missing = np.isnan(numeric)
            filled = np.where(missing, self.medians_, numeric)
            scaled = (self._compress(filled) - self.mean_) / self.scale_
            out[:, :n_numeric] = np.clip(scaled, -10, 10)
            if self.missing_:
                out[:, n_numeric : n_numeric + len(self.missing_)] = missing[:, self.missing_]
        offset = n_numeric + len(self.missing_)
        rows = np.arange(len(X))
        for i, levels in zip(self.categorical, self.levels_, strict=True):
            if len(levels):
                codes = X[:, i]
                position = np.minimum(np.searchsorted(levels, codes), len(levels) - 1)
                hit = levels[position] == codes  # False for NaN and unseen codes
                out[rows[hit], offset + position[hit]] = 1.0
            offset += len(levels)
        for j in missing_categories:
            out[:, offset] = np.isnan(X[:, self.categorical[j]])
            offset += 1
        return out
