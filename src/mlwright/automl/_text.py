"""Free text as features: n-gram statistics and the out-of-fold score of a linear model.

A free-text column (a name, a title, a description) carries signal in its words: on titanic a
passenger's title ("Mr.", "Mrs.", "Master") predicts survival, on mpg a car's name predicts its
consumption. Trees cannot read words, and a handful of SVD components of a TF-IDF matrix keep
only its broad directions. So each text column also gets a linear model over its word (1-2)
and character (2-4 within words) n-grams, the classic strong baseline for short texts, and its
prediction becomes a numeric feature. During the search the feature holds the model's
*out-of-fold* prediction, made with the search's own folds, so that a row's value never comes
from a model that saw its label; at prediction time it comes from the model refitted on all
rows. Other models then combine the text's score with the rest of the row.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion

__all__ = ["TextScorer"]

#: Regularisation strengths tried, chosen by out-of-fold loss (a short grid: each value costs
#: one fit per fold, and TF-IDF models are not very sensitive within it).
_C_GRID = (0.5, 2.0, 8.0)
_ALPHA_GRID = (0.3, 3.0, 30.0)
#: Above this many rows a single, middle strength is used.
_GRID_ROWS = 20_000


def _vectorizer():
    # Single-character tokens count: digits and initials ("4", "s") carry meaning in names.
    words = TfidfVectorizer(
        analyzer="word",
        ngram_range=(1, 2),
        token_pattern=r"(?u)\b\w+\b",
        min_df=2,
        max_features=20_000,
        sublinear_tf=True,
        dtype=np.float32,
    )
    characters = TfidfVectorizer(
        analyzer="char_wb",
        ngram_range=(2, 4),
        min_df=2,
        max_features=30_000,
        sublinear_tf=True,
        dtype=np.float32,
    )
    return FeatureUnion([("words", words), ("characters", characters)])


class TextScorer:
    """A linear model over one text column's n-grams; its predictions are features.

    Parameters
    ----------
    task
        ``"binary"``, ``"multiclass"`` or ``"regression"``.
    n_classes
        Number of classes (classification).
    seed
        Seed of the solvers that use one.

    Attributes
    ----------
    n_outputs_
        Feature columns: one (the log-odds of the positive class, or the predicted value), or
        one log-probability per class for a multiclass task.
    strength_
        The chosen ``C`` (classification) or ``alpha`` (regression).
    """

    def __init__(self, task: str, n_classes: int, seed: int = 0) -> None:
        self.task = task
        self.n_classes = n_classes
        self.seed = seed

    @property
    def n_outputs_(self) -> int:
        return self.n_classes if self.task == "multiclass" else 1

    def _model(self, strength: float):
        # deferred: sklearn.linear_model adds ~0.2 s to loading any model; only text columns use it
        from sklearn.linear_model import LogisticRegression, Ridge

        if self.task == "regression":
            return Ridge(alpha=strength)
        return LogisticRegression(C=strength, max_iter=500, tol=1e-4)

    def _features(self, model: Any, matrix: Any) -> np.ndarray:
        if self.task == "regression":
            return np.asarray(model.predict(matrix), dtype=float)[:, None]
        proba = np.clip(model.predict_proba(matrix), 1e-6, 1 - 1e-6)
        full = np.full((matrix.shape[0], self.n_classes), 1e-6)
        full[:, model.classes_.astype(int)] = proba
        if self.task == "binary":
            return np.log(full[:, 1] / full[:, 0])[:, None]
        return np.log(full / full.sum(axis=1, keepdims=True))

    def _loss(self, y: np.ndarray, features: np.ndarray) -> float:
        if self.task == "regression":
            return float(np.mean((features[:, 0] - y) ** 2))
        if self.task == "binary":
            positive = 1.0 / (1.0 + np.exp(-features[:, 0]))
            picked = np.where(y == 1, positive, 1 - positive)
        else:
            picked = np.exp(features[np.arange(len(y)), y])
        return float(-np.mean(np.log(np.clip(picked, 1e-15, 1.0))))

    def fit(
        self,
        texts: list[str],
        y: np.ndarray,
        folds: list[tuple[np.ndarray, np.ndarray]],
        deadline: float = math.inf,
    ) -> np.ndarray:
        """Fit on all rows and return the out-of-fold features of the training rows.

        The strength is chosen among a short grid by out-of-fold loss (log loss, or squared
        error); when the deadline comes first, the strengths tried so far decide.
        """
        self.vectorizer_ = _vectorizer()
        try:
            matrix = self.vectorizer_.fit_transform(texts)
        except ValueError:  # no token occurs twice: nothing to learn from
            self.vectorizer_ = None
            self.model_ = None
            self.strength_ = None
            return np.zeros((len(texts), self.n_outputs_))
        grid = _ALPHA_GRID if self.task == "regression" else _C_GRID
        if len(texts) > _GRID_ROWS:
            grid = grid[1:2]
        best: tuple[float, float, np.ndarray] | None = None
        for strength in grid:
            if best is not None and time.monotonic() > deadline:
                break
            oof = np.zeros((len(texts), self.n_outputs_))
            for train_index, valid_index in folds:
                model = self._model(strength).fit(matrix[train_index], y[train_index])
                oof[valid_index] = self._features(model, matrix[valid_index])
            loss = self._loss(y, oof)
            if best is None or loss < best[0]:
                best = (loss, strength, oof)
        assert best is not None
        _, self.strength_, oof = best
        self.model_ = self._model(self.strength_).fit(matrix, y)
        return oof

    def transform(self, texts: list[str]) -> np.ndarray:
        """Features of new rows, from the model fitted on all training rows."""
        if self.model_ is None:
            return np.zeros((len(texts), self.n_outputs_))
        return self._features(self.model_, self.vectorizer_.transform(texts))
