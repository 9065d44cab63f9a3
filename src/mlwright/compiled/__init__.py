"""Compiled inference: a model exported as one ONNX graph, run by onnxruntime alone.

This stage imports neither scikit-learn nor any model library, and unpickles nothing: what it
needs to turn raw rows into the graph's inputs (the task, the class labels, each column's
kind) is in the graph's metadata. :func:`mlwright.model.export_onnx` writes such a graph.
"""

from __future__ import annotations

from mlwright.compiled._runtime import CompiledModel, category_key, load_compiled

__all__ = ["CompiledModel", "category_key", "load_compiled"]
