"""The Open Inference Protocol over gRPC: ``inference.GRPCInferenceService``.

It shares the loaded models, validation, prediction log and metrics with the REST app (one
:class:`~mlwright.serve._app.ServerState`). gRPC runs in its own thread pool beside the
asyncio event loop; model calls from both are safe because a served model is read-only.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import numpy as np

from mlwright import __version__
from mlwright.serve._app import new_request_id
from mlwright.serve._oip import (
    RAW_DTYPES,
    decode_inputs,
    encode_outputs,
    model_metadata,
    serialize_bytes,
)
from mlwright.serve._proto import grpc_predict_v2_pb2 as pb
from mlwright.serve._proto import grpc_predict_v2_pb2_grpc as pb_grpc
from mlwright.serve._validate import RequestValidationError, problem, summary

__all__ = ["InferenceServicer", "start_grpc_server"]

_CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    """Answers the six Open Inference Protocol RPCs from a server state."""

    def __init__(self, state: Any) -> None:
        self.state = state

    def _count(self, method: str, code: grpc.StatusCode, started: float) -> None:
        self.state.metrics.observe_request(
            f"grpc_{method}", code.name, time.perf_counter() - started
        )

    def ServerLive(self, request: Any, context: Any) -> Any:  # noqa: N802 (gRPC names)
        return pb.ServerLiveResponse(live=True)

    def ServerReady(self, request: Any, context: Any) -> Any:  # noqa: N802
        return pb.ServerReadyResponse(ready=self.state.ready and len(self.state.registry) > 0)

    def ServerMetadata(self, request: Any, context: Any) -> Any:  # noqa: N802
        if not self._authorized(context):
            return pb.ServerMetadataResponse()
        return pb.ServerMetadataResponse(name="mlwright", version=__version__, extensions=[])

    def _authorized(self, context: Any) -> bool:
        token = self.state.settings.token
        if not token:
            return True
        from mlwright.serve._auth import token_matches

        metadata = dict(context.invocation_metadata() or ())
        if token_matches(token, metadata.get("authorization")):
            return True
        context.abort(
            grpc.StatusCode.UNAUTHENTICATED,
            "Missing or wrong bearer token: send metadata 'authorization: Bearer <token>' (the "
            "--token or MLWRIGHT_TOKEN the server was started with).",
        )
        return False

    def _model(self, name: str, version: str, context: Any) -> Any:
        model = self.state.registry.get(name, version or None)
        if model is None:
            loaded = ", ".join(
                f"'{m.name}' (version {m.version})" for m in self.state.registry.models()
            )
            context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"No model '{name}'{' version ' + repr(version) if version else ''} is loaded. "
                f"Loaded models: {loaded}.",
            )
        return model

    def ModelReady(self, request: Any, context: Any) -> Any:  # noqa: N802
        if not self._authorized(context):
            return pb.ModelReadyResponse()
        model = self.state.registry.get(request.name, request.version or None)
        return pb.ModelReadyResponse(ready=model is not None and self.state.ready)

    def ModelMetadata(self, request: Any, context: Any) -> Any:  # noqa: N802
        if not self._authorized(context):
            return pb.ModelMetadataResponse()
        model = self._model(request.name, request.version, context)
        document = model_metadata(model)
        response = pb.ModelMetadataResponse(
            name=document["name"], versions=document["versions"], platform=document["platform"]
        )
        for tensor in document["inputs"]:
            response.inputs.add(
                name=tensor["name"], datatype=tensor["datatype"], shape=tensor["shape"]
            )
        for tensor in document["outputs"]:
            response.outputs.add(
                name=tensor["name"], datatype=tensor["datatype"], shape=tensor["shape"]
            )
        return response

    def ModelInfer(self, request: Any, context: Any) -> Any:  # noqa: N802
        started = time.perf_counter()
        if not self._authorized(context):
            return pb.ModelInferResponse()
        model = self._model(request.model_name, request.model_version, context)
        try:
            inputs = _inputs(request)
            columns, n_rows = decode_inputs(model, inputs)
            labels, probabilities = model.predict_columns(columns, n_rows)
            requested = [output.name for output in request.outputs] or None
            outputs = encode_outputs(model, labels, probabilities, requested)
        except RequestValidationError as err:
            for item in err.problems:
                self.state.metrics.validation_failures.labels(model.name, item["kind"]).inc()
            self._count("infer", grpc.StatusCode.INVALID_ARGUMENT, started)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, summary(err.problems))
            raise  # abort raises; this keeps type checkers informed
        request_id = request.id or new_request_id()
        self.state.record(model, request_id, columns, labels, probabilities, started)
        response = pb.ModelInferResponse(
            model_name=model.name, model_version=model.version, id=request_id
        )
        response.parameters["content_type"].string_param = "pd"
        for output in outputs:
            tensor = response.outputs.add(
                name=output["name"], datatype=output["datatype"], shape=output["shape"]
            )
            if output["name"] == "predict_proba":
                tensor.parameters["classes"].string_param = json.dumps(model.classes, default=str)
            response.raw_output_contents.append(_raw(output["datatype"], output["data"]))
        self._count("infer", grpc.StatusCode.OK, started)
        return response


def _raw(datatype: str, data: list[Any]) -> bytes:
    # tritonclient reads outputs from raw_output_contents, as Triton sends them.
    if datatype == "BYTES":
        return serialize_bytes(data)
    return np.asarray(data, dtype=RAW_DTYPES[datatype]).tobytes()


def _inputs(request: Any) -> list[tuple[str, str, list[int], list[Any]]]:
    from mlwright.serve._app import _raw_to_list

    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise RequestValidationError(
            [
                problem(
                    "raw_input_contents",
                    "bad_shape",
                    f"the request has {len(request.inputs)} inputs "
                    f"but {len(raw)} raw_input_contents entries",
                )
            ],
            status=400,
        )
    inputs = []
    for index, tensor in enumerate(request.inputs):
        datatype = tensor.datatype
        if datatype not in _CONTENTS_FIELD:
            raise RequestValidationError(
                [
                    problem(
                        tensor.name,
                        "wrong_type",
                        f"input '{tensor.name}' has the datatype "
                        f"'{datatype}'; use one of {', '.join(sorted(_CONTENTS_FIELD))}",
                    )
                ],
                status=400,
            )
        if raw:
            data = _raw_to_list(tensor.name, datatype, raw[index])
        else:
            data = list(getattr(tensor.contents, _CONTENTS_FIELD[datatype]))
        inputs.append((tensor.name, datatype, list(tensor.shape), data))
    return inputs


def start_grpc_server(state: Any, host: str, port: int, *, max_workers: int = 4) -> tuple[Any, int]:
    """Start the gRPC server in background threads.

    Returns
    -------
    tuple
        ``(server, bound port)``; ``server.stop(grace)`` ends it.

    Raises
    ------
    ConfigError
        The port cannot be bound.
    """
    from mlwright.errors import ConfigError

    limit = state.settings.max_body_bytes
    server = grpc.server(
        ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="mlwright-grpc"),
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", max(limit, 64 * 1024 * 1024)),
            ("grpc.so_reuseport", 1),
        ],
    )
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(InferenceServicer(state), server)
    address = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as err:
        raise ConfigError(
            f"Cannot listen for gRPC on {address} ({err}). Choose another --grpc-port, or "
            "--grpc-port 0 to turn gRPC off."
        ) from err
    if bound == 0:
        raise ConfigError(
            f"Cannot listen for gRPC on {address}: the port is in use. Choose another "
            "--grpc-port, or --grpc-port 0 to turn gRPC off."
        )
    server.start()
    return server, bound
