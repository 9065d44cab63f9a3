"""scikit-learn estimators running mlwright's AutoML: ``AutoClassifier`` and ``AutoRegressor``.

They follow scikit-learn's conventions (``__init__`` only stores arguments, ``fit`` validates
and sets ``attr_`` results, ``get_params``/``set_params``, ``clone``), so they work inside
pipelines, ``cross_val_score`` and grid searches. Each ``fit`` runs a whole search, so keep
``time_limit`` (or ``max_trials``) small when an outer loop fits many times.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d, validate_data

from mlwright.model._train_api import train

# The search needs 10 labelled rows to cross-validate; fail early, as scikit-learn does.
_MIN_SAMPLES = 10


class _AutoEstimator(BaseEstimator):
    _task_kind = ""

    def __init__(
        self,
        time_limit: float | None = 60.0,
        metric: str | None = None,
        seed: int = 0,
        max_trials: int | None = None,
        models: Any = None,
        n_jobs: int = 2,
    ) -> None:
        self.time_limit = time_limit
        self.metric = metric
        self.seed = seed
        self.max_trials = max_trials
        self.models = models
        self.n_jobs = n_jobs

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        # Every model family handles missing values (natively or by imputation).
        tags.input_tags.allow_nan = True
        # Tables of mixed types are accepted as DataFrames; plain arrays must be numeric.
        tags.input_tags.string = False
        tags.non_deterministic = False
        return tags

    # -- input validation ----------------------------------------------------------------------
    def _validate_features(self, X: Any, *, reset: bool) -> Any:
        """Return ``X`` as a DataFrame with string column names, checked like scikit-learn."""
        if isinstance(X, pd.DataFrame):
            validate_data(self, X, skip_check_array=True, reset=reset)
            if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
                raise ValueError(
                    f"Found array with {X.shape[0]} sample(s) and {X.shape[1]} feature(s) "
                    f"while a minimum of 1 is required by {type(self).__name__}."
                )
            names = getattr(self, "feature_names_in_", None)
            frame = X.reset_index(drop=True)
            if names is None:
                frame = frame.set_axis([f"x{i}" for i in range(frame.shape[1])], axis=1)
            return frame
        array = validate_data(self, X, reset=reset, dtype="numeric", ensure_all_finite="allow-nan")
        names = getattr(self, "feature_names_in_", None)
        columns = (
            [str(name) for name in names]
            if names is not None
            else [f"x{i}" for i in range(array.shape[1])]
        )
        return pd.DataFrame(array, columns=columns)

    def _fit_frame(self, X: Any, y: Any, task: str) -> Any:

        frame = self._validate_features(X, reset=True)
        if len(frame) != len(y):
            raise ValueError(
                f"X has {len(frame)} samples but y has {len(y)}; they must have the same "
                "number of samples."
            )
        if len(frame) < _MIN_SAMPLES:
            raise ValueError(
                f"{type(self).__name__} needs at least {_MIN_SAMPLES} samples to cross-validate;"
                f" got n_samples={len(frame)}."
            )
        target = "target"
        while target in frame.columns:
            target = f"_{target}"
        frame = frame.assign(**{target: y})
        numeric_matrix = {str(name): "numeric" for name in frame.columns if name != target}
        model = train(
            frame,
            target=target,
            task=task,
            time_limit=self.time_limit,
            metric=self.metric,
            seed=self.seed,
            max_trials=self.max_trials,
            models=self.models,
            n_jobs=self.n_jobs,
            # The caller chose X: keep every column (no leakage/identifier drops), and columns
            # of numbers are numeric features, never identifiers or categories.
            drop_flagged_columns=False,
            feature_types=numeric_matrix if not _is_frame(X) else None,
        )
        self.model_ = model
        return model

    def _predict_frame(self, X: Any) -> Any:
        check_is_fitted(self, "model_")
        return self._validate_features(X, reset=False)

    @property
    def metrics_(self) -> dict[str, Any]:
        """Validation metrics of the fitted model (score, fold spread, leaderboard)."""
        check_is_fitted(self, "model_")
        return self.model_.metrics


class AutoClassifier(ClassifierMixin, _AutoEstimator):
    """Classification by mlwright's AutoML, as a scikit-learn estimator.

    Parameters
    ----------
    time_limit : float or None, default=60.0
        Seconds per ``fit`` (the whole search, including the final refit).
    metric : str or None, default=None
        Metric to optimise (default: ROC AUC for two classes, log loss for more).
    seed : int, default=0
        Random seed; with ``max_trials`` two fits give the same model.
    max_trials : int or None, default=None
        Stop after this many candidate fits.
    models : list of str, str or None, default=None
        Restrict the search to these model families.
    n_jobs : int, default=2
        Cores the search may use.

    Attributes
    ----------
    model_ : mlwright.model.Model
        The trained model (``model_.save(path)`` writes an artifact).
    classes_ : ndarray
        The class labels, sorted.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str
        Column names seen in ``fit`` (only when X was a DataFrame with string column names).

    Examples
    --------
    >>> from mlwright import AutoClassifier
    >>> classifier = AutoClassifier(time_limit=30).fit(X_train, y_train)  # doctest: +SKIP
    >>> classifier.predict_proba(X_test)  # doctest: +SKIP
    """

    def fit(self, X: Any, y: Any) -> AutoClassifier:
        """Search for the best classifier of ``y`` given ``X``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Numeric array, or a DataFrame of any column types.
        y : array-like of shape (n_samples,)
            Class labels.

        Returns
        -------
        self
        """
        y = column_or_1d(y, warn=True)
        y = check_array(y, ensure_2d=False, dtype=None, input_name="y")
        check_classification_targets(y)
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(
                f"AutoClassifier needs at least 2 classes in y; got one class "
                f"({classes[0]!r}). Check that y holds the labels to predict."
            )
        task = "binary" if len(classes) == 2 else "multiclass"
        model = self._fit_frame(X, y, task)
        self.classes_ = classes
        # Model probability columns follow the training labels' order; map them once to
        # ``classes_`` order so predict_proba matches scikit-learn's convention.
        position = {str(label): i for i, label in enumerate(model.classes)}
        self._proba_order_ = np.array([position[str(label)] for label in classes])
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in ``classes_`` order.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        frame = self._predict_frame(X)
        probabilities = np.asarray(self.model_.predict_proba(frame), dtype=float)
        return probabilities[:, self._proba_order_]

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each sample.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self, "model_")
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class AutoRegressor(RegressorMixin, _AutoEstimator):
    """Regression by mlwright's AutoML, as a scikit-learn estimator.

    Parameters
    ----------
    time_limit : float or None, default=60.0
        Seconds per ``fit`` (the whole search, including the final refit).
    metric : str or None, default=None
        Metric to optimise (default RMSE).
    seed : int, default=0
        Random seed; with ``max_trials`` two fits give the same model.
    max_trials : int or None, default=None
        Stop after this many candidate fits.
    models : list of str, str or None, default=None
        Restrict the search to these model families.
    n_jobs : int, default=2
        Cores the search may use.

    Attributes
    ----------
    model_ : mlwright.model.Model
        The trained model.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str
        Column names seen in ``fit`` (only when X was a DataFrame with string column names).
    """

    def fit(self, X: Any, y: Any) -> AutoRegressor:
        """Search for the best regressor of ``y`` given ``X``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Numeric target.

        Returns
        -------
        self
        """
        y = column_or_1d(y, warn=True)
        y = check_array(y, ensure_2d=False, dtype="numeric", input_name="y").astype(float)
        self._fit_frame(X, y, "regression")
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted values.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        frame = self._predict_frame(X)
        return np.asarray(self.model_.predict(frame), dtype=float)


def _is_frame(X: Any) -> bool:
    return isinstance(X, pd.DataFrame)
