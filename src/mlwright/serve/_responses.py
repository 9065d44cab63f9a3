"""JSON responses and request checks that the REST and Open Inference Protocol routes share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from fastapi import Request
from fastapi.responses import Response
from pydantic import TypeAdapter, ValidationError

from mlwright.serve import _json as fast_json
from mlwright.serve._registry import ModelRegistry
from mlwright.serve._validate import (
    RequestValidationError,
    problem,
    pydantic_problems,
    summary,
)

__all__ = [
    "check_content_type",
    "error_response",
    "json_response",
    "not_found",
    "parse_json",
    "parse_body",
    "plain_labels",
]


def json_response(content: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(
        fast_json.dumps(content),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def error_response(state: Any, model_name: str | None, err: RequestValidationError) -> Response:
    for item in err.problems:
        state.metrics.validation_failures.labels(model_name or "-", item["kind"]).inc()
    return json_response(
        {"error": summary(err.problems), "detail": err.problems}, status=err.status
    )


def not_found(registry: ModelRegistry, name: str | None, version: str | None) -> Response:
    loaded = ", ".join(f"'{m.name}' (version {m.version})" for m in registry.models())
    if name is not None and registry.get(name) is not None and version:
        message = (
            f"Model '{name}' has no version '{version}' loaded here; the loaded version is "
            f"'{registry.get(name).version}'."  # type: ignore[union-attr]
        )
    else:
        message = f"No model called '{name}' is loaded. Loaded models: {loaded}."
    return json_response({"error": message}, status=404)


def parse_json(body: bytes) -> Any:
    if not body:
        raise RequestValidationError(
            [problem(None, "malformed_json", "the request body is empty; send a JSON object")],
            status=400,
        )
    try:
        return fast_json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise RequestValidationError(
            [problem(None, "malformed_json", f"the request body is not valid JSON ({err})")],
            status=400,
        ) from err


def parse_body(
    adapter: TypeAdapter | Callable[[Any], TypeAdapter], body: bytes, status: int = 422
) -> Any:
    """The JSON ``body`` validated by ``adapter``: malformed JSON is a 400, a body that does
    not match the adapter's schema (the one the OpenAPI document declares) a ``status``.

    ``adapter`` may be a function choosing the adapter from the parsed JSON: for a body that
    is one of several shapes (an item or a list of items), so that the problems name the
    fields of the shape sent rather than of every alternative."""
    payload = parse_json(body)
    if not isinstance(adapter, TypeAdapter):
        adapter = adapter(payload)
    try:
        return adapter.validate_python(payload)
    except ValidationError as err:
        raise RequestValidationError(
            pydantic_problems(err.errors(include_url=False)), status=status
        ) from err


def check_content_type(request: Request) -> None:
    content_type = request.headers.get("content-type", "application/json")
    if "json" not in content_type and "octet-stream" not in content_type and content_type:
        raise RequestValidationError(
            [
                problem(
                    None,
                    "unsupported_media_type",
                    f"the request body is '{content_type}'; send application/json",
                )
            ],
            status=415,
        )


def plain_labels(labels: list[Any]) -> list[Any]:
    if labels and isinstance(labels[0], np.generic):
        return [label.item() for label in labels]
    return labels
