"""The one rule that says when two category values are the same category.

Training (``mlwright.automl``), the server's validation and fast path (``mlwright.serve``) and
the ONNX runtime (``mlwright.compiled``) all map a value to its category through
:func:`category_key`, so that a value typed differently at prediction time (``3`` in JSON,
``3.0`` from a CSV, ``"3"`` from a form) finds the category training saw. It needs only NumPy:
the ONNX runtime imports it without pandas' or scikit-learn's stages.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["category_key"]

_MISSING_TYPES = ("NAType", "NaTType")  # pandas' NA and NaT, named so pandas is not imported


def category_key(value: Any) -> str | None:
    """Normalised text key of a category value; ``None`` for missing.

    Integers read as ``3``, ``3.0`` or ``"3"`` share a key, booleans are ``"True"`` /
    ``"False"``, text is stripped, and empty text, NaN, ``None``, ``pd.NA`` and ``pd.NaT`` are
    missing.
    """
    if value is None:
        return None
    if type(value) is str:  # the common case first: the server calls this per value
        return value.strip() or None
    if isinstance(value, (bool, np.bool_)):
        return "True" if value else "False"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return None
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    if type(value).__name__ in _MISSING_TYPES:
        return None
    try:
        text = str(value).strip()
    except TypeError:  # pragma: no cover - str() of an exotic object
        return None
    return text or None
