"""Open Inference Protocol (V2) messages and the tensor <-> column codec.

Tabular requests follow MLServer's pandas-codec convention: one input tensor per feature
column, named after the column, shape ``[N]`` or ``[N, 1]``, ``BYTES`` for strings. A model
whose features are all numeric also accepts a single ``[N, F]`` ``FP32``/``FP64`` tensor with
the columns in the model's feature order (see the model metadata).

Outputs: ``predict`` (``[N]``: class labels, or numbers for regression) and, for
classification, ``predict_proba`` (``[N, C]`` ``FP64``, columns in the order of the model's
classes, also given in the metadata's ``parameters.classes``).
"""

from __future__ import annotations

import itertools
import json
import math
import struct
import uuid
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mlwright.serve._registry import ServedModel
from mlwright.serve._validate import RequestValidationError, check_columns, problem

__all__ = [
    "InferenceRequest",
    "InferenceResponse",
    "MetadataModelResponse",
    "MetadataServerResponse",
    "RequestInput",
    "ResponseOutput",
    "TensorMetadata",
    "decode_inputs",
    "encode_outputs",
    "model_metadata",
]

Datatype = Literal[
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
]
NUMERIC_TYPES = frozenset(
    {
        "UINT8",
        "UINT16",
        "UINT32",
        "UINT64",
        "INT8",
        "INT16",
        "INT32",
        "INT64",
        "FP16",
        "FP32",
        "FP64",
    }
)
# numpy dtype of each fixed-size datatype (raw tensor contents are little-endian).
RAW_DTYPES = {
    "BOOL": "<?",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}
Parameters = dict[str, Any]


class RequestInput(BaseModel):
    """One input tensor."""

    name: str
    shape: list[int]
    datatype: Datatype
    parameters: Parameters | None = None
    # Absent when the tensor travels as binary data (``parameters.binary_data_size``).
    data: list[Any] | None = None


class RequestOutput(BaseModel):
    """An output the client asks for (all outputs when none are listed)."""

    name: str
    parameters: Parameters | None = None


class InferenceRequest(BaseModel):
    """``POST /v2/models/{name}/infer`` body."""

    model_config = ConfigDict(extra="allow")

    id: str | None = None
    parameters: Parameters | None = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = None


class ResponseOutput(BaseModel):
    """One output tensor."""

    name: str
    shape: list[int]
    datatype: Datatype
    parameters: Parameters | None = None
    data: list[Any]


class InferenceResponse(BaseModel):
    """Answer of an inference request."""

    model_name: str
    model_version: str | None = None
    id: str
    parameters: Parameters | None = None
    outputs: list[ResponseOutput]


class TensorMetadata(BaseModel):
    """Name, datatype and shape (``-1`` = any size) of a tensor."""

    name: str
    datatype: str
    shape: list[int]
    parameters: Parameters | None = None


class MetadataServerResponse(BaseModel):
    """``GET /v2``."""

    name: str
    version: str
    extensions: list[str]


class MetadataModelResponse(BaseModel):
    """``GET /v2/models/{name}``."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    parameters: Parameters | None = None


class ErrorResponse(BaseModel):
    """A refused request: ``error`` in one paragraph, ``detail`` per field."""

    error: str
    detail: list[dict[str, Any]] = []


_FIELD_DATATYPE = {"number": "FP64", "string": "BYTES", "boolean": "BOOL", "datetime": "BYTES"}


def label_datatype(model: ServedModel) -> str:
    """Datatype of the ``predict`` output."""
    if model.task == "regression":
        return "FP64"
    classes = model.classes or []
    if classes and all(isinstance(c, bool) for c in classes):
        return "BOOL"
    if classes and all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        return "INT64"
    if classes and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in classes):
        return "FP64"
    return "BYTES"


def model_metadata(model: ServedModel) -> dict[str, Any]:
    """Model metadata: one input per feature (datatype from the schema), outputs."""
    inputs = []
    for spec in model.fields:
        if spec.name not in model.field_by_name or spec.name not in model.feature_names:
            continue
        parameters: dict[str, Any] = {
            "semantic_type": spec.semantic_type,
            "nullable": spec.nullable,
            "content_type": "str" if _FIELD_DATATYPE[spec.kind] == "BYTES" else "np",
        }
        if spec.categories is not None:
            parameters["categories"] = json.dumps(list(spec.categories)[:200], default=str)
        inputs.append(
            {
                "name": spec.name,
                "datatype": _FIELD_DATATYPE[spec.kind],
                "shape": [-1],
                "parameters": parameters,
            }
        )
    outputs = [{"name": "predict", "datatype": label_datatype(model), "shape": [-1]}]
    parameters: dict[str, Any] = {"task": model.task, "content_type": "pd"}
    if model.task != "regression":
        outputs.append(
            {
                "name": "predict_proba",
                "datatype": "FP64",
                "shape": [-1, len(model.classes or [])],
            }
        )
        parameters["classes"] = json.dumps(model.classes, default=str)
    if model.all_numeric:
        parameters["feature_order"] = json.dumps(model.feature_names)
    return {
        "name": model.name,
        "versions": [model.version],
        "platform": "mlwright",
        "inputs": inputs,
        "outputs": outputs,
        "parameters": parameters,
    }


def _flatten(data: list[Any]) -> list[Any]:
    if data and isinstance(data[0], list):
        flat: list[Any] = []
        for item in data:
            if isinstance(item, list):
                flat.extend(_flatten(item))
            else:
                flat.append(item)
        return flat
    return data


def _rows_of(name: str, shape: list[int], size: int) -> int:
    if not shape or any(not isinstance(d, int) or d < 0 for d in shape):
        raise RequestValidationError(
            [
                problem(
                    name,
                    "bad_shape",
                    f"input tensor '{name}' has the shape {shape}; expected [N] or "
                    "[N, 1] (or [N, F] for a single all-numeric tensor)",
                )
            ],
            status=400,
        )
    if math.prod(shape) != size:
        raise RequestValidationError(
            [
                problem(
                    name,
                    "bad_shape",
                    f"input tensor '{name}' has the shape {shape} ({math.prod(shape)} "
                    f"elements) but {size} data elements",
                )
            ],
            status=400,
        )
    return shape[0]


def _typed_values(name: str, datatype: str, values: list[Any], kind: str) -> list[Any]:
    """Convert tensor elements to the field's Python type, or report the mismatch."""
    if datatype == "BYTES":
        out = []
        for value in values:
            if isinstance(value, (bytes, bytearray)):
                try:
                    out.append(value.decode("utf-8"))
                except UnicodeDecodeError as err:
                    raise RequestValidationError(
                        [
                            problem(
                                name,
                                "wrong_type",
                                f"input tensor '{name}' holds bytes that are not UTF-8 text",
                            )
                        ],
                        status=400,
                    ) from err
            else:
                out.append(value)
        return out
    if kind in ("string", "datetime"):
        raise RequestValidationError(
            [
                problem(
                    name,
                    "wrong_type",
                    f"input tensor '{name}' is {datatype}, but the column holds "
                    "text: send it as BYTES",
                )
            ],
            status=400,
        )
    if datatype == "BOOL":
        return [value if value is None else bool(value) for value in values]
    return values


def decode_inputs(
    model: ServedModel, inputs: list[tuple[str, str, list[int], list[Any]]]
) -> tuple[dict[str, list[Any]], int]:
    """Turn input tensors into validated per-column values.

    Parameters
    ----------
    model
        The model the request is for.
    inputs
        ``(name, datatype, shape, flat or nested data)`` per tensor.

    Returns
    -------
    tuple
        ``(columns, n_rows)``.

    Raises
    ------
    RequestValidationError
        Status 400, with one problem per bad tensor, field and row.
    """
    if not inputs:
        raise RequestValidationError(
            [problem("inputs", "empty_batch", "the request has no input tensors")], status=400
        )
    if len(inputs) == 1 and len(inputs[0][2]) == 2 and inputs[0][2][1] > 1:
        return _decode_matrix(model, *inputs[0])
    columns: dict[str, list[Any]] = {}
    n_rows: int | None = None
    problems: list[dict[str, Any]] = []
    for name, datatype, shape, data in inputs:
        spec = model.field_by_name.get(name)
        if spec is None:
            if name == model.target:
                continue
            problems.append(
                problem(
                    name,
                    "unknown_field",
                    f"input tensor '{name}' is not a column the model "
                    f"knows; its columns are {', '.join(repr(s.name) for s in model.fields[:12])}",
                )
            )
            continue
        flat = _flatten(data)
        rows = _rows_of(name, shape, len(flat))
        if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
            problems.append(
                problem(
                    name,
                    "bad_shape",
                    f"input tensor '{name}' has the shape {shape}; one column is [N] or [N, 1]",
                )
            )
            continue
        if n_rows is None:
            n_rows = rows
        elif rows != n_rows:
            problems.append(
                problem(
                    name,
                    "bad_shape",
                    f"input tensor '{name}' has {rows} rows, other inputs have {n_rows}",
                )
            )
            continue
        columns[name] = _typed_values(name, datatype, list(flat), spec.kind)
    if problems:
        raise RequestValidationError(problems, status=400)
    if not n_rows:
        raise RequestValidationError(
            [problem("inputs", "empty_batch", "the input tensors hold no rows; send at least one")],
            status=400,
        )
    check_columns(model, columns, n_rows, problems)
    if problems:
        raise RequestValidationError(problems, status=400)
    return columns, n_rows


def _decode_matrix(
    model: ServedModel, name: str, datatype: str, shape: list[int], data: list[Any]
) -> tuple[dict[str, list[Any]], int]:
    features = model.feature_names
    if not model.all_numeric:
        text = [spec.name for spec in model.fields if spec.kind != "number"][:5]
        raise RequestValidationError(
            [
                problem(
                    name,
                    "bad_shape",
                    f"input tensor '{name}' is a [N, F] matrix, but this model has "
                    f"non-numeric columns ({', '.join(repr(t) for t in text)}): send one "
                    "tensor per column",
                )
            ],
            status=400,
        )
    if datatype not in NUMERIC_TYPES:
        raise RequestValidationError(
            [
                problem(
                    name,
                    "wrong_type",
                    f"input tensor '{name}' is {datatype}; a feature matrix must be FP32 or FP64",
                )
            ],
            status=400,
        )
    flat = _flatten(data)
    rows = _rows_of(name, shape, len(flat))
    if shape[1] != len(features):
        raise RequestValidationError(
            [
                problem(
                    name,
                    "bad_shape",
                    f"input tensor '{name}' has {shape[1]} columns; the model has "
                    f"{len(features)} features, in this order: {', '.join(features[:20])}",
                )
            ],
            status=400,
        )
    if rows == 0:
        raise RequestValidationError(
            [problem(name, "empty_batch", "the input tensor holds no rows")], status=400
        )
    width = len(features)
    columns = {feature: list(flat[i::width]) for i, feature in enumerate(features)}
    problems: list[dict[str, Any]] = []
    check_columns(model, columns, rows, problems)
    if problems:
        raise RequestValidationError(problems, status=400)
    return columns, rows


def encode_outputs(
    model: ServedModel,
    labels: list[Any],
    probabilities: Any,
    requested: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Output tensors (JSON form) for predictions, optionally only the requested ones."""
    n = len(labels)
    available = {"predict"} | ({"predict_proba"} if probabilities is not None else set())
    names = requested or sorted(available, key=["predict", "predict_proba"].index)
    unknown = [name for name in names if name not in available]
    if unknown:
        raise RequestValidationError(
            [
                problem(
                    name,
                    "unknown_output",
                    f"the model has no output '{name}'; its outputs are "
                    f"{', '.join(sorted(available))}",
                )
                for name in unknown
            ],
            status=400,
        )
    outputs = []
    for name in names:
        if name == "predict":
            datatype = label_datatype(model)
            data = [str(v) for v in labels] if datatype == "BYTES" else labels
            outputs.append({"name": "predict", "shape": [n], "datatype": datatype, "data": data})
        else:
            outputs.append(
                {
                    "name": "predict_proba",
                    "shape": [n, probabilities.shape[1]],
                    "datatype": "FP64",
                    "data": probabilities.ravel().tolist(),
                    "parameters": {"classes": json.dumps(model.classes, default=str)},
                }
            )
    return outputs


def deserialize_bytes(raw: bytes) -> list[bytes]:
    """BYTES tensor contents in raw form: 4-byte little-endian length, then the bytes."""
    out = []
    offset = 0
    size = len(raw)
    while offset < size:
        if offset + 4 > size:
            raise ValueError("truncated length prefix")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > size:
            raise ValueError("element longer than the buffer")
        out.append(bytes(raw[offset : offset + length]))
        offset += length
    return out


def serialize_bytes(values: list[Any]) -> bytes:
    """Inverse of :func:`deserialize_bytes` (for raw output contents)."""
    parts = []
    for value in values:
        data = value if isinstance(value, bytes) else str(value).encode("utf-8")
        parts.append(struct.pack("<I", len(data)))
        parts.append(data)
    return b"".join(parts)


def raw_to_list(name: str, datatype: str, raw: bytes) -> list[Any]:
    """Raw tensor bytes (binary extension or gRPC raw contents) to a flat list."""
    try:
        if datatype == "BYTES":
            return list(deserialize_bytes(raw))
        dtype = RAW_DTYPES[datatype]
        if len(raw) % np.dtype(dtype).itemsize:
            raise ValueError("size is not a multiple of the element size")
        return np.frombuffer(raw, dtype=dtype).tolist()
    except (ValueError, KeyError) as err:
        raise RequestValidationError(
            [
                problem(
                    name,
                    "bad_binary_data",
                    f"input '{name}' ({datatype}) has raw contents that cannot be read ({err})",
                )
            ],
            status=400,
        ) from err


_ID_PREFIX = uuid.uuid4().hex[:16]
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """A unique request id: a random per-process prefix and a counter (no syscall per call)."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"
