"""Export a trained model's whole predictor as one ONNX graph, checked against Python.

The graph reads the raw columns by name (see :mod:`mlwright.compiled`), maps categories to the
codes training gave them (unseen ones to the shared "other" code when training had one, else
missing), and feeds the same feature matrix to every ensemble member. Members are converted by
their library's own exporter: onnxmltools for LightGBM and XGBoost, CatBoost's
``save_model(format="onnx")``; the linear family's encoder and scores are standard ONNX
operators in double precision (:func:`_linear`); a member served as the average of its fold
models becomes the average of their graphs. The weighted sum (in double precision) is clipped
and renormalised as the Python predictor does.

Parts without a converter that agrees with Python are refused, naming the part: free-text and
datetime columns, second-layer (stacked) members, and the k-NN, neural-network, random forest
and extra-trees families (skl2onnx routes missing values differently from
scikit-learn's trees), and CatBoost with categorical features (its exporter refuses them).

Every export is checked: the graph and the Python pipeline predict the same rows (the data
given, plus copies of some with each column missing and each category unseen), and a graph whose
probabilities differ by more than :data:`TOLERANCE` or whose label differs on any row is
refused.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlwright.automl._predictor import Predictor
from mlwright.compiled._runtime import META_PREFIX, CompiledModel
from mlwright.data import read
from mlwright.errors import ConfigError, DataError, ModelError, write_error

__all__ = ["OnnxExport", "UnsupportedPartError", "export_onnx"]

#: Largest absolute probability difference (classification), or difference relative to the
#: prediction's scale (regression), that the graph may show against the Python pipeline.
TOLERANCE = 1e-5
#: The ONNX opsets the graph uses (onnxmltools 1.16 converts up to opset 15).
OPSET = 15
ML_OPSET = 3
#: Rows of the data the parity check uses at most, and rows it copies for its missing-value and
#: unseen-category probes.
PARITY_ROWS = 20_000
PROBE_ROWS = 16
#: Families whose models convert, and why the others do not.
_REFUSED_FAMILIES = {
    "knn": "k-NN has no converter here yet",
    "mlp": "the PyTorch network has no converter here yet",
    "random_forest": "skl2onnx 1.20 does not route missing values as scikit-learn's trees do "
    "(measured: probabilities differ by up to 0.6 on rows with a missing value)",
    "extra_trees": "skl2onnx 1.20 does not route missing values as scikit-learn's trees do "
    "(measured: probabilities differ by up to 0.6 on rows with a missing value)",
}
_UNSEEN = "mlwright: a category never seen in training"


class UnsupportedPartError(ModelError):
    """A part of the predictor has no ONNX conversion that agrees with Python."""


@dataclass
class OnnxExport:
    """An exported graph and what the parity check measured.

    Attributes
    ----------
    graph : bytes
        The serialised ONNX model.
    parity : dict
        ``rows`` compared, ``max_abs_diff`` of the probabilities (or of the values, with
        ``max_rel_diff``, for regression), ``label_agreement`` (the share of rows whose label
        agrees, classification), ``tolerance``.
    members : list of dict
        Each ensemble member: name, family, weight, how it serves and how many graphs it has.
    """

    graph: bytes
    parity: dict[str, Any]
    members: list[dict[str, Any]]

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the graph to ``path`` (whole or not at all); returns the path."""
        target = Path(path)
        existed = target.exists()
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_bytes(self.graph)
            os.replace(temporary, target)
        except OSError as err:
            with contextlib.suppress(OSError):
                temporary.unlink()
            error = write_error(err, "the ONNX graph", target, kept=existed)
            if error is None:
                raise
            raise error from err
        return target


def _libraries() -> tuple[Any, Any]:
    try:
        # deferred: onnx and onnxmltools are the optional extra mlwright[onnx]
        import onnx
        import onnxmltools  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as err:
        raise ConfigError(
            f"ONNX export needs: pip install 'mlwright[onnx]' ({err.name} is not installed)."
        ) from err
    return onnx, onnx.helper


def export_onnx(model: Any, data: Any = None) -> OnnxExport:
    """Convert ``model``'s whole predictor to one ONNX graph and check it against Python.

    Parameters
    ----------
    model
        A :class:`mlwright.Model` trained by mlwright.
    data
        Rows to check parity on (a DataFrame with the model's columns; the target may be there
        too). Default: the training data the lineage names, when that file is still readable.

    Returns
    -------
    OnnxExport
        The graph, the parity figures (also in the graph's metadata) and the members.

    Raises
    ------
    UnsupportedPartError
        A column kind or ensemble member has no conversion; the message names it.
    ModelError
        The graph disagrees with the Python pipeline beyond the tolerance.
    """
    onnx, helper = _libraries()
    predictor = model.predictor
    if not isinstance(predictor, Predictor):
        raise UnsupportedPartError(
            f"Only models trained by mlwright export to ONNX; this one's predictor is a "
            f"{type(predictor).__name__}."
        )
    frame = _parity_frame(model, data)
    _check_parts(predictor)
    graph = _build(model, predictor, onnx, helper)
    runtime = CompiledModel(graph.SerializeToString())
    parity = _parity(model, predictor, runtime, frame)
    _set_metadata(graph, "parity", parity)
    members = [
        {
            "name": member.name,
            "family": member.family,
            "weight": float(member.weight),
            "served_as": member.served_as,
            "graphs": len(member.models),
        }
        for member in predictor.members
    ]
    return OnnxExport(graph.SerializeToString(), parity, members)


# -- what converts -----------------------------------------------------------------------------
def _check_parts(predictor: Predictor) -> None:
    """Refuse, naming every part that does not convert and the fix for each."""
    problems: list[str] = []
    fixes: list[str] = []

    def refuse(problem: str, fix: str) -> None:
        problems.append(problem)
        if fix not in fixes:
            fixes.append(fix)

    for spec in predictor.preprocessor.specs_:
        if spec.kind not in ("numeric", "categorical"):
            refuse(
                f"column {spec.column!r} is used as {spec.kind}, which the ONNX export does not "
                "convert yet (only numeric and categorical columns do)",
                f"train without {spec.column!r} (drop it from the data), or with the Python API "
                f"declare it categorical (feature_types={{{spec.column!r}: 'categorical'}})",
            )
    families = "train with convertible families, e.g. --models lightgbm,xgboost,linear"
    for member in predictor.members:
        if getattr(member, "layer", 1) == 2:
            refuse(
                f"ensemble member {member.name!r} is a second-layer (stacked) model, which the "
                "ONNX export does not convert yet",
                "train with fewer trials or models so that no stack is chosen",
            )
            continue
        reason = _REFUSED_FAMILIES.get(member.family)
        if reason is not None:
            refuse(
                f"ensemble member {member.name!r} (family {member.family}) does not convert to "
                f"ONNX: {reason}",
                families,
            )
        elif member.family == "catboost" and predictor.preprocessor.categorical_:
            refuse(
                f"ensemble member {member.name!r} (CatBoost) uses categorical features, which "
                "CatBoost's ONNX exporter does not support",
                families,
            )
    if not problems:
        return
    if len(problems) == 1:
        head = problems[0][0].upper() + problems[0][1:]
    else:
        head = f"{len(problems)} parts of this model do not convert to ONNX: " + "; ".join(problems)
    raise UnsupportedPartError(
        f"{head}. The model still predicts through Python; to export, " + "; ".join(fixes) + "."
    )


# -- building the graph ------------------------------------------------------------------------
def _set_metadata(graph: Any, key: str, value: Any, text: bool = False) -> None:
    name = f"{META_PREFIX}{key}"
    encoded = str(value) if text else json.dumps(value)
    for entry in graph.metadata_props:
        if entry.key == name:
            entry.value = encoded
            return
    entry = graph.metadata_props.add()
    entry.key, entry.value = name, encoded


def _build(model: Any, predictor: Predictor, onnx: Any, helper: Any) -> Any:
    # deferred: onnx is the optional extra mlwright[onnx]
    from onnx import TensorProto

    pre = predictor.preprocessor
    nodes: list[Any] = []
    initializers: list[Any] = []
    inputs: list[Any] = []
    columns: list[tuple[str, str]] = []
    parts: list[str] = []
    for index, spec in enumerate(pre.specs_):
        name = str(spec.column)
        part = f"feature_{index}"
        if spec.kind == "numeric":
            inputs.append(helper.make_tensor_value_info(name, TensorProto.DOUBLE, [None, 1]))
            nodes.append(helper.make_node("Cast", [name], [part], to=TensorProto.FLOAT))
        else:
            inputs.append(helper.make_tensor_value_info(name, TensorProto.STRING, [None, 1]))
            other = len(spec.mapping) if spec.n_codes > len(spec.mapping) else None
            keys = sorted(spec.mapping)
            values = [float(spec.mapping[key]) for key in keys]
            # "" is how the runtime feeds a missing value; it stays missing.
            keys.append("")
            values.append(math.nan)
            nodes.append(
                helper.make_node(
                    "LabelEncoder",
                    [name],
                    [part],
                    domain="ai.onnx.ml",
                    keys_strings=keys,
                    values_floats=values,
                    default_float=math.nan if other is None else float(other),
                )
            )
        columns.append((name, spec.kind))
        parts.append(part)
    nodes.append(helper.make_node("Concat", parts, ["features"], axis=1))
    n_features = len(parts)
    if any(member.family == "linear" for member in predictor.members):
        # The linear model scales numbers: it reads them in double precision, as in Python.
        wide = []
        for index, spec in enumerate(pre.specs_):
            if spec.kind == "numeric":
                wide.append(str(spec.column))
            else:
                wide.append(f"feature64_{index}")
                nodes.append(
                    helper.make_node(
                        "Cast", [f"feature_{index}"], [wide[-1]], to=TensorProto.DOUBLE
                    )
                )
        nodes.append(helper.make_node("Concat", wide, ["features64"], axis=1))

    task = predictor.task
    n_classes = len(predictor.classes_ or []) if task != "regression" else 1
    total = None
    for m_index, member in enumerate(predictor.members):
        outputs = []
        for g_index, fitted in enumerate(member.models):
            prefix = f"m{m_index}g{g_index}_"
            if member.family == "linear":
                sub_nodes, sub_inits, sub_output = _linear(fitted, task, n_classes, prefix, helper)
            else:
                sub, output = _convert(member.family, fitted, task, n_features, n_classes, onnx)
                sub_nodes, sub_inits, sub_output = _embed(sub, output, prefix, onnx)
            nodes += sub_nodes
            initializers += sub_inits
            # Members are blended in double precision, as in Python.
            nodes.append(
                helper.make_node("Cast", [sub_output], [prefix + "output64"], to=TensorProto.DOUBLE)
            )
            outputs.append(prefix + "output64")
        scale = f"m{m_index}_weight"
        initializers.append(
            helper.make_tensor(
                scale, TensorProto.DOUBLE, [], [float(member.weight) / len(member.models)]
            )
        )
        summed = outputs[0] if len(outputs) == 1 else f"m{m_index}_sum"
        if len(outputs) > 1:
            nodes.append(helper.make_node("Sum", outputs, [summed]))
        weighted = f"m{m_index}_weighted"
        nodes.append(helper.make_node("Mul", [summed, scale], [weighted]))
        total = weighted if total is None else _add(nodes, helper, total, weighted, m_index)

    blend = "blend"
    nodes.append(helper.make_node("Identity", [total], [blend]))
    if task == "regression":
        initializers.append(helper.make_tensor("flat", TensorProto.INT64, [1], [-1]))
        nodes.append(helper.make_node("Reshape", [blend, "flat"], ["prediction"]))
        outputs_info = [helper.make_tensor_value_info("prediction", TensorProto.DOUBLE, [None])]
    else:
        initializers.append(helper.make_tensor("zero", TensorProto.DOUBLE, [], [0.0]))
        nodes.append(helper.make_node("Max", [blend, "zero"], ["clipped"]))
        initializers.append(helper.make_tensor("class_axis", TensorProto.INT64, [1], [1]))
        nodes.append(helper.make_node("ReduceSum", ["clipped", "class_axis"], ["sums"], keepdims=1))
        nodes.append(helper.make_node("Div", ["clipped", "sums"], ["probabilities"]))
        nodes.append(
            helper.make_node("ArgMax", ["probabilities"], ["label_index"], axis=1, keepdims=0)
        )
        classes = list(predictor.classes_)
        if all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in classes):
            label_type = TensorProto.INT64
            labels = helper.make_tensor(
                "labels", label_type, [len(classes)], [int(c) for c in classes]
            )
        else:
            label_type = TensorProto.STRING
            labels = helper.make_tensor(
                "labels", label_type, [len(classes)], [str(c).encode() for c in classes]
            )
        initializers.append(labels)
        nodes.append(helper.make_node("Gather", ["labels", "label_index"], ["label"], axis=0))
        outputs_info = [
            helper.make_tensor_value_info("label", label_type, [None]),
            helper.make_tensor_value_info("probabilities", TensorProto.DOUBLE, [None, n_classes]),
        ]
    graph = helper.make_graph(nodes, "mlwright", inputs, outputs_info, initializers)
    result = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)],
        producer_name="mlwright",
    )
    result.ir_version = 8
    onnx.checker.check_model(result)
    # Task and target as plain text, the rest as JSON (for consumers reading the metadata).
    _set_metadata(result, "task", task, text=True)
    _set_metadata(result, "target", str(model.target), text=True)
    _set_metadata(result, "classes", _json_labels(predictor.classes_))
    _set_metadata(result, "columns", columns)
    # How to read a file for this model as training read it (``mlwright predict --runtime
    # onnx`` applies it): markers of missing values per column.
    rule = model.reading_rule
    _set_metadata(
        result,
        "reading_rule",
        {
            "default": None if rule.default is None else list(rule.default),
            "columns": {str(name): list(markers) for name, markers in rule.columns.items()},
        },
    )
    return result


def _json_labels(classes: list[Any] | None) -> Any:
    if classes is None:
        return None
    return [c.item() if isinstance(c, np.generic) else c for c in classes]


def _add(nodes: list[Any], helper: Any, left: str, right: str, index: int) -> str:
    name = f"total_{index}"
    nodes.append(helper.make_node("Add", [left, right], [name]))
    return name


def _embed(sub: Any, output: str, prefix: str, onnx: Any) -> tuple[list[Any], list[Any], str]:
    """A converted model's nodes and weights, renamed under ``prefix``, reading ``features``."""
    # deferred: onnx is the optional extra mlwright[onnx]
    from onnx import compose

    renamed = compose.add_prefix(sub, prefix)
    source = renamed.graph.input[0].name
    nodes = []
    for node in renamed.graph.node:
        for i, name in enumerate(node.input):
            if name == source:
                node.input[i] = "features"
        nodes.append(node)
    return nodes, list(renamed.graph.initializer), prefix + output


def _linear(
    fitted: Any, task: str, n_classes: int, prefix: str, helper: Any
) -> tuple[list[Any], list[Any], str]:
    """The linear family's dense encoder and model as ONNX operators on ``features64``.

    The same arithmetic as ``DenseEncoder.transform`` and ``linear.predict``, in double
    precision: median imputation with missing indicators, a signed log for heavy-tailed
    columns, standard scaling clipped at +-10, one-hot of the kept category codes (a missing or
    unseen code is all zeros) with missing indicators, then the linear scores and their
    logistic or softmax.
    """
    # deferred: onnx is the optional extra mlwright[onnx]
    from onnx import TensorProto

    encoder, estimator, _ = fitted
    classes = np.asarray(getattr(estimator, "classes_", []))
    if task != "regression" and len(classes) != n_classes:
        raise UnsupportedPartError(
            f"A linear fold model saw {len(classes)} of the {n_classes} classes; its ONNX "
            "graph would not line up with the others."
        )
    nodes: list[Any] = []
    inits: list[Any] = []
    parts: list[str] = []

    def constant(name: str, values: Any, dtype: int = TensorProto.DOUBLE) -> str:
        array = np.asarray(values)
        inits.append(
            helper.make_tensor(
                prefix + name,
                dtype,
                list(array.shape),
                array.astype(np.int64 if dtype == TensorProto.INT64 else np.float64).ravel(),
            )
        )
        return prefix + name

    def node(op: str, inputs: list[str], name: str, **attributes: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [prefix + name], **attributes))
        return prefix + name

    numeric = list(encoder.numeric_)
    if numeric:
        values = node(
            "Gather", ["features64", constant("numeric", numeric, TensorProto.INT64)], "num", axis=1
        )
        missing = node("IsNaN", [values], "num_missing")
        filled = node(
            "Where", [missing, constant("medians", [encoder.medians_]), values], "num_filled"
        )
        log_mask = np.asarray(encoder.log_, dtype=bool)
        if log_mask.any():
            magnitude = node("Abs", [filled], "num_abs")
            shifted = node("Add", [magnitude, constant("one", 1.0)], "num_abs1")
            logged = node(
                "Mul",
                [node("Sign", [filled], "num_sign"), node("Log", [shifted], "num_log")],
                "num_signed_log",
            )
            mask = constant("log_mask", [log_mask.astype(float)])
            mask_bool = node("Cast", [mask], "log_mask_bool", to=TensorProto.BOOL)
            filled = node("Where", [mask_bool, logged, filled], "num_compressed")
        centred = node("Sub", [filled, constant("mean", [encoder.mean_])], "num_centred")
        scaled = node("Div", [centred, constant("scale", [encoder.scale_])], "num_scaled")
        parts.append(
            node("Clip", [scaled, constant("low", -10.0), constant("high", 10.0)], "num_clipped")
        )
        if encoder.missing_:
            chosen = node(
                "Gather",
                [missing, constant("missing", list(encoder.missing_), TensorProto.INT64)],
                "num_missing_kept",
                axis=1,
            )
            parts.append(node("Cast", [chosen], "num_indicators", to=TensorProto.DOUBLE))
    for position, (column, levels) in enumerate(
        zip(encoder.categorical, encoder.levels_, strict=True)
    ):
        if not len(levels):
            continue
        codes = node(
            "Gather",
            ["features64", constant(f"cat{position}", [column], TensorProto.INT64)],
            f"cat{position}_codes",
            axis=1,
        )
        hits = node(
            "Equal",
            [codes, constant(f"cat{position}_levels", [np.asarray(levels, dtype=float)])],
            f"cat{position}_hits",
        )
        parts.append(node("Cast", [hits], f"cat{position}_onehot", to=TensorProto.DOUBLE))
    missing_categories = list(getattr(encoder, "missing_categories_", []))
    if missing_categories:
        columns = [encoder.categorical[j] for j in missing_categories]
        codes = node(
            "Gather",
            ["features64", constant("cat_missing", columns, TensorProto.INT64)],
            "cat_missing_codes",
            axis=1,
        )
        flags = node("IsNaN", [codes], "cat_missing_flags")
        parts.append(node("Cast", [flags], "cat_missing_indicators", to=TensorProto.DOUBLE))
    if not parts:
        raise UnsupportedPartError("A linear member encodes no features; it has no ONNX graph.")
    design = parts[0] if len(parts) == 1 else node("Concat", parts, "design", axis=1)
    coefficients = np.atleast_2d(np.asarray(estimator.coef_, dtype=float))
    scores = node("MatMul", [design, constant("coef", coefficients.T)], "scores_raw")
    scores = node(
        "Add", [scores, constant("intercept", np.atleast_1d(estimator.intercept_))], "scores"
    )
    if task == "regression":
        return nodes, inits, scores
    if coefficients.shape[0] == 1:
        positive = node("Sigmoid", [scores], "positive")
        negative = node("Sub", [constant("unit", 1.0), positive], "negative")
        return nodes, inits, node("Concat", [negative, positive], "proba", axis=1)
    return nodes, inits, node("Softmax", [scores], "proba", axis=1)


def _convert(
    family_name: str, fitted: Any, task: str, n_features: int, n_classes: int, onnx: Any
) -> tuple[Any, str]:
    """One fitted model as an ONNX model reading float ``(rows, n_features)``; its output name.

    The output holds probabilities ``(rows, n_classes)`` or values ``(rows, 1)``.
    """
    # deferred: onnxmltools is the optional extra mlwright[onnx]
    from onnxmltools.convert.common.data_types import FloatTensorType

    types = [("input", FloatTensorType([None, n_features]))]
    if family_name == "lightgbm":
        # deferred: onnxmltools is the optional extra mlwright[onnx]
        from onnxmltools.convert import convert_lightgbm

        converted = convert_lightgbm(fitted, initial_types=types, zipmap=False, target_opset=OPSET)
        output = "probabilities" if task != "regression" else converted.graph.output[0].name
    elif family_name == "xgboost":
        # deferred: onnxmltools is the optional extra mlwright[onnx]
        from onnxmltools.convert import convert_xgboost

        converted = convert_xgboost(fitted, initial_types=types, target_opset=OPSET)
        output = "probabilities" if task != "regression" else converted.graph.output[0].name
    elif family_name == "catboost":
        converted, output = _catboost(fitted, task, n_classes, onnx)
    else:  # _check_parts refused it already
        raise UnsupportedPartError(f"The family {family_name} does not convert to ONNX.")
    if task != "regression":
        names = [o.name for o in converted.graph.output] + [
            o for n in converted.graph.node for o in n.output
        ]
        if output not in names:
            raise UnsupportedPartError(
                f"The {family_name} converter's graph has no {output!r} output."
            )
    return converted, output


def _catboost(fitted: Any, task: str, n_classes: int, onnx: Any) -> tuple[Any, str]:
    estimator, _, _ = fitted
    if task != "regression" and len(estimator.classes_) != n_classes:
        raise UnsupportedPartError(
            f"A CatBoost fold model saw {len(estimator.classes_)} of the {n_classes} classes; "
            "its ONNX graph would not line up with the others."
        )
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "catboost.onnx")
        estimator.save_model(path, format="onnx")
        converted = onnx.load(path)
    if task == "regression":
        return converted, converted.graph.output[0].name
    # CatBoost ends with a ZipMap (a list of dicts); its input is the probability tensor.
    zipmaps = [node for node in converted.graph.node if node.op_type == "ZipMap"]
    output = zipmaps[0].input[0] if zipmaps else converted.graph.output[-1].name
    for node in zipmaps:
        converted.graph.node.remove(node)
    return converted, output


# -- parity ------------------------------------------------------------------------------------
def _parity_frame(model: Any, data: Any) -> pd.DataFrame:
    if data is None:
        source = ((model.lineage or {}).get("data") or {}).get("source")
        if not source or not Path(str(source)).is_file():
            raise DataError(
                "The parity check needs rows to compare the graph with the Python pipeline on, "
                "and the model's training data "
                + (f"('{source}') " if source else "")
                + "is not readable here. Pass the data with --data FILE."
            )
        data = source
    if isinstance(data, (str, os.PathLike)):
        frame = read(data, na_values=model.reading_rule)
    else:
        frame = pd.DataFrame(data)
    frame = frame.drop(columns=[model.target], errors="ignore")
    if len(frame) == 0:
        raise DataError("The parity check got no rows; pass a file with rows in --data.")
    if len(frame) > PARITY_ROWS:
        frame = frame.sample(PARITY_ROWS, random_state=0)
    return frame.reset_index(drop=True)


def _probes(frame: pd.DataFrame, predictor: Predictor) -> pd.DataFrame:
    """Copies of a few rows with each used column missing, and each category column unseen."""
    base = frame.head(PROBE_ROWS)
    probes = []
    for spec in predictor.preprocessor.specs_:
        if spec.column not in base.columns:
            continue
        missing = base.copy()
        missing[spec.column] = None if spec.kind == "categorical" else np.nan
        probes.append(missing)
        if spec.kind == "categorical":
            unseen = base.copy()
            unseen[spec.column] = _UNSEEN
            probes.append(unseen)
    if not probes:
        return frame
    return pd.concat([frame, *[p.astype(object) for p in probes]], ignore_index=True)


def _parity(
    model: Any, predictor: Predictor, runtime: CompiledModel, frame: pd.DataFrame
) -> dict[str, Any]:
    data_rows = len(frame)
    rows = _probes(frame, predictor)
    parity: dict[str, Any] = {
        "rows": len(rows),
        "data_rows": data_rows,
        "probe_rows": len(rows) - data_rows,
        "tolerance": TOLERANCE,
    }
    if predictor.task == "regression":
        python = np.asarray(predictor.predict(rows), dtype=float)
        graph = runtime.predict(rows)
        difference = np.abs(python - graph)
        scale = max(1.0, float(np.max(np.abs(python))))
        parity["max_abs_diff"] = float(difference.max())
        parity["max_rel_diff"] = float(difference.max() / scale)
        if not parity["max_rel_diff"] <= TOLERANCE:
            raise ModelError(
                f"The ONNX graph disagrees with the Python pipeline: predictions differ by up "
                f"to {parity['max_abs_diff']:.3g} ({parity['max_rel_diff']:.3g} of their scale) "
                f"on {len(rows):,} rows, over the tolerance of {TOLERANCE:g}. The graph was not "
                "written; the model still predicts through Python."
            )
        return parity
    python_proba = predictor.predict_proba(rows)
    outputs = runtime.run(rows)
    graph_proba = np.asarray(outputs["probabilities"], dtype=float)
    python_labels = np.asarray(predictor.classes_, dtype=object)[python_proba.argmax(axis=1)]
    graph_labels = np.asarray(outputs["label"]).astype(object)
    agree = np.array([str(a) == str(b) for a, b in zip(python_labels, graph_labels, strict=True)])
    difference = float(np.max(np.abs(python_proba - graph_proba)))
    parity["max_abs_diff"] = difference
    parity["label_agreement"] = float(agree.mean())
    parity["labels_differing"] = int((~agree).sum())
    if not difference <= TOLERANCE or not agree.all():
        raise ModelError(
            f"The ONNX graph disagrees with the Python pipeline on {len(rows):,} rows: "
            f"probabilities differ by up to {difference:.3g} (tolerance {TOLERANCE:g}) and "
            f"{int((~agree).sum())} label(s) differ. The graph was not written; the model "
            "still predicts through Python."
        )
    return parity
