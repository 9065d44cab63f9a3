"""Load an exported ONNX graph with onnxruntime and predict raw rows with it.

The graph takes one input per raw column, by its name, shaped ``(rows, 1)``: ``double`` for a
numeric column (NaN for missing) and ``string`` for a categorical one (the category's text key,
``""`` for missing). :class:`CompiledModel` turns a DataFrame, a dict or a list of dicts into
those inputs the way training read the columns: numbers parsed leniently (text that is not a
number counts as missing), categories by :func:`category_key`, so ``3``, ``3.0`` and ``"3"`` are
the same category, as in the Python pipeline.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from mlwright._categories import category_key
from mlwright.errors import ConfigError, ModelError

__all__ = ["CompiledModel", "category_key", "load_compiled"]

#: Metadata keys the exporter writes into the graph.
META_PREFIX = "mlwright."
#: Frames up to this many rows are fed value by value: per-column pandas calls cost more.
_SMALL = 32


def _number(value: Any) -> float:
    if value is None:
        return math.nan
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


class CompiledModel:
    """An exported mlwright model, scored by onnxruntime.

    Parameters
    ----------
    source
        The ``.onnx`` file (path) or its bytes.
    threads
        onnxruntime's intra-op threads (1 keeps single-row latency lowest; more help batches).

    Attributes
    ----------
    task : str
        ``"binary"``, ``"multiclass"`` or ``"regression"``.
    target : str
        The column the model predicts.
    classes : list or None
        Class labels in probability-column order (classification).
    columns : list of tuple
        ``(column, kind)`` of each graph input, kind ``"numeric"`` or ``"categorical"``.
    parity : dict
        What the export measured against the Python pipeline.
    """

    def __init__(self, source: str | os.PathLike[str] | bytes, threads: int = 1) -> None:
        try:
            # deferred: onnxruntime is the optional extra mlwright[onnx]
            import onnxruntime
        except ImportError as err:
            raise ConfigError(
                "Running an ONNX model needs onnxruntime: pip install 'mlwright[onnx]'."
            ) from err
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(1, int(threads))
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        where = "the given bytes" if isinstance(source, bytes) else f"'{source}'"
        try:
            self.session = onnxruntime.InferenceSession(
                source if isinstance(source, bytes) else str(source),
                options,
                providers=["CPUExecutionProvider"],
            )
        except Exception as err:  # onnxruntime raises its own classes for unreadable graphs
            raise ModelError(
                f"Could not load the ONNX graph {where}: {err}. Export it again with "
                "`mlwright export MODEL --format onnx --output model.onnx`."
            ) from err
        meta = self.session.get_modelmeta().custom_metadata_map
        if f"{META_PREFIX}task" not in meta:
            raise ModelError(
                f"The ONNX graph {where} was not written by `mlwright export` (it has no "
                "mlwright metadata). Export the model with `mlwright export`."
            )
        self.task: str = meta[f"{META_PREFIX}task"]  # task and target are plain text
        self.target: str = meta.get(f"{META_PREFIX}target", "")
        self.classes: list[Any] | None = json.loads(meta.get(f"{META_PREFIX}classes", "null"))
        self.columns: list[tuple[str, str]] = [
            (str(name), str(kind)) for name, kind in json.loads(meta[f"{META_PREFIX}columns"])
        ]
        self.parity: dict[str, Any] = json.loads(meta.get(f"{META_PREFIX}parity", "{}"))
        #: ``{"default": markers or None, "columns": {column: markers}}``: which cells read as
        #: missing when a file is read for this model (the rule of its training data).
        self.reading_rule: dict[str, Any] | None = json.loads(
            meta.get(f"{META_PREFIX}reading_rule", "null")
        )
        self._outputs = [output.name for output in self.session.get_outputs()]

    @property
    def feature_names(self) -> list[str]:
        """The raw input columns, in the graph's order."""
        return [name for name, _ in self.columns]

    def inputs(self, data: Any) -> dict[str, np.ndarray]:
        """The graph's input tensors for ``data`` (a DataFrame, a dict or a list of dicts)."""
        if isinstance(data, dict):
            data = [data]
        if isinstance(data, list):
            n = len(data)
            values: dict[str, Any] = {
                name: [row.get(name) for row in data] for name, _ in self.columns
            }
        elif len(data) <= _SMALL:
            n = len(data)
            # pandas' per-column arrays: a column lookup per feature costs more than the graph.
            arrays = getattr(data, "_iter_column_arrays", None)
            if arrays is not None:
                by_name = dict(zip(data.columns, arrays(), strict=True))
            else:  # pragma: no cover - pandas without the private iterator
                by_name = {name: data[name].to_numpy() for name in data.columns}
            values = {
                name: _python_values(by_name[name]) if name in by_name else None
                for name, _ in self.columns
            }
        else:
            return self._large_inputs(data)
        feeds: dict[str, np.ndarray] = {}
        for name, kind in self.columns:
            column = values[name]
            if kind == "numeric":
                if column is None:
                    array = np.full(n, np.nan)
                else:
                    array = np.array([_number(v) for v in column], dtype=np.float64)
                feeds[name] = array.reshape(n, 1)
            else:
                if column is None:
                    keys = [""] * n
                else:
                    keys = [category_key(v) or "" for v in column]
                feeds[name] = np.array(keys, dtype=object).reshape(n, 1)
        return feeds

    def _large_inputs(self, frame: Any) -> dict[str, np.ndarray]:
        """Column-wise for large frames: each distinct category is keyed once."""
        # deferred: pandas is only needed for frames, and a caller passing one has loaded it
        import pandas as pd

        n = len(frame)
        present = set(frame.columns)
        feeds: dict[str, np.ndarray] = {}
        for name, kind in self.columns:
            if kind == "numeric":
                if name not in present:
                    array = np.full(n, np.nan)
                else:
                    array = _numeric_series(frame[name])
            elif name not in present:
                array = np.full(n, "", dtype=object)
            else:
                codes, uniques = pd.factorize(frame[name], use_na_sentinel=True)
                keys = [category_key(value) or "" for value in uniques]
                keys.append("")  # the sentinel -1 picks the last slot: missing
                array = np.array(keys, dtype=object)[codes]
            feeds[name] = array.reshape(n, 1)
        return feeds

    def run(self, data: Any) -> dict[str, np.ndarray]:
        """The graph's outputs by name (``label`` and ``probabilities``, or ``prediction``)."""
        results = self.session.run(None, self.inputs(data))
        return dict(zip(self._outputs, results, strict=True))

    def predict(self, data: Any) -> np.ndarray:
        """Predicted labels (classification) or values (regression), one per row."""
        outputs = self.run(data)
        if self.task == "regression":
            return np.asarray(outputs["prediction"], dtype=float).reshape(-1)
        return np.asarray(outputs["label"]).reshape(-1)

    def predict_proba(self, data: Any) -> np.ndarray:
        """Class probabilities, one column per label of :attr:`classes`."""
        if self.task == "regression":
            raise ModelError(
                f"This model predicts a number ('{self.target}', regression), so it has no class "
                "probabilities. Use predict() instead."
            )
        return np.asarray(self.run(data)["probabilities"], dtype=float)


def _python_values(array: Any) -> list[Any]:
    """A column's values as Python objects, by the quickest route for its kind of array."""
    if isinstance(array, np.ndarray):
        return array.tolist()
    # pandas' Arrow-backed strings: pyarrow converts the whole column at once, where iterating
    # converts each value (half the feeding time of a one-row frame on adult).
    arrow = getattr(array, "_pa_array", None)
    if arrow is not None:
        return arrow.to_pylist()
    return list(array)


def _numeric_series(series: Any) -> np.ndarray:
    """A pandas column as float64, text that is not a number as NaN (training's rule)."""
    # deferred: pandas is only needed for frames, and a caller passing one has loaded it
    import pandas as pd

    if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
        return series.to_numpy(dtype=float, na_value=np.nan)
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def load_compiled(path: str | os.PathLike[str], threads: int = 1) -> CompiledModel:
    """Load an exported ``.onnx`` file; a missing file is a :class:`ModelError` naming it."""
    if not Path(path).is_file():
        raise ModelError(
            f"No ONNX file at '{path}'. Write one with "
            "`mlwright export MODEL --format onnx --output model.onnx`."
        )
    return CompiledModel(path, threads=threads)
