"""Model families: one self-contained module per library.

Each module offers ``NAME``, ``ITERATIVE`` (whether more iterations means a longer fit that a
deadline can cut short), ``fit(X, y, *, task, n_classes, categorical, params, seed, n_threads,
deadline, X_val=None, y_val=None, n_iterations=None) -> (model, iterations)``,
``predict(model, X, *, task, n_threads=1)`` (probabilities (n, n_classes) for classification,
values for regression), ``suggest(trial, task, n_rows)`` (its Optuna search space) and
``cost(iterations, params, n_outputs, n_rows, *, n_features=0, n_categorical=0) ->
(single-row ms, batch us per row on one core)``, the prediction cost estimated from the model's
structure for the ensemble's budget (``benchmarks/prediction_cost.py`` checks it).

A family whose library is an optional extra (the neural network needs PyTorch,
``mlwright[nn]``) is left out of the default portfolio when the library is missing
(:func:`installed`), and asking for it by name says how to install it (:func:`missing_extra`).
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

import numpy as np

#: Family names in the order the portfolio introduces them.
FAMILY_NAMES = (
    "lightgbm",
    "catboost",
    "xgboost",
    "linear",
    "extra_trees",
    "random_forest",
    "knn",
    "mlp",
)
#: Families whose library is an optional extra: (module to import, extra to install).
_EXTRAS = {"mlp": ("torch", "nn")}


def installed(name: str) -> bool:
    """Whether the family's library can be imported (checked without importing it)."""
    extra = _EXTRAS.get(name)
    return extra is None or importlib.util.find_spec(extra[0]) is not None


def missing_extra(name: str) -> str:
    """The message for a family whose optional library is not installed."""
    module, extra = _EXTRAS[name]
    return (
        f"The model family {name!r} needs {module}, which is not installed. Install it with: "
        f"pip install 'mlwright[{extra}]' (on a CPU-only machine first pip install "
        "torch==2.13.0 to take the CPU build), or leave it out of --models."
    )


def family(name: str) -> ModuleType:
    """The module implementing the family ``name``."""
    if name not in FAMILY_NAMES:
        raise KeyError(name)
    return importlib.import_module(f"mlwright.automl.families.{name}")


def align(proba: np.ndarray, seen: np.ndarray, n_classes: int) -> np.ndarray:
    """Widen probabilities over the classes a model saw to all ``n_classes`` columns."""
    seen = np.asarray(seen).astype(int)
    if proba.shape[1] == n_classes and np.array_equal(seen, np.arange(n_classes)):
        return proba
    full = np.zeros((proba.shape[0], n_classes))
    full[:, seen] = proba
    return full
