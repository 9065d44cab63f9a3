"""mlwright: the whole job of a machine-learning engineer on tabular data.

The public API is imported lazily (PEP 562) so that the command line starts fast: importing
``mlwright`` does not import pandas or any model library until a name is used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_PUBLIC: dict[str, str] = {
    "MlwrightError": "mlwright.errors",
    "train": "mlwright.model",
    "load": "mlwright.model",
    "Model": "mlwright.model",
    "AutoClassifier": "mlwright.model",
    "AutoRegressor": "mlwright.model",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    module_name = _PUBLIC.get(name)
    if module_name is None:
        raise AttributeError(f"module 'mlwright' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
