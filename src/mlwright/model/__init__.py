"""The model artifact: train, save, verify, load and predict.

A trained model is a directory holding the fitted predictor, its schema, validation metrics,
lineage, data-quality findings and a MANIFEST of SHA-256 digests that :func:`load` verifies
before unpickling anything.
"""

from __future__ import annotations

from mlwright.model._artifact import register_reference_scheme, resolve_reference
from mlwright.model._estimators import AutoClassifier, AutoRegressor
from mlwright.model._model import Model, load
from mlwright.model._onnx import OnnxExport, UnsupportedPartError, export_onnx
from mlwright.model._train_api import train

__all__ = [
    "AutoClassifier",
    "AutoRegressor",
    "Model",
    "OnnxExport",
    "UnsupportedPartError",
    "export_onnx",
    "load",
    "register_reference_scheme",
    "resolve_reference",
    "train",
]
