"""The Open Inference Protocol over gRPC: ``inference.GRPCInferenceService``.

It shares the loaded models, validation, prediction log and metrics with the REST app (one
:class:`~mlwright.serve._app.ServerState`). gRPC runs as a ``grpc.aio`` server on an asyncio
loop of its own thread, beside uvicorn's loop: small requests are predicted inline on that
loop (no thread hand-off per call), large ones in the shared worker threads. Model calls from
both loops are safe because a served model is read-only.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import grpc
import numpy as np

from mlwright import __version__
from mlwright.errors import ConfigError
from mlwright.serve._auth import token_matches
from mlwright.serve._experiment_routes import UNIT_HEADER
from mlwright.serve._log import LAST_APPENDED
from mlwright.serve._oip import (
    RAW_DTYPES,
    decode_inputs,
    encode_outputs,
    model_metadata,
    new_request_id,
    raw_to_list,
    serialize_bytes,
)
from mlwright.serve._proto import grpc_predict_v2_pb2 as pb
from mlwright.serve._proto import grpc_predict_v2_pb2_grpc as pb_grpc
from mlwright.serve._validate import (
    RequestValidationError,
    check_columns_fast,
    problem,
    summary,
)

__all__ = ["GrpcServer", "InferenceServicer", "start_grpc_server"]

#: Requests up to this many rows are predicted inline on the gRPC event loop.
INLINE_ROWS = 64

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


class InferenceServicer:
    """Answers the six Open Inference Protocol RPCs from a server state.

    Registered with ``add_GRPCInferenceServiceServicer_to_server``, which looks up the six
    methods by name; the generated UNIMPLEMENTED base class is not shipped (see
    ``_proto/_generate.py``).
    """

    def __init__(self, state: Any) -> None:
        self.state = state

    def _count(self, method: str, code: grpc.StatusCode, started: float) -> None:
        self.state.metrics.observe_request(
            f"grpc_{method}", code.name, time.perf_counter() - started
        )

    async def ServerLive(self, request: Any, context: Any) -> Any:  # noqa: N802 (gRPC names)
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: Any) -> Any:  # noqa: N802
        return pb.ServerReadyResponse(ready=self.state.ready and len(self.state.registry) > 0)

    async def ServerMetadata(self, request: Any, context: Any) -> Any:  # noqa: N802
        if not await self._authorized(context):
            return pb.ServerMetadataResponse()
        return pb.ServerMetadataResponse(name="mlwright", version=__version__, extensions=[])

    async def _authorized(self, context: Any) -> bool:
        token = self.state.settings.token
        if not token:
            return True

        metadata = dict(context.invocation_metadata() or ())
        if token_matches(token, metadata.get("authorization")):
            return True
        await context.abort(
            grpc.StatusCode.UNAUTHENTICATED,
            "Missing or wrong bearer token: send metadata 'authorization: Bearer <token>' (the "
            "--token or MLWRIGHT_TOKEN the server was started with).",
        )
        return False

    async def _model(self, name: str, version: str, context: Any) -> Any:
        model = self.state.registry.get(name, version or None)
        if model is None and version and self.state.experiments is not None:
            # A version an experiment's arm serves is answered too (outside the experiment).
            model = self.state.experiments.arm_model(name, version)
        if model is None:
            loaded = ", ".join(
                f"'{m.name}' (version {m.version})" for m in self.state.registry.models()
            )
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"No model '{name}'{' version ' + repr(version) if version else ''} is loaded. "
                f"Loaded models: {loaded}.",
            )
        return model

    async def ModelReady(self, request: Any, context: Any) -> Any:  # noqa: N802
        if not await self._authorized(context):
            return pb.ModelReadyResponse()
        model = self.state.registry.get(request.name, request.version or None)
        return pb.ModelReadyResponse(ready=model is not None and self.state.ready)

    async def ModelMetadata(self, request: Any, context: Any) -> Any:  # noqa: N802
        if not await self._authorized(context):
            return pb.ModelMetadataResponse()
        model = await self._model(request.name, request.version, context)
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

    async def ModelInfer(self, request: Any, context: Any) -> Any:  # noqa: N802
        started = time.perf_counter()
        if not await self._authorized(context):
            return pb.ModelInferResponse()
        model = await self._model(request.model_name, request.model_version, context)
        request_id = request.id or new_request_id()
        experiments = self.state.experiments
        # Under an online experiment the request's arm answers, unless it named a version.
        active = (
            experiments.active(model.name)
            if experiments is not None and not request.model_version
            else None
        )
        arm = "main"
        try:
            columns, n_rows = _decode(model, request)
            if active is not None:
                unit = experiments.unit(
                    active,
                    fallback=request_id,
                    parameters=_parameters(request.parameters),
                    header=_metadata(context).get(UNIT_HEADER),
                )
                model, labels, probabilities, arm = await experiments.predict(
                    active,
                    model,
                    unit=unit,
                    request_id=request_id,
                    columns=columns,
                    n_rows=n_rows,
                    prepare=lambda other: _decode(other, request),
                    features=columns,
                )
            elif n_rows <= INLINE_ROWS:
                labels, probabilities = model.predict_columns(columns, n_rows)
            else:
                loop = asyncio.get_running_loop()
                labels, probabilities = await loop.run_in_executor(
                    self.state.executor, model.predict_columns, columns, n_rows
                )
            requested = [output.name for output in request.outputs] or None
            outputs = encode_outputs(model, labels, probabilities, requested)
        except RequestValidationError as err:
            for item in err.problems:
                self.state.metrics.validation_failures.labels(model.name, item["kind"]).inc()
            self._count("infer", grpc.StatusCode.INVALID_ARGUMENT, started)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, summary(err.problems))
            raise  # abort raises; this keeps type checkers informed
        log = self.state.log
        LAST_APPENDED.set(0)
        self.state.record(model, request_id, columns, labels, probabilities, started, arm=arm)
        if log is not None and log.durable and not await log.wait_logged(LAST_APPENDED.get()):
            # As over HTTP (a 503): a durable log answers only what it has logged.
            self._count("infer", grpc.StatusCode.UNAVAILABLE, started)
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                "The prediction was made but could not be written to the prediction log "
                f"({log.store.uri}: {log.last_error or 'the writer did not keep up'}). Free "
                "space on the log's disk or make it writable.",
            )
        response = pb.ModelInferResponse(
            model_name=model.name, model_version=model.version, id=request_id
        )
        response.parameters["content_type"].string_param = "pd"
        if active is not None:
            response.parameters["experiment"].string_param = active.experiment.name
            response.parameters["arm"].string_param = arm
        for output in outputs:
            tensor = response.outputs.add(
                name=output["name"], datatype=output["datatype"], shape=output["shape"]
            )
            if output["name"] == "predict_proba":
                tensor.parameters["classes"].string_param = json.dumps(model.classes, default=str)
            response.raw_output_contents.append(_raw(output["datatype"], output["data"]))
        self._count("infer", grpc.StatusCode.OK, started)
        return response


def _parameters(parameters: Any) -> dict[str, Any]:
    """Request ``parameters`` as plain values (``None`` for a kind this proto cannot read,
    such as a newer client's ``double_param``, so the unit-key check can name it)."""
    values: dict[str, Any] = {}
    for key, parameter in parameters.items():
        kind = parameter.WhichOneof("parameter_choice")
        values[key] = getattr(parameter, kind) if kind else None
    return values


def _metadata(context: Any) -> dict[str, str]:
    """Invocation metadata as a dict (text values only; binary ``-bin`` keys are skipped)."""
    return {
        key.lower(): value
        for key, value in (context.invocation_metadata() or ())
        if isinstance(value, str)
    }


def _raw(datatype: str, data: list[Any]) -> bytes:
    # tritonclient reads outputs from raw_output_contents, as Triton sends them.
    if datatype == "BYTES":
        return serialize_bytes(data)
    return np.asarray(data, dtype=RAW_DTYPES[datatype]).tobytes()


#: Typed ``contents`` fields read by :func:`_decode`'s fast path (one Python type each).
_FAST_CONTENTS = {
    "FP64": "fp64_contents",
    "FP32": "fp32_contents",
    "INT64": "int64_contents",
    "INT32": "int_contents",
    "BOOL": "bool_contents",
    "BYTES": "bytes_contents",
}


def _decode(model: Any, request: Any) -> tuple[dict[str, list[Any]], int]:
    """Validated per-column values and the row count of a ``ModelInferRequest``.

    Well-formed requests (one ``[N]`` or ``[N, 1]`` tensor per column, values in the typed
    ``contents``, all valid) go straight from the protobuf fields to columns; anything else
    takes the general tensor decoding, which names every problem.
    """
    fast = _fast_decode(model, request)
    if fast is not None:
        return fast
    return decode_inputs(model, _inputs(request))


def _fast_decode(model: Any, request: Any) -> tuple[dict[str, list[Any]], int] | None:
    if request.raw_input_contents:
        return None
    present: dict[str, list[Any]] = {}
    n_rows = -1
    for tensor in request.inputs:
        shape = tensor.shape
        if not 1 <= len(shape) <= 2 or (len(shape) == 2 and shape[1] != 1):
            return None
        rows = shape[0]
        field = _FAST_CONTENTS.get(tensor.datatype)
        if field is None or rows < 1 or (n_rows != -1 and rows != n_rows):
            return None
        n_rows = rows
        contents = getattr(tensor.contents, field)
        if len(contents) != rows or tensor.name in present:
            return None
        if field == "bytes_contents":
            try:
                present[tensor.name] = [value.decode() for value in contents]
            except UnicodeDecodeError:
                return None
        else:
            present[tensor.name] = list(contents)
    if n_rows == -1:
        return None
    columns = check_columns_fast(model, present, n_rows)
    return None if columns is None else (columns, n_rows)


def _inputs(request: Any) -> list[tuple[str, str, list[int], list[Any]]]:

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
            data = raw_to_list(tensor.name, datatype, raw[index])
        else:
            data = list(getattr(tensor.contents, _CONTENTS_FIELD[datatype]))
        inputs.append((tensor.name, datatype, list(tensor.shape), data))
    return inputs


def _new_event_loop() -> asyncio.AbstractEventLoop:
    # uvloop (as uvicorn uses) runs the loop's own work per event in C.
    try:
        # deferred: uvloop is not installed on Windows (a platform-marked dependency)
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class GrpcServer:
    """A ``grpc.aio`` server running on its own thread and event loop."""

    def __init__(self, state: Any, host: str, port: int) -> None:
        self.state = state
        self.address = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
        self.port = 0
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._grace = 10.0
        self._thread = threading.Thread(target=self._run, name="mlwright-grpc", daemon=True)

    def start(self) -> int:
        """Start serving; returns the bound port.

        Raises
        ------
        ConfigError
            The port cannot be bound.
        """

        self._thread.start()
        self._ready.wait(60)
        if self._error is not None or not self.port:
            raise ConfigError(
                f"Cannot listen for gRPC on {self.address} ({self._error or 'port in use'}). "
                "Choose another --grpc-port, or --grpc-port 0 to turn gRPC off."
            )
        return self.port

    def _run(self) -> None:
        loop = _new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as err:  # reported to start()
            self._error = err
            self._ready.set()
        finally:
            loop.close()

    async def _serve(self) -> None:
        limit = self.state.settings.max_body_bytes
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", max(limit, 64 * 1024 * 1024)),
                ("grpc.so_reuseport", 1),
                # No bandwidth-delay probing: it answers the first data of every request
                # with a PING the client must acknowledge, two more wake-ups on each side
                # per call, to size flow-control windows that one-row messages never fill.
                ("grpc.http2.bdp_probe", 0),
            ]
        )
        pb_grpc.add_GRPCInferenceServiceServicer_to_server(InferenceServicer(self.state), server)
        self.port = server.add_insecure_port(self.address)
        self._stop_event = asyncio.Event()
        if not self.port:
            self._ready.set()
            return
        await server.start()
        self._ready.set()
        await self._stop_event.wait()
        # RPCs in flight get the grace period to finish.
        await server.stop(self._grace)

    def stop(self, grace: float = 10.0) -> None:
        """Stop accepting RPCs, let those in flight finish (up to ``grace`` s), and return."""
        self._grace = grace
        if self._loop is not None and self._stop_event is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop_event.set)
            self._thread.join(grace + 10)


def start_grpc_server(state: Any, host: str, port: int) -> tuple[GrpcServer, int]:
    """Start the gRPC server; returns ``(server, bound port)`` (``server.stop(grace)`` ends it).

    Raises
    ------
    ConfigError
        The port cannot be bound.
    """
    server = GrpcServer(state, host, port)
    return server, server.start()
