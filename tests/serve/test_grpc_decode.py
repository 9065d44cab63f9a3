"""gRPC ModelInfer decoding: the protobuf fast path agrees with the general tensor decoding."""

from __future__ import annotations

import pytest

from mlwright.serve._grpc import _decode, _fast_decode, _inputs
from mlwright.serve._oip import decode_inputs
from mlwright.serve._proto import grpc_predict_v2_pb2 as pb
from mlwright.serve._registry import load_served_model
from mlwright.serve._validate import RequestValidationError


@pytest.fixture(scope="module")
def served(credit_model_dir):
    return load_served_model(str(credit_model_dir))


def _request(records: list[dict], *, shape_suffix: tuple[int, ...] = ()) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="credit")
    for column in records[0]:
        values = [record[column] for record in records]
        tensor = request.inputs.add(name=column, shape=[len(records), *shape_suffix])
        if any(isinstance(value, str) for value in values):
            tensor.datatype = "BYTES"
            tensor.contents.bytes_contents.extend(
                b"" if value is None else value.encode() for value in values
            )
        else:
            tensor.datatype = "FP64"
            tensor.contents.fp64_contents.extend(float(value) for value in values)
    return request


def _general(served, request):
    return decode_inputs(served, _inputs(request))


@pytest.mark.parametrize(("start", "rows"), [(0, 1), (5, 1), (0, 40)])
def test_fast_path_matches_the_general_decoding(served, credit_records, start, rows):
    request = _request(credit_records[start : start + rows])
    fast = _fast_decode(served, request)
    assert fast is not None
    assert fast == _general(served, request)
    assert _decode(served, request) == fast


def test_column_tensors_of_shape_n_by_1_take_the_fast_path(served, credit_records):
    request = _request(credit_records[:3], shape_suffix=(1,))
    assert _fast_decode(served, request) == _general(served, request)


def _text_column_as_numbers(served, records):
    request = _request(records)
    text = next(t for t in request.inputs if t.datatype == "BYTES")
    text.datatype = "FP64"
    text.contents.fp64_contents.extend([1.0] * len(records))
    del text.contents.bytes_contents[:]
    return request


def _unknown_column(served, records):
    request = _request(records)
    extra = request.inputs.add(name="no_such_column", datatype="FP64", shape=[len(records)])
    extra.contents.fp64_contents.extend([1.0] * len(records))
    return request


def _row_counts_differ(served, records):
    request = _request(records)
    numeric = next(t for t in request.inputs if t.datatype == "FP64")
    numeric.shape[0] = 1
    del numeric.contents.fp64_contents[1:]
    return request


def _matrix_shape(served, records):
    request = _request(records[:1])
    request.inputs[0].shape.append(2)
    return request


def _not_utf8(served, records):
    request = _request(records[:1])
    text = next(t for t in request.inputs if t.datatype == "BYTES")
    text.contents.bytes_contents[0] = b"\xff\xfe"
    return request


def _no_inputs(served, records):
    return pb.ModelInferRequest(model_name="credit")


@pytest.mark.parametrize(
    "build",
    [
        _text_column_as_numbers,
        _unknown_column,
        _row_counts_differ,
        _matrix_shape,
        _not_utf8,
        _no_inputs,
    ],
)
def test_malformed_requests_get_the_general_messages(served, credit_records, build):
    request = build(served, credit_records[:2])
    assert _fast_decode(served, request) is None
    with pytest.raises(RequestValidationError) as general:
        _general(served, request)
    with pytest.raises(RequestValidationError) as decoded:
        _decode(served, request)
    assert decoded.value.problems == general.value.problems
    assert decoded.value.problems
