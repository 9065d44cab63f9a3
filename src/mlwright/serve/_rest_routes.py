"""The plain JSON routes: ``POST /predict``, ``POST /models/{name}/predict``, ``GET /models``."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mlwright.serve._oip import new_request_id
from mlwright.serve._responses import (
    check_content_type,
    error_response,
    json_response,
    not_found,
    parse_json,
    plain_labels,
)
from mlwright.serve._validate import RequestValidationError, check_records, problem

__all__ = ["build_rest_router"]


def build_rest_router(state: Any) -> APIRouter:
    """The routes, answering from the :class:`~mlwright.serve.ServerState` ``state``.

    The prediction handler is also ``state.predict_handler``, which the server's middleware
    calls directly for the prediction paths.
    """
    router = APIRouter()
    registry = state.registry

    async def _predict(request: Request, name: str | None) -> Response:
        started = time.perf_counter()
        model = registry.get(name)
        if model is None:
            return not_found(registry, name, None)
        try:
            check_content_type(request)
            payload = parse_json(await request.body())
            if not isinstance(payload, dict):
                raise RequestValidationError(
                    [
                        problem(
                            None,
                            "wrong_type",
                            'the request body must be a JSON object {"records": [...]}',
                        )
                    ]
                )
            extra = [key for key in payload if key != "records"]
            if extra:
                raise RequestValidationError(
                    [
                        problem(
                            key,
                            "unknown_field",
                            f"the request has the key '{key}'; send "
                            '{"records": [{field: value, ...}, ...]}',
                        )
                        for key in extra
                    ]
                )
            if "records" not in payload:
                raise RequestValidationError(
                    [
                        problem(
                            "records",
                            "missing_field",
                            "the request lacks 'records': send "
                            '{"records": [{field: value, ...}, ...]}',
                        )
                    ]
                )
            records = payload["records"]
            columns, n_rows = check_records(model, records)
        except RequestValidationError as err:
            return error_response(state, model.name, err)
        request_id = request.headers.get("x-request-id") or new_request_id()
        # A model under an online experiment answers with the request's arm (experiment stage).
        active = state.experiments.active(model.name) if state.experiments else None
        if active is None:
            used, labels, probabilities = await state.predict(model, columns, n_rows)
            arm = "main"
        else:
            try:
                unit = state.experiments.unit(
                    active,
                    fallback=request_id,
                    record=records[0],
                    header=request.headers.get("x-unit-key"),
                    status=422,
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
                prepare=lambda other: check_records(other, records),
                features=records,
            )
        rows = state.record(used, request_id, records, labels, probabilities, started, arm=arm)
        content: dict[str, Any] = {"predictions": plain_labels(labels)}
        if rows is not None:
            content["probabilities"] = rows
        content.update(model=used.name, version=used.version, request_id=request_id)
        return json_response(content, headers={"x-request-id": request_id})

    state.predict_handler = _predict

    @router.post(
        "/predict",
        tags=["predict"],
        summary="Predict with the default model",
        response_model=None,
        openapi_extra={"x-mlwright-model": "default"},
    )
    async def predict(request: Request) -> Response:
        return await _predict(request, None)

    @router.post(
        "/models/{name}/predict",
        tags=["predict"],
        summary="Predict with a named model",
        response_model=None,
        openapi_extra={"x-mlwright-model": "named"},
    )
    async def predict_named(name: str, request: Request) -> Response:
        return await _predict(request, name)

    @router.get("/models", tags=["models"], summary="Loaded models")
    async def list_models() -> dict[str, Any]:
        return {
            "models": [model.describe() for model in registry.models()],
            "default": registry.default_name,
        }

    return router
