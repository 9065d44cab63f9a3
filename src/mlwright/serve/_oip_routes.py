"""The Open Inference Protocol (V2) REST routes: health, metadata and inference."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import TypeAdapter

from mlwright import __version__
from mlwright.serve._oip import (
    InferenceRequest,
    InferenceResponse,
    MetadataModelResponse,
    MetadataServerResponse,
    decode_inputs,
    encode_outputs,
    model_metadata,
    new_request_id,
    raw_to_list,
)
from mlwright.serve._registry import ServedModel
from mlwright.serve._responses import (
    check_content_type,
    error_response,
    json_response,
    not_found,
    parse_body,
)
from mlwright.serve._settings import ServeSettings, get_serve_settings
from mlwright.serve._validate import RequestValidationError, problem

__all__ = ["build_oip_router"]

_INFERENCE_REQUEST = TypeAdapter(InferenceRequest)


def build_oip_router(state: Any) -> APIRouter:
    """The routes, answering from the :class:`~mlwright.serve.ServerState` ``state``.

    The inference handler is also ``state.infer_handler``, which the server's middleware calls
    directly for the inference paths.
    """
    router = APIRouter()
    registry = state.registry

    @router.get("/v2/health/live", tags=["v2"], summary="Server liveness")
    async def live() -> dict[str, bool]:
        return {"live": True}

    @router.get(
        "/v2/health/ready",
        tags=["v2"],
        summary="Server readiness",
        responses={503: {"description": "Not ready"}},
    )
    async def ready() -> Response:
        ok = state.ready and len(registry) > 0
        return json_response({"ready": ok}, status=200 if ok else 503)

    @router.get(
        "/v2", tags=["v2"], summary="Server metadata", response_model=MetadataServerResponse
    )
    async def server_metadata(
        current: ServeSettings = Depends(get_serve_settings),
    ) -> dict[str, Any]:
        return {"name": "mlwright", "version": __version__, "extensions": []}

    def _model_or_404(name: str, version: str | None) -> ServedModel | Response:
        model = registry.get(name, version)
        if model is None and version and state.experiments is not None:
            # A version an experiment's arm serves is answered too (outside the experiment).
            model = state.experiments.arm_model(name, version)
        return model if model is not None else not_found(registry, name, version)

    async def _metadata(name: str, version: str | None) -> Response:
        found = _model_or_404(name, version)
        if isinstance(found, Response):
            return found
        return json_response(model_metadata(found))

    async def _model_ready(name: str, version: str | None) -> Response:
        found = _model_or_404(name, version)
        if isinstance(found, Response):
            return found
        return json_response({"name": found.name, "ready": state.ready})

    @router.get(
        "/v2/models/{name}",
        tags=["v2"],
        summary="Model metadata",
        response_model=MetadataModelResponse,
        responses={404: {"description": "Unknown"}},
    )
    async def metadata(name: str) -> Response:
        return await _metadata(name, None)

    @router.get(
        "/v2/models/{name}/versions/{version}",
        tags=["v2"],
        summary="Model metadata (one version)",
        response_model=MetadataModelResponse,
        responses={404: {"description": "Unknown"}},
    )
    async def metadata_version(name: str, version: str) -> Response:
        return await _metadata(name, version)

    @router.get(
        "/v2/models/{name}/ready",
        tags=["v2"],
        summary="Model readiness",
        responses={404: {"description": "Unknown"}},
    )
    async def model_ready(name: str) -> Response:
        return await _model_ready(name, None)

    @router.get(
        "/v2/models/{name}/versions/{version}/ready",
        tags=["v2"],
        summary="Model readiness (one version)",
        responses={404: {"description": "Unknown"}},
    )
    async def model_ready_version(name: str, version: str) -> Response:
        return await _model_ready(name, version)

    async def _infer(request: Request, name: str, version: str | None) -> Response:
        started = time.perf_counter()
        found = _model_or_404(name, version)
        if isinstance(found, Response):
            return found
        model = found
        try:
            body = await request.body()
            header_length = request.headers.get("inference-header-content-length")
            binary = b""
            if header_length is not None:
                try:
                    split = int(header_length)
                except ValueError as err:
                    raise RequestValidationError(
                        [
                            problem(
                                None,
                                "malformed_json",
                                "Inference-Header-Content-Length is not a number",
                            )
                        ],
                        status=400,
                    ) from err
                body, binary = body[:split], body[split:]
            else:
                check_content_type(request)
            parsed = parse_body(_INFERENCE_REQUEST, body, status=400)
            inputs = _tensor_inputs(parsed, binary)
            columns, n_rows = decode_inputs(model, inputs)
            requested = [output.name for output in parsed.outputs or []] or None
        except RequestValidationError as err:
            return error_response(state, model.name, err)
        request_id = parsed.id or request.headers.get("x-request-id") or new_request_id()
        # Under an online experiment the request's arm answers, unless it named a version.
        active = (
            state.experiments.active(model.name)
            if state.experiments is not None and version is None
            else None
        )
        parameters: dict[str, Any] = {"content_type": "pd"}
        if active is None:
            used, labels, probabilities = await state.predict(model, columns, n_rows)
            arm = "main"
        else:
            try:
                unit = state.experiments.unit(
                    active,
                    fallback=request_id,
                    parameters=parsed.parameters,
                    header=request.headers.get("x-unit-key"),
                    status=400,
                )
            except RequestValidationError as err:
                return error_response(state, model.name, err)
            used, labels, probabilities, arm = await state.experiments.predict(
                active,
                model,
                unit=unit,
                request_id=request_id,
                columns=columns,
                n_rows=n_rows,
                prepare=lambda other: decode_inputs(other, inputs),
                features=columns,
            )
            parameters.update(experiment=active.experiment.name, arm=arm)
        try:
            outputs = encode_outputs(used, labels, probabilities, requested)
        except RequestValidationError as err:
            return error_response(state, model.name, err)
        state.record(used, request_id, columns, labels, probabilities, started, arm=arm)
        return json_response(
            {
                "model_name": used.name,
                "model_version": used.version,
                "id": request_id,
                "parameters": parameters,
                "outputs": outputs,
            }
        )

    state.infer_handler = _infer

    infer_doc = {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/InferenceRequest"}}
            },
        }
    }

    @router.post(
        "/v2/models/{name}/infer",
        tags=["v2"],
        summary="Inference (Open Inference Protocol)",
        response_model=InferenceResponse,
        openapi_extra=infer_doc,
        responses={400: {"description": "Invalid input"}, 404: {"description": "Unknown"}},
    )
    async def infer(name: str, request: Request) -> Response:
        return await _infer(request, name, None)

    @router.post(
        "/v2/models/{name}/versions/{version}/infer",
        tags=["v2"],
        summary="Inference with one version",
        response_model=InferenceResponse,
        openapi_extra=infer_doc,
        responses={400: {"description": "Invalid input"}, 404: {"description": "Unknown"}},
    )
    async def infer_version(name: str, version: str, request: Request) -> Response:
        return await _infer(request, name, version)

    return router


def _tensor_inputs(
    parsed: InferenceRequest, binary: bytes
) -> list[tuple[str, str, list[int], list[Any]]]:
    """Inputs as ``(name, datatype, shape, data)``; binary-extension data decoded."""
    inputs = []
    offset = 0
    for tensor in parsed.inputs:
        parameters = tensor.parameters or {}
        size = parameters.get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or size < 0 or offset + size > len(binary):
                raise RequestValidationError(
                    [
                        problem(
                            tensor.name,
                            "bad_binary_data",
                            f"input '{tensor.name}' announces {size} bytes of binary "
                            f"data, but the body holds {len(binary) - offset}",
                        )
                    ],
                    status=400,
                )
            chunk = binary[offset : offset + size]
            offset += size
            data = raw_to_list(tensor.name, tensor.datatype, chunk)
        else:
            data = tensor.data if tensor.data is not None else []
        inputs.append((tensor.name, tensor.datatype, list(tensor.shape), data))
    return inputs
