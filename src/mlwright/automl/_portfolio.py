"""The default portfolios: strong, diverse configurations, cheapest and most reliable first.

Order matters: at a small budget only the first few run. A fast gradient-boosting model comes
first (it alone makes a good model), then a linear model (cheap, and different), then the other
boosting libraries, forests and neighbours, then variants that widen the ensemble's diversity.
On small data (:data:`SMALL_ROWS` rows or fewer) every fit is quick, and what pays is many
models that err differently rather than a long search on one: the portfolio grows by forests
that split on entropy, uniform k-NN, the boosting libraries at the defaults AutoGluon found
strong across hundreds of datasets, and the neural network when PyTorch is installed.

The second layer (:func:`stack_portfolio`) is a few regularised models trained on the first
layer's out-of-fold predictions plus the original features.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["SMALL_ROWS", "Candidate", "portfolio", "stack_portfolio"]

#: Data up to this many rows gets the broad portfolio.
SMALL_ROWS = 5000


@dataclass
class Candidate:
    """One configuration to cross-validate."""

    name: str
    family: str
    params: dict[str, Any] = field(default_factory=dict)
    source: str = "portfolio"
    #: 1: trained on the features; 2: also on the first layer's out-of-fold predictions.
    layer: int = 1


def portfolio(
    task: str, n_rows: int, n_features: int, families: tuple[str, ...] | None = None
) -> list[Candidate]:
    """The ordered default configurations for a task and data size.

    ``families`` names the families available (the neural network needs PyTorch); the default
    is every family.
    """
    forest_features = "sqrt" if task != "regression" else 0.6
    candidates = [
        Candidate(
            "lightgbm_fast",
            "lightgbm",
            {
                "learning_rate": 0.1,
                "num_leaves": 31,
                "min_data_in_leaf": 20,
                "feature_fraction": 0.9,
                "bagging_fraction": 0.9,
            },
        ),
        # Regularisation chosen by inner cross-validation: on small data the linear model is
        # often among the best, and C = 1 can be far from its best strength.
        Candidate("linear", "linear", {"C": "auto"} if task != "regression" else {"alpha": "auto"}),
        Candidate(
            "catboost",
            "catboost",
            {"learning_rate": 0.1, "depth": 6, "l2_leaf_reg": 3.0},
        ),
        Candidate(
            "xgboost",
            "xgboost",
            {
                "learning_rate": 0.05,
                "max_depth": 6,
                "min_child_weight": 1.0,
                "subsample": 0.8,
                "colsample_bytree": 0.8,
            },
        ),
        Candidate(
            "lightgbm_large",
            "lightgbm",
            {
                "learning_rate": 0.04,
                "num_leaves": 128,
                "min_data_in_leaf": 5,
                "feature_fraction": 0.7,
                "bagging_fraction": 0.8,
                "lambda_l2": 1.0,
            },
        ),
        Candidate(
            "extra_trees",
            "extra_trees",
            {"n_estimators": 200, "max_features": forest_features, "min_samples_leaf": 1},
        ),
        Candidate(
            "random_forest",
            "random_forest",
            {"n_estimators": 200, "max_features": forest_features, "min_samples_leaf": 1},
        ),
        Candidate(
            "lightgbm_small",
            "lightgbm",
            {
                "learning_rate": 0.03,
                "num_leaves": 8,
                "min_data_in_leaf": 30,
                "feature_fraction": 0.6,
                "bagging_fraction": 0.8,
                "lambda_l2": 5.0,
            },
        ),
        Candidate("knn", "knn", {"n_neighbors": 15, "weights": "distance"}),
        Candidate(
            "catboost_deep",
            "catboost",
            {"learning_rate": 0.08, "depth": 8, "l2_leaf_reg": 6.0, "random_strength": 2.0},
        ),
        Candidate(
            "lightgbm_extra_trees",
            "lightgbm",
            {
                "learning_rate": 0.05,
                "num_leaves": 64,
                "min_data_in_leaf": 10,
                "feature_fraction": 0.5,
                "bagging_fraction": 0.9,
                "extra_trees": True,
            },
        ),
        Candidate(
            "xgboost_deep",
            "xgboost",
            {
                "learning_rate": 0.03,
                "max_depth": 9,
                "min_child_weight": 3.0,
                "subsample": 0.7,
                "colsample_bytree": 0.5,
                "reg_lambda": 2.0,
            },
        ),
        Candidate(
            "linear_strong",
            "linear",
            {"C": 20.0} if task != "regression" else {"alpha": 0.05},
        ),
    ]
    if n_rows <= SMALL_ROWS:
        candidates[5:5] = _small_data(task, forest_features)
    if families is not None:
        candidates = [c for c in candidates if c.family in families]
    return candidates


def _small_data(task: str, forest_features: Any) -> list[Candidate]:
    """Extra diversity for small tables, where every fit takes a second or less."""
    extra = [
        # AutoGluon's default CatBoost: a slower learning rate than ours, often the best
        # single model on small tables (cpu_act: 2.17 RMSE alone).
        Candidate("catboost_slow", "catboost", {"learning_rate": 0.05, "depth": 6}),
        Candidate("mlp", "mlp", {}),
        Candidate("knn_uniform", "knn", {"n_neighbors": 10, "weights": "uniform"}),
    ]
    if task != "regression":
        extra += [
            Candidate(
                "extra_trees_entropy",
                "extra_trees",
                {
                    "n_estimators": 200,
                    "max_features": forest_features,
                    "criterion": "entropy",
                },
            ),
            Candidate(
                "random_forest_entropy",
                "random_forest",
                {
                    "n_estimators": 200,
                    "max_features": forest_features,
                    "criterion": "entropy",
                },
            ),
        ]
    return extra


def stack_portfolio(task: str) -> list[Candidate]:
    """Second-layer configurations, cheapest first: regularised, since their strongest inputs
    (the first layer's predictions) are few and already good."""
    stacked = [
        Candidate(
            "linear_l2", "linear", {"C": "auto"} if task != "regression" else {"alpha": "auto"}
        ),
        Candidate(
            "lightgbm_l2",
            "lightgbm",
            {
                "learning_rate": 0.05,
                "num_leaves": 15,
                "min_data_in_leaf": 20,
                "feature_fraction": 0.7,
                "bagging_fraction": 0.8,
                "lambda_l2": 1.0,
            },
        ),
        Candidate(
            "extra_trees_l2",
            "extra_trees",
            {
                "n_estimators": 300,
                "max_features": "sqrt" if task != "regression" else 0.6,
                "min_samples_leaf": 2,
            },
        ),
        Candidate("catboost_l2", "catboost", {"learning_rate": 0.08, "depth": 6}),
    ]
    for candidate in stacked:
        candidate.layer = 2
        candidate.source = "stack"
    return stacked
