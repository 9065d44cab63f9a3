"""A fast path for small requests: validated values straight to the predictor's matrix.

Building a pandas DataFrame and running the generic preprocessing costs milliseconds per
request, far more than the model itself on one row. When the predictor is mlwright's own
(a preprocessor of numeric and categorical columns followed by an ensemble of family models),
the feature matrix is built here from the preprocessor's fitted mappings in plain Python and
handed to the predictor's own ``blend_matrix``.

The fast path is only trusted after it reproduces the predictor's own output on probe rows
at load time (:meth:`FastPath.verify`); otherwise the server uses the predictor as is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mlwright._categories import category_key as _category_key

__all__ = ["FastPath"]

_NAN = float("nan")
_MEMO_SIZE = 10_000


class FastPath:
    """Predict from per-column Python values without pandas.

    Use :meth:`build`, which returns None when the predictor is not one this path understands.
    """

    def __init__(self, predictor: Any) -> None:
        self.predictor = predictor
        self.task = predictor.task
        self.plan: list[tuple[str, str, dict[str, int], float]] = []
        for spec in predictor.preprocessor.specs_:
            other = float(len(spec.mapping)) if spec.n_codes > len(spec.mapping) else _NAN
            self.plan.append((spec.column, spec.kind, dict(spec.mapping), other))
        # Per categorical column: raw request value -> code, filled as values are seen.
        self._memo: list[dict[Any, float]] = [{None: _NAN} for _ in self.plan]

    @classmethod
    def build(cls, predictor: Any) -> FastPath | None:
        """A fast path for ``predictor``, or None when it has an unknown structure."""
        preprocessor = getattr(predictor, "preprocessor", None)
        specs = getattr(preprocessor, "specs_", None)
        members = getattr(predictor, "members", None)
        if not specs or not members or not hasattr(predictor, "blend_matrix"):
            return None
        if any(getattr(spec, "kind", None) not in ("numeric", "categorical") for spec in specs):
            return None
        try:
            return cls(predictor)
        except (AttributeError, KeyError, TypeError):
            return None

    def matrix(self, columns: dict[str, Sequence[Any]], n_rows: int) -> np.ndarray:
        """The float matrix the predictor's models take."""
        matrix = np.empty((n_rows, len(self.plan)), dtype=np.float64)
        for position, (name, kind, mapping, other) in enumerate(self.plan):
            values = columns.get(name)
            if values is None:
                matrix[:, position] = _NAN
            elif kind == "numeric":
                # numpy turns None into NaN itself, at C speed.
                matrix[:, position] = np.asarray(values, dtype=np.float64)
            else:
                memo = self._memo[position]
                try:
                    matrix[:, position] = [memo[value] for value in values]
                except (KeyError, TypeError):
                    matrix[:, position] = [
                        self._code(memo, mapping, other, value) for value in values
                    ]
        return matrix

    @staticmethod
    def _code(memo: dict[Any, float], mapping: dict[str, int], other: float, value: Any) -> float:
        key = _category_key(value)
        code = _NAN if key is None else float(mapping.get(key, other))
        # Remember raw values (bounded): requests repeat the same few categories.
        if len(memo) < _MEMO_SIZE and isinstance(value, (str, int, float, bool)):
            memo[value] = code
        return code

    def blend(self, matrix: np.ndarray) -> np.ndarray:
        """Weighted ensemble output (probabilities or values): the predictor's own blend of
        its members (both layers when it has two), on this path's matrix."""
        return self.predictor.blend_matrix(matrix, n_threads=1)

    def predict(self, columns: dict[str, Sequence[Any]], n_rows: int) -> np.ndarray:
        """Probabilities (classification, rows normalised) or values (regression)."""
        output = self.blend(self.matrix(columns, n_rows))
        if self.task == "regression":
            return np.asarray(output, dtype=np.float64)
        proba = np.clip(output, 0.0, None)
        sums = proba.sum(axis=1, keepdims=True)
        return proba / np.where(sums > 0, sums, 1.0)

    def verify(self, slow: Any, columns: dict[str, Sequence[Any]], n_rows: int) -> bool:
        """Whether the fast path matches ``slow(columns, n_rows)`` on these rows."""
        try:
            fast = self.predict(columns, n_rows)
            reference = np.asarray(slow(columns, n_rows), dtype=np.float64)
        except Exception:
            return False
        return fast.shape == reference.shape and bool(
            np.allclose(fast, reference, rtol=1e-9, atol=1e-12, equal_nan=True)
        )
